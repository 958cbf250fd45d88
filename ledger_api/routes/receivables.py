"""Receivables (supply-chain finance): suppliers register and pass parts on, buyers confirm and
repay, financiers offer and fund. The creates answer 201 with their object, its chain
operation(s) in ``pending_operations`` (register, split, transfer: the receivable, at its
``Location``; an offer: the offer); the other commands answer 202 with the operation(s) they
enqueued. The receivable changes once the follower sees the contract's event.

Each handler reads what it needs from the node first (``read_chain_facts``), then opens its
database transaction: the store's write lock is never held across an RPC round trip. Reads use
read sessions."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ledger_api.conventions import LOCATION, CursorQuery, IdempotencyKey, Locate, idempotent, replayed_headers
from ledger_api.deps import CurrentMember, Principal, RuntimeDep, require_roles
from ledger_api.schemas import Money as MoneyBody
from ledger_api.schemas import Problem, money
from ledger_api.schemas.receivables import (
    AcceptanceCreate,
    EvidenceCreate,
    EvidenceListPublic,
    EvidencePublic,
    FinancingOfferPublic,
    FinancingRequestCreate,
    HistoryEventPublic,
    HistoryPublic,
    NonceInvalidation,
    NonceInvalidationAccepted,
    OfferCreate,
    OfferPublic,
    PartPublic,
    PaymentPublic,
    PaymentsPublic,
    ReceivableAccepted,
    ReceivableCreate,
    ReceivableOperationPublic,
    ReceivablePublic,
    ReceivablesPublic,
    SignedConfirmation,
    SplitRequest,
    TermsPublic,
    TransferRequest,
    TypedDataPublic,
    VerificationStep,
)
from settlement.chain.describe import describe_typed_data
from settlement.core.errors import UnsupportedCurrencyError, ValidationError
from settlement.core.money import Money
from settlement.domains import receivables as svc
from settlement.domains.receivables import Actor, ChainFacts, DayCountBasis, EvidenceCheck
from settlement.runtime import Runtime
from settlement.store.models import Member
from settlement.store.models.receivables import (
    Receivable,
    ReceivableOperation,
    ReceivablePart,
    ReceivablePayment,
)

router = APIRouter(prefix="/v1/receivables", tags=["receivables"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem},
                              409: {"model": Problem}, 422: {"model": Problem}})

ReceivableIdPath = Annotated[str, Path(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")]
PartIdPath = Annotated[str, Path(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")]
Supplier = Annotated[Principal, Depends(require_roles("supplier"))]
Buyer = Annotated[Principal, Depends(require_roles("buyer"))]
Financier = Annotated[Principal, Depends(require_roles("financier"))]
SupplierOrBuyer = Annotated[Principal, Depends(require_roles("supplier", "buyer"))]

_BASIS_NAME = {DayCountBasis.ACT_360: "ACT/360", DayCountBasis.ACT_365: "ACT/365"}
_BASIS_OF = {v: k for k, v in _BASIS_NAME.items()}


def actor_of(p: Principal) -> Actor:
    return Actor(member_id=p.member_id, roles=frozenset(p.roles), active=p.active)



def _op(op: ReceivableOperation) -> ReceivableOperationPublic:
    params = op.params or {}
    return ReceivableOperationPublic(id=op.id, kind=op.kind, part_id=op.part_id, requested_by=op.requested_by,
                           status=op.status, error_name=op.error_name, error_args=op.error_args,
                           outbox_id=op.outbox_id, tx_hash=op.tx_hash, block_number=op.block_number,
                           created_at=op.created_at, offer_id=params.get("offer_id"),
                           new_part_ids=list(params.get("new_part_ids") or ()) if op.kind == "split" else [],
                           to_member_id=params.get("to_member_id") if op.kind == "transfer" else None)


def _part(r: Receivable, p: ReceivablePart) -> PartPublic:
    offer = None
    if p.request_open and p.offer_id is not None:
        offer = OfferPublic(offer_id=str(p.offer_id), financier_id=p.financier_id,
                            advance=money(p.advance_minor or 0, r.currency), fee=money(p.fee_minor or 0, r.currency),
                            discount_rate_ppm=p.discount_rate_ppm or 0,
                            day_count=_BASIS_NAME[DayCountBasis(p.day_count_basis)],
                            valid_until=datetime.fromtimestamp(p.offer_valid_until or 0, timezone.utc))
    return PartPublic(id=p.id, index=p.index, holder_id=p.holder_id, holder_onchain_id=p.holder_onchain_id,
                      amount=money(p.amount_minor, r.currency), financed=p.financed,
                      financing_requested_from=p.financier_id if p.request_open else None, offer=offer,
                      sold_by=p.seller_id,
                      repaid=money(p.repaid_minor, r.currency) if p.repaid_minor is not None else None)


def receivable_public(facts: ChainFacts, r: Receivable, parts: list[ReceivablePart],
                      pending: list[ReceivableOperation]) -> ReceivablePublic:
    grace, today = facts.grace_period_days, facts.today
    return ReceivablePublic(
        id=r.id, supplier_id=r.supplier_id, buyer_id=r.buyer_id, invoice_number=r.invoice_number,
        invoice_number_normalized=r.invoice_number_normalized, invoice_hash=r.invoice_hash,
        face_value=money(r.face_value_minor, r.currency), issue_date=r.issue_date, due_date=r.due_date,
        overdue_from=r.due_date + timedelta(days=grace + 1),
        status=svc.display_status(r.status, r.due_date, today, grace), stored_status=r.status,
        confirmation=r.confirmation, confirmed_by=r.confirmed_by, rejection=r.rejection,
        financed=money(sum(p.amount_minor for p in parts if p.financed), r.currency),
        parts=[_part(r, p) for p in parts], pending_operation_id=r.busy_operation_id,
        pending_operations=[_op(o) for o in pending], created_at=r.created_at)


def _one(facts: ChainFacts, session: Session, r: Receivable) -> ReceivablePublic:
    session.flush()
    return receivable_public(facts, r, svc.parts_of(session, [r.id])[r.id],
                             svc.pending_operations_of(session, [r.id])[r.id])


def _terms(t: svc.FinancingTerms) -> TermsPublic:
    return TermsPublic(face=money(t.face_minor, t.currency), discount=money(t.discount_minor, t.currency),
                       fee=money(t.fee_minor, t.currency), advance=money(t.advance_minor, t.currency),
                       days=t.days, rate_ppm=t.rate_ppm, day_count=_BASIS_NAME[t.basis], rounding=t.rounding.value)


def _accepted(facts: ChainFacts, session: Session, done: svc.Accepted) -> ReceivableAccepted:
    terms = _terms(done.terms) if done.terms is not None else None
    return ReceivableAccepted(receivable=_one(facts, session, done.receivable),
                              operations=[_op(o) for o in done.operations], terms=terms)


def _m(body: MoneyBody) -> Money:
    """The request's money as the domain's value object."""
    return Money(body.value, body.currency)


Command = Callable[[ChainFacts, Session, Actor], svc.Accepted]
Answer = Callable[[ChainFacts, Session, svc.Accepted], tuple[int, dict]]


def _accepted_202(facts: ChainFacts, session: Session, done: svc.Accepted) -> tuple[int, dict]:
    return status.HTTP_202_ACCEPTED, _accepted(facts, session, done).model_dump(mode="json")


def _receivable_created(facts: ChainFacts, session: Session, done: svc.Accepted) -> tuple[int, dict]:
    """201 with the receivable: the command's operation(s) in ``pending_operations`` (a split's
    new part ids in its ``new_part_ids``, a transfer's moved part in its ``part_id``)."""
    return status.HTTP_201_CREATED, _one(facts, session, done.receivable).model_dump(mode="json")


def _receivable_at(body: dict) -> str:
    """A receivable answer's ``Location``."""
    return f"/v1/receivables/{body['id']}"


def _offer_created(facts: ChainFacts, session: Session, done: svc.Accepted) -> tuple[int, dict]:
    """201 with the offer: its id (assigned before the transaction), terms and pending operation."""
    op = done.operation
    if done.offer_id is None or done.terms is None or op.part_id is None:
        raise AssertionError("an offer command answers its offer id, terms and part")
    params = op.params or {}
    offer = FinancingOfferPublic(
        id=done.offer_id, receivable_id=done.receivable.id, part_id=op.part_id, financier_id=op.requested_by,
        status="pending", terms=_terms(done.terms),
        valid_until=datetime.fromtimestamp(int(params["valid_until"]), timezone.utc),
        signer=params.get("signer"), pending_operations=[_op(op)])
    return status.HTTP_201_CREATED, offer.model_dump(mode="json")


class Once:
    """A creating command's ``Idempotency-Key`` (ledger_api.conventions): the key, the route and
    what selects the work (path ids, body)."""

    def __init__(self, key: str | None, operation: str, request: object) -> None:
        self.key, self.operation, self.request = key, operation, request


def _command(runtime: Runtime, who: Principal, command: Command, *, nonces_of: Sequence[tuple[str, int]] = (),
             invoice_hashes: Sequence[tuple[str, str]] = (), once: Once | None = None,
             answer: Answer = _accepted_202, location: Locate | None = None) -> ReceivableAccepted:
    """Read the chain facts, then run ``command`` in one write transaction and answer from it.
    With ``once`` the command is idempotent: its answer is stored in that transaction, and a
    retry with the same key gets it again (a JSONResponse then)."""
    if once is not None:
        facts_of = lambda: svc.read_chain_facts(runtime, nonces_of=nonces_of,  # noqa: E731
                                                invoice_hashes=invoice_hashes)
        return _idempotent(runtime, who, once, facts_of, command, answer, location)  # type: ignore[return-value]
    facts = svc.read_chain_facts(runtime, nonces_of=nonces_of, invoice_hashes=invoice_hashes)
    with runtime.db.transaction() as session:
        return _accepted(facts, session, command(facts, session, actor_of(who)))


def _idempotent(runtime: Runtime, who: Principal, once: Once, facts_of: Callable[[], ChainFacts],
                command: Command, answer: Answer = _accepted_202, location: Locate | None = None) -> JSONResponse:
    """The command's answer (202 with what it enqueued, or ``answer``'s), once per key: the chain
    facts are read only when the work runs (a replay reads nothing), the answer stored in the
    command's own transaction; ``location`` its ``Location`` header, from the answer's body."""
    facts: list[ChainFacts] = []

    def work(session: Session) -> tuple[int, dict]:
        return answer(facts[0], session, command(facts[0], session, actor_of(who)))

    return idempotent(runtime, who.member_id, once.key, once.operation, once.request, work,
                      before=lambda: facts.append(facts_of()), location=location)


TypedOf = Callable[[ChainFacts, Session, Actor], dict]


def _approved_command(runtime: Runtime, who: Principal, command: Command, *, nonces_of: Sequence[tuple[str, int]],
                      typed_of: TypedOf, signer: str | None, signature: str | None,
                      once: Once | None = None, answer: Answer = _accepted_202) -> ReceivableAccepted:
    """A command carrying the member's own approval. When it names its ``signer`` (a contract
    wallet must), the typed data is built first and the signer's ERC-1271 answer on its digest is
    read by eth_call with the chain facts, before the write transaction."""
    signatures: list[tuple[str, str, str]] = []
    if signature is not None and signer is not None:
        facts = svc.read_chain_facts(runtime, nonces_of=nonces_of)
        with runtime.db.read() as session:
            typed = typed_of(facts, session, actor_of(who))
        signatures.append((signer, svc.typed_data_digest(typed), signature))
    if once is not None:
        return _idempotent(runtime, who, once, lambda: svc.read_chain_facts(  # type: ignore[return-value]
            runtime, nonces_of=nonces_of, signatures=signatures), command, answer)
    facts = svc.read_chain_facts(runtime, nonces_of=nonces_of, signatures=signatures)
    with runtime.db.transaction() as session:
        return _accepted(facts, session, command(facts, session, actor_of(who)))


def _typed_public(typed: dict) -> TypedDataPublic:
    return TypedDataPublic(**typed, summary=describe_typed_data(typed))


# -- register, list, read ------------------------------------------------------------------------------


@router.post("/nonce-invalidations", status_code=status.HTTP_202_ACCEPTED, response_model=NonceInvalidationAccepted,
             summary="Void your unused approvals of one nonce key, up to a sequence (invalidateNonce on chain)")
def invalidate_nonce(body: NonceInvalidation, runtime: RuntimeDep, who: CurrentMember) -> NonceInvalidationAccepted:
    nonce = int(body.nonce, 16)
    with runtime.db.transaction() as session:
        row = svc.invalidate_nonce(session, actor_of(who), nonce)
        return NonceInvalidationAccepted(member_id=who.member_id, nonce=hex(nonce), outbox_id=row.id,
                                         status=row.status)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReceivablePublic,
             responses={201: {"headers": LOCATION}},
             summary="Register a receivable against a buyer (supplier): 201 with the receivable (at `Location`), "
                     "its registration in `pending_operations` until the chain confirms it")
def register(body: ReceivableCreate, runtime: RuntimeDep, who: Supplier,
             idempotency_key: IdempotencyKey = None) -> JSONResponse:
    identity = svc.invoice_identity_of(body.buyer_id, body.invoice_number)
    facts: list[ChainFacts] = []

    def work(session: Session) -> tuple[int, dict]:
        done = svc.register_receivable(facts[0], session, actor_of(who), buyer_id=body.buyer_id,
                                       invoice_number=body.invoice_number, face_value=_m(body.face_value),
                                       issue_date=body.issue_date, due_date=body.due_date)
        return status.HTTP_201_CREATED, _one(facts[0], session, done.receivable).model_dump(mode="json")

    return idempotent(runtime, who.member_id, idempotency_key, "POST /v1/receivables", body.model_dump(mode="json"),
                      work, before=lambda: facts.append(svc.read_chain_facts(
                          runtime, invoice_hashes=[identity] if identity else [])), location=_receivable_at)


@router.get("", response_model=ReceivablesPublic, summary="My receivables, by role (any member)")
def list_mine(runtime: RuntimeDep, who: CurrentMember,
              role: Annotated[str | None, Query(pattern=r"^(supplier|buyer|holder|financier)$")] = None,
              status_: Annotated[str | None, Query(alias="status",
                                                   pattern=r"^(pending|registered|confirmed|repaying|settled|defaulted|cancelled|rejected)$")] = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              cursor: CursorQuery = None,
              after: Annotated[str | None, Query(max_length=66, deprecated=True,
                                                 description="the former name of cursor")] = None) -> ReceivablesPublic:
    facts = svc.read_chain_facts(runtime)
    with runtime.db.read() as session:
        rows, next_cursor = svc.list_receivables(session, actor_of(who), role=role, status=status_, limit=limit,
                                                 after=cursor or after, field="cursor" if cursor else "after")
        ids = [r.id for r in rows]
        parts, pending = svc.parts_of(session, ids), svc.pending_operations_of(session, ids)
        data = [receivable_public(facts, r, parts[r.id], pending[r.id]) for r in rows]
    return ReceivablesPublic(data=data, count=len(data), next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/{receivable_id}", response_model=ReceivablePublic, summary="One receivable (its parties)")
def get_one(receivable_id: ReceivableIdPath, runtime: RuntimeDep,
            who: CurrentMember) -> ReceivablePublic:
    facts = svc.read_chain_facts(runtime)
    with runtime.db.read() as session:
        return _one(facts, session, svc.get_receivable(session, actor_of(who), receivable_id))


@router.get("/{receivable_id}/history", response_model=HistoryPublic,
            summary="Contract events with tx hash and block, and the operations behind them (its parties)")
def history(receivable_id: ReceivableIdPath, runtime: RuntimeDep, who: CurrentMember) -> HistoryPublic:
    with runtime.db.read() as session:
        entries = svc.history_of(session, actor_of(who), receivable_id)
        operations = svc.operations_of(session, receivable_id)
    return HistoryPublic(receivable_id=receivable_id,
                         events=[HistoryEventPublic(event=e.event, part_id=e.part_id, args=e.args, tx_hash=e.tx_hash,
                                                    block_number=e.block_number, log_index=e.log_index,
                                                    operation_id=e.operation_id) for e in entries],
                         operations=[_op(o) for o in operations])


# -- cancel, reject, confirm ---------------------------------------------------------------------------


@router.post("/{receivable_id}/cancellation", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted,
             summary="Withdraw a registered receivable before the buyer confirms it; frees its invoice (supplier)")
def cancel(receivable_id: ReceivableIdPath, runtime: RuntimeDep, who: CurrentMember) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.cancel_receivable(f, s, a, receivable_id))


@router.post("/{receivable_id}/rejection", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted,
             summary="Refuse a registered receivable (not your invoice, or not these terms); frees its invoice (buyer)")
def reject(receivable_id: ReceivableIdPath, runtime: RuntimeDep, who: Buyer) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.reject_receivable(f, s, a, receivable_id))


@router.post("/{receivable_id}/confirm", status_code=status.HTTP_202_ACCEPTED, response_model=ReceivableAccepted,
             summary="Confirm the debt, through the buyer's custodial account (buyer)")
def confirm(receivable_id: ReceivableIdPath, runtime: RuntimeDep,
            who: Buyer) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.confirm_receivable(f, s, a, receivable_id))


@router.get("/{receivable_id}/confirmation-typed-data", response_model=TypedDataPublic,
            summary="EIP-712 ConfirmReceivable (supplier, invoice, face value, currency, dates) to sign with "
                    "the buyer's own key or contract wallet (buyer)")
def confirmation_typed_data(receivable_id: ReceivableIdPath, runtime: RuntimeDep, who: Buyer,
                            deadline: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None) -> TypedDataPublic:
    facts = svc.read_chain_facts(runtime, nonces_of=[(who.member_id, svc.nonce_key(receivable_id))])
    with runtime.db.read() as session:
        return _typed_public(svc.confirmation_typed_data(facts, session, actor_of(who), receivable_id, deadline))


@router.post("/{receivable_id}/confirmations", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted,
             summary="Confirm with the buyer's own EIP-712 approval (key or ERC-1271 wallet), relayed by the "
                     "operator (buyer)")
def confirm_signed(receivable_id: ReceivableIdPath, body: SignedConfirmation, runtime: RuntimeDep,
                   who: Buyer) -> ReceivableAccepted:
    return _approved_command(
        runtime, who, lambda f, s, a: svc.confirm_with_signature(
            f, s, a, receivable_id, signature=body.signature, deadline=body.deadline, signer=body.signer),
        nonces_of=[(who.member_id, svc.nonce_key(receivable_id))], signer=body.signer, signature=body.signature,
        typed_of=lambda f, s, a: svc.confirmation_typed_data(f, s, a, receivable_id, body.deadline))


# -- parts -----------------------------------------------------------------------------------------------


@router.post("/{receivable_id}/parts/{part_id}/split", status_code=status.HTTP_201_CREATED,
             response_model=ReceivablePublic, responses={201: {"headers": LOCATION}},
             summary="Split a part you hold (holder): 201 with the receivable (at `Location`), its `split` operation "
                     "in `pending_operations` naming the new parts (`new_part_ids`) until the chain confirms it")
def split(receivable_id: ReceivableIdPath, part_id: PartIdPath, body: SplitRequest, runtime: RuntimeDep,
          who: CurrentMember, idempotency_key: IdempotencyKey = None) -> ReceivablePublic:
    return _command(runtime, who, lambda f, s, a: svc.split_part(  # type: ignore[return-value]
        f, s, a, receivable_id, part_id, [_m(x) for x in body.amounts]),
        once=Once(idempotency_key, "POST /v1/receivables/{id}/parts/{part}/split",
                  [receivable_id, part_id, body.model_dump(mode="json")]),
        answer=_receivable_created, location=_receivable_at)


@router.post("/{receivable_id}/parts/{part_id}/transfer", status_code=status.HTTP_201_CREATED,
             response_model=ReceivablePublic, responses={201: {"headers": LOCATION}},
             summary="Pass a part (or an amount of it: split first) to another member (holder): 201 with the "
                     "receivable (at `Location`), its `transfer` operation (the part it moves in `part_id`; after "
                     "a `split` when an amount is passed) in `pending_operations`")
def transfer(receivable_id: ReceivableIdPath, part_id: PartIdPath, body: TransferRequest, runtime: RuntimeDep,
             who: CurrentMember, idempotency_key: IdempotencyKey = None) -> ReceivablePublic:
    return _command(runtime, who, lambda f, s, a: svc.transfer_part(  # type: ignore[return-value]
        f, s, a, receivable_id, part_id, to_member_id=body.to_member_id,
        amount=_m(body.amount) if body.amount is not None else None),
        once=Once(idempotency_key, "POST /v1/receivables/{id}/parts/{part}/transfer",
                  [receivable_id, part_id, body.model_dump(mode="json")]),
        answer=_receivable_created, location=_receivable_at)


# -- financing -------------------------------------------------------------------------------------------


@router.post("/{receivable_id}/parts/{part_id}/financing-request", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted, summary="Ask a financier to finance a part you hold (supplier)")
def request_financing(receivable_id: ReceivableIdPath, part_id: PartIdPath, body: FinancingRequestCreate,
                      runtime: RuntimeDep, who: Supplier, idempotency_key: IdempotencyKey = None) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.request_financing(f, s, a, receivable_id, part_id,
                                                                        financier_id=body.financier_id),
                    once=Once(idempotency_key, "POST /v1/receivables/{id}/parts/{part}/financing-request",
                              [receivable_id, part_id, body.model_dump(mode="json")]))


@router.post("/{receivable_id}/parts/{part_id}/financing-request/withdraw", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted, summary="Withdraw your open financing request (holder)")
def withdraw_financing(receivable_id: ReceivableIdPath, part_id: PartIdPath, runtime: RuntimeDep,
                       who: CurrentMember) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.withdraw_financing_request(f, s, a, receivable_id, part_id))


def _offer_args(body_rate: str, valid_until: datetime) -> tuple[int, int]:
    if valid_until.tzinfo is None:
        raise ValidationError("valid_until needs a time zone (e.g. Z)", field="valid_until")
    return svc.rate_ppm_from_decimal(body_rate), int(valid_until.timestamp())


@router.get("/{receivable_id}/parts/{part_id}/offer-typed-data", response_model=TypedDataPublic,
            summary="EIP-712 FinancingOffer over the terms computed from your rate, day count, fee and validity, "
                    "for your own key or contract wallet (the financier asked)")
def offer_typed_data(receivable_id: ReceivableIdPath, part_id: PartIdPath, runtime: RuntimeDep, who: Financier,
                     discount_rate: Annotated[str, Query(min_length=1, max_length=20, pattern=r"^[0-9]+(\.[0-9]+)?$")],
                     day_count: Annotated[str, Query(pattern=r"^ACT/36[05]$")],
                     fee_minor: Annotated[int, Query(ge=0, le=2**63 - 1)],
                     valid_until: Annotated[datetime, Query()],
                     deadline: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None) -> TypedDataPublic:
    rate_ppm, valid_until_s = _offer_args(discount_rate, valid_until)
    facts = svc.read_chain_facts(runtime, nonces_of=[(who.member_id, svc.nonce_key(part_id))])
    with runtime.db.read() as session:
        typed, _terms = svc.offer_typed_data(facts, session, actor_of(who), receivable_id, part_id, rate_ppm=rate_ppm,
                                             basis=_BASIS_OF[day_count], fee_minor=fee_minor,
                                             valid_until_s=valid_until_s, deadline=deadline)
    return _typed_public(typed)


@router.post("/{receivable_id}/parts/{part_id}/offers", status_code=status.HTTP_201_CREATED,
             response_model=FinancingOfferPublic,
             summary="Offer terms on a part you were asked to finance (financier): custodially, or with your own "
                     "approval of the FinancingOffer typed data; the advance is computed. 201 with the offer: "
                     "its id (assigned before the transaction; accept by it) and its pending `offer` operation")
def offer(receivable_id: ReceivableIdPath, part_id: PartIdPath, body: OfferCreate, runtime: RuntimeDep,
          who: Financier, idempotency_key: IdempotencyKey = None) -> FinancingOfferPublic:
    rate_ppm, valid_until_s = _offer_args(body.discount_rate, body.valid_until)
    once = Once(idempotency_key, "POST /v1/receivables/{id}/parts/{part}/offers",
                [receivable_id, part_id, body.model_dump(mode="json")])

    def command(f: ChainFacts, s: Session, a: Actor) -> svc.Accepted:
        r = svc.get_receivable(s, a, receivable_id)
        if body.fee.currency != r.currency:
            raise UnsupportedCurrencyError(f"the fee must be in {r.currency}", field="fee")
        return svc.offer_financing(f, s, a, receivable_id, part_id, rate_ppm=rate_ppm,
                                   basis=_BASIS_OF[body.day_count], fee_minor=body.fee.value,
                                   valid_until_s=valid_until_s, signature=body.signature, deadline=body.deadline,
                                   signer=body.signer)

    if body.signature is None:
        return _command(runtime, who, command, once=once, answer=_offer_created)  # type: ignore[return-value]
    return _approved_command(  # type: ignore[return-value]
        runtime, who, command, nonces_of=[(who.member_id, svc.nonce_key(part_id))], signer=body.signer,
        signature=body.signature, once=once, answer=_offer_created,
        typed_of=lambda f, s, a: svc.offer_typed_data(f, s, a, receivable_id, part_id, rate_ppm=rate_ppm,
                                                      basis=_BASIS_OF[body.day_count], fee_minor=body.fee.value,
                                                      valid_until_s=valid_until_s, deadline=body.deadline)[0])


@router.get("/{receivable_id}/parts/{part_id}/acceptance-typed-data", response_model=TypedDataPublic,
            summary="EIP-712 AcceptFinancingOffer over the current offer's terms, for the holder's own key or "
                    "contract wallet (supplier)")
def acceptance_typed_data(receivable_id: ReceivableIdPath, part_id: PartIdPath, runtime: RuntimeDep,
                          who: Supplier,
                          deadline: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None) -> TypedDataPublic:
    facts = svc.read_chain_facts(runtime, nonces_of=[(who.member_id, svc.nonce_key(part_id))])
    with runtime.db.read() as session:
        return _typed_public(svc.acceptance_typed_data(facts, session, actor_of(who), receivable_id, part_id,
                                                       deadline))


@router.post("/{receivable_id}/parts/{part_id}/acceptances", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted,
             summary="Accept the current offer: custodially, or with your own EIP-712 approval (key or ERC-1271 "
                     "wallet) (supplier)")
def accept(receivable_id: ReceivableIdPath, part_id: PartIdPath, body: AcceptanceCreate, runtime: RuntimeDep,
           who: Supplier) -> ReceivableAccepted:
    def command(f: ChainFacts, s: Session, a: Actor) -> svc.Accepted:
        return svc.accept_offer(f, s, a, receivable_id, part_id, offer_id=body.offer_id, signature=body.signature,
                                deadline=body.deadline, signer=body.signer)

    if body.signature is None:
        return _command(runtime, who, command)
    return _approved_command(
        runtime, who, command, nonces_of=[(who.member_id, svc.nonce_key(part_id))], signer=body.signer,
        signature=body.signature,
        typed_of=lambda f, s, a: svc.acceptance_typed_data(f, s, a, receivable_id, part_id, body.deadline))


# -- repayment and default -------------------------------------------------------------------------------


@router.post("/{receivable_id}/repayment", status_code=status.HTTP_202_ACCEPTED, response_model=ReceivableAccepted,
             summary="Report, at or after maturity, that you repaid each holder what it holds; each part is "
                     "repaid once its holder confirms receipt (buyer)")
def repay(receivable_id: ReceivableIdPath, runtime: RuntimeDep, who: Buyer) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.repay_receivable(f, s, a, receivable_id))


@router.post("/{receivable_id}/parts/{part_id}/repayment-receipt", status_code=status.HTTP_202_ACCEPTED,
             response_model=ReceivableAccepted,
             summary="Confirm you received the buyer's repayment of a part you hold; the last one settles the "
                     "receivable (holder)")
def confirm_receipt(receivable_id: ReceivableIdPath, part_id: PartIdPath, runtime: RuntimeDep,
                    who: CurrentMember) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.confirm_repayment_received(f, s, a, receivable_id, part_id))


@router.post("/{receivable_id}/default", status_code=status.HTTP_202_ACCEPTED, response_model=ReceivableAccepted,
             summary="Declare an overdue receivable defaulted (financier holding a financed part)")
def default(receivable_id: ReceivableIdPath, runtime: RuntimeDep,
            who: Financier) -> ReceivableAccepted:
    return _command(runtime, who, lambda f, s, a: svc.declare_default(f, s, a, receivable_id))


@router.get("/{receivable_id}/payments", response_model=PaymentsPublic,
            summary="Disbursements and repayments, with the settlements that carry them (its parties)")
def payments(receivable_id: ReceivableIdPath, runtime: RuntimeDep,
             who: CurrentMember) -> PaymentsPublic:
    with runtime.db.transaction() as session:  # owed payments are instructed first (no node call)
        r = svc.get_receivable(session, actor_of(who), receivable_id)
        svc.instruct_payments(runtime, session, receivable_id=r.id)
        rows = svc.payments_of(session, r.id)
    return PaymentsPublic(
        receivable_id=r.id, data=[_payment(r, p) for p in rows],
        repaid_total=money(sum(p.amount_minor for p in rows if p.kind == "repayment"), r.currency),
        disbursed_total=money(sum(p.amount_minor for p in rows if p.kind == "disbursement"), r.currency))


def _payment(r: Receivable, p: ReceivablePayment) -> PaymentPublic:
    return PaymentPublic(id=p.id, kind=p.kind, part_id=p.part_id, payer_id=p.payer_id, payee_id=p.payee_id,
                         amount=money(p.amount_minor, p.currency), status=p.status, settlement_id=p.settlement_id,
                         settlement_error=p.settlement_error, tx_hash=p.tx_hash, block_number=p.block_number)


# -- evidence --------------------------------------------------------------------------------------------


def _evidence(c: EvidenceCheck) -> EvidencePublic:
    e = c.evidence
    return EvidencePublic(id=e.id, label=e.label, leaf_hash=e.leaf_hash, root=e.root, anchor_tx_hash=e.anchor_tx_hash,
                          anchor_block_number=e.anchor_block_number, added_by=e.added_by, verified=c.verified,
                          offline_verified=c.offline_verified, anchored=c.anchored, by_party=c.by_party,
                          steps=[VerificationStep(name=n, ok=ok, detail=d[:2000]) for n, ok, d in c.steps],
                          created_at=e.created_at)


@router.post("/{receivable_id}/evidence", status_code=status.HTTP_201_CREATED, response_model=EvidencePublic,
             summary="Cite an anchored provenance proof (supplier or buyer of the receivable)")
def add_evidence(receivable_id: ReceivableIdPath, body: EvidenceCreate, runtime: RuntimeDep,
                 who: SupplierOrBuyer, idempotency_key: IdempotencyKey = None) -> JSONResponse:
    actor = actor_of(who)
    added: list[tuple[object, set[str]]] = []

    def work(session: Session) -> tuple[int, dict]:
        row = svc.add_evidence(session, actor, receivable_id, body.document, body.label)
        r = svc.get_receivable(session, actor, receivable_id)
        parties = {m.onchain_id.lower() for m in (session.get(Member, r.supplier_id),
                                                  session.get(Member, r.buyer_id))}
        session.flush()
        added.append((row, parties))
        # What is stored for a replay: the citation as recorded (its checks are run again on read).
        return status.HTTP_201_CREATED, {"id": row.id}

    answer = idempotent(runtime, who.member_id, idempotency_key, "POST /v1/receivables/{id}/evidence",
                        [receivable_id, body.model_dump(mode="json")], work)
    if not added:  # a replay: the citation again, checked now
        checks = svc.evidence_of(runtime, actor, receivable_id)
        cited = next(c for c in checks if c.evidence.id == json.loads(answer.body)["id"])
        return JSONResponse(_evidence(cited).model_dump(mode="json"), status_code=answer.status_code,
                            headers=replayed_headers(True))
    row, parties = added[0]
    checked = _evidence(svc.check_evidence(runtime, row, parties))  # the node is asked after the commit
    return JSONResponse(checked.model_dump(mode="json"), status_code=status.HTTP_201_CREATED,
                        headers=replayed_headers(False))


@router.get("/{receivable_id}/evidence", response_model=EvidenceListPublic,
            summary="Cited proofs, each verified again offline and against the anchor contract (its parties)")
def list_evidence(receivable_id: ReceivableIdPath, runtime: RuntimeDep,
                  who: CurrentMember) -> EvidenceListPublic:
    checks = svc.evidence_of(runtime, actor_of(who), receivable_id)
    return EvidenceListPublic(receivable_id=receivable_id, data=[_evidence(c) for c in checks],
                              all_verified=bool(checks) and all(c.verified for c in checks))
