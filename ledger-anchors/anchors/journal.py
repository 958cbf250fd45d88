"""Journal leaves: one version of one store record (a settlement, a posting, a callback, ...).

The service journals every change of a record as a *version*: the record's canonical JSON text,
``digest = keccak256(utf8(text))`` and the digest of the version before it. Each version is a
leaf of a journal batch whose Merkle root is anchored on TraceAnchor with a journal schema
version (the high bit set, so journal roots are told from provenance-event roots):

- 0x8002 (current): ``[schemaVersion uint16, kindHash bytes32, recordIdHash bytes32,
  recordVersion uint64, recordedAt uint64, prevDigest bytes32, digest bytes32]``;
- 0x8001 (first, without the chain): the same without ``prevDigest``.

``kindHash = keccak256(utf8(kind))``, ``recordIdHash = keccak256(utf8(record_id))``,
``prevDigest`` is zero for version 1. Standalone: an auditor recomputes a leaf from the record's
text with this module (or ``cast keccak`` / ``cast abi-encode`` and the OpenZeppelin library).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from anchors.errors import InvalidInputError
from anchors.keccak import keccak256
from anchors.merkle import standard_leaf_hash, to_hex

__all__ = ["JOURNAL_LEAF_ENCODING", "JOURNAL_LEAF_ENCODING_V1", "JOURNAL_LEAF_FIELD_NAMES", "JOURNAL_SCHEMA_VERSION",
           "JOURNAL_SCHEMA_VERSION_V1", "JOURNAL_SCHEMAS", "ZERO_DIGEST", "JournalRecord", "is_journal_schema",
           "journal_leaf_value", "text_digest"]

JOURNAL_SCHEMA_VERSION = 0x8002
JOURNAL_SCHEMA_VERSION_V1 = 0x8001
JOURNAL_LEAF_FIELD_NAMES = ("schemaVersion", "kindHash", "recordIdHash", "recordVersion", "recordedAt",
                            "prevDigest", "digest")
JOURNAL_LEAF_ENCODING: tuple[str, ...] = ("uint16", "bytes32", "bytes32", "uint64", "uint64", "bytes32", "bytes32")
JOURNAL_LEAF_ENCODING_V1: tuple[str, ...] = ("uint16", "bytes32", "bytes32", "uint64", "uint64", "bytes32")
JOURNAL_SCHEMAS: dict[int, tuple[str, ...]] = {JOURNAL_SCHEMA_VERSION: JOURNAL_LEAF_ENCODING,
                                               JOURNAL_SCHEMA_VERSION_V1: JOURNAL_LEAF_ENCODING_V1}
ZERO_DIGEST = "0x" + "00" * 32
# A record's canonical JSON is at most 256 KiB (the service's bound).
RECORD_TEXT_BYTES_MAX = 256 * 1024
_RECORD_KEYS = ("kind", "record_id", "version", "recorded_at_s", "prev_digest", "canonical_json")


def is_journal_schema(schema_version: int | None) -> bool:
    return schema_version in JOURNAL_SCHEMAS


def text_digest(text: str) -> str:
    return to_hex(keccak256(text.encode("utf-8")))


@lru_cache(maxsize=256)
def _kind_hash(kind: str) -> str:
    return to_hex(keccak256(kind.encode("utf-8")))  # a few kinds, hashed once each


def journal_leaf_value(kind: str, record_id: str, version: int, recorded_at_s: int, prev_digest: str | None,
                       digest: str, schema_version: int = JOURNAL_SCHEMA_VERSION) -> list[str]:
    """The leaf value in JSON form (as a ``standard-v1`` dump holds it)."""
    if schema_version not in JOURNAL_SCHEMAS:
        raise InvalidInputError(f"unknown journal leaf schema {schema_version}", field="schema_version")
    head = [str(schema_version), _kind_hash(kind),
            to_hex(keccak256(record_id.encode("utf-8"))), str(version), str(recorded_at_s)]
    if schema_version == JOURNAL_SCHEMA_VERSION_V1:
        return [*head, digest]
    return [*head, prev_digest or ZERO_DIGEST, digest]


@dataclass(frozen=True)
class JournalRecord:
    """The record a journal proof document carries: one version of one record, with its text."""

    kind: str
    record_id: str
    version: int
    recorded_at_s: int
    prev_digest: str | None
    canonical_json: str

    def leaf_value(self, schema_version: int) -> list[str]:
        return journal_leaf_value(self.kind, self.record_id, self.version, self.recorded_at_s, self.prev_digest,
                                  text_digest(self.canonical_json), schema_version)

    def leaf_hash(self, schema_version: int) -> str:
        return to_hex(standard_leaf_hash(JOURNAL_SCHEMAS[schema_version], self.leaf_value(schema_version)))

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _RECORD_KEYS}

    @classmethod
    def from_json(cls, data: Any) -> JournalRecord:
        if not isinstance(data, Mapping):
            raise InvalidInputError("record must be an object")
        missing = [k for k in _RECORD_KEYS if k not in data]
        unknown = sorted(set(data) - set(_RECORD_KEYS))
        if missing or unknown:
            raise InvalidInputError(f"record: missing {missing}, unknown {unknown}")
        for name in ("kind", "record_id", "canonical_json"):
            if not isinstance(data[name], str) or not data[name]:
                raise InvalidInputError(f"record.{name} must be a non-empty string", field=name)
        if len(data["canonical_json"].encode("utf-8")) > RECORD_TEXT_BYTES_MAX:
            raise InvalidInputError(f"record.canonical_json is larger than {RECORD_TEXT_BYTES_MAX} bytes")
        for name in ("version", "recorded_at_s"):
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
                raise InvalidInputError(f"record.{name} must be an unsigned 64-bit integer", field=name)
        prev = data["prev_digest"]
        if prev is not None and (not isinstance(prev, str) or len(prev) != 66 or not prev.startswith("0x")):
            raise InvalidInputError("record.prev_digest must be a 0x-hex 32-byte digest or null")
        return cls(data["kind"], data["record_id"], data["version"], data["recorded_at_s"], prev,
                   data["canonical_json"])


def value_fields(value: Sequence[Any]) -> dict[str, Any]:
    """Name each element of a journal leaf value (for reports)."""
    names = JOURNAL_LEAF_FIELD_NAMES if len(value) == 7 else JOURNAL_LEAF_FIELD_NAMES[:5] + ("digest",)
    return dict(zip(names, value))
