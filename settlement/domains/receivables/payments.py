"""Disbursements and repayments owed by financing, turned into settlements.

When the follower applies ``FinancingAccepted`` (the financier owes the seller the advance) or a
repayment (the buyer owes each holder its part), it records a :class:`ReceivablePayment` row;
this periodic job turns each into a settlement instruction on the SettlementLedger, like any
other, through the settlements domain's public commands.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import LedgerError
from settlement.domains.anchoring import digest_changed
from settlement.domains.receivables.common import PAYMENTS_INSTRUCT_BATCH_MAX
from settlement.domains.settlements import InstructionInput, create_settlement
from settlement.runtime import Runtime
from settlement.store.models.receivables import ReceivablePayment

__all__ = ["INSTRUCT_INTERVAL_S", "instruct_payments", "instruct_payments_job"]

INSTRUCT_INTERVAL_S = 2.0

_PURPOSE = {"disbursement": "LOAN", "repayment": "SUPP"}


def instruct_payments(runtime: Runtime, session: Session, *, receivable_id: str | None = None,
                      limit: int = PAYMENTS_INSTRUCT_BATCH_MAX) -> int:
    """Turn owed disbursements and repayments into settlements (``settlement.domains.settlements``): the
    payer's instruction to the payee, recorded on the SettlementLedger like any other. A payment
    the settlements service refuses (the payer lacks the finance role, say) stays ``blocked``
    with the reason and is tried again on the next call. Returns how many were instructed."""
    q = select(ReceivablePayment).where(ReceivablePayment.status.in_(("owed", "blocked")))
    if receivable_id is not None:
        q = q.where(ReceivablePayment.receivable_id == receivable_id)
    done = 0
    for pay in session.scalars(q.order_by(ReceivablePayment.id).limit(limit)).all():
        digest_changed(session, "receivable.payment", pay)
        if pay.payer_id is None or pay.payee_id is None:
            pay.status, pay.settlement_error = "blocked", "payer or payee is not a member known to the service"
            continue
        ref = f"rcv-{pay.kind[:4]}-{pay.part_id[2:50]}"
        inp = InstructionInput(client_reference=ref, payee_id=pay.payee_id, source_minor=pay.amount_minor,
                               source_currency=pay.currency, target_currency=pay.currency, fx_rate="1",
                               purpose_code=_PURPOSE[pay.kind],
                               payment_reference=f"receivable {pay.kind} part {pay.part_id}")
        try:
            with session.begin_nested():
                s = create_settlement(runtime, session, pay.payer_id, inp)
            pay.status, pay.settlement_id, pay.settlement_error = "instructed", s.id, None
            done += 1
        except LedgerError as exc:
            pay.status, pay.settlement_error = "blocked", f"{exc.type_slug}: {exc.detail}"[:2000]
    return done


def instruct_payments_job(runtime: Runtime) -> int:
    """The periodic job: one bounded pass in its own transaction."""
    with runtime.db.transaction() as session:
        return instruct_payments(runtime, session)
