"""What the chain says back: event handlers (confirmations) and failure hooks (rejections).

Handlers run in the follower's transaction for each new SettlementLedger event. An event of an
operation the service enqueued marks that operation confirmed (transaction hash and block) on the
operation and on its settlement or cycle. An event the service did not cause, a member calling
the contract directly around the API (pay, cancel, refund, cycle cancel), is applied to the store
too, with its journal postings, so the store never disagrees with the chain.

Failure hooks run in the dispatcher's transaction when an outbox row reverts: the operation is
marked rejected with the decoded custom error, the settlement (or cycle) returns to its previous
state, and the operation's journal postings are reversed.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.core.errors import ChainRevertError
from settlement.domains.anchoring import digest_changed
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.transitions import _paid_postings, _record_txn, _refund_postings
from settlement.store.models import OutboxRow, utcnow
from settlement.store.models.settlements import (
    NetPayment,
    NettingCycle,
    Settlement,
    SettlementOperation,
    SettlementRefund,
)

log = logging.getLogger("ledger.settlements")

__all__ = ["CYCLE_KINDS", "EVENT_HANDLERS", "LEDGER_CONTRACTS", "NET_PAYMENT_KINDS", "OPERATION_KINDS",
           "on_chain_lost", "on_cycle_failure", "on_net_payment_failure", "on_recorded", "reject_ops"]

CONTRACT = "SettlementLedger"
# The catalogue names an event after the first artifact that declares it: the interface, usually.
LEDGER_CONTRACTS = frozenset({CONTRACT, "ISettlementLedger"})


_now = utcnow  # one clock for the store: settlement.store.models.utcnow


def _settlement(session: Session, settlement_id: str) -> Settlement | None:
    return session.scalar(select(Settlement).where(Settlement.id == settlement_id))


def _pending_op(session: Session, settlement_id: str, kind: str) -> SettlementOperation | None:
    return session.scalar(select(SettlementOperation).where(
        SettlementOperation.settlement_id == settlement_id, SettlementOperation.kind == kind,
        SettlementOperation.status == "pending").order_by(SettlementOperation.id).limit(1))


def _confirm(session: Session, lg: DecodedLog, s: Settlement, kind: str) -> SettlementOperation | None:
    op = _pending_op(session, s.id, kind)
    if op is None:
        return None
    op.status, op.tx_hash, op.block_number, op.confirmed_at = "confirmed", lg.tx_hash, lg.block_number, _now()
    if s.chain_op == kind and s.outbox_id == op.outbox_id:
        s.chain_status, s.tx_hash, s.block_number, s.chain_error = "confirmed", lg.tx_hash, lg.block_number, None
    return op


def _external(session: Session, lg: DecodedLog, s: Settlement, kind: str, new_state: str,
              journal_txn: str | None, amount: int | None = None, refund_id: int | None = None) -> None:
    """Applies a transition made on chain around the API."""
    log.info("settlement %s: %s made on chain directly (tx %s); applying it", s.id, kind, lg.tx_hash,
             extra={"tx_hash": lg.tx_hash, "block_number": lg.block_number})
    session.add(SettlementOperation(settlement_id=s.id, kind=kind, outbox_id=None, prev_state=s.state,
                                    amount_minor=amount, refund_id=refund_id, journal_txn_id=journal_txn,
                                    requested_by="chain", status="confirmed", tx_hash=lg.tx_hash,
                                    block_number=lg.block_number, confirmed_at=_now()))
    s.state, s.chain_op, s.chain_status, s.outbox_id = new_state, kind, "confirmed", None
    s.tx_hash, s.block_number, s.chain_error = lg.tx_hash, lg.block_number, None
    digest_changed(session, "settlement", s)


_OPS = SettlementOperation.__table__
_SETTLEMENTS = Settlement.__table__
# Built once: the recording hot path runs two pre-compiled UPDATEs per event, on the Core tables.
_CONFIRM_RECORD_OP = (
    _OPS.update()
    .where(_OPS.c.settlement_id == bindparam("sid"), _OPS.c.kind == "record", _OPS.c.status == "pending")
    .values(status="confirmed", tx_hash=bindparam("tx"), block_number=bindparam("block"),
            confirmed_at=bindparam("now")))
_CONFIRM_RECORD = (
    _SETTLEMENTS.update()
    .where(_SETTLEMENTS.c.id == bindparam("sid"), _SETTLEMENTS.c.chain_op == "record",
           _SETTLEMENTS.c.chain_status == "pending")
    .values(chain_status="confirmed", tx_hash=bindparam("tx"), block_number=bindparam("block"),
            recorded_tx_hash=bindparam("tx"), recorded_block=bindparam("block"), chain_error=None,
            updated_at=bindparam("now")))


def on_recorded(session: Session, logs: list[DecodedLog]) -> None:
    """The hot path (one event per settlement, 200 per batch): the two UPDATEs run once per run of
    events, as executemany, with no reads and no autoflush. A settlement recorded around the API
    matches nothing: the store keeps only what members asked it to."""
    now = _now()
    params = [{"sid": lg.args["id"], "tx": lg.tx_hash, "block": lg.block_number, "now": now}
              for lg in logs if lg.contract in LEDGER_CONTRACTS]
    if not params:
        return
    with session.no_autoflush:
        connection = session.connection()
        connection.execute(_CONFIRM_RECORD_OP, params)
        # Guarded by its own WHERE (the settlement's own record operation still pending).
        connection.execute(_CONFIRM_RECORD, params)

def on_paid(session: Session, lg: DecodedLog) -> None:
    s = _settlement(session, lg.args["id"])
    if s is None or _confirm(session, lg, s, "pay") is not None:
        return
    if s.state == "instructed" and s.chain_status != "pending":
        s.paid_minor = int(lg.args["amountPaidMinor"])
        s.provider = bytes.fromhex(lg.args["provider"][2:]).rstrip(b"\0").decode("ascii", "replace")[:16]
        s.provider_tx_hash = lg.args["providerTxHash"]
        txn = jr.post(session, "settlement.paid", _paid_postings(s), settlement_id=s.id)
        _external(session, lg, s, "pay", "paid", txn, amount=s.paid_minor)


def on_acknowledged(session: Session, lg: DecodedLog) -> None:
    """The payee's acknowledgement: recorded as an operation; the state does not change."""
    s = _settlement(session, lg.args["id"])
    if s is None or _confirm(session, lg, s, "acknowledge") is not None:
        return
    if s.chain_status != "pending":
        _external(session, lg, s, "acknowledge", s.state, None)


def on_cancelled(session: Session, lg: DecodedLog) -> None:
    s = _settlement(session, lg.args["id"])
    if s is None or _confirm(session, lg, s, "cancel") is not None:
        return
    if s.state == "instructed" and s.chain_status != "pending":
        txn = jr.reverse(session, _record_txn(session, s), "settlement.cancelled")
        _external(session, lg, s, "cancel", "cancelled", txn)


def on_refunded(session: Session, lg: DecodedLog) -> None:
    s = _settlement(session, lg.args["id"])
    if s is None:
        return
    op = _confirm(session, lg, s, "refund")
    if op is not None:
        refund = session.get(SettlementRefund, op.refund_id) if op.refund_id else None
        if refund is not None:
            refund.status = "confirmed"
            digest_changed(session, "settlement.refund", refund)
        return
    if s.state in ("paid", "settled") and s.chain_status != "pending":
        amount = int(lg.args["amountMinor"])
        refund = SettlementRefund(settlement_id=s.id, amount_minor=amount, reference=f"chain:{lg.args['refundRefHash']}",
                                  reference_hash=lg.args["refundRefHash"], requested_by="chain", status="confirmed")
        session.add(refund)
        session.flush()
        digest_changed(session, "settlement.refund", refund)
        txn = jr.post(session, "settlement.refunded", _refund_postings(s, amount), settlement_id=s.id)
        s.refunded_minor += amount
        _external(session, lg, s, "refund", "refunded" if lg.args["fully"] else s.state, txn, amount=amount,
                  refund_id=refund.id)


def on_netted(session: Session, lg: DecodedLog) -> None:
    s = _settlement(session, lg.args["id"])
    if s is not None:
        _confirm(session, lg, s, "net")


def on_settled(session: Session, lg: DecodedLog) -> None:
    s = _settlement(session, lg.args["id"])
    if s is not None:
        _confirm(session, lg, s, "settle")


def on_released(session: Session, lg: DecodedLog) -> None:
    """A cycle cancelled on chain (the service never cancels cycles itself): back to paid."""
    s = _settlement(session, lg.args["id"])
    if s is not None and s.state == "in_cycle" and s.cycle_id == lg.args["cycleId"]:
        s.cycle_id = None
        _external(session, lg, s, "release", "paid", None)


def _cycle(session: Session, cycle_id: str) -> NettingCycle | None:
    return session.get(NettingCycle, cycle_id)


def on_cycle_submitted(session: Session, lg: DecodedLog) -> None:
    cycle = _cycle(session, lg.args["cycleId"])
    if cycle is None:
        return
    cycle.submit_tx_hash, cycle.submit_block = lg.tx_hash, lg.block_number
    if cycle.chain_op == "submit":
        cycle.chain_status, cycle.chain_error = "confirmed", None


def on_net_payment_attested(session: Session, lg: DecodedLog) -> None:
    """Confirms the attested net payment (or records one made on chain around the API)."""
    cycle = _cycle(session, lg.args["cycleId"])
    if cycle is None:
        return
    member_id = next((m for m, onchain in cycle.members if onchain == lg.args["member"]), None)
    if member_id is None:
        return
    payment = session.scalar(select(NetPayment).where(NetPayment.cycle_id == cycle.id, NetPayment.member_id == member_id,
                                                      NetPayment.status == "pending").order_by(NetPayment.id).limit(1))
    if payment is None:
        provider = bytes.fromhex(lg.args["provider"][2:]).rstrip(b"\0").decode("ascii", "replace")[:16]
        payment = NetPayment(cycle_id=cycle.id, member_id=member_id, amount_minor=int(lg.args["amountMinor"]),
                             provider=provider, provider_tx_hash=lg.args["providerTxHash"], attested_by="chain",
                             status="pending")
        session.add(payment)
    payment.status, payment.tx_hash, payment.block_number, payment.error = "confirmed", lg.tx_hash, lg.block_number, None


def on_cycle_settled(session: Session, lg: DecodedLog) -> None:
    cycle = _cycle(session, lg.args["cycleId"])
    if cycle is None:
        return
    cycle.settle_tx_hash, cycle.settle_block = lg.tx_hash, lg.block_number
    if cycle.chain_op == "settle":
        cycle.chain_status, cycle.chain_error = "confirmed", None


def on_cycle_cancelled(session: Session, lg: DecodedLog) -> None:
    cycle = _cycle(session, lg.args["cycleId"])
    if cycle is not None and cycle.state == "submitted":
        cycle.state, cycle.chain_op, cycle.chain_status = "cancelled", "cancel", "confirmed"
        digest_changed(session, "netting.cycle", cycle)


# -- failures ---------------------------------------------------------------------------------------


def _error_of(error: ChainRevertError) -> dict:
    return {"name": error.error_name or "Reverted", "args": error.error_args, "detail": str(error.detail)[:500]}


def reject_ops(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    ops = session.scalars(select(SettlementOperation).where(SettlementOperation.outbox_id == row.id,
                                                            SettlementOperation.status == "pending")).all()
    if not ops:
        return
    info = _error_of(error)
    by_id = {s.id: s for s in session.scalars(select(Settlement).where(
        Settlement.id.in_([op.settlement_id for op in ops])))}
    reversed_txns: set[str] = set()
    for op in ops:
        op.status, op.error, op.tx_hash, op.block_number = "rejected", info, row.tx_hash, row.block_number
        s = by_id.get(op.settlement_id)
        if s is None:
            continue
        if op.journal_txn_id and op.journal_txn_id not in reversed_txns:
            jr.reverse(session, op.journal_txn_id, f"reversal.{op.kind}", memo=f"chain refused: {info['name']}")
            reversed_txns.add(op.journal_txn_id)
        _undo(session, s, op)
        if s.outbox_id == row.id:
            s.chain_status, s.chain_error, s.tx_hash, s.block_number = "rejected", info, row.tx_hash, row.block_number
    log.warning("outbox %s (%s) refused by the chain with %s: %d settlement operations rejected",
                row.id, row.kind, info["name"], len(ops), extra={"tx_hash": row.tx_hash, "outbox_id": row.id})


def _undo(session: Session, s: Settlement, op: SettlementOperation) -> None:
    digest_changed(session, "settlement", s)
    if op.kind == "record":
        s.state = "rejected"
        return
    s.state = op.prev_state
    if op.kind == "pay":
        s.paid_minor, s.provider, s.provider_tx_hash = 0, None, None
    elif op.kind == "refund":
        s.refunded_minor -= op.amount_minor or 0
        refund = session.get(SettlementRefund, op.refund_id) if op.refund_id else None
        if refund is not None:
            refund.status = "rejected"
            digest_changed(session, "settlement.refund", refund)
    elif op.kind == "net":
        s.cycle_id = None


def _reject_cycle(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    cycle = session.scalar(select(NettingCycle).where(NettingCycle.outbox_id == row.id))
    if cycle is None:
        return
    cycle.chain_status, cycle.chain_error = "rejected", _error_of(error)
    digest_changed(session, "netting.cycle", cycle)
    if cycle.chain_op == "submit":
        cycle.state = "rejected"
    else:  # settle refused: the cycle stays submitted; its journal posting was reversed per settlement op
        cycle.state = "submitted"
        if cycle.settle_journal_txn_id:
            jr.reverse(session, cycle.settle_journal_txn_id, "reversal.cycle_settle",
                       memo=f"chain refused: {cycle.chain_error['name']}")
            cycle.settle_journal_txn_id = None


def on_cycle_failure(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    reject_ops(session, row, error)
    _reject_cycle(session, row, error)


def on_net_payment_failure(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    """The chain refused an attested net payment: it no longer counts (the operator may attest again)."""
    for payment in session.scalars(select(NetPayment).where(NetPayment.outbox_id == row.id,
                                                            NetPayment.status == "pending")):
        payment.status, payment.error, payment.tx_hash = "rejected", _error_of(error), row.tx_hash


# What this module answers to; ``wiring.wire`` registers them.
EVENT_HANDLERS = (("SettlementPaid", on_paid), ("SettlementCancelled", on_cancelled),
                  ("SettlementReceiptAcknowledged", on_acknowledged), ("NetPaymentAttested", on_net_payment_attested),
                  ("SettlementRefunded", on_refunded), ("SettlementNetted", on_netted),
                  ("SettlementSettled", on_settled), ("SettlementReleased", on_released),
                  ("NettingCycleSubmitted", on_cycle_submitted), ("NettingCycleSettled", on_cycle_settled),
                  ("NettingCycleCancelled", on_cycle_cancelled))
OPERATION_KINDS = ("settlement.record", "settlement.record_batch", "settlement.pay", "settlement.cancel",
                   "settlement.refund", "settlement.acknowledge")
NET_PAYMENT_KINDS = ("settlement.cycle_net_payment",)
CYCLE_KINDS = ("settlement.cycle_submit", "settlement.cycle_settle")


# -- the chain lost confirmed operations ------------------------------------------------------------


def on_chain_lost(session: Session, rows: list[OutboxRow]) -> None:
    """The chain lost the transactions of ``rows`` (rollback, node restarted from an old state):
    their operations, and the settlements or cycles showing them, are pending again until the
    same transactions are mined anew (the dispatcher sends the very same bytes; their events then
    confirm them again through the handlers above)."""
    ids = [r.id for r in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for op in session.scalars(select(SettlementOperation).where(
                SettlementOperation.outbox_id.in_(chunk), SettlementOperation.status == "confirmed")).all():
            op.status, op.tx_hash, op.block_number, op.confirmed_at = "pending", None, None, None
        for s in session.scalars(select(Settlement).where(
                Settlement.outbox_id.in_(chunk), Settlement.chain_status == "confirmed")).all():
            s.chain_status, s.tx_hash, s.block_number = "pending", None, None
            digest_changed(session, "settlement", s)
        for cycle in session.scalars(select(NettingCycle).where(
                NettingCycle.outbox_id.in_(chunk), NettingCycle.chain_status == "confirmed")).all():
            cycle.chain_status = "pending"
            digest_changed(session, "netting.cycle", cycle)
        for payment in session.scalars(select(NetPayment).where(
                NetPayment.outbox_id.in_(chunk), NetPayment.status == "confirmed")).all():
            payment.status, payment.tx_hash, payment.block_number = "pending", None, None
