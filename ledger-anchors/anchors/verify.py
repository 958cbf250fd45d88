"""Verify a proof document offline, and against the chain with plain JSON-RPC ``eth_call``.

A proof that does not verify is a result (``verified=False`` with the failing step), never an
exception; a document that is malformed or truncated raises InvalidInputError. The on-chain check
talks plain JSON-RPC through any ``rpc(method, params)`` callable (:mod:`anchors.rpc`): a service
passes its own client, an auditor a node URL (no web3 needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from anchors.abi import decode_static, encode, encode_call
from anchors.events import LEAF_ENCODING_V1, SCHEMA_VERSION, leaf_encoding
from anchors.journal import JOURNAL_LEAF_ENCODING, JOURNAL_SCHEMA_VERSION, JOURNAL_SCHEMAS
from anchors.keccak import keccak256
from anchors.merkle import process_proof, standard_leaf_hash, to_bytes32, to_hex
from anchors.errors import InvalidInputError, NodeUnavailableError
from anchors.proof import AnchorRef, ProofDocument, parse_proof_document
from anchors.rpc import RPC_TIMEOUT_S, Rpc, as_rpc

VERIFY_SIGNATURE = "verify(bytes32,bytes32[],bytes32)"
VERIFY_VALUES_SIGNATURE = "verifyValues(bytes32,bytes32[],bytes)"
# The typed checks: a leaf of these schemas is verified with its values as a struct, and TraceAnchor
# also checks that its root was anchored with the same leaf schema.
TYPED_VERIFY_FUNCTIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    SCHEMA_VERSION: ("verifyEventValues", LEAF_ENCODING_V1),
    JOURNAL_SCHEMA_VERSION: ("verifyJournalValues", JOURNAL_LEAF_ENCODING),
}
ANCHOR_OF_SIGNATURE = "anchorOf(bytes32)"
ANCHOR_OF_TYPES = ("uint64", "uint64", "uint64", "uint32", "uint16")
ROOT_ANCHORED_TOPIC = "0x" + keccak256(
    b"RootAnchored(bytes32,uint64,bytes32,uint32,uint16,uint64,uint64)").hex()


@dataclass(frozen=True)
class Step:
    """One check of a verification: its name, outcome and a human-readable detail."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerificationResult:
    verified: bool
    root: str
    leaf_hash: str
    steps: tuple[Step, ...]
    document: ProofDocument = field(repr=False)

    def report(self) -> str:
        lines = [f"[{'ok' if s.ok else 'FAIL'}] {s.name}: {s.detail}" for s in self.steps]
        lines.append("VERIFIED" if self.verified else "NOT VERIFIED")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"verified": self.verified, "root": self.root, "leaf_hash": self.leaf_hash,
                "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps]}


def _result(doc: ProofDocument, steps: list[Step]) -> VerificationResult:
    return VerificationResult(all(s.ok for s in steps) and bool(steps), doc.root, doc.leaf_hash, tuple(steps), doc)


def verify_document(document: Mapping[str, Any] | str | bytes | ProofDocument) -> VerificationResult:
    """Check a proof document offline, step by step.

    Steps: the event (if present) gives the value; the value hashes to ``leaf_hash``; the proof
    folds ``leaf_hash`` to ``root``. The anchor reference is only checked by :func:`verify_on_chain`.
    """
    doc = document if isinstance(document, ProofDocument) else parse_proof_document(document)
    steps: list[Step] = []
    if doc.schema_version is not None:
        expected = JOURNAL_SCHEMAS.get(doc.schema_version) or leaf_encoding(doc.schema_version)
        ok = tuple(doc.leaf_encoding) == expected
        steps.append(Step("leaf-encoding", ok, f"schema v{doc.schema_version} is {list(expected)}"
                          + ("" if ok else f", document says {list(doc.leaf_encoding)}")))
    if doc.event is not None:
        derived = doc.event.leaf_value(doc.schema_version or 0)
        ok = [str(v).lower() for v in derived] == [str(v).lower() for v in doc.value]
        steps.append(Step("event-to-value", ok, "value recomputed from the event"
                          + (" matches" if ok else " differs from the document's value")))
    if doc.record is not None and doc.schema_version is not None:
        rec = doc.record
        derived = rec.leaf_value(doc.schema_version)
        ok = [str(v).lower() for v in derived] == [str(v).lower() for v in doc.value]
        steps.append(Step("record-to-value", ok,
                          f"{rec.kind}/{rec.record_id} v{rec.version}: keccak256(text) = {derived[-1]}"
                          + (", value recomputed from the record matches" if ok
                             else ", the value recomputed from the record differs from the document's")))
    leaf = standard_leaf_hash(doc.leaf_encoding, doc.value)
    ok = to_hex(leaf) == doc.leaf_hash
    steps.append(Step("leaf-hash", ok, f"keccak256(keccak256(abi.encode(value))) = {to_hex(leaf)}"
                      + ("" if ok else f", document says {doc.leaf_hash}")))
    folded = to_hex(process_proof(leaf, doc.proof))
    ok = folded == doc.root
    steps.append(Step("proof-to-root", ok, f"{len(doc.proof)} proof nodes fold to {folded}"
                      + ("" if ok else f", document's root is {doc.root}")))
    return _result(doc, steps)


# -- on chain -------------------------------------------------------------------------------


def eth_call(rpc: Rpc | str, contract: str, calldata: bytes, block: int | str = "latest") -> bytes:
    tag = hex(block) if isinstance(block, int) else block
    result = as_rpc(rpc)("eth_call", [{"to": contract, "data": "0x" + calldata.hex()}, tag])
    if not isinstance(result, str) or not result.startswith("0x"):
        raise NodeUnavailableError(f"eth_call: unexpected result {str(result)[:200]!r}")
    return bytes.fromhex(result[2:])


def call_verify(rpc: Rpc | str, contract: str, root: Any, proof: list[Any], leaf: Any,
                block: int | str = "latest") -> bool:
    """``TraceAnchor.verify(root, proof, leaf)`` through ``eth_call``."""
    data = encode_call(VERIFY_SIGNATURE, ["bytes32", "bytes32[]", "bytes32"],
                       [to_bytes32(root, "root"), [to_bytes32(p, "proof") for p in proof], to_bytes32(leaf, "leaf")])
    return bool(decode_static(["bool"], eth_call(rpc, contract, data, block))[0])


def verify_values_call(root: Any, proof: list[Any], leaf_encoding: tuple[str, ...] | list[str], value: list[Any],
                       schema_version: int | None = None) -> tuple[str, bytes]:
    """The TraceAnchor function that verifies a leaf from its values, and its calldata:
    ``verifyJournalValues`` / ``verifyEventValues`` (typed: the leaf's and the anchor's schema are
    checked on chain) for the journal and event schemas, else ``verifyValues`` with
    ``abi.encode(value)``. The contract hashes the leaf itself, so an inner node or a root cannot
    pass as a leaf (see ``TraceAnchor.verify``'s caveat)."""
    root_b = to_bytes32(root, "root")
    proof_b = [to_bytes32(p, "proof") for p in proof]
    typed = TYPED_VERIFY_FUNCTIONS.get(schema_version) if schema_version is not None else None
    if typed is not None and tuple(leaf_encoding) == typed[1]:
        name, types = typed
        struct = "(" + ",".join(types) + ")"
        return name, encode_call(f"{name}(bytes32,bytes32[],{struct})", ["bytes32", "bytes32[]", struct],
                                 [root_b, proof_b, list(value)])
    return "verifyValues", encode_call(VERIFY_VALUES_SIGNATURE, ["bytes32", "bytes32[]", "bytes"],
                                       [root_b, proof_b, encode(tuple(leaf_encoding), value)])


def call_verify_values(rpc: Rpc | str, contract: str, root: Any, proof: list[Any],
                       leaf_encoding: tuple[str, ...] | list[str], value: list[Any], schema_version: int | None = None,
                       block: int | str = "latest") -> tuple[str, bool]:
    """``TraceAnchor.verifyJournalValues`` / ``verifyEventValues`` / ``verifyValues`` (see
    :func:`verify_values_call`) through ``eth_call``: ``(function name, result)``."""
    name, data = verify_values_call(root, proof, leaf_encoding, value, schema_version)
    return name, bool(decode_static(["bool"], eth_call(rpc, contract, data, block))[0])


def proven_by_contract(rpc: Rpc | str, contract: str, root: Any, proof: list[Any],
                       leaf_encoding: tuple[str, ...] | list[str], value: list[Any],
                       schema_version: int | None = None) -> tuple[str, bool | None]:
    """The leaf of ``value`` proven by the contract itself at the latest block (it hashes the leaf
    from the values and folds the proof against its anchored root): :func:`call_verify_values`,
    but ``(name, None)`` from a TraceAnchor deployed before the values checks (the call reverts:
    it has no such function). Raises NodeUnavailableError (or the ``rpc`` callable's own error)
    when the node cannot be asked."""
    try:
        return call_verify_values(rpc, contract, root, proof, leaf_encoding, value, schema_version)
    except Exception as exc:  # NodeUnavailableError from a URL; a caller's own rpc raises its own type
        if "revert" not in str(exc).lower():
            raise
        return verify_values_call(root, proof, leaf_encoding, value, schema_version)[0], None


@dataclass(frozen=True)
class AnchorRecord:
    """``TraceAnchor.anchorOf(root)``; ``block_number == 0`` means not anchored."""

    block_number: int
    timestamp: int
    sequence: int
    leaf_count: int
    schema_version: int


def call_anchor_of(rpc: Rpc | str, contract: str, root: Any, block: int | str = "latest") -> AnchorRecord:
    """``TraceAnchor.anchorOf(root)`` through ``eth_call``."""
    data = encode_call(ANCHOR_OF_SIGNATURE, ["bytes32"], [to_bytes32(root, "root")])
    return AnchorRecord(*decode_static(ANCHOR_OF_TYPES, eth_call(rpc, contract, data, block)))


def verify_on_chain(document: Mapping[str, Any] | str | bytes | ProofDocument, rpc: Rpc | str,
                    timeout_s: float = RPC_TIMEOUT_S) -> VerificationResult:
    """Offline steps, then :func:`check_anchor` (chain id, ``anchorOf(root)`` at the latest block,
    the anchoring transaction's receipt and its block, by hash), ``verify(root, proof, leaf)``
    and the leaf verified from its values (``verifyJournalValues`` / ``verifyEventValues`` /
    ``verifyValues``: the contract hashes the leaf, and checks the schema) at the latest block. Nothing is read at an old block: anchors are permanent, so the checks
    hold on a node that keeps no old state (a pruned node, a restarted dev chain).

    ``rpc`` is a node URL or a ``rpc(method, params)`` callable. Raises InvalidInputError for a
    malformed document or one without an anchor, and NodeUnavailableError when the node cannot be
    asked.
    """
    offline = verify_document(document)
    doc = offline.document
    anchor = doc.anchor
    if anchor is None:
        raise InvalidInputError("the proof document has no anchor to check on chain")
    rpc = as_rpc(rpc, timeout_s)
    steps = list(offline.steps) + check_anchor(rpc, anchor, doc.root, schema_version=doc.schema_version)
    on_chain = call_verify(rpc, anchor.contract, doc.root, doc.proof, doc.leaf_hash)
    steps.append(Step("contract-verify", on_chain, f"TraceAnchor.verify(root, proof, leaf) = {on_chain}"))
    steps.append(_values_step(rpc, anchor.contract, doc))
    return _result(doc, steps)


def _values_step(rpc: Rpc, contract: str, doc: ProofDocument) -> Step:
    """The leaf verified on chain from the document's values (the contract hashes them)."""
    name, ok = proven_by_contract(rpc, contract, doc.root, doc.proof, doc.leaf_encoding, doc.value,
                                  doc.schema_version)
    if ok is None:
        # A TraceAnchor deployed before the values checks has no such function: the call reverts.
        # The leaf was then hashed from the values offline (step leaf-hash) and proven by verify().
        return Step("contract-verify-values", True, "this TraceAnchor has no verifyValues functions (deployed "
                    "before them): the leaf is hashed from the values offline only (leaf-hash)")
    return Step("contract-verify-values", ok, f"TraceAnchor.{name}(root, proof, value) = {ok}"
                + ("" if ok or name == "verifyValues" else
                   f" (the leaf or its root is not of leaf schema {doc.schema_version}, or the proof fails)"))


def check_anchor(rpc: Rpc | str, anchor: AnchorRef, root: str, *, leaf_count: int | None = None,
                 schema_version: int | None = None) -> list[Step]:
    """That ``root`` is anchored as ``anchor`` says, read at the latest block only:

    - ``chain-id``: the node's chain id is the anchor's;
    - ``anchor-record``: ``anchorOf(root)`` (at ``latest``) names the anchor's block, time and
      sequence (and ``leaf_count`` / ``schema_version`` when given);
    - ``anchor-tx``: the anchoring transaction succeeded in that block and emitted
      ``RootAnchored(root, sequence)`` from the contract;
    - ``anchor-block``: the receipt's block, fetched by its hash, is that block number with that
      timestamp: when the root was anchored.
    """
    rpc = as_rpc(rpc)
    steps: list[Step] = []
    chain_id = int(rpc("eth_chainId", []), 16)
    steps.append(Step("chain-id", chain_id == anchor.chain_id,
                      f"node chain id {chain_id}, anchor says {anchor.chain_id}"))
    record = call_anchor_of(rpc, anchor.contract, root, "latest")
    problems = []
    if record.block_number == 0:
        problems.append("not anchored")
    else:
        if record.block_number != anchor.block_number:
            problems.append(f"anchored in block {record.block_number}, not {anchor.block_number}")
        if record.timestamp != anchor.block_time:
            problems.append(f"at time {record.timestamp}, not {anchor.block_time}")
        if record.sequence != anchor.batch_sequence:
            problems.append(f"as sequence {record.sequence}, not {anchor.batch_sequence}")
        if leaf_count is not None and record.leaf_count != leaf_count:
            problems.append(f"with {record.leaf_count} leaves, not {leaf_count}")
        if schema_version is not None and record.schema_version != schema_version:
            problems.append(f"with leaf schema {record.schema_version}, not {schema_version}")
    steps.append(Step("anchor-record", not problems, "anchorOf(root) at the latest block: "
                      + ("; ".join(problems) if problems else
                         f"block {record.block_number}, time {record.timestamp}, sequence {record.sequence}, "
                         f"{record.leaf_count} leaves, schema {record.schema_version}")))
    receipt = rpc("eth_getTransactionReceipt", [anchor.tx_hash])
    steps.append(_receipt_step(receipt, root, anchor))
    steps.append(_block_step(rpc, receipt, anchor))
    return steps


def _receipt_step(receipt: Any, root: str, anchor: AnchorRef) -> Step:
    if not isinstance(receipt, Mapping):
        return Step("anchor-tx", False, f"tx {anchor.tx_hash}: no receipt for the anchoring transaction")
    problems = []
    if receipt.get("status") != "0x1":
        problems.append(f"status {receipt.get('status')}")
    if int(str(receipt.get("blockNumber", "0x0")), 16) != anchor.block_number:
        problems.append(f"mined in block {int(str(receipt.get('blockNumber', '0x0')), 16)}")
    emitted = any(
        isinstance(log, Mapping)
        and str(log.get("address", "")).lower() == anchor.contract.lower()
        and (log.get("topics") or [None])[0] == ROOT_ANCHORED_TOPIC
        and len(log.get("topics") or []) > 2
        and log["topics"][1] == root
        and int(log["topics"][2], 16) == anchor.batch_sequence
        for log in receipt.get("logs") or []
    )
    if not emitted:
        problems.append("no RootAnchored(root, sequence) event from the contract")
    return Step("anchor-tx", not problems,
                f"tx {anchor.tx_hash}: " + ("; ".join(problems) if problems else
                                            f"RootAnchored in block {anchor.block_number}"))


def _block_step(rpc: Rpc, receipt: Any, anchor: AnchorRef) -> Step:
    block_hash = receipt.get("blockHash") if isinstance(receipt, Mapping) else None
    if not isinstance(block_hash, str):
        return Step("anchor-block", False, "no block hash: the anchoring transaction has no receipt")
    block = rpc("eth_getBlockByHash", [block_hash, False])
    if not isinstance(block, Mapping):
        return Step("anchor-block", False, f"block {block_hash} of the receipt is not on this chain")
    number, timestamp = int(str(block.get("number", "0x0")), 16), int(str(block.get("timestamp", "0x0")), 16)
    ok = number == anchor.block_number and timestamp == anchor.block_time and block.get("hash") == block_hash
    return Step("anchor-block", ok, f"block {block_hash}: number {number}, time {timestamp}"
                + ("" if ok else f"; the anchor says block {anchor.block_number} at {anchor.block_time}"))


__all__ = [
    "AnchorRecord",
    "Step",
    "VerificationResult",
    "call_anchor_of",
    "call_verify",
    "call_verify_values",
    "check_anchor",
    "eth_call",
    "proven_by_contract",
    "verify_document",
    "verify_on_chain",
    "verify_values_call",
]
