"""Writing to the outbox: a contract call recorded in the caller's database transaction.

Nothing is sent from a request handler: the handler's session adds the state change and its
outbox row together, and the dispatcher sends later. Arguments are checked by encoding them now,
so a row that could never be encoded is refused before it is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.chain.contracts import catalogue
from settlement.core.errors import ValidationError
from settlement.store.models import OutboxRow

GAS_LIMIT_MAX = 30_000_000
PENDING_STATUSES = ("pending", "signed", "sent")
DONE_STATUSES = ("mined", "confirmed")
# Set aside by the dispatcher's audit: the chain's state holds the row's effect without its
# transaction (a node restarted from a torn state dump); never sent again, for an operator.
ORPHANED = "orphaned"


def enqueue(session: Session, *, kind: str, contract: str, function: str, args: Sequence[Any],
            signer: str, gas_limit: int, aggregate_id: str = "", calldata: bytes | None = None) -> OutboxRow:
    """Add one contract call to ``session``; it is sent once the transaction commits.
    ``calldata``: the call already encoded from ``args`` (by a caller that encoded it before
    taking the write lock); else it is encoded here."""
    if not 21_000 <= gas_limit <= GAS_LIMIT_MAX:
        raise ValidationError(f"gas limit {gas_limit} out of range")
    fn = catalogue().function(contract, function)
    if calldata is not None:
        if calldata[:4] != fn.selector:
            raise ValidationError(f"calldata is not a call of {contract}.{function}")
    else:
        try:
            calldata = fn.encode(list(args))
        except Exception as exc:
            raise ValidationError(f"cannot encode {contract}.{function}: {exc}") from exc
    row = OutboxRow(kind=kind, contract=contract, function=function, args=list(args), calldata=calldata,
                    signer=signer, gas_limit=gas_limit, aggregate_id=aggregate_id, status="pending")
    session.add(row)
    session.flush()  # assigns row.id, so domain records can point at it
    return row


def depth(session: Session) -> int:
    """Rows not yet on chain."""
    return session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status.in_(PENDING_STATUSES))) or 0


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
    return {status: count for status, count in rows}
