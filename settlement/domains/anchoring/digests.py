"""The record-digest journal: any domain service digests its records for the journal anchor.

A service that changes a record it wants provably unaltered (a settlement, a callback, a
receivable, a reconciliation resolution) calls, in the same transaction::

    record_digest(session, "settlement", settlement.id, {"id": ..., "amount_minor": ..., ...})

That appends one row to ``record_digests``: the record's canonical JSON, ``digest =
keccak256(utf8(canonical JSON))`` and its journal leaf. A later version of the same record is a
new row (``version`` + 1); the same content again adds nothing. The batcher anchors the digests
added since the last journal anchor as one Merkle root through TraceAnchor, with the journal's
leaf schema version, and an auditor export lets anyone recompute every digest and root.

Journal leaf, schema ``JOURNAL_SCHEMA_VERSION`` = 32769 (0x8001: the high bit tells journal
roots from provenance-event roots in ``RootAnchored``; the low bits are the journal's version 1):

====  ===============  =======  ===============================================
 #    field            type     value
====  ===============  =======  ===============================================
 0    schemaVersion    uint16   32769
 1    kindHash         bytes32  keccak256(utf8(kind))
 2    recordIdHash     bytes32  keccak256(utf8(record_id))
 3    recordVersion    uint64   1, 2, ... per (kind, record_id)
 4    recordedAt       uint64   unix seconds the digest was recorded
 5    digest           bytes32  keccak256(utf8(canonical JSON of the record))
====  ===============  =======  ===============================================

Canonical JSON: objects with string keys sorted by UTF-16 code units, no whitespace, strings
escaped as JSON.stringify does (non-ASCII kept), integers (no floats: money is in minor units,
rates are decimal strings), booleans, null. Passing bytes or a string checks that it already is
in this form, so an auditor can always recompute the digest from the exported text.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from anchors.keccak import keccak256
from anchors.merkle import standard_leaf_hash, to_hex
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached

from settlement.core.errors import JournalRecordInvalidError
from settlement.store.models import utcnow
from settlement.store.models.anchoring import RecordDigest

JOURNAL_SCHEMA_VERSION = 0x8001
JOURNAL_LEAF_FIELDS: tuple[tuple[str, str], ...] = (
    ("schemaVersion", "uint16"),
    ("kindHash", "bytes32"),
    ("recordIdHash", "bytes32"),
    ("recordVersion", "uint64"),
    ("recordedAt", "uint64"),
    ("digest", "bytes32"),
)
JOURNAL_LEAF_ENCODING: tuple[str, ...] = tuple(t for _, t in JOURNAL_LEAF_FIELDS)

RECORD_JSON_BYTES_MAX = 256 * 1024
RECORD_JSON_DEPTH_MAX = 32
RECORD_INT_ABS_MAX = (1 << 63) - 1
KIND_CHARS_MAX = 64
RECORD_ID_CHARS_MAX = 128
_KIND_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_RECORD_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces

RecordLoader = Callable[[Session, str], "Mapping[str, Any] | str | bytes | None"]
_LOADERS: dict[str, RecordLoader] = {}


# -- canonical JSON ----------------------------------------------------------------------------

# json.dumps(text, ensure_ascii=False) without building an encoder per call (the same C function).
_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _canonical(value: Any, depth: int) -> str:
    if depth > RECORD_JSON_DEPTH_MAX:
        raise JournalRecordInvalidError(f"record nests deeper than {RECORD_JSON_DEPTH_MAX}")
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > RECORD_INT_ABS_MAX:
            raise JournalRecordInvalidError("record integers must fit in a signed 64-bit integer")
        return str(value)
    if isinstance(value, float):
        raise JournalRecordInvalidError("records may not hold floats: use integers of minor units or "
                                        "decimal strings")
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(v, depth + 1) for v in value) + "]"
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise JournalRecordInvalidError("record keys must be strings")
        if all(key.isascii() for key in value):  # the usual case: UTF-16 order is str order
            items = sorted(value.items())
        else:
            items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_json_string(k) + ":" + _canonical(v, depth + 1) for k, v in items) + "}"
    raise JournalRecordInvalidError(f"records may not hold {type(value).__name__}: convert it to a string "
                                    "or an integer first")


def canonical_record_json(record: Mapping[str, Any] | str | bytes) -> str:
    """The canonical JSON text of ``record`` (a mapping, or JSON text that must already be canonical)."""
    if isinstance(record, (bytes, bytearray)):
        try:
            record = bytes(record).decode("utf-8")
        except UnicodeDecodeError:
            raise JournalRecordInvalidError("record bytes are not UTF-8") from None
    if isinstance(record, str):
        if len(record.encode("utf-8")) > RECORD_JSON_BYTES_MAX:
            raise JournalRecordInvalidError(f"record larger than {RECORD_JSON_BYTES_MAX} bytes")
        try:
            parsed = json.loads(record, parse_float=_reject_float)
        except ValueError as exc:
            raise JournalRecordInvalidError(f"record is not JSON: {exc}") from None
        if not isinstance(parsed, Mapping):
            raise JournalRecordInvalidError("a record must be a JSON object")
        text = _canonical(parsed, 0)
        if text != record:
            raise JournalRecordInvalidError("record JSON is not canonical (sorted keys, no whitespace)")
        return text
    if not isinstance(record, Mapping):
        raise JournalRecordInvalidError("a record must be a JSON object (mapping)")
    text = _canonical(record, 0)
    if len(text.encode("utf-8")) > RECORD_JSON_BYTES_MAX:
        raise JournalRecordInvalidError(f"record larger than {RECORD_JSON_BYTES_MAX} bytes")
    return text


def _reject_float(text: str) -> Any:
    raise JournalRecordInvalidError(f"records may not hold floats ({text[:40]})")


def digest_of(canonical_json: str) -> str:
    return to_hex(keccak256(canonical_json.encode("utf-8")))


def journal_leaf_value(kind: str, record_id: str, version: int, recorded_at_s: int, digest: str) -> list[str]:
    """The journal leaf's value in JSON form (as a standard-v1 dump holds it)."""
    return [
        str(JOURNAL_SCHEMA_VERSION),
        to_hex(keccak256(kind.encode("utf-8"))),
        to_hex(keccak256(record_id.encode("utf-8"))),
        str(version),
        str(recorded_at_s),
        digest,
    ]


def check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise JournalRecordInvalidError(f"record kind must match {_KIND_RE.pattern}", field="kind")
    return kind


def check_record_id(record_id: Any) -> str:
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if not isinstance(record_id, str) or not _RECORD_ID_RE.match(record_id):
        raise JournalRecordInvalidError("record_id must be 1..128 printable ASCII characters", field="record_id")
    return record_id


# -- the public entry point --------------------------------------------------------------------

_DIGESTS = RecordDigest.__table__
_LATEST_VERSION = (select(_DIGESTS.c.id, _DIGESTS.c.version, _DIGESTS.c.digest)
                   .where(_DIGESTS.c.kind == bindparam("kind"), _DIGESTS.c.record_id == bindparam("record_id"))
                   .order_by(_DIGESTS.c.version.desc()).limit(1))
_INSERT_DIGEST = insert(_DIGESTS)


def record_digest(session: Session, kind: str, record_id: str | int,
                  canonical_json: Mapping[str, Any] | str | bytes, *,
                  recorded_at_s: int | None = None) -> RecordDigest:
    """Append the digest of one record version to the journal, in the caller's transaction.

    ``canonical_json`` is the record as a mapping (canonicalised here) or as canonical JSON text.
    Returns the journal row; when the record's latest version has the same digest, that row is
    returned and nothing is added. Raises JournalRecordInvalidError for a bad kind, id or record.
    """
    kind = check_kind(kind)
    record_id = check_record_id(record_id)
    text = canonical_record_json(canonical_json)
    digest = digest_of(text)
    # Core statements on the session's connection (compiled once): every journal row is written
    # by this function at once (never left pending in the session), so the latest version is
    # read without an autoflush of the caller's unrelated pending changes.
    conn = session.connection()
    latest = conn.execute(_LATEST_VERSION, {"kind": kind, "record_id": record_id}).first()
    if latest is not None and latest.digest == digest:
        same = session.get(RecordDigest, latest.id)
        if same is None:
            raise RuntimeError(f"journal row {latest.id} vanished inside its transaction")
        return same
    version = 1 if latest is None else latest.version + 1
    at = int(time.time()) if recorded_at_s is None else int(recorded_at_s)
    values = _version_values(kind, record_id, version, text, digest, at)
    new_id = conn.execute(_INSERT_DIGEST, values).inserted_primary_key[0]
    if new_id is None:
        raise RuntimeError("the journal row got no id")
    row = RecordDigest(id=new_id, batch_id=None, batch_index=None, **values)
    make_transient_to_detached(row)  # the row as stored: persistent in the caller's session
    session.add(row)
    return row


def _version_values(kind: str, record_id: str, version: int, text: str, digest: str, at: int) -> dict[str, Any]:
    value = journal_leaf_value(kind, record_id, version, at, digest)
    return {"kind": kind, "record_id": record_id, "version": version, "canonical_json": text, "digest": digest,
            "recorded_at_s": at, "value": value,
            "leaf_hash": to_hex(standard_leaf_hash(JOURNAL_LEAF_ENCODING, value)), "created_at": utcnow()}


RECORD_DIGESTS_BATCH_MAX = 500


def record_first_digests(session: Session, kind: str,
                         records: Sequence[tuple[str | int, Mapping[str, Any] | str | bytes]], *,
                         recorded_at_s: int | None = None) -> None:
    """Version 1 of records that have no journal version yet (rows just inserted in the caller's
    transaction), in one insert and without reading the journal: what :func:`record_digest`
    writes for each of them. A record that does have a version makes the insert fail on the
    unique (kind, record_id, version) key, and the caller's transaction with it: a caller that
    cannot rule that out uses :func:`record_digest`. Raises JournalRecordInvalidError (nothing is
    written then), or the store's IntegrityError."""
    kind = check_kind(kind)
    if len(records) > RECORD_DIGESTS_BATCH_MAX:
        raise JournalRecordInvalidError(f"at most {RECORD_DIGESTS_BATCH_MAX} records per call")
    at = int(time.time()) if recorded_at_s is None else int(recorded_at_s)
    rows = []
    for record_id, content in records:
        text = canonical_record_json(content)
        rows.append(_version_values(kind, check_record_id(record_id), 1, text, digest_of(text), at))
    if rows:
        session.connection().execute(_INSERT_DIGEST, rows)


def register_record_loader(kind: str, loader: RecordLoader) -> None:
    """Let the auditor export re-read ``kind`` records from their live tables: ``loader(session,
    record_id)`` returns the record's current content (or None if it is gone). Exported records
    of a kind with a loader are the live ones, so an edit behind the service's back shows up as a
    digest mismatch; kinds without a loader export the journal's own copy."""
    _LOADERS[check_kind(kind)] = loader


def record_loader(kind: str) -> RecordLoader | None:
    return _LOADERS.get(kind)


def latest_versions(session: Session, kind: str, record_ids: list[str]) -> dict[str, int]:
    """Latest journal version per record id (to tell a superseded version from the live one)."""
    rows = session.execute(select(RecordDigest.record_id, func.max(RecordDigest.version))
                           .where(RecordDigest.kind == kind, RecordDigest.record_id.in_(record_ids))
                           .group_by(RecordDigest.record_id)).all()
    return {rid: v for rid, v in rows}


__all__ = ["JOURNAL_LEAF_ENCODING", "JOURNAL_LEAF_FIELDS", "JOURNAL_SCHEMA_VERSION", "canonical_record_json",
           "check_kind", "check_record_id", "digest_of", "journal_leaf_value", "latest_versions",
           "record_digest", "record_first_digests", "record_loader", "register_record_loader"]
