"""The ledger side of a three-way run: journal facts from the settlements store, with the chain
state of the operation that carries each one.

One entry per settlement payment (its latest ``pay`` operation) and one per refund:

- ``entry_id``: ``pay:<settlement id>`` / ``refund:<refund id>``;
- ``provider_txn_id``: the provider's id as recorded from its verified callback (payments: the
  provider's transaction id; refunds: Alipay ``trade_no#out_biz_no`` as in its bill, WeChat Pay
  ``refund_id``, Stripe ``re_...``); None when the payment was confirmed through the API;
- ``reference``: the settlement's payment reference (the provider's ``out_trade_no``);
- amount and currency: what was paid or refunded, in the settlement's target currency;
- ``status``: ``succeeded``, or ``failed`` when the chain refused the operation (the journal
  posting was reversed), ``pending`` while it waits in the outbox;
- ``chain_state``: ``confirmed`` / ``pending`` / ``failed`` from the operation; ``tx_hash`` its
  transaction.

A member's run sees only its own entries (``member``): the settlements where it is payer or
payee, with their payments and refunds, and the settlements paid or refunded through callbacks
received on its own provider accounts (a payment institution reconciles what it processed). The
filter is in the SQL, so no other member's row is read at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from settlement.domains.reconciliation.engine import LedgerTable
from settlement.store.models.payments import ProviderAccountRow, ProviderCallback
from settlement.store.models.settlements import Settlement, SettlementOperation, SettlementRefund

__all__ = ["LEDGER_ENTRIES_MAX", "ledger_entries", "member_settlements"]

LEDGER_ENTRIES_MAX = 5_000_000
_PAGE_ROWS = 10_000
_CHAIN = {"confirmed": "confirmed", "pending": "pending", "rejected": "failed"}
_STATUS = {"confirmed": "succeeded", "pending": "succeeded", "rejected": "failed"}


def _refund_txn_id(cb: ProviderCallback) -> str | None:
    if cb.provider == "alipay":
        return f"{cb.provider_txn_id}#{cb.refund_reference}" if cb.refund_reference else cb.provider_txn_id
    return cb.provider_refund_id or cb.refund_reference


def member_settlements(member: str) -> ColumnElement[bool]:
    """The settlements whose entries ``member`` reconciles: those it is party to, and those a
    callback on one of its provider accounts paid or refunded."""
    via_accounts = (select(ProviderCallback.settlement_id)
                    .join(ProviderAccountRow, and_(ProviderAccountRow.provider == ProviderCallback.provider,
                                                   ProviderAccountRow.account == ProviderCallback.account))
                    .where(ProviderAccountRow.owner == member, ProviderCallback.outcome == "applied",
                           ProviderCallback.settlement_id.is_not(None)))
    return or_(Settlement.payer_id == member, Settlement.payee_id == member, Settlement.id.in_(via_accounts))


def ledger_entries(session: Session, *, member: str | None, provider: str | None = None,
                   account: str | None = None, since: datetime | None = None, until: datetime | None = None,
                   progress: Callable[[int], None] | None = None) -> LedgerTable:
    """Ledger entries (see the module doc) of ``member`` (``None``: every member's, for tools
    that read across), optionally limited to one provider (and account) and to operations
    created in [since, until)."""
    scope = member_settlements(member) if member is not None else None
    # Verified callbacks that were applied: the provider's own ids of each payment and refund.
    pay_cb: dict[str, ProviderCallback] = {}
    refund_cb: dict[int, ProviderCallback] = {}
    q = select(ProviderCallback).where(ProviderCallback.outcome == "applied")
    if scope is not None:
        q = q.join(Settlement, Settlement.id == ProviderCallback.settlement_id).where(scope)
    for cb in session.scalars(q.execution_options(yield_per=_PAGE_ROWS)):
        if cb.kind == "payment" and cb.settlement_id:
            pay_cb[cb.settlement_id] = cb
        elif cb.kind == "refund" and cb.refund_id is not None:
            refund_cb[cb.refund_id] = cb

    table = LedgerTable()
    latest_pay: dict[str, tuple] = {}
    ops = (select(SettlementOperation, Settlement)
           .join(Settlement, Settlement.id == SettlementOperation.settlement_id)
           .where(SettlementOperation.kind.in_(("pay", "refund")))
           .order_by(SettlementOperation.id))
    if scope is not None:
        ops = ops.where(scope)
    if since is not None:
        ops = ops.where(SettlementOperation.created_at >= since)
    if until is not None:
        ops = ops.where(SettlementOperation.created_at < until)
    refunds: dict[int, SettlementRefund] = {}
    rows = 0
    for op, s in session.execute(ops.execution_options(yield_per=_PAGE_ROWS)):
        rows += 1
        if op.kind == "pay":
            latest_pay[s.id] = (op, s)
        elif op.refund_id is not None:
            refunds.setdefault(op.refund_id, None)  # type: ignore[arg-type]
            latest_pay.setdefault(("refund", op.refund_id), (op, s))  # type: ignore[index]
        if progress is not None and rows % _PAGE_ROWS == 0:
            progress(rows)
    if refunds:
        ids = list(refunds)
        for start in range(0, len(ids), 1000):
            for r in session.scalars(select(SettlementRefund).where(SettlementRefund.id.in_(ids[start:start + 1000]))):
                refunds[r.id] = r

    for key, (op, s) in latest_pay.items():
        if len(table) >= LEDGER_ENTRIES_MAX:
            break
        if isinstance(key, tuple):
            refund = refunds.get(op.refund_id)
            cb = refund_cb.get(op.refund_id)
            entry_provider = cb.provider if cb else s.provider
            if not _wanted(provider, account, entry_provider, cb):
                continue
            amount = op.amount_minor if op.amount_minor is not None else (refund.amount_minor if refund else 0)
            table.append((f"refund:{op.refund_id}", _refund_txn_id(cb) if cb else None, s.payment_reference,
                          "refund", amount, s.target_currency, _STATUS.get(op.status, "pending"), op.created_at,
                          _CHAIN.get(op.status, "pending"), op.tx_hash))
        else:
            cb = pay_cb.get(s.id)
            entry_provider = cb.provider if cb else s.provider
            if not _wanted(provider, account, entry_provider, cb):
                continue
            amount = op.amount_minor if op.amount_minor is not None else s.paid_minor
            table.append((f"pay:{s.id}", cb.provider_txn_id if cb else None, s.payment_reference, "payment",
                          amount, s.target_currency, _STATUS.get(op.status, "pending"), op.created_at,
                          _CHAIN.get(op.status, "pending"), op.tx_hash))
    return table


def _wanted(provider: str | None, account: str | None, entry_provider: str | None,
            cb: ProviderCallback | None) -> bool:
    if provider is not None and entry_provider != provider:
        return False
    if account is not None and cb is not None and cb.account != account:
        return False
    return True
