"""What the chain says back about receivables: event handlers and failure hooks.

Handlers run in the follower's transaction for each new ``ReceivableRegistry`` event and move
the store's mirror forward: the event is recorded in the receivable's history (tx hash, block,
log index), the operation that caused it (found by its outbox row's tx hash) is marked confirmed
and releases the receivable's lock, and the state changes. Events of receivables the service
never registered are ignored; events caused around the API on receivables it knows (a member
calling the contract directly) are applied like any other. Each handler is idempotent on the
contract's own keys (part ids, statuses), so a replay after a chain rollback changes nothing.

Failure hooks run in the dispatcher's transaction when an outbox row reverts: the operation is
marked rejected with the decoded custom error; a refused registration frees the invoice's
uniqueness key so that the supplier may register it again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.core.errors import ChainRevertError
from settlement.domains.anchoring import digest_changed
from settlement.store.models import Member, MemberAccount, OutboxRow
from settlement.store.models.receivables import (
    Receivable,
    ReceivableEvent,
    ReceivableOperation,
    ReceivablePart,
    ReceivableParty,
    ReceivablePayment,
)

log = logging.getLogger("ledger.receivables.chain")

BUYER_REJECTION = "rejected by the buyer"  # the ``rejection`` of a receivable its buyer rejected

__all__ = ["HANDLERS", "on_chain_lost", "on_failure"]


class ReceivableInvariantError(ArithmeticError):
    """The chain reported something the registry's invariants forbid: never input, always a bug."""


def _member_id(session: Session, onchain_id: str) -> str | None:
    return session.scalar(select(Member.id).where(Member.onchain_id == onchain_id))


def _operation(session: Session, lg: DecodedLog) -> ReceivableOperation | None:
    """The service's operation whose transaction emitted ``lg``, if any."""
    row_id = session.scalar(select(OutboxRow.id).where(OutboxRow.tx_hash == lg.tx_hash).limit(1))
    if row_id is None:
        return None
    return session.scalar(select(ReceivableOperation).where(ReceivableOperation.outbox_id == row_id))


def _record(session: Session, lg: DecodedLog, r: Receivable, part_id: str | None) -> ReceivableOperation | None:
    # Whatever the handler then changes, these records are digested as they are at commit.
    digest_changed(session, "receivable", r)
    digest_changed(session, "receivable.part", *([part_id] if part_id else []))
    op = _operation(session, lg)
    if op is not None and op.receivable_id == r.id and op.status == "pending":
        op.status, op.tx_hash, op.block_number = "confirmed", lg.tx_hash, lg.block_number
        digest_changed(session, "receivable.operation", op)
        if r.busy_operation_id == op.id:
            r.busy_operation_id = None
    exists = session.scalar(select(ReceivableEvent.id).where(ReceivableEvent.tx_hash == lg.tx_hash,
                                                             ReceivableEvent.log_index == lg.log_index))
    if exists is None:
        session.add(ReceivableEvent(receivable_id=r.id, part_id=part_id, event=lg.event, args=dict(lg.args),
                                    tx_hash=lg.tx_hash, log_index=lg.log_index, block_number=lg.block_number,
                                    block_hash=lg.block_hash, operation_id=op.id if op is not None else None))
    return op


def _add_party(session: Session, receivable_id: str, member_id: str | None, role: str) -> None:
    if member_id is None:
        return
    session.flush()
    exists = session.scalar(select(ReceivableParty.id).where(
        ReceivableParty.receivable_id == receivable_id, ReceivableParty.member_id == member_id,
        ReceivableParty.role == role).limit(1))
    if exists is None:
        session.add(ReceivableParty(receivable_id=receivable_id, member_id=member_id, role=role))


Handler = Callable[[Session, DecodedLog], None]
PartBody = Callable[[Session, DecodedLog, ReceivablePart, Receivable], None]
ReceivableBody = Callable[[Session, DecodedLog, Receivable, ReceivableOperation | None], None]


def _part_event(part_arg: str = "partId", *,
                history_part_arg: str | None = None) -> Callable[[PartBody], Handler]:
    """Makes ``body`` the handler of an event about the part ``lg.args[part_arg]``. Events of parts
    the store does not mirror are ignored; otherwise the event is recorded in the receivable's
    history (against the part ``lg.args[history_part_arg]``, by default that part) and ``body``
    runs with the part and its receivable."""

    def wrap(body: PartBody) -> Handler:
        @functools.wraps(body)
        def handler(session: Session, lg: DecodedLog) -> None:
            p = session.get(ReceivablePart, lg.args[part_arg])
            if p is None:
                return
            r = session.get(Receivable, p.receivable_id)
            _record(session, lg, r, p.id if history_part_arg is None else lg.args[history_part_arg])
            body(session, lg, p, r)

        return handler

    return wrap


def _receivable_event(body: ReceivableBody) -> Handler:
    """Makes ``body`` the handler of an event about the receivable ``lg.args["receivableId"]``.
    Events of receivables the store does not mirror are ignored; otherwise the event is recorded
    in its history and ``body`` runs with the receivable and the service's operation that caused
    the event (None: caused around the API)."""

    @functools.wraps(body)
    def handler(session: Session, lg: DecodedLog) -> None:
        r = session.get(Receivable, lg.args["receivableId"])
        if r is None:
            return
        body(session, lg, r, _record(session, lg, r, None))

    return handler


# -- handlers ---------------------------------------------------------------------------------------


def on_registered(session: Session, lg: DecodedLog) -> None:
    """Not a :func:`_receivable_event`: a receivable registered around the service is mirrored
    (its supplier and buyer must be members the store knows), the terms of one registered through
    the service are checked before anything is recorded, and the history entry belongs to the
    first part."""
    a = lg.args
    r = session.get(Receivable, a["receivableId"])
    if r is None:
        r = _mirror_registration(session, lg)
        if r is None:
            return
    if int(a["faceValueMinor"]) != r.face_value_minor or a["invoiceNumberHash"] != r.invoice_hash:
        raise ReceivableInvariantError(f"receivable {r.id}: chain and store disagree on its terms")
    _record(session, lg, r, a["partId"])
    if r.status in ("pending", "rejected"):
        r.status, r.rejection = "registered", None
    if session.get(ReceivablePart, a["partId"]) is None:
        session.add(ReceivablePart(id=a["partId"], receivable_id=r.id, index=0, holder_id=r.supplier_id,
                                   holder_onchain_id=a["supplierId"], amount_minor=r.face_value_minor,
                                   financed=False, request_open=False))
        r.part_count = max(r.part_count, 1)


def _mirror_registration(session: Session, lg: DecodedLog) -> Receivable | None:
    """A receivable a supplier registered straight on chain: mirrored from the event, so that its
    parties see it and later events (parts, financing, repayment) apply to it."""
    a = lg.args
    supplier_id, buyer_id = _member_id(session, a["supplierId"]), _member_id(session, a["buyerId"])
    if supplier_id is None or buyer_id is None:
        log.warning("receivable %s registered on chain by an unknown member: not mirrored", a["receivableId"])
        return None
    number = str(a["invoiceNumber"])
    key = f"{buyer_id}|{''.join(c for c in number if c.isalnum())}"
    for other in session.scalars(select(Receivable).where(Receivable.uniqueness_key == key)).all():
        # A registration through the service still in flight: the chain refuses it (the identity is
        # live now), so its key goes to the receivable the chain holds.
        other.uniqueness_key = None
    session.flush()
    epoch = date(1970, 1, 1)
    r = Receivable(id=a["receivableId"], supplier_id=supplier_id, buyer_id=buyer_id, invoice_number=number,
                   invoice_number_normalized=number, uniqueness_key=key, invoice_hash=a["invoiceNumberHash"],
                   face_value_minor=int(a["faceValueMinor"]), currency=_bytes3_text(a["currency"]),
                   issue_date=epoch + timedelta(days=int(a["issueDay"])),
                   due_date=epoch + timedelta(days=int(a["dueDay"])), status="registered", part_count=0)
    session.add(r)
    session.flush()
    _add_party(session, r.id, supplier_id, "supplier")
    _add_party(session, r.id, buyer_id, "buyer")
    log.info("receivable %s registered around the service by %s: mirrored", r.id, supplier_id)
    return r


def _bytes3_text(value: object) -> str:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
    return raw.decode("ascii")


def _end_registration(status: str, rejection: str | None) -> ReceivableBody:
    def body(session: Session, lg: DecodedLog, r: Receivable, op: ReceivableOperation | None) -> None:
        if r.status == "registered":
            r.status, r.rejection, r.uniqueness_key = status, rejection, None

    return body


on_cancelled = _receivable_event(_end_registration("cancelled", None))
on_rejected = _receivable_event(_end_registration("rejected", BUYER_REJECTION))


@_receivable_event
def on_confirmed(session: Session, lg: DecodedLog, r: Receivable, op: ReceivableOperation | None) -> None:
    if r.status == "registered":
        r.status = "confirmed"
        r.confirmed_by = lg.args["signer"]
        if op is not None:
            r.confirmation = "signature" if op.kind == "confirm_signed" else "custodial"
        else:
            custodial = session.scalar(select(MemberAccount.encrypted_key.is_not(None))
                                       .where(MemberAccount.address == lg.args["signer"]))
            r.confirmation = "custodial" if custodial else "signature"


@_part_event("fromPartId", history_part_arg="newPartId")
def on_split(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    a = lg.args
    if session.get(ReceivablePart, a["newPartId"]) is not None:
        return  # applied already
    amount = int(a["amountMinor"])
    if amount >= p.amount_minor:
        raise ReceivableInvariantError(f"split of {amount} from part {p.id} holding {p.amount_minor}")
    p.amount_minor -= amount
    digest_changed(session, "receivable.part", p)
    session.add(ReceivablePart(id=a["newPartId"], receivable_id=r.id, index=r.part_count, holder_id=p.holder_id,
                               holder_onchain_id=p.holder_onchain_id, amount_minor=amount, financed=False,
                               request_open=False))
    r.part_count += 1


@_part_event()
def on_transferred(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    p.holder_onchain_id = lg.args["toId"]
    p.holder_id = _member_id(session, lg.args["toId"])
    _add_party(session, r.id, p.holder_id, "holder")


def _clear_offer(p: ReceivablePart) -> None:
    p.offer_id = p.advance_minor = p.fee_minor = p.discount_rate_ppm = p.day_count_basis = None
    p.offer_valid_until = None


@_part_event()
def on_financing_requested(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    p.request_open = True
    p.financier_id = _member_id(session, lg.args["financierId"])
    _clear_offer(p)
    _add_party(session, r.id, p.financier_id, "financier")


@_part_event()
def on_financing_withdrawn(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    p.request_open = False
    _clear_offer(p)


@_part_event()
def on_financing_offered(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    a = lg.args
    p.offer_id = str(a["offerId"]).lower()  # the id the service assigned (ReceivableOperation.params)
    p.advance_minor, p.fee_minor = int(a["advanceMinor"]), int(a["feeMinor"])
    p.discount_rate_ppm, p.day_count_basis = int(a["discountRatePpm"]), int(a["dayCountBasis"])
    p.offer_valid_until = int(a["validUntil"])


@_part_event()
def on_financing_accepted(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    a = lg.args
    if p.financed:
        return
    financier_id = _member_id(session, a["financierId"])
    seller_id = _member_id(session, a["sellerId"])
    if int(a["amountMinor"]) != p.amount_minor:
        raise ReceivableInvariantError(f"part {p.id}: financed {a['amountMinor']}, store holds {p.amount_minor}")
    p.financed, p.request_open = True, False
    p.seller_id, p.holder_id, p.holder_onchain_id = seller_id, financier_id, a["financierId"]
    p.financier_id = financier_id
    _add_party(session, r.id, financier_id, "holder")
    _add_party(session, r.id, financier_id, "financier")
    _owe(session, r, p.id, "disbursement", financier_id, seller_id, int(a["advanceMinor"]), lg)


@_receivable_event
def on_repayment_reported(session: Session, lg: DecodedLog, r: Receivable, op: ReceivableOperation | None) -> None:
    """The buyer says it repaid each holder what it holds: one repayment owed per part (buyer ->
    holder, instructed as a settlement); each part is repaid only when its holder confirms."""
    if int(lg.args["faceValueMinor"]) != r.face_value_minor:
        raise ReceivableInvariantError(f"receivable {r.id} reported repaid for {lg.args['faceValueMinor']}")
    if r.status == "confirmed":
        r.status = "repaying"
    parts = session.scalars(select(ReceivablePart).where(ReceivablePart.receivable_id == r.id)
                            .order_by(ReceivablePart.index)).all()
    if sum(p.amount_minor for p in parts) != r.face_value_minor:
        raise ReceivableInvariantError(f"the parts of {r.id} do not sum to its face value")
    for p in parts:
        _owe(session, r, p.id, "repayment", r.buyer_id, p.holder_id, p.amount_minor, lg)


@_part_event()
def on_part_repaid(session: Session, lg: DecodedLog, p: ReceivablePart, r: Receivable) -> None:
    """The part's holder confirmed receipt of its repayment."""
    a = lg.args
    if p.repaid_minor is not None:
        return
    amount = int(a["amountMinor"])
    if amount != p.amount_minor:
        raise ReceivableInvariantError(f"part {p.id} repaid {amount}, holds {p.amount_minor}")
    p.repaid_minor = amount
    session.flush()
    repaid = session.scalars(select(ReceivablePart.repaid_minor).where(
        ReceivablePart.receivable_id == r.id, ReceivablePart.repaid_minor.is_not(None))).all()
    if sum(repaid) > r.face_value_minor:
        raise ReceivableInvariantError(f"repayments of {r.id} exceed its face value")


@_receivable_event
def on_settled(session: Session, lg: DecodedLog, r: Receivable, op: ReceivableOperation | None) -> None:
    if int(lg.args["faceValueMinor"]) != r.face_value_minor:
        raise ReceivableInvariantError(f"receivable {r.id} settled for {lg.args['faceValueMinor']}")
    r.status = "settled"


@_receivable_event
def on_defaulted(session: Session, lg: DecodedLog, r: Receivable, op: ReceivableOperation | None) -> None:
    if r.status in ("confirmed", "repaying"):
        r.status = "defaulted"


def _owe(session: Session, r: Receivable, part_id: str, kind: str, payer_id: str | None, payee_id: str | None,
         amount: int, lg: DecodedLog) -> None:
    exists = session.scalar(select(ReceivablePayment.id).where(ReceivablePayment.kind == kind,
                                                               ReceivablePayment.part_id == part_id))
    if exists is not None:
        return
    payment = ReceivablePayment(receivable_id=r.id, part_id=part_id, kind=kind, payer_id=payer_id,
                                payee_id=payee_id, amount_minor=amount, currency=r.currency, status="owed",
                                tx_hash=lg.tx_hash, block_number=lg.block_number)
    session.add(payment)
    digest_changed(session, "receivable.payment", payment)


HANDLERS: dict[str, Handler] = {
    "ReceivableRegistered": on_registered,
    "ReceivableCancelled": on_cancelled,
    "ReceivableRejected": on_rejected,
    "ReceivableConfirmed": on_confirmed,
    "PartSplit": on_split,
    "PartTransferred": on_transferred,
    "FinancingRequested": on_financing_requested,
    "FinancingRequestWithdrawn": on_financing_withdrawn,
    "FinancingOffered": on_financing_offered,
    "FinancingAccepted": on_financing_accepted,
    "RepaymentReported": on_repayment_reported,
    "PartRepaid": on_part_repaid,
    "ReceivableSettled": on_settled,
    "ReceivableDefaulted": on_defaulted,
}


# -- failure hooks ------------------------------------------------------------------------------------


def on_failure(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    op = session.scalar(select(ReceivableOperation).where(ReceivableOperation.outbox_id == row.id))
    if op is None:
        return
    op.status = "rejected"
    digest_changed(session, "receivable.operation", op)
    op.error_name = (error.error_name or "Reverted")[:100]
    op.error_args = {k: v for k, v in (error.error_args or {}).items()}
    op.tx_hash, op.block_number = row.tx_hash, row.block_number
    r = session.get(Receivable, op.receivable_id)
    if r is None:
        return
    if r.busy_operation_id == op.id:
        r.busy_operation_id = None
    digest_changed(session, "receivable", r)
    if op.kind == "register" and r.status == "pending":
        r.status, r.rejection, r.uniqueness_key = "rejected", op.error_name, None
    log.warning("receivable %s: %s rejected on chain with %s", r.id, op.kind, op.error_name,
                extra={"tx_hash": row.tx_hash, "outbox_id": row.id})


def on_chain_lost(session: Session, rows: list[OutboxRow]) -> None:
    """The chain lost the transactions of ``rows`` (rollback, node restarted from an old state):
    their operations are pending again, and each holds its receivable busy again, until the same
    transactions are mined anew (the dispatcher sends the very same bytes; their events then
    confirm the operations again)."""
    ids = [r.id for r in rows]
    for start in range(0, len(ids), 500):
        ops = session.scalars(select(ReceivableOperation).where(
            ReceivableOperation.outbox_id.in_(ids[start:start + 500]),
            ReceivableOperation.status == "confirmed")).all()
        for op in ops:
            op.status, op.tx_hash, op.block_number = "pending", None, None
            digest_changed(session, "receivable.operation", op)
            r = session.get(Receivable, op.receivable_id)
            if r is not None and r.busy_operation_id is None:
                r.busy_operation_id = op.id
