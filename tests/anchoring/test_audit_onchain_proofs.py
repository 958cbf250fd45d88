"""The audit has the contract verify leaf proofs itself, beside the local check, on a real anvil.

For each anchored batch whose root the audit rebuilt from the store, the proofs of a few leaves
(``onchain_proofs`` per batch) are folded locally (the OpenZeppelin StandardMerkleTree way) and
sent to ``TraceAnchor.verifyJournalValues`` / ``verifyEventValues`` at the latest block, where the
contract hashes the leaf from its values and checks the proof against its anchored root and
schema. The report counts both. Before this change the audit compared ``anchorOf(root)`` only and
no proof was checked on chain (``proofs`` absent from the report, no contract-verified count).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from anchors.journal import JOURNAL_LEAF_ENCODING, JOURNAL_SCHEMA_VERSION
from anchors.merkle import StandardMerkleTree
from anchors.rpc import as_rpc

from settlement.domains.anchoring.audit import ONCHAIN_PROOFS_PER_BATCH_MAX, Auditor, BatchInfo, ChainView, Version
from settlement.domains.anchoring.digests import ZERO_DIGEST, digest_of, journal_leaf_value
from tests.anchors.test_anchors_contract import T0, _send, chain  # noqa: F401  (chain: the fixture)

FIXTURES = Path(__file__).resolve().parents[1] / "anchors" / "fixtures"
KIND = "settlement"


def _versions(n: int, batch_id: int = 1) -> dict[str, Version]:
    out = {}
    for i in range(n):
        text = json.dumps({"id": f"stl-{i}", "n": i}, separators=(",", ":"), sort_keys=True)
        out[f"stl-{i}"] = Version(1, T0 + i, ZERO_DIGEST, digest_of(text), text, batch_id)
    return out


def _tree(versions: dict[str, Version]) -> StandardMerkleTree:
    return StandardMerkleTree.of([journal_leaf_value(KIND, rid, v.version, v.recorded_at_s, v.prev_digest, v.digest)
                                  for rid, v in versions.items()], JOURNAL_LEAF_ENCODING)


def _anchored(chain: dict, contract, tree: StandardMerkleTree, schema: int) -> BatchInfo:  # type: ignore[no-untyped-def]  # noqa: F811
    seq = contract.functions.lastSequence().call() + 1
    receipt = _send(chain["w3"], contract.functions.anchor(tree.root_bytes, seq, len(tree), schema, T0, T0 + 60))
    assert receipt["status"] == 1
    block = chain["w3"].eth.get_block(receipt["blockNumber"])
    return BatchInfo(id=1, kind="journal", sequence=seq, root=tree.root, leaf_count=len(tree),
                     schema_version=JOURNAL_SCHEMA_VERSION, status="anchored",
                     tx_hash="0x" + receipt["transactionHash"].hex().removeprefix("0x"),
                     block_number=receipt["blockNumber"], block_time=block["timestamp"])


def _audit(chain: dict, contract_address: str, batch: BatchInfo, versions: dict[str, Version],  # noqa: F811
           onchain_proofs: int) -> tuple:
    lines: list[str] = []
    view = ChainView(as_rpc(chain["rpc"]), contract_address, chain["w3"].eth.chain_id)
    auditor = Auditor([batch], view, lines.append, verbose=True, onchain_proofs=onchain_proofs)
    for rid, v in versions.items():
        auditor.record(KIND, rid, [v], v.canonical_json)
    return auditor.finish(), lines


def test_the_contract_verifies_the_rebuilt_proofs_and_the_report_counts_both(chain: dict) -> None:  # noqa: F811
    versions = _versions(5)
    tree = _tree(versions)
    batch = _anchored(chain, chain["anchor"], tree, JOURNAL_SCHEMA_VERSION)
    for n, expected in ((1, 1), (3, 3), (10, 5), (0, 0)):
        report, lines = _audit(chain, chain["anchor"].address, batch, versions, n)
        assert report.ok and report.chain_checked, "\n".join(lines)
        assert (report.proofs_local, report.proofs_on_chain) == (expected, expected), "\n".join(lines)
        assert report.to_json()["proofs"]["verified_on_chain"] == expected
        if expected:
            assert report.proof_functions == {"verifyJournalValues"}
            assert any(f"{expected} leaf proofs" in line and "TraceAnchor.verifyJournalValues" in line
                       for line in lines), "\n".join(lines)
            assert f"{expected} by the contract (verifyJournalValues)" in lines[-1]
    with pytest.raises(ValueError):
        Auditor([batch], None, onchain_proofs=ONCHAIN_PROOFS_PER_BATCH_MAX + 1)


def test_a_root_the_contract_holds_with_another_schema_fails_its_proof_on_chain(chain: dict) -> None:  # noqa: F811
    """The store says journal batch (schema 0x8002) and the leaves rebuild its root, but the
    contract anchored that root as a provenance-event batch (schema 1): verifyJournalValues says
    false, and the audit names it (beside anchorOf's schema mismatch)."""
    versions = _versions(3)
    tree = _tree(versions)
    batch = _anchored(chain, chain["anchor"], tree, 1)
    report, lines = _audit(chain, chain["anchor"].address, batch, versions, 2)
    assert not report.ok
    proof_findings = [f for f in report.findings if f.verdict == "CHAIN" and "verifyJournalValues" in f.detail]
    assert len(proof_findings) == 2, "\n".join(lines)
    assert "= false at the latest block" in proof_findings[0].detail and "folds to the anchored root locally" in \
        proof_findings[0].detail
    assert (report.proofs_local, report.proofs_on_chain) == (2, 0)


def test_a_trace_anchor_without_the_values_functions_is_noted_and_proven_locally(chain: dict) -> None:  # noqa: F811
    old = json.loads((FIXTURES / "TraceAnchor-before-verifyValues.json").read_text())
    w3 = chain["w3"]
    receipt = _send(w3, w3.eth.contract(abi=old["abi"], bytecode=old["bytecode"]).constructor(
        chain["anchor"].functions.registry().call(), chain["anchor"].functions.trustedForwarder().call()))
    legacy = w3.eth.contract(address=receipt["contractAddress"], abi=old["abi"])
    versions = _versions(4)
    batch = _anchored(chain, legacy, _tree(versions), JOURNAL_SCHEMA_VERSION)
    report, lines = _audit(chain, legacy.address, batch, versions, 2)
    assert report.ok, "\n".join(lines)
    assert (report.proofs_local, report.proofs_on_chain, report.proofs_unsupported) == (1, 0, 1)
    assert any("no verifyValues functions" in line for line in lines)
