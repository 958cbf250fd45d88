"""Batches and the TraceAnchor contract: sequences, the outbox call, and the chain's answer.

- :func:`create_batch` stores a batch and enqueues ``TraceAnchor.anchor`` in the caller's
  transaction (the outbox is the only way to the chain).
- Sequences are global and strictly increasing on chain. The last one handed out is kept in
  ``anchor_sequences`` and its row is locked while a batch takes the next one, so two batchers
  (or the batcher and a re-sequencing failure hook) never take the same sequence; outbox rows of
  one signer are signed in id order, so the chain sees sequences in the order they were taken.
- :func:`on_root_anchored` (follower, ``RootAnchored``) marks the batch anchored with its tx hash
  and block; :func:`fill_block_times` adds the block time afterwards (the follower's handler has
  no chain client).
- :func:`on_anchor_failed` (dispatcher, revert of an ``anchors.anchor`` row) re-sequences a batch
  whose sequence another anchor took, and marks anything else failed.
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
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow
from settlement.store.models.anchoring import AnchorBatch, AnchorSequence

log = logging.getLogger("ledger.anchoring")

SEQUENCE_ROW = ANCHOR_CONTRACT
UINT64_MAX = (1 << 64) - 1


def next_sequence(session: Session, floor: int = 0) -> int:
    """Take the next global sequence (> ``floor``, > every one taken before), locking the counter."""
    row = session.scalar(select(AnchorSequence).where(AnchorSequence.name == SEQUENCE_ROW).with_for_update())
    if row is None:
        # First use: start above anything a batch already holds (a counter row lost or never made).
        taken = session.scalar(select(func.max(AnchorBatch.sequence))) or 0
        row = AnchorSequence(name=SEQUENCE_ROW, last_sequence=taken)
        session.add(row)
    sequence = max(row.last_sequence, floor) + 1
    if sequence > UINT64_MAX:
        raise LedgerError("TraceAnchor sequences exhausted (uint64)")
    row.last_sequence = sequence
    return sequence


def lock_sequences(session: Session) -> None:
    """Serialise batchers: take the counter's row lock at the start of a batching transaction."""
    session.scalar(select(AnchorSequence).where(AnchorSequence.name == SEQUENCE_ROW).with_for_update())


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
        batch.sequence = sequence
    batch.status = "anchored"
    batch.tx_hash = event.tx_hash
    batch.block_number = event.block_number
    batch.block_hash = event.block_hash
    batch.block_time = None  # filled from the block by fill_block_times (a replayed event may move it)
    batch.anchored_at = datetime.now(timezone.utc)


def on_anchor_failed(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    """Dispatcher hook for a reverted ``anchors.anchor`` row."""
    batch = session.scalar(select(AnchorBatch).where(AnchorBatch.outbox_id == row.id))
    if batch is None or batch.status == "anchored":
        return
    name = error.error_name or "Reverted"
    batch.last_error = f"{name}: {error.detail}"[:2000]
    if name == "TraceAnchorRootExists":
        return  # an earlier attempt anchored it; the follower marks it from that RootAnchored
    if name == "TraceAnchorSequenceNotIncreasing" and batch.attempts < ANCHOR_ATTEMPTS_MAX:
        floor = int(error.error_args.get("lastSequence", 0) or 0)
        batch.sequence = next_sequence(session, floor)
        batch.attempts += 1
        batch.outbox_id = _enqueue_anchor(session, batch, row.signer).id
        log.warning("batch %s re-sequenced to %s after %s", batch.id, batch.sequence, name)
        return
    batch.status = "failed"
    log.error("anchoring batch %s failed: %s", batch.id, batch.last_error)


def retry_failed(session: Session, signer: str, floor: int = 0, limit: int = 100) -> list[AnchorBatch]:
    """Re-enqueue failed batches (after their cause was fixed, e.g. the operator role granted)."""
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
