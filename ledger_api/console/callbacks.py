"""The callbacks page: payment-provider notifications recorded on the member's own provider
accounts (finance), or on every account (the operator and auditors, optionally one owner's), with
each one's outcome (applied, deferred, exception, noted) and reason; and the provider accounts the
member may see, and the operator's administration of those accounts (add, update the material
and owner, disable, enable) on their own pages. The tenancy is the API's (docs/api.md, "Tenancy"): the page calls the
``GET /v1/callbacks`` and ``GET /v1/provider-accounts`` handlers, with their parameter checks
(:func:`~ledger_api.console.web.query_of`), and another owner's callback by id answers 404.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import pydantic
from fastapi import Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console.web import (
    BASE,
    Console,
    Ctx,
    FieldErrors,
    authorised_for,
    field_errors_of,
    invoke,
    new_idempotency_key,
    page_router,
    query_of,
    render,
)
from ledger_api.routes import callbacks as api
from ledger_api.schemas.callbacks import ProviderAccountCreate, ProviderAccountUpdate
from settlement.core.errors import LedgerError, ValidationError
from settlement.providers import PROVIDERS

router = page_router()

PAGE_SIZE = 50
FILTERS = ("provider", "outcome", "owner", "provider_txn_id", "settlement_id", "cursor")
OUTCOMES = ("applied", "deferred", "exception", "noted")
CallbackIdPath = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/callbacks")
def callbacks(ctx: Console) -> HTMLResponse:
    who = authorised_for(api.list_recorded_callbacks, ctx)
    values, errors = query_of(ctx, api.list_recorded_callbacks, *FILTERS)
    page = None
    if not errors:
        page = invoke(api.list_recorded_callbacks, ctx, limit=PAGE_SIZE, **values)
    accounts = []
    if ctx.has("operator", "finance"):
        accounts = invoke(api.list_provider_accounts, ctx, owner=values.get("owner"), provider=None).data
    raw = {name: ctx.request.query_params.get(name, "") for name in FILTERS if name != "cursor"}
    next_query = None
    if page is not None and page.next_cursor:
        next_query = urlencode({**{k: v for k, v in raw.items() if v}, "cursor": page.next_cursor})
    return render(ctx, "callbacks.html", rows=page.data if page else [], accounts=accounts, filters=raw,
                  errors=errors, next_query=next_query, outcomes=OUTCOMES,
                  providers=PROVIDERS, across=who.has_any(api.CALLBACKS_READ_ACROSS))


@router.get("/callbacks/{callback_id}")
def callback_detail(callback_id: CallbackIdPath, ctx: Console) -> HTMLResponse:
    return render(ctx, "callback_detail.html", c=invoke(api.get_recorded_callback, ctx, callback_id=callback_id))


# -- provider accounts: the operator's administration ------------------------------------------------------

CONFIG_FIELDS = {
    "alipay": ("app_id", "alipay_public_key_pem", "seller_id"),
    "wechatpay": ("mchid", "apiv3_key", "platform_serial", "platform_certificate_pem", "appid"),
    "stripe": ("webhook_secrets",),
}
SECRET_FIELDS = frozenset({"apiv3_key", "webhook_secrets"})  # never echoed back into a form
ACCOUNT_FIELDS = ("provider", "account", "owner")
WEBHOOK_SECRETS_MAX = 8


def _accounts_page(ctx: Ctx, *, status_code: int = 200, errors: FieldErrors | None = None,
                   message: str | None = None, values: dict[str, str] | None = None) -> HTMLResponse:
    who = authorised_for(api.list_provider_accounts, ctx)
    accounts = invoke(api.list_provider_accounts, ctx, owner=None, provider=None).data
    done = ctx.request.query_params.get("done")
    return render(ctx, "provider_accounts.html", status_code=status_code, accounts=accounts,
                  admin=who.has_any(api.ACCOUNTS_READ_ACROSS), providers=PROVIDERS, config_fields=CONFIG_FIELDS,
                  known_fields=[*ACCOUNT_FIELDS, *(n for fields in CONFIG_FIELDS.values() for n in fields)],
                  errors=errors or {}, message=message, values=values or {"owner": "operator"},
                  idempotency_key=new_idempotency_key(),
                  done=done if done in ("added", "disabled", "enabled") else None,
                  shown=ctx.request.query_params.get("account", ""))


@router.get("/provider-accounts")
def provider_accounts(ctx: Console) -> HTMLResponse:
    """Every provider account for the operator (with its forms), a finance member's own."""
    return _accounts_page(ctx)


def _config(ctx: Ctx, provider: str) -> dict[str, Any]:
    """The chosen provider's fields of the form, as the API's ``config`` (empty ones left out)."""
    config: dict[str, Any] = {}
    for name in CONFIG_FIELDS.get(provider, ()):
        value = ctx.field(name).replace("\r\n", "\n").strip()  # a textarea's lines end in CRLF
        if not value:
            continue
        if name == "webhook_secrets":
            lines = [line.strip() for line in value.splitlines() if line.strip()]
            if len(lines) > WEBHOOK_SECRETS_MAX:
                raise ValidationError(f"at most {WEBHOOK_SECRETS_MAX} secrets", field=name)
            config[name] = lines
        else:
            config[name] = value
    return config


def _form_errors(exc: Exception) -> FieldErrors:
    """The API's errors keyed by the form's fields: a config key is its own field (``config.`` of
    the body dropped); the WeChat Pay platform keys are the certificate's field."""
    errors, _message = field_errors_of(exc)
    return {("platform_certificate_pem" if name == "platform_keys" else name.removeprefix("config.")): msgs
            for name, msgs in errors.items()}


@router.post("/provider-accounts")
def provider_account_add(ctx: Console) -> Response:
    """Add an account through ``POST /v1/provider-accounts``'s handler (the operator only), with the
    form's Idempotency-Key: a second submit replays. The secrets typed in go to the API once and
    are never shown again (the answer names them only)."""
    provider = ctx.field("provider").strip()
    values = {name: ctx.field(name).strip() for name in ACCOUNT_FIELDS}
    for fields in CONFIG_FIELDS.values():
        values.update({name: ctx.field(name).strip() for name in fields if name not in SECRET_FIELDS})
    try:
        body = ProviderAccountCreate.model_validate({"provider": provider, "account": values["account"],
                                                     "owner": values["owner"] or "operator",
                                                     "config": _config(ctx, provider)})
        answer = json.loads(invoke(api.add_provider_account, ctx, body=body,
                                   idempotency_key=ctx.field("idempotency_key") or new_idempotency_key()).body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403):
            raise
        return _accounts_page(ctx, status_code=getattr(exc, "status", 422), errors=_form_errors(exc),
                              message=field_errors_of(exc)[1], values=values)
    shown = quote(f"{answer['provider']}/{answer['account']}", safe="")
    return RedirectResponse(f"{BASE}/provider-accounts?done=added&account={shown}", status_code=303)


@router.post("/provider-accounts/{provider}/{account}/{action}")
def provider_account_status(provider: api.ProviderPath, account: api.AccountPath,
                            action: Annotated[str, Path(pattern=r"^(disable|enable)$")], ctx: Console) -> Response:
    handler = api.disable_provider_account if action == "disable" else api.enable_provider_account
    invoke(handler, ctx, provider=provider, account=account)
    shown = quote(f"{provider}/{account}", safe="")
    return RedirectResponse(f"{BASE}/provider-accounts?done={action}d&account={shown}", status_code=303)


def _account_page(ctx: Ctx, provider: str, account: str, *, status_code: int = 200,
                  errors: FieldErrors | None = None, message: str | None = None,
                  values: dict[str, str] | None = None) -> HTMLResponse:
    authorised_for(api.update_provider_account, ctx)  # the operator's page: its roles checked first
    a = invoke(api.get_provider_account, ctx, provider=provider, account=account)
    done = ctx.request.query_params.get("done")
    return render(ctx, "provider_account.html", status_code=status_code, a=a, fields=CONFIG_FIELDS[a.provider],
                  known_fields=["owner", *CONFIG_FIELDS[a.provider]], errors=errors or {}, message=message,
                  values=values or {}, done=done if done == "updated" else None)


@router.get("/provider-accounts/{provider}/{account}")
def provider_account(provider: api.ProviderPath, account: api.AccountPath, ctx: Console) -> HTMLResponse:
    return _account_page(ctx, provider, account)


@router.post("/provider-accounts/{provider}/{account}")
def provider_account_update(provider: api.ProviderPath, account: api.AccountPath, ctx: Console) -> Response:
    """Replace an account's material (key rotation: list the old and the new secret while the
    provider rolls over) and its owner, through ``PUT /v1/provider-accounts/{provider}/{account}``'s
    handler (the operator only). Every field of the provider is given again: the API replaces."""
    fields = CONFIG_FIELDS.get(provider, ())
    values = {name: ctx.field(name).strip() for name in ("owner", *fields) if name not in SECRET_FIELDS}
    try:
        body = ProviderAccountUpdate.model_validate({"config": _config(ctx, provider),
                                                     "owner": values["owner"] or None})
        invoke(api.update_provider_account, ctx, provider=provider, account=account, body=body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
            raise
        return _account_page(ctx, provider, account, status_code=getattr(exc, "status", 422),
                             errors=_form_errors(exc), message=field_errors_of(exc)[1], values=values)
    path = f"{quote(provider, safe='')}/{quote(account, safe='')}"
    return RedirectResponse(f"{BASE}/provider-accounts/{path}?done=updated", status_code=303)
