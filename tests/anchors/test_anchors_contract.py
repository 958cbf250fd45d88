"""TraceAnchor on a real anvil: anchoring rules (consecutive sequences), on-chain verify and
verifyValues (leaf hashed on chain: no inner node or root passes as a leaf), the typed event and
journal checks, every custom error of the ABI, and our JSON-RPC verifier."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from web3 import Web3

from anchors import AnchorRef, StandardMerkleTree, build_proof_document, verify_on_chain
from anchors.abi import encode as abi_encode
from anchors.events import LEAF_ENCODING_V1
from anchors.journal import JOURNAL_LEAF_ENCODING, JOURNAL_SCHEMA_VERSION, journal_leaf_value, text_digest
from anchors.merkle import node_hash
from anchors.verify import call_anchor_of, call_verify
from tests.conftest import ANVIL_DEV_KEY

ARTIFACTS = Path(__file__).resolve().parents[2] / "settlement" / "chain" / "artifacts"
ENC = ["bytes32"]
T0 = 1_700_000_000
UINT64_MAX = (1 << 64) - 1
GAS = {}
ROLE_OPERATOR = Web3.keccak(text="OPERATOR")
ROLE_AUDITOR = Web3.keccak(text="AUDITOR")
# A second and a third anvil dev key: a member without the OPERATOR role, and a suspended operator.
AUDITOR_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SUSPENDED_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"


def _artifact(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def _send(w3: Web3, fn, key: str = ANVIL_DEV_KEY) -> dict:  # type: ignore[no-untyped-def]
    account = Account.from_key(key)
    tx = fn.build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(account.address),
                               "gasPrice": 0, "chainId": w3.eth.chain_id, "gas": 3_000_000})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    return dict(receipt)


def _deploy(w3: Web3, name: str, *args: object):  # type: ignore[no-untyped-def]
    art = _artifact(name)
    receipt = _send(w3, w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args))
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


@pytest.fixture(scope="module")
def chain(anvil_automine) -> dict:  # type: ignore[no-untyped-def]
    w3 = Web3(Web3.HTTPProvider(anvil_automine.rpc_url))
    admin = Account.from_key(ANVIL_DEV_KEY).address
    # The admin is governance and guardian here (no bootstrap): the contract tests of the registry
    # cover the consortium's own governance; this module is about the anchor.
    registry = _deploy(w3, "ConsortiumRegistry", admin, 0, admin, "0x" + "00" * 20, [])
    _send(w3, registry.functions.onboardMember(Web3.keccak(text="operator"), b"SG", [admin], [ROLE_OPERATOR]))
    _send(w3, registry.functions.onboardMember(Web3.keccak(text="auditor"), b"SG",
                                               [Account.from_key(AUDITOR_KEY).address], [ROLE_AUDITOR]))
    _send(w3, registry.functions.onboardMember(Web3.keccak(text="suspended"), b"SG",
                                               [Account.from_key(SUSPENDED_KEY).address], [ROLE_OPERATOR]))
    _send(w3, registry.functions.suspendMember(Web3.keccak(text="suspended")))
    forwarder = _deploy(w3, "LedgerForwarder")
    anchor = _deploy(w3, "TraceAnchor", registry.address, forwarder.address)
    return {"w3": w3, "anchor": anchor, "rpc": anvil_automine.rpc_url, "admin": admin}


def _tree(n: int, seed: int) -> StandardMerkleTree:
    rng = random.Random(seed)
    return StandardMerkleTree.of([["0x" + rng.randbytes(32).hex()] for _ in range(n)], ENC)


def _next(chain: dict) -> int:
    return chain["anchor"].functions.lastSequence().call() + 1


def _anchor(chain: dict, tree: StandardMerkleTree, seq: int | None = None, schema: int = 1) -> dict:
    seq = _next(chain) if seq is None else seq
    receipt = _send(chain["w3"], chain["anchor"].functions.anchor(tree.root_bytes, seq, len(tree), schema,
                                                                  T0, T0 + 60))
    assert receipt["status"] == 1
    return receipt


def _errors_by_selector() -> dict[str, tuple[str, list[str]]]:
    out = {}
    for item in _artifact("TraceAnchor")["abi"]:
        if item["type"] == "error":
            types = [i["type"] for i in item["inputs"]]
            sig = item["name"] + "(" + ",".join(types) + ")"
            out["0x" + Web3.keccak(text=sig)[:4].hex().removeprefix("0x")] = (item["name"], types)
    return out


def _revert(fn, sender: str) -> tuple[str, tuple]:  # type: ignore[no-untyped-def]
    """The custom error (decoded with TraceAnchor's own ABI alone) that ``fn`` reverts with."""
    try:
        fn.call({"from": sender})
    except Exception as exc:  # web3 raises ContractCustomError carrying the revert data
        data = getattr(exc, "data", None) or (exc.args[1] if len(exc.args) > 1 else exc.args[0])
        data = str(data)
        name, types = _errors_by_selector().get(data[:10], (data[:10], []))
        args = abi_decode(types, bytes.fromhex(data[10:]))
        return name, tuple(Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, args))
    return "no revert", ()


def test_anchor_then_verify_true_only_for_anchored_root_and_valid_proof(chain: dict) -> None:
    """verify is true for a valid proof of an anchored root, false for a bad proof or unknown root;
    our eth_call client and the full document check agree."""
    tree = _tree(1000, 1)
    seq = _next(chain)
    receipt = _anchor(chain, tree, seq)
    GAS["anchor"] = receipt["gasUsed"]
    contract = chain["anchor"]
    proof = [bytes.fromhex(p[2:]) for p in tree.get_proof(7)]
    leaf = tree.leaf_hash_at(7)
    assert contract.functions.verify(tree.root_bytes, proof, leaf).call()
    assert not contract.functions.verify(tree.root_bytes, proof[::-1], leaf).call()
    assert not contract.functions.verify(tree.root_bytes, proof, b"\x01" * 32).call()
    other = _tree(1000, 2)
    assert not contract.functions.verify(other.root_bytes, [bytes.fromhex(p[2:]) for p in other.get_proof(7)],
                                         other.leaf_hash_at(7)).call()
    assert call_verify(chain["rpc"], contract.address, tree.root, tree.get_proof(7), leaf)
    record = call_anchor_of(chain["rpc"], contract.address, tree.root, receipt["blockNumber"])
    block = chain["w3"].eth.get_block(receipt["blockNumber"])
    assert (record.block_number, record.timestamp, record.sequence, record.leaf_count) == (
        receipt["blockNumber"], block["timestamp"], seq, 1000)

    ref = AnchorRef(chain["w3"].eth.chain_id, contract.address, "0x" + receipt["transactionHash"].hex().removeprefix("0x"),
                    receipt["blockNumber"], block["timestamp"], seq)
    doc = build_proof_document(tree, 7, anchor=ref).to_json()
    result = verify_on_chain(doc, chain["rpc"])
    assert result.verified, result.report()
    assert [s.detail for s in result.steps if s.name == "contract-verify-values"] == [
        "TraceAnchor.verifyValues(root, proof, value) = True"]
    doc["anchor"]["batch_sequence"] = seq + 1
    assert not verify_on_chain(doc, chain["rpc"]).verified


def test_sequences_are_consecutive_and_a_huge_sequence_blocks_nothing(chain: dict) -> None:
    """The next anchor must carry lastSequence + 1: a gap, a repeat, and 2^64-1 (which used to be
    accepted and then blocked every later anchor) are refused with TraceAnchorSequenceNotNext
    (expected, given), and anchoring goes on with the expected sequence."""
    a, admin = chain["anchor"].functions, chain["admin"]
    fresh = _tree(4, 40)
    last = a.lastSequence().call()
    for wrong in (UINT64_MAX, last + 2, last, 0):
        assert _revert(a.anchor(fresh.root_bytes, wrong, 4, 1, T0, T0), admin) == (
            "TraceAnchorSequenceNotNext", (last + 1, wrong))
    receipt = _send(chain["w3"], a.anchor(fresh.root_bytes, UINT64_MAX, 4, 1, T0, T0))
    assert receipt["status"] == 0 and a.lastSequence().call() == last  # nothing moved
    _anchor(chain, fresh, last + 1)
    _anchor(chain, _tree(2, 41), last + 2)
    assert a.lastSequence().call() == last + 2
    assert _revert(a.anchor(_tree(2, 42).root_bytes, last + 2, 2, 1, T0, T0), admin) == (
        "TraceAnchorSequenceNotNext", (last + 3, last + 2))


def test_anchoring_rules(chain: dict) -> None:
    """Duplicate roots, wrong sequences, empty batches, schema 0, reversed times, the zero root and
    callers without the OPERATOR role (non-member, member without the role, suspended member)
    revert with custom errors that TraceAnchor's ABI decodes, with their arguments."""
    a, admin = chain["anchor"].functions, chain["admin"]
    tree = _tree(3, 3)
    seq = _next(chain)
    _anchor(chain, tree, seq)
    fresh, nxt = _tree(4, 4), seq + 1
    assert _revert(a.anchor(tree.root_bytes, nxt, 3, 1, T0, T0), admin) == (
        "TraceAnchorRootExists", (tree.root_bytes, seq))
    assert _revert(a.anchor(fresh.root_bytes, seq, 4, 1, T0, T0), admin) == ("TraceAnchorSequenceNotNext", (nxt, seq))
    assert _revert(a.anchor(fresh.root_bytes, nxt, 0, 1, T0, T0), admin) == ("TraceAnchorEmptyBatch", ())
    assert _revert(a.anchor(fresh.root_bytes, nxt, 4, 0, T0, T0), admin) == ("TraceAnchorInvalidSchemaVersion", (0,))
    assert _revert(a.anchor(fresh.root_bytes, nxt, 4, 1, T0 + 1, T0), admin) == (
        "TraceAnchorInvalidTimeRange", (T0 + 1, T0))
    assert _revert(a.anchor(b"\x00" * 32, nxt, 4, 1, T0, T0), admin) == ("TraceAnchorZeroRoot", ())
    stranger = Account.create().address
    assert _revert(a.anchor(fresh.root_bytes, nxt, 4, 1, T0, T0), stranger) == ("RegistryNotAMember", (stranger,))
    auditor = Account.from_key(AUDITOR_KEY).address
    assert _revert(a.anchor(fresh.root_bytes, nxt, 4, 1, T0, T0), auditor) == (
        "RegistryMissingRole", (auditor, Web3.keccak(text="auditor"), ROLE_OPERATOR))
    suspended = Account.from_key(SUSPENDED_KEY).address
    assert _revert(a.anchor(fresh.root_bytes, nxt, 4, 1, T0, T0), suspended) == (
        "RegistryMemberNotActive", (suspended, Web3.keccak(text="suspended")))
    assert not a.isAnchored(fresh.root_bytes).call()


def test_every_custom_error_of_trace_anchor_is_triggered(chain: dict) -> None:
    """Lists the errors of TraceAnchor's ABI (its own and the registry guard's it inherits) and
    triggers each one against the deployed contract: none is declared without being reachable,
    and none that can be given is missing from the ABI (each decodes by its selector)."""
    a, admin = chain["anchor"].functions, chain["admin"]
    declared = {name for name, _types in _errors_by_selector().values()}
    interface = {i["name"] for i in _artifact("ITraceAnchor")["abi"] if i["type"] == "error"}
    assert declared == interface  # a client holding only the interface decodes every refusal
    tree, fresh = _tree(2, 50), _tree(2, 51)
    _anchor(chain, tree)
    nxt = _next(chain)
    calls = {
        "TraceAnchorZeroRoot": (a.anchor(b"\x00" * 32, nxt, 1, 1, T0, T0), admin),
        "TraceAnchorRootExists": (a.anchor(tree.root_bytes, nxt, 2, 1, T0, T0), admin),
        "TraceAnchorSequenceNotNext": (a.anchor(fresh.root_bytes, nxt + 1, 2, 1, T0, T0), admin),
        "TraceAnchorEmptyBatch": (a.anchor(fresh.root_bytes, nxt, 0, 1, T0, T0), admin),
        "TraceAnchorInvalidSchemaVersion": (a.anchor(fresh.root_bytes, nxt, 2, 0, T0, T0), admin),
        "TraceAnchorInvalidTimeRange": (a.anchor(fresh.root_bytes, nxt, 2, 1, T0 + 9, T0), admin),
        "RegistryNotAMember": (a.anchor(fresh.root_bytes, nxt, 2, 1, T0, T0), Account.create().address),
        "RegistryMissingRole": (a.anchor(fresh.root_bytes, nxt, 2, 1, T0, T0), Account.from_key(AUDITOR_KEY).address),
        "RegistryMemberNotActive": (a.anchor(fresh.root_bytes, nxt, 2, 1, T0, T0),
                                    Account.from_key(SUSPENDED_KEY).address),
    }
    triggered = {name for name, (fn, sender) in calls.items() if _revert(fn, sender)[0] == name}
    assert triggered == declared, f"not triggered: {sorted(declared - triggered)}, unknown: {sorted(set(calls) - declared)}"


def _journal_tree(n: int) -> tuple[StandardMerkleTree, list[list[str]]]:
    values = [journal_leaf_value("settlement", f"stl-{i}", 1, T0 + i, None, text_digest(f'{{"n":{i}}}'))
              for i in range(n)]
    return StandardMerkleTree.of(values, JOURNAL_LEAF_ENCODING), values


def _journal_struct(value: list[str]) -> tuple:
    return (int(value[0]), bytes.fromhex(value[1][2:]), bytes.fromhex(value[2][2:]), int(value[3]), int(value[4]),
            bytes.fromhex(value[5][2:]), bytes.fromhex(value[6][2:]))


def _proof(tree: StandardMerkleTree, index: int) -> list[bytes]:
    return [bytes.fromhex(p[2:]) for p in tree.get_proof(index)]


def test_verify_values_hashes_the_leaf_so_no_inner_node_or_root_passes(chain: dict) -> None:
    """verify(root, proof, leaf) takes any hash: an inner node with the rest of its path, or the
    root with an empty proof, is accepted (the documented caveat). verifyValues hashes the leaf
    from its ABI-encoded values on chain, as StandardMerkleTree does: true for every real leaf,
    false for the inner node, the root, and bytes that are an inner node's two children."""
    tree, values = _journal_tree(8)
    _anchor(chain, tree, schema=JOURNAL_SCHEMA_VERSION)
    a, root = chain["anchor"].functions, tree.root_bytes
    for index, value in enumerate(values):
        encoded = abi_encode(JOURNAL_LEAF_ENCODING, value)
        assert a.verifyValues(root, _proof(tree, index), encoded).call()
        assert not a.verifyValues(root, _proof(tree, (index + 1) % 8), encoded).call()
    # The inner node above leaves 0 and 1 (sorted pair of their hashes), and its path upwards.
    proof0 = _proof(tree, 0)
    inner = node_hash(tree.leaf_hash_at(0), proof0[0])
    assert a.verify(root, proof0[1:], inner).call()  # the caveat of the fixed verify()
    assert a.verify(root, [], root).call()
    assert not a.verifyValues(root, proof0[1:], inner).call()
    assert not a.verifyValues(root, [], root).call()
    children = b"".join(sorted([tree.leaf_hash_at(0), proof0[0]]))
    assert not a.verifyValues(root, proof0[1:], children).call()
    # An unanchored root never verifies, whatever the proof.
    other, other_values = _journal_tree(3)
    assert not a.verifyValues(other.root_bytes, _proof(other, 0), abi_encode(JOURNAL_LEAF_ENCODING,
                                                                            other_values[0])).call()


def test_typed_journal_and_event_checks_hold_each_leaf_to_its_schema(chain: dict) -> None:
    """verifyJournalValues proves a schema-0x8002 leaf only under a root anchored with schema
    0x8002; verifyEventValues a schema-1 leaf only under a schema-1 root. A journal leaf under an
    event root (or the reverse), a leaf whose schemaVersion field is another, or an altered field
    is false."""
    a = chain["anchor"].functions
    journal, jvalues = _journal_tree(5)
    _anchor(chain, journal, schema=JOURNAL_SCHEMA_VERSION)
    rng = random.Random(7)
    evalues = [["1", *("0x" + rng.randbytes(32).hex() for _ in range(3)), "2", "0x" + rng.randbytes(32).hex(),
                "0x" + rng.randbytes(32).hex(), str(T0 + i), "0x" + "00" * 32, "0x" + rng.randbytes(32).hex()]
               for i in range(5)]
    events = StandardMerkleTree.of(evalues, LEAF_ENCODING_V1)
    _anchor(chain, events, schema=1)

    def event_struct(v: list[str]) -> tuple:
        return tuple(int(x) if i in (0, 4, 7) else bytes.fromhex(x[2:]) for i, x in enumerate(v))

    for i in range(5):
        assert a.verifyJournalValues(journal.root_bytes, _proof(journal, i), _journal_struct(jvalues[i])).call()
        assert a.verifyEventValues(events.root_bytes, _proof(events, i), event_struct(evalues[i])).call()
    j0, e0 = _journal_struct(jvalues[0]), event_struct(evalues[0])
    assert not a.verifyEventValues(journal.root_bytes, _proof(journal, 0), e0).call()
    assert not a.verifyJournalValues(events.root_bytes, _proof(events, 0), j0).call()
    # The same journal values anchored under a schema-1 root: the schema check refuses them.
    mislabelled, mvalues = _journal_tree(6)
    _anchor(chain, mislabelled, schema=1)
    assert a.verifyValues(mislabelled.root_bytes, _proof(mislabelled, 0),
                          abi_encode(JOURNAL_LEAF_ENCODING, mvalues[0])).call()
    assert not a.verifyJournalValues(mislabelled.root_bytes, _proof(mislabelled, 0), _journal_struct(mvalues[0])).call()
    # A journal-shaped leaf claiming the old schema 0x8001, and an altered digest.
    assert not a.verifyJournalValues(journal.root_bytes, _proof(journal, 0), (0x8001, *j0[1:])).call()
    assert not a.verifyJournalValues(journal.root_bytes, _proof(journal, 0), (*j0[:6], b"\x01" * 32)).call()
    assert (a.EVENT_SCHEMA_VERSION().call(), a.JOURNAL_SCHEMA_VERSION().call()) == (1, JOURNAL_SCHEMA_VERSION)


def test_depth_20_proof_verifies_on_chain_and_anchor_gas_is_constant(chain: dict) -> None:
    """A depth-20 proof (the path of one journal leaf in a 2^20-leaf tree: 20 random siblings)
    verifies on chain with verify, verifyValues and verifyJournalValues; anchoring a 1-leaf and a
    2^20-leaf batch costs the same gas (calldata bytes aside)."""
    from anchors.merkle import process_proof, standard_leaf_hash

    rng = random.Random(5)
    value = journal_leaf_value("posting", "txn-1", 3, T0, "0x" + rng.randbytes(32).hex(), text_digest('{"a":1}'))
    leaf = standard_leaf_hash(JOURNAL_LEAF_ENCODING, value)
    proof = [rng.randbytes(32) for _ in range(20)]
    root = process_proof(leaf, proof)
    contract = chain["anchor"]
    seq = _next(chain)
    small = _send(chain["w3"], contract.functions.anchor(rng.randbytes(32), seq, 1, JOURNAL_SCHEMA_VERSION, T0, T0))
    big = _send(chain["w3"], contract.functions.anchor(root, seq + 1, 1 << 20, JOURNAL_SCHEMA_VERSION, T0, T0))
    assert small["status"] == big["status"] == 1
    assert abs(small["gasUsed"] - big["gasUsed"]) <= 16 * 8  # only calldata zero bytes may differ
    f = contract.functions
    calls = {"verify": f.verify(root, proof, leaf),
             "verifyValues": f.verifyValues(root, proof, abi_encode(JOURNAL_LEAF_ENCODING, value)),
             "verifyJournalValues": f.verifyJournalValues(root, proof, _journal_struct(value))}
    assert all(call.call() for call in calls.values())
    assert not f.verify(root, proof[:-1], leaf).call()
    assert not f.verifyJournalValues(root, proof[:-1], _journal_struct(value)).call()
    gas = {name: call.estimate_gas() for name, call in calls.items()}
    print(f"\ngas: first anchor={GAS.get('anchor')} anchor={big['gasUsed']} depth-20 (eth_estimateGas, incl. 21,000): "
          + ", ".join(f"{name}={g}" for name, g in gas.items()))


def test_our_verifier_checks_a_journal_proof_with_the_typed_on_chain_check(chain: dict) -> None:
    """verify_on_chain of a journal record's proof document asks TraceAnchor.verifyJournalValues
    with the document's values; the same record under a root anchored with another schema fails
    there (and in anchor-record), so the document is NOT VERIFIED."""
    from anchors.journal import JournalRecord

    records = [JournalRecord("settlement", f"stl-{i}", 1, T0 + i, None, f'{{"n":{i}}}') for i in range(4)]
    values = [r.leaf_value(JOURNAL_SCHEMA_VERSION) for r in records]
    for schema, expect in ((JOURNAL_SCHEMA_VERSION, True), (1, False)):
        tree = StandardMerkleTree.of([*values, [str(schema), *values[0][1:]]], JOURNAL_LEAF_ENCODING)
        seq = _next(chain)
        receipt = _anchor(chain, tree, seq, schema=schema)
        block = chain["w3"].eth.get_block(receipt["blockNumber"])
        ref = AnchorRef(chain["w3"].eth.chain_id, chain["anchor"].address,
                        "0x" + receipt["transactionHash"].hex().removeprefix("0x"), receipt["blockNumber"],
                        block["timestamp"], seq)
        doc = build_proof_document(tree, 2, anchor=ref, schema_version=JOURNAL_SCHEMA_VERSION, record=records[2])
        result = verify_on_chain(doc, chain["rpc"])
        [typed] = [s for s in result.steps if s.name == "contract-verify-values"]
        assert typed.detail.startswith("TraceAnchor.verifyJournalValues(root, proof, value) = ")
        assert (result.verified, typed.ok) == (expect, expect), result.report()


def test_a_proof_on_a_trace_anchor_deployed_before_verify_values_still_verifies(chain: dict) -> None:
    """An auditor may meet a TraceAnchor deployed before the values checks (the previous bytecode,
    kept as a fixture): calling verifyValues there reverts, and our verifier says so in its step
    and relies on the leaf it hashed offline, so the proof still verifies; a forged value still
    fails offline."""
    old = json.loads((Path(__file__).parent / "fixtures" / "TraceAnchor-before-verifyValues.json").read_text())
    w3 = chain["w3"]
    receipt = _send(w3, w3.eth.contract(abi=old["abi"], bytecode=old["bytecode"]).constructor(
        chain["anchor"].functions.registry().call(), chain["anchor"].functions.trustedForwarder().call()))
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=old["abi"])
    tree, _values = _journal_tree(4)
    mined = _send(w3, contract.functions.anchor(tree.root_bytes, 1, 4, JOURNAL_SCHEMA_VERSION, T0, T0))
    assert mined["status"] == 1
    block = w3.eth.get_block(mined["blockNumber"])
    ref = AnchorRef(w3.eth.chain_id, contract.address, "0x" + mined["transactionHash"].hex().removeprefix("0x"),
                    mined["blockNumber"], block["timestamp"], 1)
    doc = build_proof_document(tree, 1, anchor=ref, schema_version=JOURNAL_SCHEMA_VERSION)
    result = verify_on_chain(doc, chain["rpc"])
    assert result.verified, result.report()
    [values_step] = [s for s in result.steps if s.name == "contract-verify-values"]
    assert "no verifyValues functions" in values_step.detail
    forged = doc.to_json()
    forged["value"][6] = "0x" + "11" * 32
    assert not verify_on_chain(forged, chain["rpc"]).verified


def test_the_interface_abi_is_the_contract_abi() -> None:
    """OpenZeppelin style: ITraceAnchor declares every function, event and error of TraceAnchor
    (the guard's registry, forwarder and refusals through IConsortiumGuarded), so a client holding
    only the interface's ABI can call and decode everything."""
    def entries(name: str) -> set[str]:
        return {json.dumps(i, sort_keys=True) for i in _artifact(name)["abi"] if i["type"] != "constructor"}

    assert entries("ITraceAnchor") == entries("TraceAnchor")
