"""Payment-provider callbacks and the provider accounts that verify them.

``POST /v1/callbacks/{provider}/{account}`` takes no API key: the provider's signature is the
authentication. The body is read raw and handed, unparsed, to :func:`settlement.domains.payments.ingest_async`
(verification on the event loop; the durable write in the store's group-commit writer thread, the
answer only after its commit); its answer is the provider's own
(``success`` for Alipay, 200/204 or ``{"code","message"}`` for WeChat Pay, 2xx/400 for Stripe).
Account administration is for the operator, who gives each account to a member (``owner``);
an owner reads its own accounts and the callbacks received on them; the operator and auditors
read every recorded callback (docs/api.md, Tenancy).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ledger_api.conventions import LOCATION, IdempotencyKey, idempotent
from ledger_api.deps import DbSession, OperatorMember, Principal, RuntimeDep, require_roles
from ledger_api.schemas import Problem
from ledger_api.schemas.callbacks import (
    CallbackPublic,
    CallbacksPublic,
    Money,
    ProviderAccountCreate,
    ProviderAccountPublic,
    ProviderAccountsPublic,
    ProviderAccountUpdate,
)
from ledger_api.tenancy import OwnerQuery, read_scope
from settlement.core.errors import NotFoundError
from settlement.domains import payments as cb
from settlement.domains.payments import AccountInfo
from settlement.runtime import Runtime
from settlement.store.models.payments import ProviderCallback

router = APIRouter(prefix="/v1", tags=["callbacks"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}})

Reader = Annotated[Principal, Depends(require_roles("operator", "auditor", "finance"))]
AccountReader = Annotated[Principal, Depends(require_roles("operator", "finance"))]
# Who reads across members (docs/api.md, Tenancy): every account for the operator, who
# administers them; every recorded callback for the operator and auditors.
ACCOUNTS_READ_ACROSS = frozenset({"operator"})
CALLBACKS_READ_ACROSS = frozenset({"operator", "auditor"})
ProviderPath = Annotated[str, Path(min_length=1, max_length=16)]
AccountPath = Annotated[str, Path(min_length=1, max_length=128)]
OUTCOMES = r"^(applied|deferred|exception|noted)$"


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/callbacks/{provider}/{account}", include_in_schema=True, summary="A provider's notification",
             responses={200: {"description": "acknowledged in the provider's format"},
                        404: {"model": Problem, "description": "unknown provider"}})
async def receive_callback(provider: ProviderPath, account: AccountPath, request: Request) -> Response:
    # The runtime straight from the app, not through RuntimeDep: a plain `def` dependency is run in
    # the thread pool, a thread hand-off per request (about 0.3 ms of the server's time, measured).
    runtime: Runtime = request.app.state.runtime
    body = await request.body()
    result = await cb.ingest_async(runtime, provider, account, body, request.headers.raw, source=_client(request))
    answer = result.response
    return Response(content=answer.body, status_code=answer.status_code, media_type=answer.content_type)


# -- accounts -------------------------------------------------------------------------------------------


def _account_public(info: AccountInfo) -> ProviderAccountPublic:
    return ProviderAccountPublic(provider=info.provider, account=info.account, owner=info.owner,
                                 status=info.status,
                                 public_config=info.public_config, secrets=list(info.secret_names),
                                 version=info.version, created_by=info.created_by, created_at=info.created_at,
                                 updated_at=info.updated_at)


@router.get("/provider-accounts", response_model=ProviderAccountsPublic)
def list_provider_accounts(session: DbSession, who: AccountReader, owner: OwnerQuery = None,
                           provider: Annotated[str | None, Query(max_length=16)] = None) -> ProviderAccountsPublic:
    infos = cb.list_accounts(session, provider, owner=read_scope(who, ACCOUNTS_READ_ACROSS, owner))
    return ProviderAccountsPublic(data=[_account_public(a) for a in infos], next_cursor=None, has_more=False)


@router.post("/provider-accounts", response_model=ProviderAccountPublic, status_code=status.HTTP_201_CREATED,
             responses={201: {"headers": LOCATION}})
def add_provider_account(body: ProviderAccountCreate, runtime: RuntimeDep, op: OperatorMember,
                         idempotency_key: IdempotencyKey = None) -> ProviderAccountPublic:
    def work(session: Session) -> tuple[int, dict]:
        info = cb.add_account(runtime, session, body.provider, body.account, body.config, owner=body.owner,
                              created_by=op.member_id)
        return status.HTTP_201_CREATED, _account_public(info).model_dump(mode="json")

    # The request hash covers the account's secrets (a SHA-256 of the canonical body): they are
    # never stored, nor in the stored answer.
    return idempotent(runtime, op.member_id, idempotency_key, "POST /v1/provider-accounts",  # type: ignore[return-value]
                      body.model_dump(mode="json"), work,
                      location=lambda made: f"/v1/provider-accounts/{made['provider']}/{made['account']}")


@router.get("/provider-accounts/{provider}/{account}", response_model=ProviderAccountPublic)
def get_provider_account(provider: ProviderPath, account: AccountPath, session: DbSession,
                         who: AccountReader) -> ProviderAccountPublic:
    return _account_public(cb.get_account(session, provider, account, owner=read_scope(who, ACCOUNTS_READ_ACROSS)))


@router.put("/provider-accounts/{provider}/{account}", response_model=ProviderAccountPublic)
def update_provider_account(provider: ProviderPath, account: AccountPath, body: ProviderAccountUpdate,
                            runtime: RuntimeDep, session: DbSession, _op: OperatorMember) -> ProviderAccountPublic:
    return _account_public(cb.update_account(runtime, session, provider, account, body.config, owner=body.owner))


@router.post("/provider-accounts/{provider}/{account}/disable", response_model=ProviderAccountPublic)
def disable_provider_account(provider: ProviderPath, account: AccountPath, runtime: RuntimeDep, session: DbSession,
                             _op: OperatorMember) -> ProviderAccountPublic:
    return _account_public(cb.set_status(runtime, session, provider, account, "disabled"))


@router.post("/provider-accounts/{provider}/{account}/enable", response_model=ProviderAccountPublic)
def enable_provider_account(provider: ProviderPath, account: AccountPath, runtime: RuntimeDep, session: DbSession,
                            _op: OperatorMember) -> ProviderAccountPublic:
    return _account_public(cb.set_status(runtime, session, provider, account, "active"))


# -- recorded callbacks -----------------------------------------------------------------------------------


def callback_public(row: ProviderCallback) -> CallbackPublic:
    amount = Money(value=row.amount_minor, currency=row.currency) \
        if row.amount_minor is not None and row.currency else None
    return CallbackPublic(
        id=row.id, provider=row.provider, account=row.account, kind=row.kind, provider_status=row.provider_status,
        succeeded=row.succeeded, provider_txn_id=row.provider_txn_id, merchant_reference=row.merchant_reference,
        refund_reference=row.refund_reference, provider_refund_id=row.provider_refund_id, amount=amount,
        amount_is_cumulative=row.amount_is_cumulative, evidence_hash=row.evidence_hash, body_sha256=row.body_sha256,
        notification_id=row.notification_id, outcome=row.outcome, outcome_reason=row.outcome_reason,
        outcome_detail=row.outcome_detail, settlement_id=row.settlement_id, outbox_id=row.outbox_id,
        refund_id=row.refund_id, delivery_count=row.delivery_count, occurred_at=row.occurred_at,
        received_at=row.received_at, last_delivered_at=row.last_delivered_at, processed_at=row.processed_at)


@router.get("/callbacks", response_model=CallbacksPublic)
def list_recorded_callbacks(session: DbSession, who: Reader, owner: OwnerQuery = None,
                            provider: Annotated[str | None, Query(max_length=16)] = None,
                            outcome: Annotated[str | None, Query(pattern=OUTCOMES)] = None,
                            settlement_id: Annotated[str | None, Query(pattern=r"^0x[0-9a-f]{64}$")] = None,
                            provider_txn_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
                            cursor: Annotated[int, Query(ge=0, le=(1 << 63) - 1)] = 0,
                            limit: Annotated[int, Query(ge=1, le=cb.CALLBACKS_PAGE_MAX)] = 100) -> CallbacksPublic:
    rows, next_cursor = cb.list_callbacks(session, provider=provider, outcome=outcome, settlement_id=settlement_id,
                                          owner=read_scope(who, CALLBACKS_READ_ACROSS, owner),
                                          provider_txn_id=provider_txn_id, after_id=cursor, limit=limit)
    return CallbacksPublic(data=[callback_public(r) for r in rows], has_more=next_cursor is not None,
                           next_cursor=None if next_cursor is None else str(next_cursor))


@router.get("/callbacks/{callback_id}", response_model=CallbackPublic)
def get_recorded_callback(callback_id: Annotated[int, Path(ge=1, le=2**62)], session: DbSession,
                          who: Reader) -> CallbackPublic:
    row = cb.get_callback(session, callback_id, owner=read_scope(who, CALLBACKS_READ_ACROSS))
    if row is None:
        raise NotFoundError(f"no callback {callback_id}")
    return callback_public(row)
