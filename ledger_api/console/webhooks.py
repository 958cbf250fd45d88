"""The webhooks page: the signed-in member's own webhook endpoints (any active member, as
``/v1/webhooks``): list, register (the signing secret shown once, on the answer page only), rotate
the secret (the new one shown once), enable and disable, remove; an endpoint's deliveries, and
replay of one event or of everything since a time.

Each action calls the ``/v1/webhooks`` route's own handler (:func:`~ledger_api.console.web.invoke`),
so the URL rules (https, or http to a loopback address), the event-type filter and the tenancy
(another member's endpoint answers 404) are the API's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console.web import (
    BASE,
    Console,
    Ctx,
    FieldErrors,
    field_errors_of,
    invoke,
    new_idempotency_key,
    page_router,
    render,
    shown_on_form,
)
from ledger_api.routes import webhooks as api
from ledger_api.schemas.events import ReplayCreate, RotateCreate, WebhookCreate, WebhookUpdate
from settlement.core.errors import LedgerError
from settlement.domains.events.catalogue import EVENT_TYPES

router = page_router()

ENDPOINTS_SHOWN = 50
DELIVERIES_SHOWN = 50
DELIVERY_STATUSES = ("pending", "delivered", "failed")
_TYPES_SPLIT = re.compile(r"[\s,]+")


def _endpoints(ctx: Ctx) -> list[Any]:
    return invoke(api.list_webhooks, ctx, cursor=None, limit=ENDPOINTS_SHOWN).data


def _page(ctx: Ctx, *, status_code: int = 200, secret: dict[str, str] | None = None, errors: FieldErrors | None = None,
          message: str | None = None, values: dict[str, str] | None = None) -> HTMLResponse:
    return render(ctx, "webhooks.html", status_code=status_code, endpoints=_endpoints(ctx), secret=secret,
                  errors=errors or {}, message=message, values=values or {}, event_types=EVENT_TYPES,
                  idempotency_key=new_idempotency_key())


@router.get("/webhooks")
def webhooks(ctx: Console) -> HTMLResponse:
    return _page(ctx)


@router.post("/webhooks")
def webhook_create(ctx: Console) -> Response:
    """Register an endpoint; its secret is on this answer only (the API shows it once too)."""
    values = {name: ctx.field(name) for name in ("url", "event_types", "description")}
    try:
        body = WebhookCreate.model_validate({
            "url": values["url"].strip(), "description": values["description"].strip(),
            "event_types": [t for t in _TYPES_SPLIT.split(values["event_types"]) if t]})
        answer = invoke(api.create_webhook, ctx, body=body,
                        idempotency_key=ctx.field("idempotency_key") or new_idempotency_key())
    except (LedgerError, pydantic.ValidationError) as exc:
        if not shown_on_form(exc):
            raise
        errors, message = field_errors_of(exc)
        return _page(ctx, status_code=getattr(exc, "status", 422), errors=errors, message=message, values=values)
    created = json.loads(answer.body)
    secret = {"id": created["id"], "secret": created["secret"]} if created.get("secret") else None
    return _page(ctx, status_code=201, secret=secret)


@router.post("/webhooks/{endpoint_id}/rotate")
def webhook_rotate(endpoint_id: api.EndpointIdPath, ctx: Console) -> HTMLResponse:
    """A new secret (shown once); the previous one keeps signing for the API's default overlap."""
    answer = invoke(api.rotate_secret, ctx, endpoint_id=endpoint_id, body=RotateCreate())
    rotated = json.loads(answer.body)
    return _page(ctx, secret={"id": rotated["id"], "secret": rotated["secret"]})


@router.post("/webhooks/{endpoint_id}/enable")
def webhook_enable(endpoint_id: api.EndpointIdPath, ctx: Console) -> Response:
    invoke(api.update_webhook, ctx, endpoint_id=endpoint_id, body=WebhookUpdate(enabled=True))
    return RedirectResponse(f"{BASE}/webhooks", status_code=303)


@router.post("/webhooks/{endpoint_id}/disable")
def webhook_disable(endpoint_id: api.EndpointIdPath, ctx: Console) -> Response:
    invoke(api.update_webhook, ctx, endpoint_id=endpoint_id, body=WebhookUpdate(enabled=False))
    return RedirectResponse(f"{BASE}/webhooks", status_code=303)


@router.post("/webhooks/{endpoint_id}/delete")
def webhook_delete(endpoint_id: api.EndpointIdPath, ctx: Console) -> Response:
    invoke(api.delete_webhook, ctx, endpoint_id=endpoint_id)
    return RedirectResponse(f"{BASE}/webhooks", status_code=303)


def _detail(ctx: Ctx, endpoint_id: str, *, status_code: int = 200, queued: int | None = None,
            errors: FieldErrors | None = None, message: str | None = None) -> HTMLResponse:
    endpoint = invoke(api.get_webhook, ctx, endpoint_id=endpoint_id)
    wanted = ctx.request.query_params.get("status", "")
    status = wanted if wanted in DELIVERY_STATUSES else None
    deliveries = invoke(api.list_deliveries, ctx, endpoint_id=endpoint_id, status_=status, cursor=None,
                        limit=DELIVERIES_SHOWN)
    return render(ctx, "webhook_detail.html", status_code=status_code, w=endpoint, deliveries=deliveries.data,
                  status=status or "", statuses=DELIVERY_STATUSES, queued=queued, errors=errors or {},
                  message=message)


@router.get("/webhooks/{endpoint_id}")
def webhook_detail(endpoint_id: api.EndpointIdPath, ctx: Console) -> HTMLResponse:
    return _detail(ctx, endpoint_id)


@router.post("/webhooks/{endpoint_id}/replay")
def webhook_replay(endpoint_id: api.EndpointIdPath, ctx: Console) -> HTMLResponse:
    """Deliver again one event (its id) or every event since a time not delivered to this endpoint."""
    event_id, since = ctx.field("event_id").strip(), ctx.field("since").strip()
    try:
        body = ReplayCreate.model_validate({"event_id": event_id or None, "since": since or None})
        answer = invoke(api.replay, ctx, endpoint_id=endpoint_id, body=body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if not shown_on_form(exc):
            raise
        errors, message = field_errors_of(exc)
        return _detail(ctx, endpoint_id, status_code=getattr(exc, "status", 422), errors=errors, message=message)
    return _detail(ctx, endpoint_id, status_code=202, queued=answer.queued)
