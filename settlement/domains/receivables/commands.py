"""Receivable commands: register, cancel, reject, confirm (custodial or own-key), split, transfer, repay,
declare default, cite evidence.

Every command checks the request against the store's mirror of the chain, then writes its
operation row and ONE outbox row (the contract call, signed by the acting member's custodial
account, or relayed by the operator for an own-key EIP-712 approval) in the caller's transaction.
Nothing changes in the mirror until the follower sees the contract's event (``events.py``); a
revert marks the operation rejected with the decoded custom error. Bad requests raise a
:class:`~settlement.core.errors.LedgerError` before anything is written. What the node says is
passed in as :class:`~settlement.domains.receivables.common.ChainFacts`, read before the
transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.core.errors import (
    AmountExceedsHoldingError,
    EvidenceInvalidError,
    ForbiddenError,
    InvalidAmountError,
    InvalidCounterpartyError,
    InvalidInvoiceError,
    InvalidSplitError,
    InvoiceAlreadyRegisteredError,
    LedgerError,
    NotPartFinancierError,
    NotPartHolderError,
    NotReceivableBuyerError,
    NotReceivableSupplierError,
    PartAlreadyFinancedError,
    PartAlreadyRepaidError,
    PartLockedError,
    PartTooSmallError,
    ReceivableNotMaturedError,
    ReceivableNotOverdueError,
    ReceivableWrongStatusError,
    RepaymentNotReportedError,
    TooManyPartsError,
    UnsupportedCurrencyError,
    ValidationError,
)
from settlement.core.money import Money, check_currency
from settlement.domains.anchoring import digest_changed
from settlement.domains.members import custodial_signer, onchain_id
from settlement.domains.receivables import evidence as ev
from settlement.domains.receivables import typed_data as approvals
from settlement.domains.receivables.common import (
    GAS,
    INVOICE_NUMBER_INPUT_LEN_MAX,
    ISSUE_DATE_FUTURE_DAYS_MAX,
    Accepted,
    ChainFacts,
    add_party,
    counterparty,
    get_receivable,
    part_of,
    require_active,
    require_not_due,
    require_role,
    require_status,
    take,
    write_operation,
)
from settlement.domains.receivables.events import BUYER_REJECTION
from settlement.domains.receivables.models import (
    AMOUNT_MINOR_MAX_STORE,
    CONTRACT,
    PART_AMOUNT_MIN,
    PARTS_PER_RECEIVABLE_MAX,
    Actor,
)
from settlement.domains.receivables.terms import (
    FINANCING_DAYS_MAX,
    day_number,
    invoice_number_compact,
    invoice_number_hash,
    normalise_invoice_number,
)
from settlement.domains.receivables.terms import part_id as derive_part_id
from settlement.domains.receivables.terms import receivable_id as derive_receivable_id
from settlement.domains.receivables.typed_data import check_signed_by, deadline_within
from settlement.pipeline.outbox import enqueue
from settlement.store.models import Member, OutboxRow
from settlement.store.models.receivables import (
    Receivable,
    ReceivableEvidence,
    ReceivablePart,
    ReceivablePayment,
)

__all__ = [
    "register_receivable", "invoice_identity_of", "cancel_receivable", "reject_receivable", "confirm_receivable", "confirm_with_signature", "invalidate_nonce", "split_part",
    "transfer_part", "repay_receivable", "confirm_repayment_received", "declare_default", "add_evidence",
]

log = logging.getLogger("ledger.receivables")


# -- register and confirm ---------------------------------------------------------------------------


def register_receivable(facts: ChainFacts, session: Session, actor: Actor, *, buyer_id: str, invoice_number: str,
                        face_value: Money, issue_date: date, due_date: date) -> Accepted:
    """A supplier registers an invoice against ``buyer_id``.

    The invoice number is put in the contract's canonical form (``terms.normalise_invoice_number``);
    its identity is the buyer and the number's letters and digits, whoever the supplier and
    whatever the amounts and dates. An identity live in the store (a registration not refused,
    cancelled or rejected) or on chain (registered around the service) is refused with
    ``invoice-already-registered``; the store's unique key makes two concurrent registrations of
    one identity impossible, and the contract refuses a live identity again.
    """
    require_role(actor, "supplier")
    supplier = session.get(Member, actor.member_id)
    if supplier is None:
        raise ForbiddenError("the acting member is unknown to the store")
    buyer = counterparty(session, buyer_id, "buyer", "buyer_id", actor)
    if not isinstance(invoice_number, str) or len(invoice_number) > INVOICE_NUMBER_INPUT_LEN_MAX:
        raise InvalidInvoiceError("invoice_number must be a string of at most 200 characters",
                                  field="invoice_number")
    try:
        normalized = normalise_invoice_number(invoice_number)
    except ValidationError as exc:
        raise InvalidInvoiceError(exc.detail, field="invoice_number") from None
    if not isinstance(face_value, Money):
        raise InvalidAmountError("face_value must be money")
    check_currency(face_value.currency)
    if not PART_AMOUNT_MIN <= face_value.value <= AMOUNT_MINOR_MAX_STORE:
        raise InvalidAmountError(f"face value must be within {PART_AMOUNT_MIN}..{AMOUNT_MINOR_MAX_STORE} minor units",
                                 field="face_value")
    today = facts.today
    if due_date < issue_date:
        raise InvalidInvoiceError(f"due date {due_date} is before the issue date {issue_date}", field="due_date")
    if issue_date > today + timedelta(days=ISSUE_DATE_FUTURE_DAYS_MAX):
        raise InvalidInvoiceError(f"issue date {issue_date} is in the future", field="issue_date")
    if (due_date - issue_date).days > FINANCING_DAYS_MAX:
        raise InvalidInvoiceError(f"the term exceeds {FINANCING_DAYS_MAX} days", field="due_date")
    try:
        day_number(issue_date)
    except ValidationError as exc:
        raise InvalidInvoiceError(exc.detail, field="issue_date") from None

    number_hash = "0x" + invoice_number_hash(normalized).hex()
    key = f"{buyer.id}|{invoice_number_compact(normalized)}"
    taken = session.scalar(select(Receivable).where(Receivable.uniqueness_key == key).limit(1))
    if taken is not None:
        raise InvoiceAlreadyRegisteredError(
            f"invoice {normalized!r} of buyer {buyer.id} is registered already as {taken.id}",
            receivable_id=taken.id, invoice_number_normalized=normalized)
    live, index = facts.invoices_on_chain.get((buyer.onchain_id, number_hash), ("", None))
    if live:  # registered around the service, straight on chain
        raise InvoiceAlreadyRegisteredError(f"invoice {normalized!r} of buyer {buyer.id} is registered on chain "
                                            "already", receivable_id=live, invoice_number_normalized=normalized)
    if index is None:  # the node could not tell: count the registrations the store saw mined
        index = session.scalar(select(func.count()).select_from(Receivable).where(
            Receivable.buyer_id == buyer.id, Receivable.invoice_hash == number_hash,
            or_(Receivable.status.not_in(("pending", "rejected")), Receivable.rejection == BUYER_REJECTION))) or 0
    rid = "0x" + derive_receivable_id(bytes.fromhex(buyer.onchain_id[2:]), bytes.fromhex(number_hash[2:]),
                                      index).hex()
    r = session.get(Receivable, rid)
    if r is not None and r.status != "rejected":
        raise InvoiceAlreadyRegisteredError(f"invoice {normalized!r} of buyer {buyer.id} is registered already "
                                            f"as {rid}", receivable_id=rid, invoice_number_normalized=normalized)
    if r is None:  # else: a registration the chain refused, at the same index: its row is reused
        r = Receivable(id=rid, supplier_id=supplier.id, buyer_id=buyer.id, part_count=0)
        session.add(r)
    r.supplier_id = supplier.id
    r.invoice_number = invoice_number.strip()
    r.invoice_number_normalized = normalized
    r.uniqueness_key = key
    r.invoice_hash = number_hash
    r.face_value_minor = face_value.value
    r.currency = face_value.currency
    r.issue_date, r.due_date = issue_date, due_date
    r.status, r.rejection, r.busy_operation_id = "pending", None, None
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent registration of the same identity committed first
        raise InvoiceAlreadyRegisteredError(f"invoice {normalized!r} of buyer {buyer.id} is registered already",
                                            invoice_number_normalized=normalized) from None
    add_party(session, rid, supplier.id, "supplier")
    add_party(session, rid, buyer.id, "buyer")
    signer = custodial_signer(session, supplier.id)
    args = [buyer.onchain_id, normalized, face_value.value, "0x" + face_value.currency.encode().hex(),
            day_number(issue_date), day_number(due_date)]
    op = write_operation(session, r, actor, "register", function="register", args=args, signer=signer,
                    gas=GAS["register"], params={"invoice_number_normalized": normalized})
    log.info("receivable %s registered by %s against %s (%s %s), outbox %s", rid, supplier.id, buyer.id,
             face_value.value, face_value.currency, op.outbox_id)
    return Accepted(r, (op,), ("0x" + derive_part_id(bytes.fromhex(rid[2:]), 0).hex(),))


def invoice_identity_of(buyer_id: str, invoice_number: str) -> tuple[str, str] | None:
    """The on-chain identity (buyer's on-chain id, invoice number hash) a registration would use,
    or None for input ``register_receivable`` will refuse anyway; lets a caller look it up on
    chain before the write transaction."""
    try:
        return onchain_id(buyer_id), "0x" + invoice_number_hash(invoice_number).hex()
    except (LedgerError, ValueError, TypeError, AttributeError):
        return None


def cancel_receivable(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """The supplier withdraws a registered (unconfirmed) receivable; its invoice identity is freed
    when the follower sees ``ReceivableCancelled``."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    if actor.member_id != r.supplier_id:
        raise NotReceivableSupplierError(f"only {r.supplier_id}, the supplier, may cancel receivable {r.id}",
                                         receivable_id=r.id)
    take(session, r)
    require_status(r, facts, "registered")
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "cancel", function="cancel", args=[r.id], signer=signer,
                         gas=GAS["cancel"])
    return Accepted(r, (op,))


def reject_receivable(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """The buyer refuses a registered (unconfirmed) receivable, such as one a supplier registered
    for another supplier's invoice; its invoice identity is freed when the follower sees
    ``ReceivableRejected``."""
    r = _for_buyer(facts, session, actor, receivable_id, "reject")
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "reject", function="reject", args=[r.id], signer=signer,
                         gas=GAS["reject"])
    return Accepted(r, (op,))


def confirm_receivable(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """The buyer confirms, through its custodial account."""
    r = _for_buyer(facts, session, actor, receivable_id)
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "confirm", function="confirm", args=[r.id], signer=signer,
                    gas=GAS["confirm"])
    return Accepted(r, (op,))


def _for_buyer(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str,
               what: str = "confirm") -> Receivable:
    require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, may {what} receivable {r.id}",
                                      receivable_id=r.id)
    require_role(actor, "buyer")
    take(session, r)
    require_status(r, facts, "registered")
    return r


def confirm_with_signature(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, *,
                           signature: str, deadline: int, signer: str | None = None) -> Accepted:
    """The buyer's own approval (a key's signature, or a contract wallet's: ``signer`` then names
    it) of ``ConfirmReceivable`` over the receivable's terms, relayed by the operator; checked here
    first (facts read with the buyer's nonce for this receivable and, for a contract wallet, its
    ERC-1271 answer)."""
    r = _for_buyer(facts, session, actor, receivable_id)
    approvals.check_approval_signature(signature)
    deadline = deadline_within(facts, deadline)
    buyer = session.get(Member, r.buyer_id)
    typed = approvals.confirm_typed(facts, session, r, deadline)
    account = check_signed_by(facts, session, typed, signature, buyer, signer)
    nonce = typed["message"]["nonce"]
    op = write_operation(session, r, actor, "confirm_signed", function="confirmWithSignature",
                         args=[r.id, account, nonce, deadline, signature.lower()], signer=facts.relayer,
                         gas=GAS["confirm_signed"], params={"signer": account, "deadline": deadline, "nonce": str(nonce)},
                         nonce_member_id=buyer.id)
    return Accepted(r, (op,))


# -- nonces ------------------------------------------------------------------------------------------


def invalidate_nonce(session: Session, actor: Actor, nonce: int) -> OutboxRow:
    """The member voids its unused approvals of nonce key ``nonce >> 64`` with a sequence up to
    ``nonce & (2**64 - 1)`` (``invalidateNonce`` on chain, through its custodial account): a
    signature handed out but not wanted any more can then never be relayed."""
    require_active(actor)
    if type(nonce) is not int or not 0 <= nonce < 2**256 or nonce & (2**64 - 1) == 2**64 - 1:
        raise ValidationError("nonce must be key << 64 | sequence, a uint256 whose sequence is below 2**64 - 1",
                              field="nonce")
    signer = custodial_signer(session, actor.member_id)
    row = enqueue(session, kind="receivable.invalidate_nonce", contract=CONTRACT, function="invalidateNonce",
                  args=[nonce], signer=signer, gas_limit=GAS["invalidate_nonce"], aggregate_id=actor.member_id)
    log.info("member %s invalidates its approvals up to nonce %#x, outbox %s", actor.member_id, nonce, row.id)
    return row


# -- parts ------------------------------------------------------------------------------------------


def _movable_part(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str,
                  part_id: str) -> tuple[Receivable, ReceivablePart]:
    require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = part_of(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    take(session, r)
    require_status(r, facts, "confirmed")
    require_not_due(r, facts)
    if p.financed:
        raise PartAlreadyFinancedError(f"part {p.id} is financed: it can be neither split nor passed on",
                                       part_id=p.id)
    if p.request_open:
        raise PartLockedError(f"part {p.id} has an open financing request to {p.financier_id}",
                              part_id=p.id, financier_id=p.financier_id)
    return r, p


def _check_split(r: Receivable, p: ReceivablePart, amounts_minor: Sequence[int]) -> list[int]:
    amounts = list(amounts_minor)
    if any(type(a) is not int for a in amounts):
        raise InvalidSplitError("split amounts must be integers of minor units", field="amounts")
    if len(amounts) < 2:
        raise InvalidSplitError("a split needs at least two amounts", field="amounts")
    if r.part_count + len(amounts) - 1 > PARTS_PER_RECEIVABLE_MAX:
        raise TooManyPartsError(f"the receivable would have {r.part_count + len(amounts) - 1} parts, "
                                f"at most {PARTS_PER_RECEIVABLE_MAX}", max=PARTS_PER_RECEIVABLE_MAX)
    for a in amounts:
        if a < PART_AMOUNT_MIN:
            raise PartTooSmallError(f"part of {a} below the minimum {PART_AMOUNT_MIN}", minimum=PART_AMOUNT_MIN)
    total = sum(amounts)
    if total > p.amount_minor:
        raise AmountExceedsHoldingError(f"the amounts sum to {total}; part {p.id} holds {p.amount_minor}",
                                        held_minor=p.amount_minor, requested_minor=total)
    if total != p.amount_minor:
        raise InvalidSplitError(f"the amounts sum to {total}, not the {p.amount_minor} the part holds",
                                held_minor=p.amount_minor, sum_minor=total)
    return amounts


def _new_part_ids(r: Receivable, count: int) -> list[str]:
    rid = bytes.fromhex(r.id[2:])
    return ["0x" + derive_part_id(rid, r.part_count + i).hex() for i in range(count)]


def _currency_amounts(r: Receivable, amounts: Sequence[int | Money]) -> list[int]:
    out = []
    for a in amounts:
        if isinstance(a, Money):
            if a.currency != r.currency:
                raise UnsupportedCurrencyError(f"amounts must be in {r.currency}, the receivable's currency",
                                               field="amounts")
            out.append(a.value)
        else:
            out.append(a)
    return out


def split_part(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str,
               amounts: Sequence[int | Money]) -> Accepted:
    """The holder splits a confirmed, unfinanced part: it keeps ``amounts[0]``, each further amount
    becomes a new part it holds (ids returned, in order)."""
    r, p = _movable_part(facts, session, actor, receivable_id, part_id)
    values = _check_split(r, p, _currency_amounts(r, amounts))
    new_ids = _new_part_ids(r, len(values) - 1)
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "split", function="splitPart", args=[p.id, values], signer=signer,
                    gas=GAS["split_base"] + GAS["split_per_part"] * (len(values) - 1), part_id=p.id,
                    params={"amounts_minor": values, "new_part_ids": new_ids})
    return Accepted(r, (op,), tuple(new_ids))


def transfer_part(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                  to_member_id: str, amount: int | Money | None = None) -> Accepted:
    """The holder passes a part (or ``amount`` of it) to another member, such as a tier-2 supplier.

    Less than the whole part: the part is split first (it keeps the rest) and the new part of
    ``amount`` is transferred; both calls go in one database transaction, in order.
    """
    r, p = _movable_part(facts, session, actor, receivable_id, part_id)
    recipient = counterparty(session, to_member_id, ("supplier", "financier"), "to_member_id", actor)
    if recipient.id == r.buyer_id:
        raise InvalidCounterpartyError("a part cannot be passed to the receivable's buyer", field="to_member_id")
    value = p.amount_minor if amount is None else _currency_amounts(r, [amount])[0]
    if type(value) is not int or value <= 0:
        raise InvalidAmountError("amount must be a positive integer of minor units", field="amount")
    if value > p.amount_minor:
        raise AmountExceedsHoldingError(f"part {p.id} holds {p.amount_minor}; cannot transfer {value}",
                                        held_minor=p.amount_minor, requested_minor=value)
    signer = custodial_signer(session, actor.member_id)
    ops = []
    moved = p.id
    if value < p.amount_minor:
        values = _check_split(r, p, [p.amount_minor - value, value])
        (moved,) = _new_part_ids(r, 1)
        ops.append(write_operation(session, r, actor, "split", function="splitPart", args=[p.id, values], signer=signer,
                              gas=GAS["split_base"] + GAS["split_per_part"], part_id=p.id,
                              params={"amounts_minor": values, "new_part_ids": [moved]}, lock=False))
    ops.append(write_operation(session, r, actor, "transfer", function="transferPart", args=[moved, recipient.onchain_id],
                          signer=signer, gas=GAS["transfer"], part_id=moved,
                          params={"to_member_id": recipient.id, "amount_minor": value}))
    return Accepted(r, tuple(ops), (moved,))



# -- repayment and default --------------------------------------------------------------------------


def repay_receivable(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """The buyer reports, at or after maturity, that it repaid each holder what it holds (the
    repayments owed are recorded, and instructed as settlements, when the follower sees
    ``RepaymentReported``). Nothing is repaid until each holder confirms receipt."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, repays receivable {r.id}", receivable_id=r.id)
    require_role(actor, "buyer")
    take(session, r)
    require_status(r, facts, "confirmed", "defaulted")
    if _repayment_reported(session, r):
        raise ReceivableWrongStatusError(f"the repayment of receivable {r.id} is reported already",
                                         receivable_id=r.id, receivable_status=r.status)
    today = facts.today
    if today < r.due_date:
        raise ReceivableNotMaturedError(f"receivable {r.id} is due on {r.due_date}; today is {today}",
                                        due_date=r.due_date.isoformat())
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "repay", function="reportRepayment", args=[r.id], signer=signer,
                         gas=GAS["repay"])
    return Accepted(r, (op,))


def _repayment_reported(session: Session, r: Receivable) -> bool:
    return r.status == "repaying" or session.scalar(select(ReceivablePayment.id).where(
        ReceivablePayment.receivable_id == r.id, ReceivablePayment.kind == "repayment").limit(1)) is not None


def confirm_repayment_received(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str,
                               part_id: str) -> Accepted:
    """The holder of a part confirms it received the buyer's repayment of it: the part is repaid
    (and the receivable settled with its last part) when the follower sees ``PartRepaid``."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = part_of(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    take(session, r)
    if not _repayment_reported(session, r) or r.status not in ("repaying", "defaulted"):
        raise RepaymentNotReportedError(f"the buyer has not reported the repayment of receivable {r.id}",
                                        receivable_id=r.id)
    if p.repaid_minor is not None:
        raise PartAlreadyRepaidError(f"part {p.id} is repaid already", part_id=p.id)
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "confirm_receipt", function="confirmRepaymentReceived", args=[p.id],
                         signer=signer, gas=GAS["confirm_receipt"], part_id=p.id)
    return Accepted(r, (op,))


def declare_default(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """A financier holding a financed part declares the overdue receivable defaulted."""
    require_role(actor, "financier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    holds = session.scalar(select(ReceivablePart.id).where(
        ReceivablePart.receivable_id == r.id, ReceivablePart.holder_id == actor.member_id,
        ReceivablePart.financed.is_(True), ReceivablePart.repaid_minor.is_(None)).limit(1))
    if holds is None:
        raise NotPartFinancierError(f"{actor.member_id} holds no financed, unrepaid part of {r.id}",
                                    receivable_id=r.id)
    take(session, r)
    require_status(r, facts, "confirmed", "repaying")
    if (facts.today - r.due_date).days <= facts.grace_period_days:
        overdue_from = r.due_date + timedelta(days=facts.grace_period_days + 1)
        raise ReceivableNotOverdueError(f"receivable {r.id} is overdue only from {overdue_from}",
                                        overdue_from=overdue_from.isoformat())
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "default", function="declareDefault", args=[r.id], signer=signer,
                    gas=GAS["default"])
    return Accepted(r, (op,))



# -- evidence ---------------------------------------------------------------------------------------


def add_evidence(session: Session, actor: Actor, receivable_id: str, document: dict[str, Any],
                 label: str = "") -> ReceivableEvidence:
    """The supplier (or buyer) cites an anchored provenance proof; it must verify offline."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    if actor.member_id not in (r.supplier_id, r.buyer_id):
        raise NotReceivableSupplierError("only the receivable's supplier or buyer cites evidence",
                                         receivable_id=r.id)
    if not isinstance(label, str) or len(label) > ev.LABEL_LEN_MAX:
        raise EvidenceInvalidError(f"label must be at most {ev.LABEL_LEN_MAX} characters", field="label")
    doc = ev.parse_evidence(document)
    count = session.scalar(select(func.count()).select_from(ReceivableEvidence)
                           .where(ReceivableEvidence.receivable_id == r.id)) or 0
    if count >= ev.EVIDENCE_PER_RECEIVABLE_MAX:
        raise EvidenceInvalidError(f"a receivable cites at most {ev.EVIDENCE_PER_RECEIVABLE_MAX} proofs",
                                   max=ev.EVIDENCE_PER_RECEIVABLE_MAX)
    if session.scalar(select(ReceivableEvidence.id).where(ReceivableEvidence.receivable_id == r.id,
                                                          ReceivableEvidence.leaf_hash == doc.leaf_hash)):
        raise EvidenceInvalidError(f"leaf {doc.leaf_hash} is cited already", leaf_hash=doc.leaf_hash)
    row = ReceivableEvidence(receivable_id=r.id, label=label.strip(), leaf_hash=doc.leaf_hash, root=doc.root,
                             anchor_tx_hash=doc.anchor.tx_hash if doc.anchor else None,
                             anchor_block_number=doc.anchor.block_number if doc.anchor else None,
                             document=doc.to_json(), added_by=actor.member_id)
    session.add(row)
    session.flush()
    digest_changed(session, "receivable.evidence", row)
    return row


