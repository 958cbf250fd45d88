"""The callbacks page: payment-provider notifications recorded on the member's own provider
accounts (finance), or on every account (the operator and auditors, optionally one owner's), with
each one's outcome (applied, deferred, exception, noted) and reason; and the provider accounts the
member may see. The tenancy is the API's (docs/api.md, "Tenancy"): the page calls the
``GET /v1/callbacks`` and ``GET /v1/provider-accounts`` handlers, with their parameter checks
(:func:`~ledger_api.console.web.query_of`), and another owner's callback by id answers 404.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Path
from fastapi.responses import HTMLResponse

from ledger_api.console.web import Console, authorised_for, invoke, page_router, query_of, render
from ledger_api.routes import callbacks as api
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
