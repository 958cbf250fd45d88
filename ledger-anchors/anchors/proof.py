"""The proof document an auditor receives: one leaf, its proof, its root and where it was anchored.

Format ``ledger-anchor-proof-v1`` (JSON object; unknown keys are rejected so that a typo cannot
hide a field):

- ``format``: ``"ledger-anchor-proof-v1"``;
- ``leaf_encoding``: the leaf's ABI types (as ``leafEncoding`` in a StandardMerkleTree dump);
- ``schema_version``: leaf schema version (1 for provenance events) or null for other leaves;
- ``value``: the leaf's values in JSON form (integers as decimal strings, hashes as 0x-hex);
- ``leaf_hash``: ``keccak256(keccak256(abi.encode(value)))``;
- ``proof``: sibling hashes from the leaf up to the root;
- ``root``: the Merkle root;
- ``anchor``: null, or ``{chain_id, contract, tx_hash, block_number, block_time, batch_sequence}``;
- ``event`` (optional): the cleartext provenance event the value was derived from;
- ``record`` (optional, journal leaves): the record version the value was derived from,
  ``{kind, record_id, version, recorded_at_s, prev_digest, canonical_json}`` (see
  :mod:`anchors.journal`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anchors.abi import to_json_value
from anchors.events import ProvenanceEvent
from anchors.journal import JournalRecord, is_journal_schema
from anchors.merkle import PROOF_DEPTH_MAX, StandardMerkleTree, to_bytes32, to_hex
from anchors.errors import InvalidInputError

PROOF_FORMAT = "ledger-anchor-proof-v1"
# A proof document is a few kilobytes; anything much larger is not one.
PROOF_DOCUMENT_BYTES_MAX = 256 * 1024
_KEYS_REQUIRED = ("format", "leaf_encoding", "value", "leaf_hash", "proof", "root", "anchor")
_KEYS_OPTIONAL = ("schema_version", "event", "record")
_ANCHOR_KEYS = ("chain_id", "contract", "tx_hash", "block_number", "block_time", "batch_sequence")
_UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class AnchorRef:
    """Where and when a root was anchored."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_time: int
    batch_sequence: int

    def __post_init__(self) -> None:
        for name in ("chain_id", "block_number", "block_time", "batch_sequence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT64_MAX:
                raise InvalidInputError(f"anchor.{name} must be an unsigned 64-bit integer", field=name)
        if self.chain_id == 0 or self.block_number == 0 or self.batch_sequence == 0:
            raise InvalidInputError("anchor chain_id, block_number and batch_sequence must be non-zero")
        contract = self.contract
        if not (isinstance(contract, str) and len(contract) == 42 and contract[:2] == "0x"):
            raise InvalidInputError("anchor.contract must be a 0x-hex address", field="contract")
        try:
            bytes.fromhex(contract[2:])
        except ValueError:
            raise InvalidInputError("anchor.contract must be a 0x-hex address", field="contract") from None
        object.__setattr__(self, "tx_hash", to_hex(to_bytes32(self.tx_hash, "anchor.tx_hash")))

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _ANCHOR_KEYS}

    @classmethod
    def from_json(cls, data: Any) -> AnchorRef:
        if not isinstance(data, Mapping):
            raise InvalidInputError("anchor must be an object or null")
        missing = [k for k in _ANCHOR_KEYS if k not in data]
        unknown = sorted(set(data) - set(_ANCHOR_KEYS))
        if missing or unknown:
            raise InvalidInputError(f"anchor: missing {missing}, unknown {unknown}")
        return cls(**{k: data[k] for k in _ANCHOR_KEYS})


@dataclass(frozen=True)
class ProofDocument:
    """A parsed, structurally valid proof document (validity of the proof itself is not implied)."""

    leaf_encoding: tuple[str, ...]
    value: list[Any]
    leaf_hash: str
    proof: list[str]
    root: str
    anchor: AnchorRef | None
    schema_version: int | None = None
    event: ProvenanceEvent | None = None
    record: JournalRecord | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": PROOF_FORMAT,
            "leaf_encoding": list(self.leaf_encoding),
            "schema_version": self.schema_version,
            "value": list(self.value),
            "leaf_hash": self.leaf_hash,
            "proof": list(self.proof),
            "root": self.root,
            "anchor": self.anchor.to_json() if self.anchor else None,
        }
        if self.event is not None:
            doc["event"] = self.event.to_json()
        if self.record is not None:
            doc["record"] = self.record.to_json()
        return doc

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False)


def build_proof_document(tree: StandardMerkleTree, index: int, *, anchor: AnchorRef | None = None,
                         event: ProvenanceEvent | None = None, schema_version: int | None = None,
                         record: JournalRecord | None = None) -> ProofDocument:
    """The proof document of the value at ``index`` in ``tree``."""
    value = tree.at(index)
    encoding = tree.leaf_encoding
    if event is not None and schema_version is None:
        raise InvalidInputError("a document carrying an event needs its schema_version")
    return ProofDocument(
        leaf_encoding=encoding,
        value=[to_json_value(t, v) for t, v in zip(encoding, value)],
        leaf_hash=to_hex(tree.leaf_hash_at(index)),
        proof=tree.get_proof(index),
        root=tree.root,
        anchor=anchor,
        schema_version=schema_version,
        event=event,
        record=record,
    )


def parse_proof_document(document: Mapping[str, Any] | str | bytes) -> ProofDocument:
    """Parse and structurally check a proof document; InvalidInputError says what is wrong."""
    if isinstance(document, (str, bytes, bytearray)):
        if len(document) > PROOF_DOCUMENT_BYTES_MAX:
            raise InvalidInputError(f"proof document larger than {PROOF_DOCUMENT_BYTES_MAX} bytes")
        try:
            document = json.loads(document)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"proof document is not valid JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise InvalidInputError("proof document must be a JSON object")
    if document.get("format") != PROOF_FORMAT:
        raise InvalidInputError(f"unknown proof format {document.get('format')!r}; expected {PROOF_FORMAT!r}")
    missing = [k for k in _KEYS_REQUIRED if k not in document]
    if missing:
        raise InvalidInputError(f"proof document lacks {missing} (truncated?)")
    unknown = sorted(set(document) - set(_KEYS_REQUIRED) - set(_KEYS_OPTIONAL))
    if unknown:
        raise InvalidInputError(f"proof document has unknown keys {unknown}")
    encoding = document["leaf_encoding"]
    if not isinstance(encoding, list) or not encoding or not all(isinstance(t, str) for t in encoding):
        raise InvalidInputError("leaf_encoding must be a non-empty list of ABI type strings")
    value = document["value"]
    if not isinstance(value, list) or len(value) != len(encoding):
        raise InvalidInputError(f"value must be a list of {len(encoding)} items, one per leaf_encoding type")
    for abi_type, item in zip(encoding, value):
        to_json_value(abi_type, item)
    proof = document["proof"]
    if not isinstance(proof, list) or len(proof) > PROOF_DEPTH_MAX:
        raise InvalidInputError(f"proof must be a list of at most {PROOF_DEPTH_MAX} hashes")
    proof = [to_hex(to_bytes32(node, f"proof[{i}]")) for i, node in enumerate(proof)]
    schema_version = document.get("schema_version")
    if schema_version is not None and (isinstance(schema_version, bool) or not isinstance(schema_version, int)):
        raise InvalidInputError("schema_version must be an integer or null")
    event = None
    if document.get("event") is not None:
        if schema_version is None:
            raise InvalidInputError("a document carrying an event needs its schema_version")
        event = ProvenanceEvent.from_json(document["event"])
    record = None
    if document.get("record") is not None:
        if not is_journal_schema(schema_version):
            raise InvalidInputError("a document carrying a record needs a journal schema_version")
        if event is not None:
            raise InvalidInputError("a document carries an event or a record, not both")
        record = JournalRecord.from_json(document["record"])
    anchor = None if document["anchor"] is None else AnchorRef.from_json(document["anchor"])
    return ProofDocument(
        leaf_encoding=tuple(encoding),
        value=list(value),
        leaf_hash=to_hex(to_bytes32(document["leaf_hash"], "leaf_hash")),
        proof=proof,
        root=to_hex(to_bytes32(document["root"], "root")),
        anchor=anchor,
        schema_version=schema_version,
        event=event,
        record=record,
    )


__all__ = ["PROOF_FORMAT", "AnchorRef", "ProofDocument", "build_proof_document", "parse_proof_document"]
