"""Nonce bookkeeping shared by the dispatcher's passes and its audit (see
:mod:`settlement.pipeline.dispatcher`): the next nonce per signer, and how a row whose
transaction must be broadcast again goes back to ``signed``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.chain.client import ChainClient
from settlement.store.models import OutboxRow

__all__ = ["CHAIN_LOST", "FILLER_KIND", "LIVE_STATUSES", "NonceBook", "aware", "unsend"]

FILLER_KIND = "nonce.fill"  # an outbox row that only spends a nonce (0-value self-transfer)
LIVE_STATUSES = ("signed", "sent", "mined", "confirmed")  # a row holding its nonce
# error_name of a row whose transaction the canonical chain lost, until it is mined again.
CHAIN_LOST = "ChainLost"


class NonceBook:
    """Next nonce per signer, recovered from the store and the node."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self._next: dict[str, int] = {}

    def take(self, session: Session, signer: str) -> int:
        if signer not in self._next:
            used = session.scalar(
                select(func.max(OutboxRow.nonce)).where(OutboxRow.signer == signer, OutboxRow.nonce.is_not(None))
            )
            from_store = -1 if used is None else used
            self._next[signer] = max(self.client.pending_nonce(signer), from_store + 1)
        nonce = self._next[signer]
        self._next[signer] = nonce + 1
        return nonce

    def forget(self, signer: str | None = None) -> None:
        """Re-read on next use (after a rollback, or a nonce conflict)."""
        if signer is None:
            self._next.clear()
        else:
            self._next.pop(signer, None)


def unsend(row: OutboxRow, reason: str, *, lost: bool = False) -> None:
    """Back to signed, keeping nonce, raw transaction and hash: broadcast again byte for byte.
    ``lost``: the chain had mined it and lost it; ``mined_at`` is kept (when it was first mined:
    rows written after that may depend on it, see ``Dispatcher._after_lost_dependencies``)."""
    row.status, row.sent_at = "signed", None
    row.block_number = row.block_hash = None
    row.last_error = reason
    if lost:
        row.error_name = CHAIN_LOST
        row.mined_at = row.mined_at or row.created_at


def aware(at: datetime) -> datetime:
    """``at`` with UTC when the driver returned it naive (SQLite)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)
