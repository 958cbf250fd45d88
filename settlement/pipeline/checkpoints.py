"""The chain follower's checkpoint, and how a loss found by the dispatcher moves it back.

The follower stores each event it reads and moves its checkpoint (block number and hash) past
them. When the chain loses transactions (a node restarted from an older state), whoever finds
the loss forgets the stored events of those transactions (so that the same transactions mined
anew are applied again) and puts their records back to pending. The follower must then read
those blocks again, whether or not it can tell from the checkpoint's hash: a restarted node can
mine the very same blocks again (the same transactions re-sent in the same order within the same
second give the same block hashes), so a checkpoint above them may still look canonical while
the events below it were forgotten. :func:`rewind` moves the checkpoint to just below the lowest
forgotten event, with no hash (:data:`UNVERIFIED`); the follower's next pass then walks back to
the last block whose stored hash the chain still has and reads again from there
(``Follower.recover_rollback``).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from settlement.store.models import Checkpoint

__all__ = ["CHECKPOINT", "UNVERIFIED", "lock", "rewind"]

log = logging.getLogger("ledger.follower")

CHECKPOINT = "contracts"  # the follower's checkpoint row (one follower reads every contract)
# The hash of a checkpoint moved back by rewind(): matches no block, so the follower's next pass
# verifies it by walking back over the block hashes it stored.
UNVERIFIED = ""


def lock(session: Session) -> Checkpoint | None:
    """The checkpoint row, locked for the caller's transaction (PostgreSQL: SELECT ... FOR UPDATE;
    SQLite has one writer anyway). A transaction that writes events, moves the checkpoint or puts
    rows back after a loss takes it FIRST, before any event or outbox row: so a follower's page
    and a rewind never overwrite each other, and the follower's recovery and the dispatcher's
    audit, which update the same outbox rows, never deadlock."""
    return session.get(Checkpoint, CHECKPOINT, with_for_update=True)


def rewind(session: Session, first_forgotten_block: int) -> bool:
    """The stored events of blocks >= ``first_forgotten_block`` were (partly) forgotten: have the
    follower read from there again. In the caller's transaction, which has taken :func:`lock`
    before touching any event; True when the checkpoint moved."""
    cp = lock(session)
    if cp is None or cp.block_number < first_forgotten_block:
        return False  # the follower has not read that far yet: it reads those blocks anyway
    log.warning("follower checkpoint back from block %d to %d: events of lost transactions were forgotten there",
                cp.block_number, first_forgotten_block - 1)
    cp.block_number, cp.block_hash = first_forgotten_block - 1, UNVERIFIED
    return True
