"""Provenance events and their fixed, versioned Merkle leaf encoding.

Schema version 1 (fixed: changing a field, its type, its order or how it is derived needs a new
version; old proofs keep verifying with the encoding written in them):

====  ==================  =========  =====================================================
 #    field               ABI type   value
====  ==================  =========  =====================================================
 0    schemaVersion       uint16     1
 1    eventIdHash         bytes32    keccak256(utf8(event_id))
 2    lotIdHash           bytes32    keccak256(utf8(lot_id))
 3    productHash         bytes32    keccak256(utf8(product)), product = "gtin:<14 digits>"
                                     or "sku:<code>"
 4    eventType           uint8      EventType code (1 produced .. 10 destroyed)
 5    locationHash        bytes32    keccak256(utf8(location))
 6    memberId            bytes32    registry id of the acting member
 7    occurredAt          uint64     unix seconds of the event's occurrence
 8    documentHash        bytes32    hash of the supporting document (zero: none)
 9    attributesHash      bytes32    keccak256(canonical JSON of attributes)
====  ==================  =========  =====================================================

Strings are NFC-normalised before hashing. Only hashes and codes enter the leaf; the cleartext
event travels in the proof document, so an auditor recomputes every hash from it. The canonical
JSON of attributes is RFC 8785 (JCS) restricted to what we allow: objects with string keys sorted
by UTF-16 code units, no whitespace, strings escaped as JSON.stringify does, integers (no floats:
money and quantities are integers of minor units), booleans and null.
"""

from __future__ import annotations

import enum
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from anchors.abi import to_json_value
from anchors.keccak import keccak256
from anchors.errors import InvalidInputError

SCHEMA_VERSION = 1
LEAF_FIELDS_V1: tuple[tuple[str, str], ...] = (
    ("schemaVersion", "uint16"),
    ("eventIdHash", "bytes32"),
    ("lotIdHash", "bytes32"),
    ("productHash", "bytes32"),
    ("eventType", "uint8"),
    ("locationHash", "bytes32"),
    ("memberId", "bytes32"),
    ("occurredAt", "uint64"),
    ("documentHash", "bytes32"),
    ("attributesHash", "bytes32"),
)
LEAF_ENCODING_V1: tuple[str, ...] = tuple(t for _, t in LEAF_FIELDS_V1)
LEAF_FIELD_NAMES_V1: tuple[str, ...] = tuple(n for n, _ in LEAF_FIELDS_V1)
LEAF_ENCODINGS: dict[int, tuple[str, ...]] = {1: LEAF_ENCODING_V1}
LEAF_FIELD_NAMES: dict[int, tuple[str, ...]] = {1: LEAF_FIELD_NAMES_V1}

EVENT_ID_CHARS_MAX = 128
LOT_ID_CHARS_MAX = 128
SKU_CHARS_MAX = 64
LOCATION_CHARS_MAX = 256
ATTRIBUTES_BYTES_MAX = 16 * 1024
ATTRIBUTES_DEPTH_MAX = 8
ATTRIBUTES_KEYS_MAX = 256
# JSON integers beyond 2^53 lose precision in JavaScript clients; money uses minor units well below.
ATTRIBUTE_INT_ABS_MAX = (1 << 53) - 1
# 2000-01-01 .. 9999-12-31: an event before the ledger era or after year 9999 is a unit error.
OCCURRED_AT_MIN_S = 946_684_800
OCCURRED_AT_MAX_S = 253_402_300_799

ZERO_HASH = "0x" + "00" * 32
_HEX32_RE = re.compile(r"^0x[0-9a-f]{64}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$")
_SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


class EventType(enum.IntEnum):
    """What happened to the lot. The codes are part of the leaf encoding: never renumber."""

    PRODUCED = 1
    SHIPPED = 2
    RECEIVED = 3
    INSPECTED = 4
    STORED = 5
    TRANSFORMED = 6
    SOLD = 7
    RETURNED = 8
    RECALLED = 9
    DESTROYED = 10

    @classmethod
    def parse(cls, value: Any) -> EventType:
        if isinstance(value, EventType):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        names = ", ".join(m.name.lower() for m in cls)
        raise InvalidInputError(f"unknown event type {value!r}; expected one of {names}", field="event_type")


def keccak_text(text: str) -> str:
    """``keccak256(utf8(text))`` as 0x-hex."""
    return "0x" + keccak256(text.encode("utf-8")).hex()


def _text(name: str, value: Any, chars_max: int, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string", field=name)
    text = unicodedata.normalize("NFC", value)
    if not 1 <= len(text) <= chars_max:
        raise InvalidInputError(f"{name} must have 1..{chars_max} characters, got {len(text)}", field=name)
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text) or text != text.strip():
        raise InvalidInputError(f"{name} has control characters or surrounding spaces", field=name)
    if pattern is not None and not pattern.match(text):
        raise InvalidInputError(f"{name} {text!r} has characters outside {pattern.pattern}", field=name)
    return text


def _hash32(name: str, value: Any) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and _HEX32_RE.match(value.lower()):
        return value.lower()
    raise InvalidInputError(f"{name} must be 32 bytes as 0x and 64 hex digits", field=name)


def gtin_check_digit_ok(digits: str) -> bool:
    """GS1 mod-10 check digit over a GTIN-8/12/13/14."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def normalize_product(value: Any) -> str:
    """``gtin:<14 digits>`` (GTIN-8/12/13/14, check digit verified) or ``sku:<code>``."""
    if not isinstance(value, str) or ":" not in value:
        raise InvalidInputError("product must be 'gtin:<digits>' or 'sku:<code>'", field="product")
    kind, _, code = value.partition(":")
    kind = kind.lower()
    if kind == "gtin":
        if not (code.isascii() and code.isdigit() and len(code) in (8, 12, 13, 14)):
            raise InvalidInputError("a GTIN has 8, 12, 13 or 14 digits", field="product")
        if not gtin_check_digit_ok(code):
            raise InvalidInputError(f"GTIN {code} has a wrong check digit", field="product")
        return "gtin:" + code.zfill(14)
    if kind == "sku":
        return "sku:" + _text("product", code, SKU_CHARS_MAX, _SKU_RE)
    raise InvalidInputError(f"unknown product kind {kind!r}: use gtin or sku", field="product")


def _check_attributes(value: Any, depth: int, keys_seen: list[int]) -> None:
    if depth > ATTRIBUTES_DEPTH_MAX:
        raise InvalidInputError(f"attributes nest deeper than {ATTRIBUTES_DEPTH_MAX}", field="attributes")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > ATTRIBUTE_INT_ABS_MAX:
            raise InvalidInputError("attribute integers must fit in +-(2^53 - 1)", field="attributes")
        return
    if isinstance(value, float):
        raise InvalidInputError("attributes may not hold floats: use integers of minor units or strings",
                              field="attributes")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("attribute strings must be valid Unicode", field="attributes") from None
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_attributes(item, depth + 1, keys_seen)
        return
    if isinstance(value, Mapping):
        keys_seen[0] += len(value)
        if keys_seen[0] > ATTRIBUTES_KEYS_MAX:
            raise InvalidInputError(f"attributes have more than {ATTRIBUTES_KEYS_MAX} keys", field="attributes")
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError("attribute keys must be strings", field="attributes")
            _check_attributes(key, depth + 1, keys_seen)
            _check_attributes(item, depth + 1, keys_seen)
        return
    raise InvalidInputError(f"attributes may not hold {type(value).__name__}", field="attributes")


def _canonical(value: Any) -> str:
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _canonical(v) for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def canonical_json(attributes: Mapping[str, Any]) -> bytes:
    """The canonical UTF-8 JSON of an attributes object (see the module docstring)."""
    if not isinstance(attributes, Mapping):
        raise InvalidInputError("attributes must be a JSON object", field="attributes")
    _check_attributes(attributes, 0, [0])
    encoded = _canonical(attributes).encode("utf-8")
    if len(encoded) > ATTRIBUTES_BYTES_MAX:
        raise InvalidInputError(f"attributes exceed {ATTRIBUTES_BYTES_MAX} bytes of canonical JSON",
                              field="attributes")
    return encoded


@dataclass(frozen=True)
class ProvenanceEvent:
    """One provenance event of a lot, validated and normalised on construction."""

    event_id: str
    lot_id: str
    product: str
    event_type: EventType
    location: str
    member_id: str
    occurred_at_s: int
    document_hash: str = ZERO_HASH
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "event_id", _text("event_id", self.event_id, EVENT_ID_CHARS_MAX, _ID_RE))
        set_(self, "lot_id", _text("lot_id", self.lot_id, LOT_ID_CHARS_MAX, _ID_RE))
        set_(self, "product", normalize_product(self.product))
        set_(self, "event_type", EventType.parse(self.event_type))
        set_(self, "location", _text("location", self.location, LOCATION_CHARS_MAX))
        set_(self, "member_id", _hash32("member_id", self.member_id))
        if self.member_id == ZERO_HASH:
            raise InvalidInputError("member_id must not be zero", field="member_id")
        t = self.occurred_at_s
        if isinstance(t, bool) or not isinstance(t, int) or not OCCURRED_AT_MIN_S <= t <= OCCURRED_AT_MAX_S:
            raise InvalidInputError(
                f"occurred_at_s must be integer unix seconds in {OCCURRED_AT_MIN_S}..{OCCURRED_AT_MAX_S}",
                field="occurred_at_s")
        set_(self, "document_hash", _hash32("document_hash", self.document_hash))
        canonical = canonical_json(self.attributes)
        # Keep a private, immutable copy: later edits by the caller cannot change the leaf.
        set_(self, "attributes", json.loads(canonical))

    @property
    def attributes_hash(self) -> str:
        return "0x" + keccak256(canonical_json(self.attributes)).hex()

    def leaf_value(self, schema_version: int = SCHEMA_VERSION) -> list[str]:
        """The leaf's values in JSON form (as a tree dump holds them), for ``schema_version``."""
        if schema_version != 1:
            raise InvalidInputError(f"unknown leaf schema version {schema_version}", field="schema_version")
        return [
            "1",
            keccak_text(self.event_id),
            keccak_text(self.lot_id),
            keccak_text(self.product),
            str(int(self.event_type)),
            keccak_text(self.location),
            self.member_id,
            str(self.occurred_at_s),
            self.document_hash,
            self.attributes_hash,
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "lot_id": self.lot_id,
            "product": self.product,
            "event_type": self.event_type.name.lower(),
            "location": self.location,
            "member_id": self.member_id,
            "occurred_at_s": self.occurred_at_s,
            "document_hash": self.document_hash,
            "attributes": self.attributes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProvenanceEvent:
        if not isinstance(data, Mapping):
            raise InvalidInputError("a provenance event must be a JSON object", field="event")
        required = ("event_id", "lot_id", "product", "event_type", "location", "member_id", "occurred_at_s")
        missing = [k for k in required if k not in data]
        if missing:
            raise InvalidInputError(f"provenance event lacks {missing}", field="event")
        unknown = sorted(set(data) - set(required) - {"document_hash", "attributes"})
        if unknown:
            raise InvalidInputError(f"provenance event has unknown fields {unknown}", field="event")
        return cls(**{k: data[k] for k in data})


def leaf_encoding(schema_version: int) -> tuple[str, ...]:
    """The ABI types of the leaf for ``schema_version``."""
    encoding = LEAF_ENCODINGS.get(schema_version)
    if encoding is None:
        raise InvalidInputError(f"unknown leaf schema version {schema_version}", field="schema_version")
    return encoding


def leaf_fields(schema_version: int, value: list[Any]) -> dict[str, Any]:
    """Name each element of a leaf value (for reports)."""
    names = LEAF_FIELD_NAMES.get(schema_version)
    if names is None or len(value) != len(names):
        raise InvalidInputError(f"value does not fit leaf schema version {schema_version}")
    return {n: to_json_value(t, v) for n, t, v in zip(names, leaf_encoding(schema_version), value)}


__all__ = [
    "LEAF_ENCODING_V1",
    "LEAF_FIELDS_V1",
    "LEAF_FIELD_NAMES_V1",
    "SCHEMA_VERSION",
    "EventType",
    "ProvenanceEvent",
    "canonical_json",
    "gtin_check_digit_ok",
    "keccak_text",
    "leaf_encoding",
    "leaf_fields",
    "normalize_product",
]
