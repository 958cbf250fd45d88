"""``ledger anchors audit``: the audit read from the store itself, never from the operator's export.

The auditor points it at the database (the service's URL, a replica, or a dump: a SQLite file or
a PostgreSQL database restored from ``pg_dump``) and at any node of the chain. It opens the
store read-only (SQLite ``mode=ro``; PostgreSQL ``default_transaction_read_only``) in one
snapshot, and streams:

1. the journal, record by record in (kind, record id, version) order, a page at a time; each
   page's live rows are read by id and encoded by the kind's canonical encoding (:mod:`.kinds`,
   the very code the service digests them with) and compared (:class:`.audit.Auditor`);
2. per kind, the live rows that have no journal record at all (an anti-join in SQL);
3. the provenance events, whose leaves are recomputed from the events;

then rebuilds every anchored batch from the recomputed leaves and checks each root on chain at
the latest block, and that every root the contract ever anchored is a batch of the store.
Memory is bounded by a page plus one leaf hash (32 bytes) per anchored version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from anchors.errors import AnchorsError, NodeUnavailableError
from anchors.rpc import Rpc, as_rpc
from anchors.verify import ROOT_ANCHORED_TOPIC
from sqlalchemy.engine import Connection, Engine

from settlement.core.errors import LedgerError
from settlement.domains.anchoring.audit import (
    NO_TABLE,
    ONCHAIN_PROOFS_PER_BATCH_DEFAULT,
    AuditReport,
    Auditor,
    BatchInfo,
    ChainView,
    Version,
)
from settlement.domains.anchoring.kinds import KINDS, LOAD_CHUNK_MAX, RecordKind
from settlement.store.models.anchoring import AnchorBatch, ProvenanceEventRow, RecordDigest

__all__ = ["AUDIT_PAGE_ROWS", "LOG_RANGE_BLOCKS", "EventItem", "InsertedItem", "RecordItem", "audit_store",
           "batches_of", "chain_view", "feed", "open_read_only", "roots_anchored", "store_items"]

# Journal rows per page (one query each; the page's live rows are read by id in chunks).
AUDIT_PAGE_ROWS = 2_000
# Blocks per eth_getLogs call when listing every root the contract anchored, and the most calls.
LOG_RANGE_BLOCKS = 10_000
LOG_CALLS_MAX = 100_000
_DIGESTS = RecordDigest.__table__
_BATCHES = AnchorBatch.__table__
_EVENTS = ProvenanceEventRow.__table__


def open_read_only(url: str) -> Engine:
    """An engine that cannot write: SQLite opened ``mode=ro`` (a file, or a dump of one),
    PostgreSQL sessions ``default_transaction_read_only`` in REPEATABLE READ (one snapshot)."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if not path or path == ":memory:" or not Path(path).exists():
            raise LedgerError(f"no SQLite database at {path!r}")
        engine = sa.create_engine(f"sqlite:///file:{Path(path).resolve()}?mode=ro&uri=true")

        @sa.event.listens_for(engine, "connect")
        def _autocommit_off(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # BEGIN is ours: one read snapshot for the whole audit

        return engine
    return sa.create_engine(url, isolation_level="REPEATABLE READ",
                            connect_args={"options": "-c default_transaction_read_only=on"})


def batches_of(conn: Connection) -> list[BatchInfo]:
    rows = conn.execute(sa.select(_BATCHES.c.id, _BATCHES.c.kind, _BATCHES.c.sequence, _BATCHES.c.root,
                                  _BATCHES.c.leaf_count, _BATCHES.c.schema_version, _BATCHES.c.status,
                                  _BATCHES.c.tx_hash, _BATCHES.c.block_number, _BATCHES.c.block_time)
                        .order_by(_BATCHES.c.sequence)).all()
    return [BatchInfo(*r) for r in rows]


@dataclass
class _Pending:
    """Records read from the journal, waiting for their live rows (one kind at a time)."""

    kind: str
    groups: dict[str, list[Version]]


def _journal_groups(conn: Connection, page_rows: int) -> Iterator[tuple[str, str, list[Version]]]:
    """Every record's versions, in (kind, record id) order, keyset-paged."""
    cols = (_DIGESTS.c.kind, _DIGESTS.c.record_id, _DIGESTS.c.version, _DIGESTS.c.recorded_at_s,
            _DIGESTS.c.prev_digest, _DIGESTS.c.digest, _DIGESTS.c.canonical_json, _DIGESTS.c.batch_id)
    key = sa.tuple_(_DIGESTS.c.kind, _DIGESTS.c.record_id, _DIGESTS.c.version)
    last: tuple[str, str, int] | None = None
    current: tuple[str, str] | None = None
    versions: list[Version] = []
    while True:
        q = sa.select(*cols).order_by(_DIGESTS.c.kind, _DIGESTS.c.record_id, _DIGESTS.c.version).limit(page_rows)
        if last is not None:
            q = q.where(key > sa.tuple_(*last))
        rows = conn.execute(q).all()
        for kind, record_id, version, at, prev, digest, text, batch_id in rows:
            if (kind, record_id) != current:
                if current is not None:
                    yield current[0], current[1], versions
                current, versions = (kind, record_id), []
            versions.append(Version(version, at, prev, digest, text, batch_id))
        if len(rows) < page_rows:
            break
        last = (rows[-1][0], rows[-1][1], rows[-1][2])
    if current is not None:
        yield current[0], current[1], versions


def _live_texts(conn: Connection, spec: RecordKind, ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(ids), LOAD_CHUNK_MAX):
        chunk = ids[start:start + LOAD_CHUNK_MAX]
        try:
            records = spec.load(conn, chunk)
        except LedgerError:
            records = {}
            for rid in chunk:  # find the row that cannot be encoded; the others are fine
                try:
                    records.update(spec.load(conn, [rid]))
                except LedgerError as exc:
                    out[rid] = f"<the live row cannot be encoded: {exc.detail}>"
        for rid, record in records.items():
            try:
                out[rid] = spec.text_of(record)
            except LedgerError as exc:
                out[rid] = f"<the live row cannot be encoded: {exc.detail}>"
    return out


@dataclass(frozen=True)
class RecordItem:
    """A journaled record: its versions, and its live row's text (None: no row; NO_TABLE)."""

    kind: str
    record_id: str
    versions: list[Version]
    live: Any


@dataclass(frozen=True)
class InsertedItem:
    """A live row with no journal record."""

    kind: str
    record_id: str
    detail: str
    live: str | None


@dataclass(frozen=True)
class EventItem:
    event_id: str
    event: Any
    value: Any
    batch_id: int | None


StoreItem = RecordItem | InsertedItem | EventItem


def _records(conn: Connection, pending: _Pending) -> Iterator[RecordItem]:
    spec = KINDS.get(pending.kind)
    live: dict[str, str] = _live_texts(conn, spec, list(pending.groups)) if spec is not None else {}
    for record_id, versions in pending.groups.items():
        yield RecordItem(pending.kind, record_id, versions, live.get(record_id) if spec is not None else NO_TABLE)
    pending.groups.clear()


def _inserted(conn: Connection, page_rows: int) -> Iterator[InsertedItem]:
    for spec in KINDS.values():
        key = spec.table.c[spec.key]
        journaled = sa.select(_DIGESTS.c.id).where(_DIGESTS.c.kind == spec.name,
                                                   _DIGESTS.c.record_id == sa.cast(key, sa.String)).exists()
        last: Any = None
        while True:
            q = sa.select(key).where(~journaled).order_by(key).limit(page_rows)
            if last is not None:
                q = q.where(key > last)
            ids = [str(i) for i in conn.execute(q).scalars()]
            live = _live_texts(conn, spec, ids)
            for record_id in ids:
                yield InsertedItem(spec.name, record_id, "a live row the journal never recorded", live.get(record_id))
            if len(ids) < page_rows:
                break
            last = spec.key_value(ids[-1])
        if spec.lines is not None:  # lines of no parent: a posting whose transaction row is missing
            table, fk, _fields = spec.lines
            orphan = sa.select(table.c[fk]).distinct().where(
                ~sa.select(key).where(key == table.c[fk]).exists()).limit(page_rows)
            for parent in conn.execute(orphan).scalars():
                yield InsertedItem(spec.name, str(parent), "journal lines whose transaction row does not exist", None)


def _events(conn: Connection, page_rows: int) -> Iterator[EventItem]:
    last = 0
    while True:
        rows = conn.execute(sa.select(_EVENTS.c.id, _EVENTS.c.event_id, _EVENTS.c.event, _EVENTS.c.value,
                                      _EVENTS.c.batch_id).where(_EVENTS.c.id > last)
                            .order_by(_EVENTS.c.id).limit(page_rows)).all()
        for _row_id, event_id, event, value, batch_id in rows:
            yield EventItem(event_id, event, value, batch_id)
        if len(rows) < page_rows:
            return
        last = rows[-1][0]


def store_items(conn: Connection, page_rows: int = AUDIT_PAGE_ROWS) -> Iterator[StoreItem]:
    """Everything the audit checks, read from the store: journaled records with their live rows,
    live rows the journal lacks, provenance events."""
    pending: _Pending | None = None
    for kind, record_id, versions in _journal_groups(conn, page_rows):
        if pending is None or pending.kind != kind or len(pending.groups) >= page_rows:
            if pending is not None:
                yield from _records(conn, pending)
            pending = _Pending(kind, {})
        pending.groups[record_id] = versions
    if pending is not None:
        yield from _records(conn, pending)
    yield from _inserted(conn, page_rows)
    yield from _events(conn, page_rows)


def feed(auditor: Auditor, items: Iterator[StoreItem]) -> None:
    for item in items:
        if isinstance(item, RecordItem):
            auditor.record(item.kind, item.record_id, item.versions, item.live)
        elif isinstance(item, InsertedItem):
            auditor.inserted(item.kind, item.record_id, item.detail)
        else:
            auditor.event(item.event_id, item.event, item.value, item.batch_id)


def roots_anchored(rpc: Rpc, contract: str, from_block: int = 0) -> list[tuple[str, int, int, str]]:
    """(root, sequence, block, tx hash) of every ``RootAnchored`` the contract emitted, read with
    ``eth_getLogs`` in ranges of LOG_RANGE_BLOCKS (logs are kept by pruned nodes too)."""
    head = int(rpc("eth_blockNumber", []), 16)
    out = []
    start, calls = max(from_block, 0), 0
    while start <= head:
        calls += 1
        if calls > LOG_CALLS_MAX:
            raise NodeUnavailableError(f"more than {LOG_CALLS_MAX} eth_getLogs calls: pass a later --from-block")
        end = min(start + LOG_RANGE_BLOCKS - 1, head)
        logs = rpc("eth_getLogs", [{"address": contract, "fromBlock": hex(start), "toBlock": hex(end),
                                    "topics": [ROOT_ANCHORED_TOPIC]}])
        for log in logs or []:
            topics = log.get("topics") or []
            if len(topics) > 2:
                out.append((topics[1], int(topics[2], 16), int(log["blockNumber"], 16), log["transactionHash"]))
        start = end + 1
    return out


def chain_view(rpc_url: str | Rpc, contract: str, chain_id: int | None = None) -> ChainView:
    rpc = as_rpc(rpc_url)
    return ChainView(rpc, contract, chain_id if chain_id is not None else int(rpc("eth_chainId", []), 16))


def audit_store(database_url: str | Engine, *, rpc: str | Rpc | None = None, contract: str | None = None,
                chain_id: int | None = None, from_block: int = 0, out: Callable[[str], None] = print,
                verbose: bool = False, page_rows: int = AUDIT_PAGE_ROWS,
                onchain_proofs: int = ONCHAIN_PROOFS_PER_BATCH_DEFAULT) -> AuditReport:
    """Audit the store at ``database_url`` (read-only) against the TraceAnchor ``contract`` on the
    node ``rpc`` (None: the store alone). Prints each finding through ``out``. ``onchain_proofs``:
    leaf proofs per anchored batch, rebuilt from the store, that the contract also verifies."""
    engine = open_read_only(database_url) if isinstance(database_url, str) else database_url
    started = time.monotonic()
    try:
        view, unreachable = None, False
        if rpc is not None and contract is not None:
            try:
                view = chain_view(rpc, contract, chain_id)
            except (NodeUnavailableError, AnchorsError) as exc:
                out(f"the chain could not be asked ({exc.detail}): checking the store alone")
                unreachable = True
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")  # one snapshot for every read below
            auditor = Auditor(batches_of(conn), view, out, verbose=verbose, onchain_proofs=onchain_proofs)
            feed(auditor, store_items(conn, page_rows))
            conn.rollback()
        anchored = None
        if view is not None:
            try:
                anchored = roots_anchored(view.rpc, view.contract, from_block)
            except NodeUnavailableError as exc:
                auditor.finding("CHAIN", "contract", f"the roots it anchored could not be listed: {exc.detail}")
        if unreachable:
            auditor.report.unreachable = True
            auditor.finding("CHAIN", "node", "the chain could not be asked: no anchor was checked")
        report = auditor.finish(anchored)
        if verbose:
            out(f"audit took {time.monotonic() - started:.1f} s")
        return report
    finally:
        if isinstance(database_url, str):
            engine.dispose()
