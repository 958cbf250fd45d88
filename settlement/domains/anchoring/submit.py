"""Batches and the TraceAnchor contract: sequences, the outbox call, and the chain's answer.

- :func:`create_batch` stores a batch and enqueues ``TraceAnchor.anchor`` in the caller's
  transaction (the outbox is the only way to the chain).
- Sequences are global and **consecutive** on chain: an anchor must carry ``lastSequence() + 1``.
  The last one handed out is kept in ``anchor_sequences`` and its row is locked while a batch
  takes the next one, so two batchers (or the batcher and a failure hook) never take the same
  sequence; outbox rows of one signer are signed in id order, so the chain sees sequences in the
  order they were taken.
- No gap: a batch whose anchoring fails for good releases its sequence (it then holds none: its
  ``sequence`` is the negative of its id) and the counter steps back to the highest sequence a
  batch still holds, so the next batch takes the released one. A batch enqueued behind a failed
  one is refused with ``TraceAnchorSequenceNotNext(expected, sequence)``; :func:`on_anchor_failed`
  reads ``expected`` from the error and re-sequences the batch to the sequence that will be next
  when its new call is mined (``expected`` plus the calls already in flight that will take the
  sequences from ``expected`` on).
- :func:`on_root_anchored` (follower, ``RootAnchored``) marks the batch anchored with its tx hash
  and block; :func:`fill_block_times` adds the block time afterwards (the follower's handler has
  no chain client).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.core.errors import ChainRevertError, ChainUnavailableError, LedgerError
from settlement.domains.anchoring.limits import (
    ANCHOR_ATTEMPTS_MAX,
    ANCHOR_CONTRACT,
    ANCHOR_GAS_LIMIT,
    ANCHOR_OUTBOX_KIND,
    BLOCK_TIMES_PER_PASS_MAX,
)
from settlement.pipeline.outbox import DONE_STATUSES, enqueue
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow
from settlement.store.models.anchoring import AnchorBatch, AnchorSequence

log = logging.getLogger("ledger.anchoring")

SEQUENCE_ROW = ANCHOR_CONTRACT
UINT64_MAX = (1 << 64) - 1
SEQUENCE_NOT_NEXT = "TraceAnchorSequenceNotNext"
# Anchor calls in flight a re-sequencing looks at, at most (one per open batch: a handful).
IN_FLIGHT_SCAN_MAX = 4_096


def _counter(session: Session) -> AnchorSequence:
    """The sequence counter's row, locked (made on first use)."""
    row = session.scalar(select(AnchorSequence).where(AnchorSequence.name == SEQUENCE_ROW).with_for_update())
    if row is None:
        # First use: start above anything a batch already holds (a counter row lost or never made).
        row = AnchorSequence(name=SEQUENCE_ROW, last_sequence=_highest_held(session))
        session.add(row)
    return row


def _highest_held(session: Session) -> int:
    return session.scalar(select(func.max(AnchorBatch.sequence))) or 0


def next_sequence(session: Session, floor: int = 0) -> int:
    """Take the next global sequence (> ``floor``, > every one a batch holds), locking the counter."""
    row = _counter(session)
    sequence = max(row.last_sequence, floor) + 1
    if sequence > UINT64_MAX:
        raise LedgerError("TraceAnchor sequences exhausted (uint64)")
    row.last_sequence = sequence
    return sequence


def lock_sequences(session: Session) -> None:
    """Serialise batchers: take the counter's row lock at the start of a batching transaction.

    Before the first batch there is no row to lock: it is made here by an insert that does
    nothing on conflict, so two first batchers queue on its key (PostgreSQL blocks the second
    until the first commits) instead of both going on unlocked and colliding on the batch's root."""
    locked = select(AnchorSequence).where(AnchorSequence.name == SEQUENCE_ROW).with_for_update()
    if session.scalar(locked) is not None:
        return
    values = {"name": SEQUENCE_ROW, "last_sequence": _highest_held(session)}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    session.execute(upsert(AnchorSequence).values(**values).on_conflict_do_nothing(index_elements=["name"]))
    session.scalar(locked.execution_options(populate_existing=True))


def chain_last_sequence(runtime: Runtime) -> int:
    """``TraceAnchor.lastSequence()`` on chain; 0 when it cannot be read (a collision is then
    repaired by :func:`on_anchor_failed`)."""
    try:
        address = runtime.address(ANCHOR_CONTRACT)
        (last,) = runtime.chain.call(ANCHOR_CONTRACT, address, "lastSequence", [])
        return int(last)
    except (ChainUnavailableError, ChainRevertError, LookupError) as exc:
        log.warning("TraceAnchor.lastSequence unreadable (%s): using the store's counter", exc)
        return 0


def _enqueue_anchor(session: Session, batch: AnchorBatch, signer: str) -> OutboxRow:
    return enqueue(session, kind=ANCHOR_OUTBOX_KIND, contract=ANCHOR_CONTRACT, function="anchor",
                   args=[batch.root, batch.sequence, batch.leaf_count, batch.schema_version,
                         batch.first_time_s, batch.last_time_s],
                   signer=signer, gas_limit=ANCHOR_GAS_LIMIT, aggregate_id=f"anchor-batch:{batch.id}")


def create_batch(session: Session, *, kind: str, root: str, leaf_count: int, schema_version: int,
                 leaf_encoding: list[str], first_time_s: int, last_time_s: int, bytes_total: int,
                 signer: str, floor: int = 0) -> AnchorBatch:
    """Store a batch with the next sequence and enqueue its anchor call, in ``session``."""
    if leaf_count < 1 or first_time_s > last_time_s or not 1 <= schema_version <= 0xFFFF:
        raise LedgerError(f"batch invariant broken: {leaf_count} leaves, times {first_time_s}..{last_time_s}, "
                          f"schema {schema_version}")
    batch = AnchorBatch(kind=kind, sequence=next_sequence(session, floor), root=root, leaf_count=leaf_count,
                        schema_version=schema_version, leaf_encoding=list(leaf_encoding),
                        first_time_s=first_time_s, last_time_s=last_time_s, bytes_total=bytes_total,
                        status="pending", attempts=1)
    session.add(batch)
    session.flush()
    batch.outbox_id = _enqueue_anchor(session, batch, signer).id
    return batch


def _release(session: Session, batch: AnchorBatch) -> None:
    """``batch`` gives up its sequence: it holds none (the negative of its id, unique and never a
    chain sequence) until it takes a new one."""
    batch.sequence = -batch.id
    session.flush()


def _take(session: Session, batch: AnchorBatch, sequence: int) -> None:
    """``batch`` holds ``sequence`` from now on; a batch that held it gives it up (its call, if
    still in flight, carries a sequence the chain will refuse, and is re-sequenced then)."""
    holder = session.scalar(select(AnchorBatch).where(AnchorBatch.sequence == sequence, AnchorBatch.id != batch.id))
    if holder is not None:
        log.warning("batch %s gives sequence %s to batch %s", holder.id, sequence, batch.id)
        _release(session, holder)
    batch.sequence = sequence
    session.flush()


def _rewind_counter(session: Session) -> None:
    """The counter is the highest sequence a batch holds (released ones are handed on)."""
    _counter(session).last_sequence = max(_highest_held(session), 0)


def _next_after_in_flight(session: Session, row: OutboxRow, expected: int) -> int:
    """The sequence the chain will expect once the anchor calls enqueued after ``row`` (mined
    after it: one signer, nonce order) have run, given that it expected ``expected`` at ``row``:
    each call carrying exactly the next sequence takes it; the others will be refused too.

    ``expected`` comes from replaying the refused call, on the state before its block: a call of
    ours mined earlier in the same block is not in it, so the sequences our batches are known to
    hold on chain (anchored, or their call mined) raise it."""
    taken = session.scalar(
        select(func.max(AnchorBatch.sequence)).select_from(AnchorBatch)
        .outerjoin(OutboxRow, AnchorBatch.outbox_id == OutboxRow.id)
        .where((AnchorBatch.status == "anchored") | OutboxRow.status.in_(DONE_STATUSES))) or 0
    expected = max(expected, taken + 1)
    carried = session.scalars(
        select(OutboxRow.args).join(AnchorBatch, AnchorBatch.outbox_id == OutboxRow.id)
        .where(AnchorBatch.status == "pending", OutboxRow.id > row.id, OutboxRow.signer == row.signer)
        .order_by(OutboxRow.id).limit(IN_FLIGHT_SCAN_MAX)).all()
    sequence = expected
    for args in carried:
        if int(args[1]) == sequence:
            sequence += 1
    return sequence


def on_root_anchored(session: Session, event: DecodedLog) -> None:
    """Follower handler of ``RootAnchored``: the batch with this root is anchored."""
    root = str(event.args.get("root", "")).lower()
    batch = session.scalar(select(AnchorBatch).where(AnchorBatch.root == root))
    if batch is None:
        return  # anchored by someone else through the contract: not one of ours
    sequence = int(event.args.get("sequence", 0))
    if sequence != batch.sequence:
        log.error("batch %s (root %s) anchored as sequence %s, store says %s", batch.id, root, sequence, batch.sequence)
        batch.last_error = f"anchored on chain as sequence {sequence}"
        _take(session, batch, sequence)
    batch.status = "anchored"
    batch.tx_hash = event.tx_hash
    batch.block_number = event.block_number
    batch.block_hash = event.block_hash
    batch.block_time = None  # filled from the block by fill_block_times (a replayed event may move it)
    batch.anchored_at = datetime.now(timezone.utc)


def on_anchor_failed(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    """Dispatcher hook for a reverted ``anchors.anchor`` row: a batch refused with
    ``TraceAnchorSequenceNotNext(expected, sequence)`` is re-sequenced and re-enqueued (at most
    ANCHOR_ATTEMPTS_MAX attempts); any other revert marks it failed and releases its sequence."""
    batch = session.scalar(select(AnchorBatch).where(AnchorBatch.outbox_id == row.id))
    if batch is None or batch.status == "anchored":
        return
    name = error.error_name or "Reverted"
    batch.last_error = f"{name}: {error.detail}"[:2000]
    if name == "TraceAnchorRootExists":
        return  # an earlier attempt anchored it; the follower marks it from that RootAnchored
    counter = _counter(session)  # every sequence change below holds the counter's lock
    expected = int(error.error_args.get("expected", 0) or 0) if name == SEQUENCE_NOT_NEXT else 0
    sequence = _next_after_in_flight(session, row, expected) if expected >= 1 else 0
    if 1 <= sequence <= UINT64_MAX and batch.attempts < ANCHOR_ATTEMPTS_MAX:
        _take(session, batch, sequence)
        counter.last_sequence = max(_highest_held(session), 0)
        batch.attempts += 1
        batch.outbox_id = _enqueue_anchor(session, batch, row.signer).id
        log.warning("batch %s re-sequenced to %s (chain expected %s)", batch.id, batch.sequence, expected)
        return
    batch.status = "failed"
    _release(session, batch)
    _rewind_counter(session)
    log.error("anchoring batch %s failed: %s", batch.id, batch.last_error)


def retry_failed(session: Session, signer: str, floor: int = 0, limit: int = 100) -> list[AnchorBatch]:
    """Re-enqueue failed batches (after their cause was fixed, e.g. the operator role granted),
    each with the next sequence."""
    batches = session.scalars(select(AnchorBatch).where(AnchorBatch.status == "failed")
                              .order_by(AnchorBatch.id).limit(limit)).all()
    for batch in batches:
        batch.sequence = next_sequence(session, floor)
        batch.attempts += 1
        batch.status = "pending"
        batch.outbox_id = _enqueue_anchor(session, batch, signer).id
    return list(batches)


def fill_block_times(runtime: Runtime) -> int:
    """Record the block time of anchored batches that lack it; returns how many were filled."""
    with runtime.db.read() as s:
        todo = s.execute(select(AnchorBatch.id, AnchorBatch.block_number)
                         .where(AnchorBatch.status == "anchored", AnchorBatch.block_time.is_(None),
                                AnchorBatch.block_number.is_not(None))
                         .order_by(AnchorBatch.id).limit(BLOCK_TIMES_PER_PASS_MAX)).all()
    if not todo:
        return 0
    times: dict[int, tuple[int, int]] = {}
    for batch_id, block_number in todo:
        block = runtime.chain.get_block(block_number)
        if block is not None:
            times[batch_id] = (block_number, block["timestamp"])
    with runtime.db.transaction() as s:
        for batch_id, (block_number, timestamp) in times.items():
            batch = s.get(AnchorBatch, batch_id)
            if batch is not None and batch.block_number == block_number and batch.block_time is None:
                batch.block_time = timestamp
    return len(times)


__all__ = ["chain_last_sequence", "create_batch", "fill_block_times", "lock_sequences", "next_sequence",
           "on_anchor_failed", "on_root_anchored", "retry_failed"]
