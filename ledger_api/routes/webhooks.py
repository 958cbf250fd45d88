"""Webhook endpoints: each member manages its own (any active member; no role reads across).

Deliveries are signed per the Standard Webhooks specification (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``) with the endpoint's secret, shown once when the
endpoint is created or its secret rotated (docs/events.md).
"""

from __future__ import annotations

import json
from datetime import timezone
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ledger_api.conventions import LOCATION, IdempotencyKey, idempotent, located, replayed_headers
from ledger_api.deps import CurrentMember, DbSession, RuntimeDep
from ledger_api.schemas import Problem
from ledger_api.schemas.events import (
    DeliveriesPublic,
    DeliveryPublic,
    ReplayCreate,
    ReplayPublic,
    RotateCreate,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhooksPublic,
    WebhookUpdate,
)
from settlement.domains.events import webhooks as wh
from settlement.store.models.events import WebhookEndpoint

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"],
                   responses={400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": Problem},
                              404: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}})

def _read_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.read() as session:  # reads never take SQLite's write lock
        yield session


ReadSession = Annotated[Session, Depends(_read_session)]
EndpointIdPath = Annotated[str, Path(min_length=4, max_length=40, pattern=r"^ep_[0-9a-f]+$")]


def _public(row: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic(id=row.id, owner=row.member_id, url=row.url, description=row.description,
                         event_types=list(row.event_types), status=row.status,  # type: ignore[arg-type]
                         disabled_reason=row.disabled_reason,
                         previous_secret_expires_at=row.previous_secret_expires_at, created_at=row.created_at,
                         updated_at=row.updated_at)


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED, operation_id="webhooks.create",
             responses={201: {"headers": LOCATION}},
             summary="Register a webhook endpoint (Idempotency-Key required); the secret is in this answer only")
def create_webhook(body: WebhookCreate, runtime: RuntimeDep, who: CurrentMember,
                   idempotency_key: IdempotencyKey = None) -> JSONResponse:
    shown: list[str] = []

    def work(session: Session) -> tuple[int, dict]:
        row, secret = wh.create_endpoint(session, runtime, who.member_id, body.url, body.event_types,
                                         body.description)
        shown.append(secret)
        # What is stored for a replay has no secret: it is shown once.
        return 201, WebhookCreated(**_public(row).model_dump(), secret=None).model_dump(mode="json")

    answer = idempotent(runtime, who.member_id, idempotency_key, "POST /v1/webhooks", body.model_dump(mode="json"),
                        work, headers={"Cache-Control": "no-store"}, location=_location)
    if shown:
        made = json.loads(answer.body)
        answer = JSONResponse({**made, "secret": shown[0]}, status_code=answer.status_code,
                              headers={"Cache-Control": "no-store", **located(_location, made), **replayed_headers(False)})
    return answer


def _location(endpoint: dict) -> str:
    return f"/v1/webhooks/{endpoint['id']}"


@router.get("", response_model=WebhooksPublic, operation_id="webhooks.list", summary="Your webhook endpoints")
def list_webhooks(session: ReadSession, who: CurrentMember,
                  cursor: Annotated[str | None, Query(max_length=40, pattern=r"^ep_[0-9a-f]+$")] = None,
                  limit: Annotated[int, Query(ge=1, le=wh.PAGE_MAX)] = 50) -> WebhooksPublic:
    rows, has_more = wh.list_endpoints(session, who.member_id, cursor, limit)
    return WebhooksPublic(data=[_public(r) for r in rows], next_cursor=rows[-1].id if has_more else None,
                          has_more=has_more)


@router.get("/{endpoint_id}", response_model=WebhookPublic, operation_id="webhooks.get")
def get_webhook(endpoint_id: EndpointIdPath, session: ReadSession, who: CurrentMember) -> WebhookPublic:
    return _public(wh.get_endpoint(session, who.member_id, endpoint_id))


@router.patch("/{endpoint_id}", response_model=WebhookPublic, operation_id="webhooks.update",
              summary="Change the URL, filter or description; enable or disable")
def update_webhook(endpoint_id: EndpointIdPath, body: WebhookUpdate, session: DbSession,
                   who: CurrentMember) -> WebhookPublic:
    return _public(wh.update_endpoint(session, who.member_id, endpoint_id, url=body.url, event_types=body.event_types,
                                      description=body.description, enabled=body.enabled))


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               operation_id="webhooks.delete", summary="Remove an endpoint and its delivery history")
def delete_webhook(endpoint_id: EndpointIdPath, session: DbSession, who: CurrentMember) -> Response:
    wh.delete_endpoint(session, who.member_id, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookCreated, operation_id="webhooks.rotate_secret",
             summary="A new secret (in this answer only); the previous one keeps signing for overlap_s")
def rotate_secret(endpoint_id: EndpointIdPath, body: RotateCreate, runtime: RuntimeDep, session: DbSession,
                  who: CurrentMember) -> JSONResponse:
    row, secret = wh.rotate_secret(session, runtime, who.member_id, endpoint_id, body.overlap_s)
    session.flush()
    payload = WebhookCreated(**_public(row).model_dump(), secret=secret).model_dump(mode="json")
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})


@router.get("/{endpoint_id}/deliveries", response_model=DeliveriesPublic, operation_id="webhooks.deliveries",
            summary="The endpoint's deliveries (failed ones are kept), oldest first")
def list_deliveries(endpoint_id: EndpointIdPath, session: ReadSession, who: CurrentMember,
                    status_: Annotated[str | None, Query(alias="status", pattern=r"^(pending|delivered|failed)$")] = None,
                    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
                    limit: Annotated[int, Query(ge=1, le=wh.PAGE_MAX)] = 50) -> DeliveriesPublic:
    rows, has_more = wh.list_deliveries(session, who.member_id, endpoint_id, status_, int(cursor or 0), limit)
    data = [DeliveryPublic(id=str(v.row.id), event_id=v.row.event_id, event_type=v.event_type, object_id=v.object_id,
                           round=v.row.round, status=v.row.status,  # type: ignore[arg-type]
                           attempts=v.row.attempts,
                           next_attempt_at=v.row.next_attempt_at if v.row.status == "pending" else None,
                           last_status_code=v.row.last_status_code, last_error=v.row.last_error,
                           created_at=v.row.created_at, delivered_at=v.row.delivered_at) for v in rows]
    return DeliveriesPublic(data=data, next_cursor=data[-1].id if has_more else None, has_more=has_more)


@router.post("/{endpoint_id}/replay", response_model=ReplayPublic, status_code=status.HTTP_202_ACCEPTED,
             operation_id="webhooks.replay",
             summary="Deliver again one event, or every event since a time not delivered to this endpoint")
def replay(endpoint_id: EndpointIdPath, body: ReplayCreate, session: DbSession, who: CurrentMember) -> ReplayPublic:
    since = body.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return ReplayPublic(queued=wh.replay(session, who.member_id, endpoint_id, event_id=body.event_id, since=since))


__all__ = ["router"]


# -- what a receiver gets: the OpenAPI ``webhooks`` section -------------------------------------------

DELIVERY_HEADERS_DOC = """\
Signed per the Standard Webhooks specification: `webhook-id` (the event id: the receiver's
idempotency key, the same on every retry), `webhook-timestamp` (unix seconds of this attempt) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, two of them, space
separated, while a rotated secret's overlap lasts). Verify with the `standardwebhooks` library:
`Webhook(secret).verify(body, headers)`. Answer 2xx within 10 s; anything else is retried with
exponential backoff and jitter for about three days (docs/events.md)."""


def _delivery_model(event_type: str) -> type:
    from pydantic import create_model

    from ledger_api.schemas.events import OBJECT_MODELS, EventData, EventPublic, GenericObject
    from settlement.domains.events.catalogue import CATALOGUE

    object_model = OBJECT_MODELS.get(CATALOGUE[event_type].object_type, GenericObject)
    name = "".join(part.capitalize() for part in event_type.replace(".", "_").split("_"))
    data = create_model(f"{name}Data", __base__=EventData, object=(object_model, ...))
    return create_model(f"{name}Event", __base__=EventPublic, data=(data, ...))


def document_deliveries(webhooks_router: APIRouter) -> None:
    """Add every catalogued event type to the app's OpenAPI ``webhooks`` (called by the app factory)."""
    from settlement.domains.events.catalogue import CATALOGUE

    for event_type, spec in CATALOGUE.items():
        model = _delivery_model(event_type)

        def receive(body) -> None:  # type: ignore[no-untyped-def]  # documentation only
            """Documentation of a delivery; the service never serves it."""

        receive.__annotations__ = {"body": model, "return": None}  # a real class (this module's annotations are text)

        webhooks_router.add_api_route(
            event_type, receive, methods=["POST"], summary=f"{event_type}: {spec.description}",
            description=DELIVERY_HEADERS_DOC, operation_id=f"webhook.{event_type}", status_code=204,
            response_class=Response, tags=["webhook deliveries"],
            openapi_extra={"parameters": [
                {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
                for h in ("webhook-id", "webhook-timestamp", "webhook-signature")]})
