"""Financing commands: a holder asks a financier, the financier offers terms, the holder accepts
(custodially, or with its own EIP-712 signature relayed by the operator)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.orm import Session

from settlement.core.errors import (
    InvalidCounterpartyError,
    InvalidOfferError,
    NoFinancingRequestError,
    NotPartHolderError,
    NotRequestedFinancierError,
    OfferExpiredError,
    OfferNotCurrentError,
    PartAlreadyFinancedError,
    ValidationError,
)
from settlement.domains.members import custodial_signer
from settlement.domains.receivables import typed_data as approvals
from settlement.domains.receivables.common import (
    GAS,
    OFFER_VALIDITY_S_MAX,
    Accepted,
    ChainFacts,
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
from settlement.domains.receivables.models import Actor
from settlement.domains.receivables.terms import DayCountBasis, FinancingTerms, day_number, financing_terms
from settlement.domains.receivables.typed_data import check_signed_by, deadline_within, signature_nonce
from settlement.store.models import Member
from settlement.store.models.receivables import Receivable, ReceivablePart

__all__ = ["request_financing", "withdraw_financing_request", "offer_typed_data", "offer_financing",
           "acceptance_typed_data", "accept_offer"]


def _financeable(facts: ChainFacts, r: Receivable, p: ReceivablePart) -> None:
    require_status(r, facts, "confirmed")
    require_not_due(r, facts)
    if p.financed:
        raise PartAlreadyFinancedError(f"part {p.id} is financed already", part_id=p.id)


def request_financing(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                      financier_id: str) -> Accepted:
    """The holder (a supplier) asks ``financier_id`` to finance a part; the part is locked meanwhile."""
    require_role(actor, "supplier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = part_of(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    take(session, r)
    _financeable(facts, r, p)
    financier = counterparty(session, financier_id, "financier", "financier_id", actor)
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "request_financing", function="requestFinancing",
                    args=[p.id, financier.onchain_id], signer=signer, gas=GAS["request_financing"], part_id=p.id,
                    params={"financier_id": financier.id})
    return Accepted(r, (op,))


def withdraw_financing_request(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str,
                               part_id: str) -> Accepted:
    require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = part_of(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    take(session, r)
    if not p.request_open:
        raise NoFinancingRequestError(f"part {p.id} has no open financing request", part_id=p.id)
    signer = custodial_signer(session, actor.member_id)
    op = write_operation(session, r, actor, "withdraw_financing", function="withdrawFinancingRequest", args=[p.id],
                    signer=signer, gas=GAS["withdraw_financing"], part_id=p.id)
    return Accepted(r, (op,))


def _for_financier(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str,
                   part_id: str, lock: bool = True) -> tuple[Receivable, ReceivablePart]:
    require_role(actor, "financier")
    r = get_receivable(session, actor, receivable_id, for_update=lock)
    p = part_of(session, r, part_id)
    if not p.request_open:
        raise NoFinancingRequestError(f"part {p.id} has no open financing request", part_id=p.id)
    if p.financier_id != actor.member_id:
        raise NotRequestedFinancierError(f"part {p.id} was offered to {p.financier_id}", part_id=p.id)
    if lock:
        take(session, r)
    _financeable(facts, r, p)
    return r, p


def _offer_terms(facts: ChainFacts, r: Receivable, p: ReceivablePart, rate_ppm: int, basis: DayCountBasis | int,
                 fee_minor: int, valid_until_s: int) -> tuple[DayCountBasis, Any]:
    try:
        basis = DayCountBasis(basis)
    except ValueError:
        raise InvalidOfferError("day count basis must be ACT/360 or ACT/365", field="day_count") from None
    now = facts.now_s
    if type(valid_until_s) is not int or not now < valid_until_s <= now + OFFER_VALIDITY_S_MAX:
        raise InvalidOfferError(f"valid_until must be within {OFFER_VALIDITY_S_MAX // 86_400} days from now",
                                field="valid_until")
    start = min(facts.today, r.due_date)
    try:
        terms = financing_terms(p.amount_minor, r.currency, rate_ppm, start, r.due_date, basis, fee_minor)
    except ValidationError as exc:
        raise InvalidOfferError(exc.detail, field="terms") from None
    if terms.advance_minor + terms.fee_minor > p.amount_minor:  # the contract's rule, checked before sending
        raise InvalidOfferError("advance plus fee exceed the part")
    return basis, terms


def offer_typed_data(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                     rate_ppm: int, basis: DayCountBasis | int, fee_minor: int, valid_until_s: int,
                     deadline: int | None = None) -> tuple[dict[str, Any], FinancingTerms]:
    """The EIP-712 ``FinancingOffer`` over the terms the service computes from the financier's
    rate, day count, fee and validity (as :func:`offer_financing`), for its own key or wallet."""
    r, p = _for_financier(facts, session, actor, receivable_id, part_id, lock=False)
    basis, terms = _offer_terms(facts, r, p, rate_ppm, basis, fee_minor, valid_until_s)
    return _offer_typed(facts, session, r, p, terms, rate_ppm, int(basis), valid_until_s,
                        deadline_within(facts, deadline)), terms


def _offer_typed(facts: ChainFacts, session: Session, r: Receivable, p: ReceivablePart, terms: FinancingTerms,
                 rate_ppm: int, basis: int, valid_until_s: int, deadline: int) -> dict[str, Any]:
    financier = session.get(Member, p.financier_id)
    nonce = signature_nonce(facts, financier, p.id)
    # A signed offer's id comes from its nonce (used once on chain), so the id the financier signs
    # is the one the service sends and answers with.
    offer_id = approvals.offer_id_of(facts.chain_id, facts.contract, part_id=p.id,
                                     financier_onchain_id=financier.onchain_id, salt=nonce)
    return approvals.offer_typed_data(
        facts.chain_id, facts.contract, part_id=p.id, offer_id=offer_id, financier_onchain_id=financier.onchain_id,
        amount_minor=p.amount_minor, currency=r.currency, due_day=day_number(r.due_date),
        advance_minor=terms.advance_minor, fee_minor=terms.fee_minor, discount_rate_ppm=rate_ppm,
        day_count_basis=basis, valid_until=valid_until_s, nonce=nonce, deadline=deadline)


def offer_financing(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                    rate_ppm: int, basis: DayCountBasis | int, fee_minor: int, valid_until_s: int,
                    signature: str | None = None, deadline: int | None = None,
                    signer: str | None = None) -> Accepted:
    """The requested financier offers terms: custodially, or with its own approval of
    ``FinancingOffer`` (a key's signature or its contract wallet's, relayed by the operator). The
    discount runs from the chain's today to the due date, rounded half up once
    (``terms.financing_terms``); the advance is the part's amount less discount and fee."""
    r, p = _for_financier(facts, session, actor, receivable_id, part_id)
    basis, terms = _offer_terms(facts, r, p, rate_ppm, basis, fee_minor, valid_until_s)
    params = {"advance_minor": terms.advance_minor, "fee_minor": terms.fee_minor,
              "discount_minor": terms.discount_minor, "days": terms.days, "rate_ppm": rate_ppm,
              "basis": int(basis), "valid_until": valid_until_s,
              "financing_date": min(facts.today, r.due_date).isoformat()}
    if signature is None:
        # The id is assigned here, before the transaction: a random salt, stored with the operation.
        financier = session.get(Member, p.financier_id)
        salt = secrets.randbits(256)
        offer_id = approvals.offer_id_of(facts.chain_id, facts.contract, part_id=p.id,
                                         financier_onchain_id=financier.onchain_id, salt=salt)
        signer_key = custodial_signer(session, actor.member_id)
        args = [p.id, offer_id, terms.advance_minor, terms.fee_minor, rate_ppm, int(basis), valid_until_s]
        op = write_operation(session, r, actor, "offer", function="offerFinancing", args=args, signer=signer_key,
                             gas=GAS["offer"], part_id=p.id,
                             params={**params, "offer_id": offer_id, "offer_salt": hex(salt)})
        return Accepted(r, (op,), terms=terms, offer_id=offer_id)
    approvals.check_approval_signature(signature)
    if deadline is None:
        raise ValidationError("a signed offer needs its deadline", field="deadline")
    deadline = deadline_within(facts, deadline)
    typed = _offer_typed(facts, session, r, p, terms, rate_ppm, int(basis), valid_until_s, deadline)
    financier = session.get(Member, p.financier_id)
    account = check_signed_by(facts, session, typed, signature, financier, signer)
    nonce, offer_id = typed["message"]["nonce"], typed["message"]["offerId"]
    args = [p.id, offer_id, [terms.advance_minor, terms.fee_minor, rate_ppm, int(basis), valid_until_s], account,
            nonce, deadline, signature.lower()]
    op = write_operation(session, r, actor, "offer_signed", function="offerFinancingWithSignature", args=args,
                         signer=facts.relayer, gas=GAS["offer_signed"], part_id=p.id,
                         params={**params, "offer_id": offer_id, "signer": account, "deadline": deadline,
                                 "nonce": str(nonce)},
                         nonce_member_id=financier.id)
    return Accepted(r, (op,), terms=terms, offer_id=offer_id)


def _for_seller(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str,
                offer_id: str | None) -> tuple[Receivable, ReceivablePart]:
    require_role(actor, "supplier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = part_of(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    take(session, r)
    _financeable(facts, r, p)
    if not p.request_open or p.offer_id is None:
        raise OfferNotCurrentError(f"part {p.id} has no current offer", part_id=p.id)
    if offer_id is not None and offer_id != p.offer_id:
        raise OfferNotCurrentError(f"offer {offer_id} is not the current offer {p.offer_id} on part {p.id}",
                                   part_id=p.id, current_offer_id=p.offer_id)
    if (p.offer_valid_until or 0) < facts.now_s:
        raise OfferExpiredError(f"offer {p.offer_id} expired at {p.offer_valid_until}", part_id=p.id)
    financier = session.get(Member, p.financier_id) if p.financier_id else None
    if financier is None or financier.status != "active" or "financier" not in financier.roles:
        raise InvalidCounterpartyError(f"the financier {p.financier_id} is no longer an active financier",
                                       field="financier")
    return r, p


def acceptance_typed_data(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str,
                          deadline: int | None = None) -> dict[str, Any]:
    """The EIP-712 ``AcceptFinancingOffer`` over the part's current offer, for the holder's own key."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    p = part_of(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    if not p.request_open or p.offer_id is None:
        raise OfferNotCurrentError(f"part {p.id} has no current offer", part_id=p.id)
    return _accept_typed(facts, session, p, deadline_within(facts, deadline))


def _accept_typed(facts: ChainFacts, session: Session, p: ReceivablePart, deadline: int) -> dict[str, Any]:
    holder = session.get(Member, p.holder_id)
    financier = session.get(Member, p.financier_id)
    r = session.get(Receivable, p.receivable_id)
    return approvals.accept_typed_data(
        facts.chain_id, facts.contract, part_id=p.id, offer_id=p.offer_id,
        financier_onchain_id=financier.onchain_id, amount_minor=p.amount_minor, currency=r.currency,
        due_day=day_number(r.due_date), advance_minor=int(p.advance_minor or 0), fee_minor=int(p.fee_minor or 0),
        discount_rate_ppm=int(p.discount_rate_ppm or 0), day_count_basis=int(p.day_count_basis or 0),
        valid_until=int(p.offer_valid_until or 0), nonce=signature_nonce(facts, holder, p.id), deadline=deadline)


def accept_offer(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                 offer_id: str, signature: str | None = None, deadline: int | None = None,
                 signer: str | None = None) -> Accepted:
    """The holder accepts the current offer: custodially, or with its own approval of
    ``AcceptFinancingOffer`` over the offer's terms (a key's signature or its contract wallet's,
    relayed by the operator). On chain, the part passes to the financier; the disbursement of the
    advance is recorded when the follower sees ``FinancingAccepted``."""
    r, p = _for_seller(facts, session, actor, receivable_id, part_id, offer_id)
    if signature is None:
        signer = custodial_signer(session, actor.member_id)
        op = write_operation(session, r, actor, "accept", function="acceptOffer", args=[p.id, offer_id], signer=signer,
                        gas=GAS["accept"], part_id=p.id, params={"offer_id": offer_id})
        return Accepted(r, (op,))
    approvals.check_approval_signature(signature)
    if deadline is None:
        raise ValidationError("a signed acceptance needs its deadline", field="deadline")
    deadline = deadline_within(facts, deadline)
    holder = session.get(Member, p.holder_id)
    typed = _accept_typed(facts, session, p, deadline)
    account = check_signed_by(facts, session, typed, signature, holder, signer)
    nonce = typed["message"]["nonce"]
    op = write_operation(session, r, actor, "accept_signed", function="acceptOfferWithSignature",
                         args=[p.id, offer_id, account, nonce, deadline, signature.lower()], signer=facts.relayer,
                         gas=GAS["accept_signed"], part_id=p.id,
                         params={"offer_id": offer_id, "signer": account, "deadline": deadline, "nonce": str(nonce)},
                         nonce_member_id=holder.id)
    return Accepted(r, (op,))

