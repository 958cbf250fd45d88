"""Proofs and audits need no chain history: the managed anvil is restarted between anchoring and
verifying, with blocks mined after the anchoring block before and after the restart (as on a live
chain). Its state file keeps no history, so a read at the anchoring block fails after the
restart (what the old verifier did: BlockOutOfRangeError, NOT VERIFIED); the verifier reads
``anchorOf`` at the latest block and proves *when* from the anchoring transaction's receipt and
its block, fetched by hash. Event proofs, journal record proofs and the store audit all verify,
and both check proofs twice: locally (StandardMerkleTree) and by the contract itself
(verifyEventValues / verifyJournalValues at the latest block)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from anchors.errors import NodeUnavailableError
from anchors.rpc import as_rpc
from anchors.verify import call_anchor_of

from ledger_api.cli import main as ledger_main
from ledger_api.cli.anchors import verify_proof_file
from settlement.chain.anvil import rpc_call
from settlement.domains import anchoring
from settlement.domains.anchoring.audit_store import roots_anchored
from settlement.domains.members.service import onchain_id
from settlement.pipeline.workers import build
from settlement.wiring import build_registry
from tests.api.support import build_runtime, onboard_direct

from .conftest import make_operator_anchorer
from .test_provenance_api import event


def node_rpc(node):  # type: ignore[no-untyped-def]
    return as_rpc(node.rpc_url)


def test_proofs_and_the_audit_verify_after_a_restart_of_the_managed_chain(tmp_path: Path, anvil_factory) -> None:  # type: ignore[no-untyped-def]
    node = anvil_factory(state_path=tmp_path / "anvil-state.json")
    rt = build_runtime(tmp_path / "home", f"sqlite:///{tmp_path / 'ledger.db'}", node.rpc_url)
    make_operator_anchorer(rt)
    onboard_direct(rt, "supplier-a", ["supplier"])
    with rt.db.transaction() as s:
        anchoring.record_events(s, "supplier-a", onchain_id("supplier-a"), [event(i) for i in range(3)])
    dispatcher, follower = build(rt, build_registry())
    dispatcher.drain()
    anchoring.flush(rt, force=True)
    dispatcher.drain()
    while follower.run_once():
        pass
    anchoring.run_once(rt)  # block times
    with rt.db.read() as s:
        event_doc = anchoring.event_proof(rt, s, "evt-LOT-1-1").to_json()
        record_doc = anchoring.record_proof(rt, s, "member", "supplier-a").to_json()
    assert event_doc["anchor"] and record_doc["anchor"] and record_doc["record"]["kind"] == "member"
    anchored_block = record_doc["anchor"]["block_number"]
    for _ in range(4):  # the chain moves on
        rpc_call(node.rpc_url, "evm_mine")
    node.stop()  # SIGTERM: anvil writes its state, without history
    node.start()
    for _ in range(3):
        rpc_call(node.rpc_url, "evm_mine")
    head = int(str(rpc_call(node.rpc_url, "eth_blockNumber")), 16)
    assert head > anchored_block + 6
    with pytest.raises(NodeUnavailableError):  # the old state is gone: the old way would fail
        call_anchor_of(node.rpc_url, record_doc["anchor"]["contract"], record_doc["root"], anchored_block)

    for name, doc in (("event.json", event_doc), ("record.json", record_doc)):
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        lines: list[str] = []
        assert verify_proof_file(path, node.rpc_url, lines.append) == 0, "\n".join(lines)
        assert any("anchor-block" in line and "[ok]" in line for line in lines)
        assert any("record-to-value" in line for line in lines) == (name == "record.json")
        # the proof checked twice: locally, and by the contract itself at the latest block
        typed = "verifyJournalValues" if name == "record.json" else "verifyEventValues"
        assert any(line.strip().startswith("[ok] proof-to-root") for line in lines), "\n".join(lines)
        assert any(line.strip() == f"[ok] contract-verify-values: TraceAnchor.{typed}(root, proof, value) = True"
                   for line in lines), "\n".join(lines)
        assert lines[-2] == ("proof: locally (StandardMerkleTree, leaf hashed from the values) ok; "
                             f"on chain at the latest block TraceAnchor.{typed} = true"), "\n".join(lines)
    # The contract's RootAnchored logs survive too: the audit still lists every anchored root.
    listed = {root for root, *_rest in roots_anchored(node_rpc(node), rt.address("TraceAnchor"))}
    assert {event_doc["root"], record_doc["root"]} <= listed
    out: list[str] = []
    report = anchoring.audit_store(rt.db.url, rpc=node.rpc_url, contract=rt.address("TraceAnchor"), out=out.append,
                                   verbose=True, onchain_proofs=2)
    assert report.ok and report.chain_checked, "\n".join(out)
    # every anchored batch had the proofs of its first leaves (rebuilt from the store) verified
    # locally and by the contract (verifyEventValues, verifyJournalValues) at the latest block
    assert report.batches >= 2 and report.proofs_on_chain == report.proofs_local >= report.batches + 1
    assert report.proof_functions == {"verifyEventValues", "verifyJournalValues"}
    assert any("verified locally (StandardMerkleTree) and by TraceAnchor.verifyEventValues" in line for line in out)
    assert f"{report.proofs_on_chain} by the contract (verifyEventValues, verifyJournalValues)" in out[-2]
    # the same through the command line, with its JSON report
    found = tmp_path / "audit.json"
    assert ledger_main(["anchors", "audit", "--database-url", rt.db.url, "--rpc", node.rpc_url, "--contract",
                        rt.address("TraceAnchor"), "--onchain-proofs", "3", "--json", str(found)]) == 0
    proofs = json.loads(found.read_text())["proofs"]
    assert proofs["verified_on_chain"] == proofs["verified_locally"] > report.proofs_on_chain
    assert proofs["functions"] == ["verifyEventValues", "verifyJournalValues"]
    rt.db.dispose()
