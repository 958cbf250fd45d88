"""The record-digest journal: every change of a record users rely on, digested and chained.

A domain service that changes a row of a record kind (:mod:`.kinds`) says so with one line, in
the transaction that changes it::

    digest_changed(session, "settlement", settlement)      # an id or the ORM object

and the journal gets, when that transaction commits (a ``before_commit`` hook, so the record is
taken from the row's final state, whatever else the transaction did to it), one new version of
the record if its content changed: its canonical JSON, ``digest = keccak256(utf8(canonical
JSON))`` and the digest of the version before it (``prev_digest``, zero for version 1). Rows
written in bulk whose values are at hand use :func:`digest_new` (version 1, no read). The batcher
anchors the versions added since the last journal anchor as one Merkle root through TraceAnchor.

Journal leaf, schema ``JOURNAL_SCHEMA_VERSION`` = 32770 (0x8002: the high bit tells journal roots
from provenance-event roots in ``RootAnchored``; the low bits are the journal's leaf version 2):

====  ===============  =======  ===============================================
 #    field            type     value
====  ===============  =======  ===============================================
 0    schemaVersion    uint16   32770
 1    kindHash         bytes32  keccak256(utf8(kind))
 2    recordIdHash     bytes32  keccak256(utf8(record_id))
 3    recordVersion    uint64   1, 2, ... per (kind, record_id)
 4    recordedAt       uint64   unix seconds the version was recorded
 5    prevDigest       bytes32  the digest of version - 1 (zero for version 1)
 6    digest           bytes32  keccak256(utf8(canonical JSON of the record))
====  ===============  =======  ===============================================

Each version names its predecessor's digest, so a deleted, reordered or inserted version breaks
its record's chain, and every anchored leaf fixes its version's place in it. Version 1 of the
leaf (0x8001) had no ``prevDigest``; batches anchored with it are still audited with it.

Canonical JSON: objects with string keys sorted by UTF-16 code units, no whitespace, strings
escaped as JSON.stringify does (non-ASCII kept), integers (no floats: money is in minor units,
rates are decimal strings), booleans, null. Passing bytes or a string checks that it already is
in this form, so an auditor can always recompute the digest from the text.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from anchors.journal import (
    JOURNAL_LEAF_ENCODING,
    JOURNAL_LEAF_ENCODING_V1,
    JOURNAL_LEAF_FIELD_NAMES,
    JOURNAL_SCHEMA_VERSION,
    JOURNAL_SCHEMA_VERSION_V1,
    JOURNAL_SCHEMAS,
    ZERO_DIGEST,
    journal_leaf_value,
)
from anchors.journal import text_digest as digest_of
from anchors.merkle import standard_leaf_hash, to_hex
from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, make_transient_to_detached

from settlement.core.errors import JournalRecordInvalidError
from settlement.domains.anchoring.canonical import (
    RECORD_INT_ABS_MAX,
    RECORD_JSON_BYTES_MAX,
    RECORD_JSON_DEPTH_MAX,
    canonical_record_json,
)
from settlement.domains.anchoring.kinds import KINDS, LOAD_CHUNK_MAX, TOMBSTONE, kind_of, record_id_of
from settlement.runtime import Runtime
from settlement.store.bulk import insert_rows
from settlement.store.models import utcnow
from settlement.store.models.anchoring import RecordDigest

JOURNAL_LEAF_FIELDS: tuple[tuple[str, str], ...] = tuple(zip(JOURNAL_LEAF_FIELD_NAMES, JOURNAL_LEAF_ENCODING))
LEAF_ENCODINGS = JOURNAL_SCHEMAS

# Records changed in one transaction (bound on the commit hook's work).
CHANGED_PER_TRANSACTION_MAX = 100_000
_KIND_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_RECORD_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces


TOMBSTONE_JSON = canonical_record_json(TOMBSTONE)


def journal_leaf_hash(value: Sequence[str]) -> str:
    return to_hex(standard_leaf_hash(LEAF_ENCODINGS[int(value[0])], value))


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


# -- writing -----------------------------------------------------------------------------------

_DIGESTS = RecordDigest.__table__
_LATEST_VERSION = (select(_DIGESTS.c.id, _DIGESTS.c.version, _DIGESTS.c.digest)
                   .where(_DIGESTS.c.kind == bindparam("kind"), _DIGESTS.c.record_id == bindparam("record_id"))
                   .order_by(_DIGESTS.c.version.desc()).limit(1))
_INSERT_DIGEST = insert(_DIGESTS)


def _version_values(kind: str, record_id: str, version: int, text: str, digest: str, prev: str,
                    at: int, created_at: datetime | None = None) -> dict[str, Any]:
    # The leaf hash is computed by the batcher when it takes the version into a batch.
    return {"kind": kind, "record_id": record_id, "version": version, "canonical_json": text, "digest": digest,
            "prev_digest": prev, "recorded_at_s": at, "created_at": created_at or utcnow()}


def record_digest(session: Session, kind: str, record_id: str | int,
                  canonical_json: Mapping[str, Any] | str | bytes, *,
                  recorded_at_s: int | None = None) -> RecordDigest:
    """Append a version of one record, given its content, to the journal in the caller's
    transaction (records of the kinds in :mod:`.kinds` go through :func:`digest_changed`, which
    takes the content from the row itself).

    Returns the journal row; when the record's latest version has the same digest, that row is
    returned and nothing is added. Raises JournalRecordInvalidError for a bad kind, id or record.
    """
    kind = check_kind(kind)
    record_id = check_record_id(record_id)
    text = canonical_record_json(canonical_json)
    digest = digest_of(text)
    # Core statements on the session's connection: every journal row is written at once (never
    # left pending in the session), so the latest version is read without an autoflush.
    conn = session.connection()
    latest = conn.execute(_LATEST_VERSION, {"kind": kind, "record_id": record_id}).first()
    if latest is not None and latest.digest == digest:
        same = session.get(RecordDigest, latest.id)
        if same is None:
            raise RuntimeError(f"journal row {latest.id} vanished inside its transaction")
        return same
    version = 1 if latest is None else latest.version + 1
    at = int(time.time()) if recorded_at_s is None else int(recorded_at_s)
    values = _version_values(kind, record_id, version, text, digest,
                             ZERO_DIGEST if latest is None else latest.digest, at)
    new_id = conn.execute(_INSERT_DIGEST, values).inserted_primary_key[0]
    if new_id is None:
        raise RuntimeError("the journal row got no id")
    row = RecordDigest(id=new_id, batch_id=None, batch_index=None, **values)
    make_transient_to_detached(row)  # the row as stored: persistent in the caller's session
    session.add(row)
    return row


DIGESTS_NEW_PER_CALL_MAX = 2_000


def digest_new(session: Session, kind: str, rows: Sequence[Mapping[str, Any]], *,
               recorded_at_s: int | None = None) -> None:
    """Version 1 of rows just inserted in the caller's transaction, from the values inserted (a
    mapping of column values per row, as :meth:`RecordKind.project` reads them), in one insert
    and without reading the journal. A row that does have a version makes the insert fail on the
    unique (kind, record_id, version) key, and the caller's transaction with it: a caller that
    cannot rule that out uses :func:`digest_changed`."""
    spec = kind_of(kind)
    if len(rows) > DIGESTS_NEW_PER_CALL_MAX:
        raise JournalRecordInvalidError(f"at most {DIGESTS_NEW_PER_CALL_MAX} records per call")
    at = int(time.time()) if recorded_at_s is None else int(recorded_at_s)
    values = []
    changes: list[Change] = []
    now = utcnow()  # one timestamp object for the call: the bulk insert converts it once
    for row in rows:
        record = spec.project(row)
        text = spec.text_of(record)
        rid = check_record_id(spec.record_id(row))
        values.append(_version_values(kind, rid, 1, text, digest_of(text), ZERO_DIGEST, at, now))
        if _OBSERVERS:
            changes.append((rid, None, record))
    if values:
        insert_rows(session, _DIGESTS, values)  # the volume paths' bulk insert (one executemany)
        _notify(session.connection(), kind, changes)


# -- observers ----------------------------------------------------------------------------------
# A change the journal records: (record id, the record's previous version or None for a new one,
# its new version or None for a deleted row). Observers run in the transaction of the change,
# after its journal versions are written (events out: settlement.domains.events).
Change = tuple[str, "dict[str, Any] | None", "dict[str, Any] | None"]
JournalObserver = Callable[[Connection, str, list[Change]], None]
_OBSERVERS: list[JournalObserver] = []


def observe_changes(observer: JournalObserver) -> None:
    """Call ``observer(connection, kind, changes)`` for every batch of records the journal gets a
    new version of, inside that transaction (an exception rolls the change back). Registered
    explicitly by whoever wires the system (``settlement.wiring``); registering twice is a no-op."""
    if observer not in _OBSERVERS:
        _OBSERVERS.append(observer)


def _notify(conn: Connection, kind: str, changes: list[Change]) -> None:
    if changes:
        for observer in _OBSERVERS:
            observer(conn, kind, changes)


_PENDING = "ledger.anchoring.changed"
_HOOKED = "ledger.anchoring.hooked"


def digest_changed(session: Session, kind: str, *items: Any) -> None:
    """Journal the records ``items`` (ids, or ORM objects of the kind's table) of ``kind`` as
    they are when the caller's transaction commits: each gets a new version if its content
    changed (a deleted row: a tombstone version). Cheap: nothing is read or written until the
    commit, and a record changed many times in one transaction gets one version."""
    spec = kind_of(kind)
    pending: dict[str, list[Any]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
        if not session.info.get(_HOOKED):
            session.info[_HOOKED] = True
            event.listen(session, "before_commit", _before_commit)
            event.listen(session, "after_rollback", _after_rollback)
    bucket = pending.setdefault(spec.name, [])
    if len(bucket) + len(items) > CHANGED_PER_TRANSACTION_MAX:
        raise JournalRecordInvalidError(f"more than {CHANGED_PER_TRANSACTION_MAX} {kind} records changed in one "
                                        "transaction")
    bucket.extend(items)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint is released: the records are digested when the transaction commits
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # the rows as they will be committed
    conn = session.connection()
    at = int(time.time())
    for name, items in pending.items():
        spec = kind_of(name)
        ids = sorted({check_record_id(record_id_of(spec, item)) for item in items})
        append_versions(conn, name, spec.load(conn, ids), ids, at, observed=True)


def append_versions(conn: Connection, kind: str, current: Mapping[str, Mapping[str, Any]],
                    record_ids: Iterable[str], recorded_at_s: int, *, observed: bool = False) -> int:
    """For each id: a new version when ``current`` (id -> record; absent: the row is gone)
    differs from the latest journal version. Returns how many versions were added. ``observed``:
    the observers hear of the changes (the service's own changes; not the backfill)."""
    ids = list(record_ids)
    observed = observed and bool(_OBSERVERS)
    latest: dict[str, tuple[int, str]] = {}
    latest_id: dict[str, int] = {}
    for start in range(0, len(ids), LOAD_CHUNK_MAX):
        chunk = ids[start:start + LOAD_CHUNK_MAX]
        for row_id, rid, version, digest in conn.execute(
                select(_DIGESTS.c.id, _DIGESTS.c.record_id, _DIGESTS.c.version, _DIGESTS.c.digest)
                .where(_DIGESTS.c.kind == kind, _DIGESTS.c.record_id.in_(chunk))):
            if rid not in latest or version > latest[rid][0]:
                latest[rid] = (version, digest)
                latest_id[rid] = row_id
    spec = KINDS.get(kind)
    text_of = spec.text_of if spec is not None else canonical_record_json
    rows = []
    for rid in ids:
        record = current.get(rid)
        head = latest.get(rid)
        if record is None and head is None:
            continue  # never journaled and gone: nothing to say
        text = TOMBSTONE_JSON if record is None else text_of(record)
        digest = digest_of(text)
        if head is not None and head[1] == digest:
            continue
        version, prev = (1, ZERO_DIGEST) if head is None else (head[0] + 1, head[1])
        rows.append(_version_values(kind, rid, version, text, digest, prev, recorded_at_s))
    if rows:
        conn.execute(_INSERT_DIGEST, rows)
        if observed:
            _notify(conn, kind, _changes(conn, rows, current, latest_id))
    return len(rows)


def _changes(conn: Connection, rows: list[dict[str, Any]], current: Mapping[str, Mapping[str, Any]],
             latest_id: Mapping[str, int]) -> list[Change]:
    """The (id, previous record, new record) of the versions just appended: the previous ones
    read back from the journal (only when someone observes)."""
    wanted = [latest_id[r["record_id"]] for r in rows if r["record_id"] in latest_id]
    before: dict[int, str] = {}
    for start in range(0, len(wanted), LOAD_CHUNK_MAX):
        before.update((row_id, text) for row_id, text in conn.execute(
            select(_DIGESTS.c.id, _DIGESTS.c.canonical_json)
            .where(_DIGESTS.c.id.in_(wanted[start:start + LOAD_CHUNK_MAX]))))
    out: list[Change] = []
    for r in rows:
        rid = r["record_id"]
        old_text = before.get(latest_id[rid]) if rid in latest_id else None
        old = json.loads(old_text) if old_text is not None and old_text != TOMBSTONE_JSON else None
        new = current.get(rid)
        out.append((rid, old, dict(new) if new is not None else None))
    return out


BACKFILL_PAGE_ROWS = 500


def backfill(runtime: Runtime, progress: Callable[[str, int], None] = lambda _kind, _n: None) -> int:
    """Journal every live record whose latest version is missing or differs, a page per
    transaction (the upgrade path for rows written before their kind was journaled). The versions
    are recorded now: they prove nothing about the rows before this moment. Rows the journal has
    and the table lacks are left alone: the audit keeps naming them. Returns the versions added."""
    total = 0
    for name, spec in KINDS.items():
        key = spec.table.c[spec.key]
        last: Any = None
        while True:
            with runtime.db.transaction() as session:
                conn = session.connection()
                q = select(key).order_by(key).limit(BACKFILL_PAGE_ROWS)
                if last is not None:
                    q = q.where(key > last)
                ids = [str(i) for i in conn.execute(q).scalars()]
                added = append_versions(conn, name, spec.load(conn, ids), ids, int(time.time())) if ids else 0
            if added:
                total += added
                progress(name, added)
            if len(ids) < BACKFILL_PAGE_ROWS:
                break
            last = spec.key_value(ids[-1])
    return total


__all__ = [
    "BACKFILL_PAGE_ROWS", "JOURNAL_LEAF_ENCODING", "JOURNAL_LEAF_ENCODING_V1", "JOURNAL_LEAF_FIELDS",
    "JOURNAL_SCHEMA_VERSION", "JOURNAL_SCHEMA_VERSION_V1", "LEAF_ENCODINGS", "RECORD_INT_ABS_MAX",
    "RECORD_JSON_BYTES_MAX", "RECORD_JSON_DEPTH_MAX", "TOMBSTONE_JSON", "ZERO_DIGEST", "append_versions",
    "Change", "JournalObserver", "backfill", "canonical_record_json", "check_kind", "check_record_id", "digest_changed", "digest_new",
    "digest_of", "journal_leaf_hash", "journal_leaf_value", "observe_changes", "record_digest",
]
