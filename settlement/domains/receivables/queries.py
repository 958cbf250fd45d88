"""Receivable queries: "my receivables", parts, operations, history, payments, evidence checks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import InvalidCursorError, ValidationError
from settlement.domains.receivables import evidence as ev
from settlement.domains.receivables.common import HEX32_RE, LIST_LIMIT_MAX, get_receivable
from settlement.domains.receivables.models import PARTY_ROLES, Actor, EvidenceCheck, HistoryEntry
from settlement.runtime import Runtime
from settlement.store.models import Member
from settlement.store.models.receivables import (
    Receivable,
    ReceivableEvent,
    ReceivableEvidence,
    ReceivableOperation,
    ReceivablePart,
    ReceivableParty,
    ReceivablePayment,
)

__all__ = ["list_receivables", "parts_of", "operations_of", "pending_operations_of", "history_of", "payments_of",
           "evidence_of"]


def list_receivables(session: Session, actor: Actor, *, role: str | None = None, status: str | None = None,
                     limit: int = 50, after: str | None = None,
                     field: str = "cursor") -> tuple[list[Receivable], str | None]:
    """"My receivables", ordered by id, a page after the id ``after`` (a page's ``next_cursor``),
    and the next page's cursor (None on the last page: one row of look-ahead makes that exact):
    as ``supplier``, ``buyer``, ``holder`` (of a part now) or ``financier`` (asked, offering or
    holding); no role: any involvement."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be within 1..{LIST_LIMIT_MAX}", field="limit")
    if after is not None and not HEX32_RE.match(after):
        raise InvalidCursorError(f"{field} must be a receivable id from the previous page", field=field)
    me = actor.member_id
    q = select(Receivable)
    if role == "supplier":
        q = q.where(Receivable.supplier_id == me)
    elif role == "buyer":
        q = q.where(Receivable.buyer_id == me)
    elif role == "holder":
        q = q.where(Receivable.id.in_(select(ReceivablePart.receivable_id).where(ReceivablePart.holder_id == me)))
    elif role == "financier":
        q = q.where(Receivable.id.in_(select(ReceivableParty.receivable_id).where(
            ReceivableParty.member_id == me, ReceivableParty.role == "financier")))
    elif role is None:
        q = q.where(Receivable.id.in_(select(ReceivableParty.receivable_id).where(ReceivableParty.member_id == me)))
    else:
        raise ValidationError(f"role must be one of {', '.join(PARTY_ROLES)}", field="role")
    if status is not None:
        if status == "overdue":
            raise ValidationError("filter by status=confirmed and read the shown status for overdue",
                                  field="status")
        q = q.where(Receivable.status == status)
    if after:
        q = q.where(Receivable.id > after)
    rows = list(session.scalars(q.order_by(Receivable.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].id


def parts_of(session: Session, receivable_ids: Sequence[str]) -> dict[str, list[ReceivablePart]]:
    out: dict[str, list[ReceivablePart]] = {rid: [] for rid in receivable_ids}
    if receivable_ids:
        for p in session.scalars(select(ReceivablePart).where(ReceivablePart.receivable_id.in_(list(receivable_ids)))
                                 .order_by(ReceivablePart.receivable_id, ReceivablePart.index)):
            out[p.receivable_id].append(p)
    return out


def operations_of(session: Session, receivable_id: str, limit: int = 200) -> list[ReceivableOperation]:
    return list(session.scalars(select(ReceivableOperation).where(ReceivableOperation.receivable_id == receivable_id)
                                .order_by(ReceivableOperation.id).limit(limit)))


def pending_operations_of(session: Session, receivable_ids: list[str]) -> dict[str, list[ReceivableOperation]]:
    """Each receivable's chain operations still pending (enqueued, not yet confirmed or
    rejected by the chain), oldest first."""
    out: dict[str, list[ReceivableOperation]] = {rid: [] for rid in receivable_ids}
    if receivable_ids:
        for op in session.scalars(select(ReceivableOperation).where(
                ReceivableOperation.receivable_id.in_(receivable_ids), ReceivableOperation.status == "pending")
                .order_by(ReceivableOperation.id)):
            out[op.receivable_id].append(op)
    return out


def history_of(session: Session, actor: Actor, receivable_id: str, limit: int = 500) -> list[HistoryEntry]:
    """The receivable's contract events in chain order, each with tx hash, block and log index."""
    r = get_receivable(session, actor, receivable_id)
    rows = session.scalars(select(ReceivableEvent).where(ReceivableEvent.receivable_id == r.id)
                           .order_by(ReceivableEvent.block_number, ReceivableEvent.log_index).limit(limit))
    return [HistoryEntry(e.event, e.part_id, dict(e.args), e.tx_hash, e.block_number, e.log_index, e.operation_id)
            for e in rows]


def payments_of(session: Session, receivable_id: str) -> list[ReceivablePayment]:
    return list(session.scalars(select(ReceivablePayment).where(ReceivablePayment.receivable_id == receivable_id)
                                .order_by(ReceivablePayment.id)))



def evidence_of(runtime: Runtime, actor: Actor, receivable_id: str) -> list[EvidenceCheck]:
    """Each cited proof with a fresh verification (offline, and the anchored root on chain); the
    rows are read in a read session, the node asked after it ends."""
    with runtime.db.read() as session:
        r = get_receivable(session, actor, receivable_id)
        rows = session.scalars(select(ReceivableEvidence).where(ReceivableEvidence.receivable_id == r.id)
                               .order_by(ReceivableEvidence.id).limit(ev.EVIDENCE_PER_RECEIVABLE_MAX)).all()
        parties = {m.onchain_id.lower() for m in (session.get(Member, r.supplier_id),
                                                  session.get(Member, r.buyer_id))}
    return [ev.check_evidence(runtime, row, parties) for row in rows]

