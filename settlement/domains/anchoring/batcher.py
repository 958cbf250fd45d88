"""The batcher: pending events (and journal digests) -> Merkle tree -> batch -> outbox, in one
transaction per batch.

An event batch closes when ``events_max`` events or ``bytes_max`` bytes of event JSON are waiting,
or when the oldest waiting event is ``delay_s`` old; journal digests are anchored every
``journal_interval_s`` or at ``journal_records_max``. Waiting rows are taken in insertion (id)
order; that order is the tree's value order (``batch_index``), so a batch rebuilds byte for byte
from the store. Each batch stores its root, sequence, leaf count, schema version and time range,
marks its rows, and enqueues ``TraceAnchor.anchor`` - committed together or not at all.

``run_once(runtime)`` is the worker hook: cheap when idle (one read), bounded when busy
(``BATCHES_PER_PASS_MAX`` batches per pass), and safe to run from several processes (the
sequence counter's row lock serialises batchers; rows are claimed only while unclaimed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from anchors.events import LEAF_ENCODING_V1, SCHEMA_VERSION
from anchors.merkle import StandardMerkleTree, to_hex
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from settlement.core.errors import ChainUnavailableError, LedgerError
from settlement.domains.anchoring.digests import (
    JOURNAL_LEAF_ENCODING,
    JOURNAL_SCHEMA_VERSION,
    ZERO_DIGEST,
    digest_of,
    journal_leaf_value,
)
from settlement.domains.anchoring.limits import BATCHES_PER_PASS_MAX, DEFAULT_LIMITS, BatchLimits
from settlement.domains.anchoring.submit import (
    chain_last_sequence,
    create_batch,
    fill_block_times,
    lock_sequences,
)
from settlement.runtime import Runtime
from settlement.store.models.anchoring import AnchorBatch, ProvenanceEventRow, RecordDigest

log = logging.getLogger("ledger.anchoring")

KIND_EVENTS = "events"
KIND_JOURNAL = "journal"
# Rows claimed per UPDATE (bound on the SQL IN list).
_CLAIM_CHUNK = 500
_DIGESTS = RecordDigest.__table__
_SET_LEAF = (update(_DIGESTS).where(_DIGESTS.c.id == bindparam("row_id"))
             .values(batch_index=bindparam("index"), leaf_hash=bindparam("leaf")))
# Batches of each kind an operator's flush closes at most (a backlog beyond is left to the job).
FLUSH_BATCHES_MAX = 1_024


@dataclass(frozen=True)
class BatchSummary:
    kind: str
    sequence: int
    root: str
    leaf_count: int
    schema_version: int
    outbox_id: int

    @classmethod
    def of(cls, batch: AnchorBatch) -> BatchSummary:
        return cls(batch.kind, batch.sequence, batch.root, batch.leaf_count, batch.schema_version,
                   batch.outbox_id or 0)


def _epoch_s(moment: datetime) -> float:
    # SQLite hands back naive datetimes; the store writes UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _events_cut(session: Session, limits: BatchLimits, now_s: float, force: bool) -> list[int]:
    """Ids of the next event batch if one is due, else []."""
    rows = session.execute(select(ProvenanceEventRow.id, ProvenanceEventRow.event_bytes,
                                  ProvenanceEventRow.created_at)
                           .where(ProvenanceEventRow.batch_id.is_(None))
                           .order_by(ProvenanceEventRow.id).limit(limits.events_max)).all()
    if not rows:
        return []
    ids: list[int] = []
    total = 0
    for row_id, size, _created in rows:
        if ids and total + size > limits.bytes_max:
            return ids  # bytes bound reached
        ids.append(row_id)
        total += size
    if len(ids) >= limits.events_max:
        return ids  # size bound reached
    if force or now_s - _epoch_s(rows[0][2]) >= limits.delay_s:
        return ids  # time bound reached
    return []


def _journal_due(session: Session, limits: BatchLimits, now_s: float, force: bool) -> bool:
    """Is a journal batch due? Two index-only reads, whatever the backlog (the anchoring job asks
    this four times a second while settlements flow)."""
    first = session.execute(select(RecordDigest.created_at).where(RecordDigest.batch_id.is_(None))
                            .order_by(RecordDigest.id).limit(1)).first()
    if first is None:
        return False
    if force or now_s - _epoch_s(first[0]) >= limits.journal_interval_s:
        return True
    waiting = session.scalar(select(func.count()).select_from(
        select(RecordDigest.id).where(RecordDigest.batch_id.is_(None)).limit(limits.journal_records_max).subquery()))
    return (waiting or 0) >= limits.journal_records_max


def _journal_cut(session: Session, limits: BatchLimits, now_s: float, force: bool) -> list[int]:
    if not _journal_due(session, limits, now_s, force):
        return []
    return list(session.scalars(select(RecordDigest.id).where(RecordDigest.batch_id.is_(None))
                                .order_by(RecordDigest.id).limit(limits.journal_records_max)))


def _claim(session: Session, model: type, ids: list[int], batch_id: int,
           leaves: list[tuple[list, str]] | None = None) -> None:
    """Point rows ``ids`` (in this order) at ``batch_id``; each must still be unclaimed.
    ``leaves``: (value, leaf hash) per row, stored with its position (journal versions)."""
    claimed = 0
    for start in range(0, len(ids), _CLAIM_CHUNK):
        chunk = ids[start:start + _CLAIM_CHUNK]
        claimed += session.execute(update(model).where(model.id.in_(chunk), model.batch_id.is_(None))
                                   .values(batch_id=batch_id).execution_options(synchronize_session=False)
                                   ).rowcount
    if claimed != len(ids):
        raise LedgerError(f"{len(ids) - claimed} {model.__tablename__} rows were batched concurrently")
    # Positions (and leaves) by primary key, as one executemany.
    if leaves is None:
        session.execute(update(model), [{"id": row_id, "batch_index": index} for index, row_id in enumerate(ids)])
    else:  # a compiled Core UPDATE run as one executemany (the ORM's bulk path costs ~3x per row)
        # The leaf's value is not stored: it is the row's own columns (proofs rebuild it from them).
        session.connection().execute(_SET_LEAF, [{"row_id": row_id, "index": index, "leaf": leaf}
                                                 for index, (row_id, (_value, leaf)) in enumerate(zip(ids, leaves))])


def _build(values: list[list], leaf_hashes: list[str], encoding: tuple[str, ...]) -> StandardMerkleTree:
    tree = StandardMerkleTree.of(values, encoding)
    for index, stored in enumerate(leaf_hashes):
        if to_hex(tree.leaf_hash_at(index)) != stored:
            raise LedgerError(f"stored leaf hash of value {index} does not match its value")
    return tree


def flush_events(session: Session, signer: str, limits: BatchLimits = DEFAULT_LIMITS, *,
                 now_s: float | None = None, force: bool = False, floor: int = 0) -> AnchorBatch | None:
    """Close one event batch if one is due, in ``session``; returns it, or None."""
    lock_sequences(session)
    ids = _events_cut(session, limits, time.time() if now_s is None else now_s, force)
    if not ids:
        return None
    rows = session.scalars(select(ProvenanceEventRow).where(ProvenanceEventRow.id.in_(ids))
                           .order_by(ProvenanceEventRow.id)).all()
    if [r.id for r in rows] != ids or any(r.schema_version != SCHEMA_VERSION for r in rows):
        raise LedgerError("pending events changed under the batcher")
    tree = _build([r.value for r in rows], [r.leaf_hash for r in rows], LEAF_ENCODING_V1)
    times = [r.occurred_at_s for r in rows]
    batch = create_batch(session, kind=KIND_EVENTS, root=tree.root, leaf_count=len(rows),
                         schema_version=SCHEMA_VERSION, leaf_encoding=list(LEAF_ENCODING_V1),
                         first_time_s=min(times), last_time_s=max(times),
                         bytes_total=sum(r.event_bytes for r in rows), signer=signer, floor=floor)
    _claim(session, ProvenanceEventRow, ids, batch.id)
    return batch


@dataclass(frozen=True)
class PreparedJournal:
    """A journal batch computed from the versions waiting (ids in order, their leaves, the tree):
    everything but the writes, so the store's writer is held for the writes alone."""

    ids: list[int]
    leaves: list[tuple[list, str]]
    root: str
    first_time_s: int
    last_time_s: int
    bytes_total: int


def prepare_journal(session: Session, limits: BatchLimits = DEFAULT_LIMITS, *, now_s: float | None = None,
                    force: bool = False) -> PreparedJournal | None:
    """The next journal batch if one is due (reads only)."""
    ids = _journal_cut(session, limits, time.time() if now_s is None else now_s, force)
    if not ids:
        return None
    rows = session.execute(select(RecordDigest.id, RecordDigest.kind, RecordDigest.record_id, RecordDigest.version,
                                  RecordDigest.recorded_at_s, RecordDigest.prev_digest, RecordDigest.digest,
                                  RecordDigest.canonical_json)
                           .where(RecordDigest.id.in_(ids)).order_by(RecordDigest.id)).all()
    if [r.id for r in rows] != ids:
        raise LedgerError("pending journal digests changed under the batcher")
    for r in rows:  # never anchor a version whose text is not what its digest says
        if digest_of(r.canonical_json) != r.digest:
            raise LedgerError(f"journal version {r.kind}/{r.record_id} v{r.version}: text and digest disagree")
    # The leaves are made here, off the write paths that record the versions.
    values = [journal_leaf_value(r.kind, r.record_id, r.version, r.recorded_at_s, r.prev_digest or ZERO_DIGEST,
                                 r.digest) for r in rows]
    tree = StandardMerkleTree.of(values, JOURNAL_LEAF_ENCODING)
    leaves = [(value, to_hex(tree.leaf_hash_at(index))) for index, value in enumerate(values)]
    times = [r.recorded_at_s for r in rows]
    return PreparedJournal(ids, leaves, tree.root, min(times), max(times), sum(len(r.canonical_json) for r in rows))


def write_journal(session: Session, prepared: PreparedJournal, signer: str, *, floor: int = 0) -> AnchorBatch:
    """The batch row, its claimed versions (each still unclaimed, or LedgerError) and its
    ``TraceAnchor.anchor`` outbox row, in ``session``'s transaction."""
    lock_sequences(session)
    # Prepared outside the lock: another batcher (the worker's pass, an operator's flush) may have
    # claimed these versions meanwhile. Both cut from the oldest unclaimed version, so its claim
    # shows it; checked before the batch row, whose root would collide with that batcher's.
    first_claimed = session.scalar(select(RecordDigest.batch_id).where(RecordDigest.id == prepared.ids[0]))
    if first_claimed is not None:
        raise LedgerError(f"journal versions from {prepared.ids[0]} were batched concurrently (batch {first_claimed})")
    batch = create_batch(session, kind=KIND_JOURNAL, root=prepared.root, leaf_count=len(prepared.ids),
                         schema_version=JOURNAL_SCHEMA_VERSION, leaf_encoding=list(JOURNAL_LEAF_ENCODING),
                         first_time_s=prepared.first_time_s, last_time_s=prepared.last_time_s,
                         bytes_total=prepared.bytes_total, signer=signer, floor=floor)
    _claim(session, RecordDigest, prepared.ids, batch.id, prepared.leaves)
    return batch


def flush_journal(session: Session, signer: str, limits: BatchLimits = DEFAULT_LIMITS, *,
                  now_s: float | None = None, force: bool = False, floor: int = 0) -> AnchorBatch | None:
    """Anchor the journal digests recorded since the last journal batch, if due, in ``session``
    (prepared and written in one transaction); returns the batch."""
    lock_sequences(session)
    prepared = prepare_journal(session, limits, now_s=now_s, force=force)
    return None if prepared is None else write_journal(session, prepared, signer, floor=floor)


def _due(runtime: Runtime, limits: BatchLimits, now_s: float, force: bool) -> bool:
    """Cheap reads: is any batch due? (Keeps an idle pass from taking the write lock.)"""
    with runtime.db.read() as s:
        return bool(_events_cut(s, limits, now_s, force) or _journal_due(s, limits, now_s, force))


def flush(runtime: Runtime, limits: BatchLimits = DEFAULT_LIMITS, *, force: bool = False,
          now_s: float | None = None) -> list[BatchSummary]:
    """Close every due batch, one transaction each: at most BATCHES_PER_PASS_MAX of each kind
    per pass, or with ``force`` (an operator's flush) every open batch of both kinds, provenance
    events and journal alike (at most FLUSH_BATCHES_MAX each)."""
    now = time.time() if now_s is None else now_s
    if not _due(runtime, limits, now, force):
        return []
    floor = chain_last_sequence(runtime)
    signer = runtime.operator.address
    made: list[BatchSummary] = []
    bound = FLUSH_BATCHES_MAX if force else BATCHES_PER_PASS_MAX
    for kind in (KIND_EVENTS, KIND_JOURNAL):
        for _ in range(bound):
            if kind == KIND_EVENTS:
                with runtime.db.transaction() as s:
                    batch = flush_events(s, signer, limits, now_s=now, force=force, floor=floor)
                    summary = BatchSummary.of(batch) if batch is not None else None
            else:
                # The leaves and tree of up to 10,000 versions are computed in a read session: the
                # store's single writer is held only for the batch row and the claim.
                with runtime.db.read() as r:
                    prepared = prepare_journal(r, limits, now_s=now, force=force)
                if prepared is None:
                    break
                try:
                    with runtime.db.transaction() as s:
                        summary = BatchSummary.of(write_journal(s, prepared, signer, floor=floor))
                except LedgerError as exc:  # another batcher claimed these versions meanwhile
                    log.info("journal batch not written: %s", exc.detail)
                    break
            if summary is None:
                break
            log.info("%s batch %d: %d leaves, root %s, outbox %d", summary.kind, summary.sequence,
                     summary.leaf_count, summary.root, summary.outbox_id)
            made.append(summary)
    return made


def run_once(runtime: Runtime, limits: BatchLimits = DEFAULT_LIMITS) -> int:
    """The worker hook: flush due batches and record block times; returns the work done."""
    done = len(flush(runtime, limits))
    try:
        done += fill_block_times(runtime)
    except ChainUnavailableError as exc:
        log.warning("block times not filled: %s", exc)
    return done


def pending_counts(session: Session) -> dict[str, int]:
    return {
        "events": session.scalar(select(func.count()).select_from(ProvenanceEventRow)
                                 .where(ProvenanceEventRow.batch_id.is_(None))) or 0,
        "journal": session.scalar(select(func.count()).select_from(RecordDigest)
                                  .where(RecordDigest.batch_id.is_(None))) or 0,
    }


__all__ = ["KIND_EVENTS", "KIND_JOURNAL", "BatchSummary", "PreparedJournal", "flush", "flush_events",
           "flush_journal", "pending_counts", "prepare_journal", "run_once", "write_journal"]
