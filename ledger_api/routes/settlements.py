"""Settlements, balances, positions and netting cycles (finance members; the operator sees all).

Handlers translate bodies to domain calls and domain rows to schemas; every rule lives in
:mod:`settlement.domains.settlements` and every error becomes problem+json in ``ledger_api.problems``.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from ledger_api.conventions import LOCATION, CursorQuery, IdempotencyKey, idempotent
from ledger_api.deps import DbSession, Principal, RuntimeDep, require_roles
from ledger_api.routes.intents import PreferHeader, intent_of_row, own_key_preference
from ledger_api.schemas import Problem, money
from ledger_api.schemas.settlements import (
    AccountStatementPublic,
    BalancePublic,
    BalancesPublic,
    BatchCreated,
    ChainStatePublic,
    CycleChainPublic,
    CycleCreate,
    CycleMemberNet,
    CyclePublic,
    CycleReportPublic,
    IntentAccepted,
    Money,
    NetPaymentCreate,
    NetPaymentPublic,
    PaymentCreate,
    PositionPublic,
    PositionsPublic,
    RefundAccepted,
    RefundCreate,
    RefundPublic,
    SettlementBatchCreate,
    SettlementCreate,
    SettlementOperationPublic,
    SettlementPublic,
    SettlementsPublic,
    StatementLinePublic,
)
from settlement.core.csv_safe import safe_writer
from settlement.core.errors import (
    ForbiddenError,
    InvalidAmountError,
    InvalidCursorError,
    NettingCycleNotFoundError,
    NotAttestorError,
    SettlementNotFoundError,
)
from settlement.domains import settlements as svc
from settlement.domains.settlements.commands import PreparedBatch
from settlement.pipeline.intents import OwnKey
from settlement.runtime import Runtime
from settlement.store.models.settlements import NetPayment, NettingCycle, Settlement, SettlementRefund

router = APIRouter(prefix="/v1", tags=["settlements"],
                   responses={400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": Problem},
                              422: {"model": Problem}})

# Who reads every owner's accounts (the consortium's included): the operator runs the books, an
# auditor checks them (it reads the same figures in the anchored trial balance).
ACCOUNTS_READ_ACROSS = frozenset({"operator", "auditor"})

Finance = Annotated[Principal, Depends(require_roles("finance"))]
Operator = Annotated[Principal, Depends(require_roles("operator"))]
FinanceOrOperator = Annotated[Principal, Depends(require_roles("finance", "operator"))]
AccountReader = Annotated[Principal, Depends(require_roles("finance", *sorted(ACCOUNTS_READ_ACROSS)))]
SettlementIdPath = Annotated[str, Path(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")]
CycleIdPath = Annotated[str, Path(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")]
CurrencyQuery = Annotated[str | None, Query(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
MemberQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")]
# A journal owner: a member id, or @consortium for the consortium's own accounts (FX clearing, fees).
AccountOwnerQuery = Annotated[str | None, Query(
    min_length=1, max_length=64, pattern=r"^(?:@consortium|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)$",
    description="whose accounts: a member id, or @consortium for the consortium's own accounts (FX clearing, "
                "fees); another member's or the consortium's for the operator and auditors only")]


# -- mapping -----------------------------------------------------------------------------------------



def settlement_public(session: Session, s: Settlement, *, detail: bool = False) -> SettlementPublic:
    out = SettlementPublic(
        id=s.id, client_reference=s.client_reference, payer=s.payer_id, payee=s.payee_id,
        source=money(s.source_amount_minor, s.source_currency), target=money(s.target_amount_minor, s.target_currency),
        fx_rate=svc.rate_to_decimal(s.fx_rate_scaled, s.source_currency, s.target_currency),
        fx_rate_scaled=str(s.fx_rate_scaled), fees=money(s.fees_minor, s.source_currency), value_date=s.value_date,
        purpose_code=s.purpose_code, payment_reference=s.payment_reference, payment_ref_hash=s.payment_ref_hash,
        state=s.state, paid=money(s.paid_minor, s.target_currency),
        refunded=money(s.refunded_minor, s.target_currency), provider=s.provider, cycle_id=s.cycle_id,
        chain=ChainStatePublic(operation=s.chain_op, status=s.chain_status, outbox_id=s.outbox_id, tx_hash=s.tx_hash,
                               block_number=s.block_number, error=s.chain_error,
                               recorded_tx_hash=s.recorded_tx_hash, recorded_block=s.recorded_block),
        created_at=s.created_at, updated_at=s.updated_at)
    if detail:
        out.operations = [
            SettlementOperationPublic(kind=op.kind, status=op.status,
                            amount=money(op.amount_minor, s.target_currency) if op.amount_minor is not None else None,
                            requested_by=op.requested_by, outbox_id=op.outbox_id, tx_hash=op.tx_hash,
                            block_number=op.block_number, error=op.error, created_at=op.created_at,
                            confirmed_at=op.confirmed_at)
            for op in svc.operations_of(session, s.id)]
        out.refunds = [_refund_public(s, r) for r in svc.refunds_of(session, s.id)]
        out.acknowledged = any(op.kind == "acknowledge" and op.status == "confirmed" for op in svc.operations_of(
            session, s.id))
    return out


def _refund_public(s: Settlement, r: SettlementRefund) -> RefundPublic:
    return RefundPublic(id=r.id, amount=money(r.amount_minor, s.target_currency), reference=r.reference,
                        reference_hash=r.reference_hash, status=r.status, requested_by=r.requested_by,
                        created_at=r.created_at)


def instruction_of(body: SettlementCreate) -> svc.InstructionInput:
    if body.fees is not None and body.fees.currency != body.source.currency:
        raise InvalidAmountError("fees must be in the source currency", field="fees")
    return svc.InstructionInput(
        client_reference=body.client_reference, payee_id=body.payee, source_minor=body.source.value,
        source_currency=body.source.currency, target_currency=body.target.currency, target_minor=body.target.value,
        fx_rate=body.fx_rate, fees_minor=body.fees.value if body.fees else 0, value_date=body.value_date,
        purpose_code=body.purpose_code, payment_reference=body.payment_reference)


def _visible(member: Principal, s: Settlement) -> Settlement:
    if "operator" in member.roles or member.member_id in (s.payer_id, s.payee_id):
        return s
    raise SettlementNotFoundError(f"no settlement {s.id}", settlement_id=s.id)  # not yours: as if absent


def _get_visible(session: Session, member: Principal, settlement_id: str) -> Settlement:
    return _visible(member, svc.get_settlement(session, settlement_id))


def _relay_as(member: Principal) -> str | None:
    """None: the operator relays (signs with the operator's account); else the member acts itself."""
    return None if "operator" in member.roles else member.member_id


def _amount(money: Money) -> int:
    return money.value


_APPLIED = {"Preference-Applied": "intent"}


# -- settlements -------------------------------------------------------------------------------------


@router.post("/settlements", status_code=status.HTTP_201_CREATED, response_model=SettlementPublic,
             summary="Record a settlement (finance; Idempotency-Key required; `Prefer: intent` to sign with your own key: "
                     "202 with the intent)",
             responses={201: {"headers": LOCATION}, 202: {"model": IntentAccepted, "headers": LOCATION},
                        409: {"model": Problem}})
def create_settlement(body: SettlementCreate, runtime: RuntimeDep, member: Finance,
                      idempotency_key: IdempotencyKey = None, prefer: PreferHeader = None) -> JSONResponse:
    own: list[OwnKey | None] = []

    def work(session: Session) -> tuple[int, dict]:
        s = svc.create_settlement(runtime, session, member.member_id, instruction_of(body), own=own[0])
        if own[0] is not None:
            return 202, _intent_answer(runtime, session, s)
        return 201, settlement_public(session, s).model_dump(mode="json")

    answer = idempotent(runtime, member.member_id, idempotency_key, "POST /v1/settlements",
                        [body.model_dump(mode="json"), _wants_intent(prefer)], work,
                        # chain facts, read before the write transaction (a replay reads nothing)
                        before=lambda: own.append(own_key_preference(runtime, member.member_id, prefer)),
                        location=_settlement_location)
    if answer.status_code == status.HTTP_202_ACCEPTED:  # an intent for the member's own key
        answer.headers.update(_APPLIED)
    return answer


def _settlement_location(payload: dict) -> str:
    """The settlement's path: the answer's own id, or its settlement's beside an intent (a 202)."""
    return f"/v1/settlements/{payload.get('settlement', payload)['id']}"


def _wants_intent(prefer: str | None) -> bool:
    return bool(prefer) and "intent" in prefer.lower()


def _intent_answer(runtime: Runtime, session: Session, s: Settlement) -> dict:
    """A command's answer when the member signs itself: the intent to sign, and the resource."""
    return IntentAccepted(intent=intent_of_row(runtime, session, s.outbox_id),
                          settlement=settlement_public(session, s, detail=True)).model_dump(mode="json")


@router.post("/settlements:batch", status_code=status.HTTP_201_CREATED, response_model=BatchCreated,
             summary="Record up to 200 settlements in one transaction (finance; Idempotency-Key required)",
             responses={409: {"model": Problem}})
def create_batch(body: SettlementBatchCreate, runtime: RuntimeDep, member: Finance,
                 idempotency_key: IdempotencyKey = None) -> JSONResponse:
    prepared: list[PreparedBatch] = []

    def prepare() -> None:
        inputs = [instruction_of(item) for item in body.items]
        # Validation, hashing and encoding read only: done before the write transaction, so the
        # store's single writer is held for the inserts alone (the volume path).
        with runtime.db.read() as session:
            prepared.append(svc.prepare_batch(session, member.member_id, inputs))

    def work(session: Session) -> tuple[int, dict]:
        rows = svc.write_batch(session, prepared[0])
        data = [{"id": s.id, "client_reference": s.client_reference, "payee": s.payee_id,
                 "target": {"value": s.target_amount_minor, "currency": s.target_currency}, "state": s.state,
                 "chain_status": s.chain_status} for s in rows]
        return 201, {"outbox_id": rows[0].outbox_id, "count": len(rows), "data": data}

    return idempotent(runtime, member.member_id, idempotency_key, "POST /v1/settlements:batch",
                      body.model_dump(mode="json"), work, before=prepare)


def _filter(member: Principal, role: str, state: str | None, counterparty: str | None, currency: str | None,
            date_from: date | None, date_to: date | None) -> svc.SettlementFilter:
    scope = None if "operator" in member.roles else member.member_id
    return svc.SettlementFilter(member_id=scope, role=role, state=state, counterparty=counterparty, currency=currency,
                              date_from=date_from, date_to=date_to)


StateQuery = Annotated[str | None, Query(max_length=16)]
RoleQuery = Annotated[str, Query(pattern=r"^(any|payer|payee)$")]


@router.get("/settlements/export.csv", summary="CSV export of your settlements (same filters; at most 10,000 rows)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_csv(session: DbSession, member: FinanceOrOperator, role: RoleQuery = "any", state: StateQuery = None,
               counterparty: MemberQuery = None, currency: CurrencyQuery = None, date_from: date | None = None,
               date_to: date | None = None) -> Response:
    f = _filter(member, role, state, counterparty, currency, date_from, date_to)
    buffer = io.StringIO()
    writer = safe_writer(buffer)
    writer.writerow(svc.EXPORT_COLUMNS)
    for row in svc.export_rows(session, f):
        writer.writerow(row)  # cells a spreadsheet would run as formulas are guarded
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="settlements.csv"'})


@router.get("/settlements", response_model=SettlementsPublic,
            summary="Your settlements, newest first (filters; cursor pagination, 1..200 per page)")
def list_settlements(session: DbSession, member: FinanceOrOperator, role: RoleQuery = "any", state: StateQuery = None,
                     counterparty: MemberQuery = None, currency: CurrencyQuery = None, date_from: date | None = None,
                     date_to: date | None = None, limit: Annotated[int, Query(ge=1, le=svc.LIST_LIMIT_MAX)] = 50,
                     cursor: CursorQuery = None) -> SettlementsPublic:
    f = _filter(member, role, state, counterparty, currency, date_from, date_to)
    rows, next_cursor = svc.list_settlements(session, f, limit=limit, cursor=cursor)
    data = [settlement_public(session, s) for s in rows]
    return SettlementsPublic(data=data, count=len(data), next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/settlements/{settlement_id}", response_model=SettlementPublic,
            summary="One settlement, with its on-chain state, operations and refunds",
            responses={404: {"model": Problem}})
def get_settlement(settlement_id: SettlementIdPath, session: DbSession, member: FinanceOrOperator) -> SettlementPublic:
    return settlement_public(session, _get_visible(session, member, settlement_id), detail=True)


@router.post("/settlements/{settlement_id}/payments", status_code=status.HTTP_202_ACCEPTED,
             response_model=SettlementPublic,
             summary="Payment evidence, attested by the operator (who verified the provider's notification); "
                     "a payee acknowledges receipt with /acknowledgement instead",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def pay(settlement_id: SettlementIdPath, body: PaymentCreate, runtime: RuntimeDep, session: DbSession,
        member: FinanceOrOperator) -> SettlementPublic:
    s = _get_visible(session, member, settlement_id)
    if "operator" not in member.roles:
        raise NotAttestorError("payment evidence is attested by the operator, never by a party to the payment; "
                               "the payee may acknowledge receipt (POST .../acknowledgement)", settlement_id=s.id)
    if body.amount.currency != s.target_currency:
        raise InvalidAmountError(f"the amount must be in {s.target_currency}", field="amount")
    s = svc.mark_paid(runtime, session, s, body.provider, svc.provider_txn_hash(body.provider_transaction_id),
                      _amount(body.amount))
    return settlement_public(session, s, detail=True)


@router.post("/settlements/{settlement_id}/acknowledgement", status_code=status.HTTP_202_ACCEPTED,
             response_model=SettlementPublic,
             summary="The payee acknowledges receipt (recorded on chain; it neither pays the settlement nor ends "
                     "the payer's right to cancel; `Prefer: intent` to sign with your own key)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def acknowledge(settlement_id: SettlementIdPath, runtime: RuntimeDep, member: Finance,
                prefer: PreferHeader = None) -> SettlementPublic | JSONResponse:
    own = own_key_preference(runtime, member.member_id, prefer)  # chain facts, before the write
    with runtime.db.transaction() as session:
        s = _get_visible(session, member, settlement_id)
        s = svc.acknowledge_receipt(runtime, session, s, member.member_id, own=own)
        if own is not None:
            return JSONResponse(_intent_answer(runtime, session, s), status_code=status.HTTP_202_ACCEPTED,
                                headers=_APPLIED)
        return settlement_public(session, s, detail=True)


@router.post("/settlements/{settlement_id}/cancel", status_code=status.HTTP_202_ACCEPTED,
             response_model=SettlementPublic,
             summary="Cancel an instructed settlement (its payer; `Prefer: intent` to sign with your own key)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def cancel(settlement_id: SettlementIdPath, runtime: RuntimeDep, member: Finance,
           prefer: PreferHeader = None) -> SettlementPublic | JSONResponse:
    own = own_key_preference(runtime, member.member_id, prefer)  # chain facts, before the write
    with runtime.db.transaction() as session:
        s = _get_visible(session, member, settlement_id)
        s = svc.cancel_settlement(runtime, session, s, member.member_id, own=own)
        if own is not None:
            return JSONResponse(_intent_answer(runtime, session, s), status_code=status.HTTP_202_ACCEPTED,
                                headers=_APPLIED)
        return settlement_public(session, s, detail=True)


@router.post("/settlements/{settlement_id}/refunds", status_code=status.HTTP_202_ACCEPTED,
             response_model=RefundAccepted,
             summary="Refund part or all of a paid or settled settlement (its payee's finance, who returns the "
                     "money; the operator alone cannot refund; `Prefer: intent` to sign with the payee's own key)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def refund(settlement_id: SettlementIdPath, body: RefundCreate, runtime: RuntimeDep,
           member: FinanceOrOperator, prefer: PreferHeader = None) -> RefundAccepted | JSONResponse:
    own = own_key_preference(runtime, member.member_id, prefer)  # chain facts, before the write
    with runtime.db.transaction() as session:
        s = _get_visible(session, member, settlement_id)
        if body.amount.currency != s.target_currency:
            raise InvalidAmountError(f"refunds are in the target currency {s.target_currency}", field="amount")
        r = svc.refund_settlement(runtime, session, s, _amount(body.amount), body.reference, by=_relay_as(member),
                                  own=own)
        if own is not None:
            answer = _intent_answer(runtime, session, s)
            answer["refund"] = _refund_public(s, r).model_dump(mode="json")
            return JSONResponse(answer, status_code=status.HTTP_202_ACCEPTED, headers=_APPLIED)
        return RefundAccepted(refund=_refund_public(s, r), settlement=settlement_public(session, s, detail=True))


# -- balances, positions, statements -------------------------------------------------------------------


def _owner(member: Principal, requested: str | None) -> str:
    if requested is None or requested == member.member_id:
        return member.member_id
    if "operator" in member.roles:
        return requested
    raise ForbiddenError("members see their own balances only; the operator may ask for any member")


def _account_owner(member: Principal, requested: str | None) -> str:
    """Whose journal accounts to read: the caller's own by default; another member's, or the
    consortium's own (``@consortium``), for the operator and auditors only (403 for others)."""
    if requested is None or requested == member.member_id:
        return member.member_id
    if member.has_any(ACCOUNTS_READ_ACROSS):
        return requested
    whose = "the consortium's accounts" if requested == svc.SYSTEM_OWNER else "another member's accounts"
    raise ForbiddenError(f"{whose}: only the roles {', '.join(sorted(ACCOUNTS_READ_ACROSS))} read them; "
                         "members read their own", required_roles=sorted(ACCOUNTS_READ_ACROSS))


@router.get("/balances", response_model=BalancesPublic, summary="Journal balances per account and currency")
def balances(session: DbSession, member: AccountReader, currency: CurrencyQuery = None,
             member_id: Annotated[AccountOwnerQuery, Query(alias="member")] = None) -> BalancesPublic:
    owner = _account_owner(member, member_id)
    data = [BalancePublic(account=b.account, debit=money(b.debit_minor, b.currency),
                          credit=money(b.credit_minor, b.currency), balance=money(b.balance_minor, b.currency))
            for b in svc.balances(session, owner, currency)]
    return BalancesPublic(member_id=owner, data=data)


@router.get("/positions", response_model=PositionsPublic, summary="Positions per currency: what netting will move")
def positions(session: DbSession, member: FinanceOrOperator,
              member_id: Annotated[MemberQuery, Query(alias="member")] = None) -> PositionsPublic:
    owner = _owner(member, member_id)
    data = []
    for p in svc.positions(session, owner):
        c = p.currency
        data.append(PositionPublic(
            currency=c, to_receive=money(p.to_receive_minor, c), to_pay=money(p.to_pay_minor, c),
            net=money(p.net_minor, c), instructed_in=money(p.instructed_in_minor, c),
            instructed_out=money(p.instructed_out_minor, c), fees_owed=money(p.fees_owed_minor, c),
            net_settled=money(p.net_settled_minor, c), refunds_owed_to=money(p.refunds_owed_to_minor, c),
            refunds_owed_by=money(p.refunds_owed_by_minor, c)))
    return PositionsPublic(member_id=owner, data=data)


@router.get("/statements", response_model=AccountStatementPublic, summary="Journal entries of one currency, in order")
def statement(session: DbSession, member: AccountReader,
              currency: Annotated[str, Query(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")],
              cursor: CursorQuery = None,
              after: Annotated[int, Query(ge=0, le=(1 << 63) - 1, deprecated=True,
                                          description="the former cursor: the last entry id seen")] = 0,
              limit: Annotated[int, Query(ge=1, le=svc.STATEMENT_LIMIT_MAX)] = 100,
              member_id: Annotated[AccountOwnerQuery, Query(alias="member")] = None) -> AccountStatementPublic:
    owner = _account_owner(member, member_id)
    start = after
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise InvalidCursorError("cursor is not a next_cursor of this list", field="cursor")
        start = int(cursor)
    lines = svc.statement(session, owner, currency, after_id=start, limit=limit)
    # has_more exact: a full page is followed by a one-row look-ahead
    more = len(lines) == limit and bool(svc.statement(session, owner, currency, after_id=lines[-1].entry_id, limit=1))
    data = [StatementLinePublic(entry_id=ln.entry_id, txn_id=ln.txn_id, kind=ln.kind, settlement_id=ln.settlement_id,
                                cycle_id=ln.cycle_id, account=ln.account, side=ln.side,
                                amount=money(ln.amount_minor, ln.currency), created_at=ln.created_at)
            for ln in lines]
    return AccountStatementPublic(member_id=owner, currency=currency, data=data, has_more=more,
                                  next_cursor=str(lines[-1].entry_id) if more else None)


# -- netting cycles ----------------------------------------------------------------------------------------


def _net_payment_public(cycle: NettingCycle, p: NetPayment) -> NetPaymentPublic:
    return NetPaymentPublic(member_id=p.member_id, amount=money(p.amount_minor, cycle.currency), provider=p.provider,
                            provider_tx_hash=p.provider_tx_hash, status=p.status, tx_hash=p.tx_hash,
                            block_number=p.block_number, error=p.error, created_at=p.created_at)


def cycle_public(session: Session, cycle: NettingCycle, viewer: Principal | None = None) -> CyclePublic:
    """The cycle as ``viewer`` may see it: whole for the operator (``viewer`` None or an operator);
    for a member, its own net, its own settlements and its own net payment only."""
    c = cycle.currency
    whole = viewer is None or "operator" in viewer.roles
    mine = None if whole else viewer.member_id
    members = [CycleMemberNet(member_id=m, onchain_id=oid, net=money(int(n), c))
               for (m, oid), n in zip(cycle.members, cycle.nets) if whole or m == mine]
    settlement_ids = list(cycle.settlement_ids) if whole else svc.party_settlement_ids(session, cycle, mine)
    payments = [_net_payment_public(cycle, p) for p in svc.net_payments_of(session, cycle.id)
                if whole or p.member_id == mine]
    report = None
    if whole:
        r = svc.cycle_report(cycle)
        report = CycleReportPublic(gross_count=r.gross_count, gross_value=money(r.gross_value_minor, c),
                                   net_count=r.net_count, net_value=money(r.net_value_minor, c),
                                   transfers_saved=r.transfers_saved, value_saved=money(r.value_saved_minor, c),
                                   value_saved_ratio=r.value_saved_ratio)
    return CyclePublic(
        id=cycle.id, currency=c, state=cycle.state, settlement_ids=settlement_ids, members=members,
        net_payments=payments, report=report, closed_by=cycle.closed_by,
        chain=CycleChainPublic(operation=cycle.chain_op, status=cycle.chain_status, outbox_id=cycle.outbox_id,
                               submit_tx_hash=cycle.submit_tx_hash, submit_block=cycle.submit_block,
                               settle_tx_hash=cycle.settle_tx_hash, settle_block=cycle.settle_block,
                               error=cycle.chain_error),
        created_at=cycle.created_at)


def _cycle_visible(member: Principal, cycle: NettingCycle) -> NettingCycle:
    if "operator" in member.roles or any(m == member.member_id for m, _ in cycle.members):
        return cycle
    raise NettingCycleNotFoundError(f"no netting cycle {cycle.id}")


@router.post("/netting-cycles", status_code=status.HTTP_201_CREATED, response_model=CyclePublic,
             summary="Close a netting cycle in one currency (the operator): net the waiting paid settlements of "
                     "active members, submit on chain",
             responses={201: {"headers": LOCATION}, 409: {"model": Problem}})
def close_cycle(body: CycleCreate, runtime: RuntimeDep, member: Operator,
                idempotency_key: IdempotencyKey = None) -> CyclePublic:
    def work(session: Session) -> tuple[int, dict]:
        cycle = svc.close_cycle(runtime, session, body.currency, member.member_id)
        return status.HTTP_201_CREATED, cycle_public(session, cycle).model_dump(mode="json")

    return idempotent(runtime, member.member_id, idempotency_key, "POST /v1/netting-cycles",  # type: ignore[return-value]
                      body.model_dump(mode="json"), work, location=lambda cycle: f"/v1/netting-cycles/{cycle['id']}")


@router.get("/netting-cycles/{cycle_id}", response_model=CyclePublic,
            summary="A netting cycle: the operator sees every net and the report; a member, what concerns it",
            responses={404: {"model": Problem}})
def get_cycle(cycle_id: CycleIdPath, session: DbSession, member: FinanceOrOperator) -> CyclePublic:
    return cycle_public(session, _cycle_visible(member, svc.get_cycle(session, cycle_id)), member)


@router.post("/netting-cycles/{cycle_id}/payments", status_code=status.HTTP_202_ACCEPTED, response_model=CyclePublic,
             summary="Attest a net payer's payment into a submitted cycle (the operator, after verifying the "
                     "provider's notification): one provider transaction, exactly the net owed",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def attest_net_payment(cycle_id: CycleIdPath, body: NetPaymentCreate, runtime: RuntimeDep, session: DbSession,
                       member: Operator) -> CyclePublic:
    cycle = svc.get_cycle(session, cycle_id)
    if body.amount.currency != cycle.currency:
        raise InvalidAmountError(f"the amount must be in {cycle.currency}", field="amount")
    svc.attest_net_payment(runtime, session, cycle_id, body.member, body.provider,
                           svc.provider_txn_hash(body.provider_transaction_id), _amount(body.amount))
    return cycle_public(session, svc.get_cycle(session, cycle_id))


@router.post("/netting-cycles/{cycle_id}/settle", status_code=status.HTTP_202_ACCEPTED, response_model=CyclePublic,
             summary="Settle a submitted cycle (the operator; every net payer's payment in attested)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def settle_cycle(cycle_id: CycleIdPath, runtime: RuntimeDep, session: DbSession, member: Operator) -> CyclePublic:
    return cycle_public(session, svc.settle_cycle(runtime, session, cycle_id, member.member_id))
