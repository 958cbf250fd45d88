"""Webhook endpoints: a member's receiving URLs, their filters and signing secrets.

- The URL is ``https://``, or ``http://`` to a loopback address only (a receiver on the same host);
  no user info, no fragment.
- The filter is a list of catalogued types or family wildcards (``settlement.*``); empty: all.
- The secret (``whsec_`` + base64 of 32 random bytes, the Standard Webhooks form) is shown once,
  in the answer that creates or rotates it, and kept encrypted under the KEK. Rotation keeps the
  previous secret signing beside the new one for an overlap (each delivery then carries both
  signatures in ``webhook-signature``), so the receiver can switch without losing a delivery.
- An endpoint receives the events made after it was created (or last enabled); a disabled one
  gets nothing new, and what it missed can be replayed (:func:`replay`).
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from settlement.core.errors import ConflictError, NotFoundError, ValidationError
from settlement.domains.events.catalogue import check_types
from settlement.runtime import Runtime
from settlement.store.models import utcnow
from settlement.store.models.events import EventRecipient, EventRow, WebhookDelivery, WebhookEndpoint

__all__ = ["ENDPOINTS_PER_MEMBER_MAX", "REPLAY_EVENTS_MAX", "WebhookEndpointNotFoundError", "WebhookUrlRefusedError",
           "create_endpoint", "delete_endpoint", "get_endpoint", "list_deliveries", "list_endpoints", "replay",
           "rotate_secret", "signing_secrets", "update_endpoint"]

ENDPOINTS_PER_MEMBER_MAX = 20
SECRET_BYTES = 32
ROTATION_OVERLAP_S_MAX = 7 * 86_400
REPLAY_EVENTS_MAX = 10_000
PAGE_MAX = 200
URL_LEN_MAX = 2048
LOOPBACK_NAMES = frozenset({"localhost"})


class WebhookUrlRefusedError(ValidationError):
    type_slug = "webhook-url-refused"
    title = "The webhook URL is not allowed"


class UnknownEventTypeError(ValidationError):
    type_slug = "unknown-event-type"
    title = "Not a catalogued event type"


class WebhookEndpointNotFoundError(NotFoundError):
    type_slug = "webhook-endpoint-not-found"
    title = "No such webhook endpoint"


class EventNotFoundError(NotFoundError):
    type_slug = "event-not-found"
    title = "No such event"


class TooManyEndpointsError(ConflictError):
    type_slug = "too-many-webhook-endpoints"
    title = "Too many webhook endpoints"


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    if len(url) > URL_LEN_MAX or not url.isascii() or not url.isprintable() or " " in url:
        raise WebhookUrlRefusedError(f"a URL of at most {URL_LEN_MAX} printable ASCII characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlRefusedError("not a URL", field="url") from None
    host = parts.hostname or ""
    if not host:
        raise WebhookUrlRefusedError("the URL has no host", field="url")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise WebhookUrlRefusedError("no user info or fragment in a webhook URL", field="url")
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(host)):
        return url
    del port  # parsed only to refuse a bad one
    raise WebhookUrlRefusedError("https is required (http only to a loopback address)", field="url")


def _types(types: list[str]) -> list[str]:
    try:
        return check_types(types)
    except ValueError as exc:
        raise UnknownEventTypeError(f"{exc} is not a catalogued event type (docs/events.md)",
                                    field="event_types") from None


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _aad(endpoint_id: str) -> str:
    return f"webhook:{endpoint_id}"


def _seal(runtime: Runtime, endpoint_id: str, secret: str) -> bytes:
    return runtime.vault.encrypt(_aad(endpoint_id), secret.encode("ascii"))


def _open(runtime: Runtime, endpoint_id: str, blob: bytes) -> str:
    return runtime.vault.decrypt(_aad(endpoint_id), blob).decode("ascii")


def _head_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(EventRow.seq))) or 0)


def create_endpoint(session: Session, runtime: Runtime, member_id: str, url: str, event_types: list[str],
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint of ``member_id`` and its secret (to show once)."""
    count = session.scalar(select(func.count()).select_from(WebhookEndpoint)
                           .where(WebhookEndpoint.member_id == member_id)) or 0
    if count >= ENDPOINTS_PER_MEMBER_MAX:
        raise TooManyEndpointsError(f"at most {ENDPOINTS_PER_MEMBER_MAX} webhook endpoints per member")
    endpoint_id = "ep_" + secrets.token_hex(12)
    secret = _new_secret()
    row = WebhookEndpoint(id=endpoint_id, member_id=member_id, url=check_url(url), description=description,
                          event_types=_types(event_types), status="enabled", secret=_seal(runtime, endpoint_id, secret),
                          cursor_seq=_head_seq(session), created_by=member_id)
    session.add(row)
    session.flush()
    return row, secret


def get_endpoint(session: Session, member_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.member_id != member_id:
        raise WebhookEndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
    return row


def list_endpoints(session: Session, member_id: str, after: str | None, limit: int) -> tuple[list[WebhookEndpoint], bool]:
    limit = max(1, min(limit, PAGE_MAX))
    q = select(WebhookEndpoint).where(WebhookEndpoint.member_id == member_id).order_by(WebhookEndpoint.id)
    if after:
        q = q.where(WebhookEndpoint.id > after)
    rows = list(session.scalars(q.limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def update_endpoint(session: Session, member_id: str, endpoint_id: str, *, url: str | None = None,
                    event_types: list[str] | None = None, description: str | None = None,
                    enabled: bool | None = None) -> WebhookEndpoint:
    row = get_endpoint(session, member_id, endpoint_id)
    if url is not None:
        row.url = check_url(url)
    if event_types is not None:
        row.event_types = _types(event_types)
    if description is not None:
        row.description = description
    if enabled is True and row.status != "enabled":
        # New events only from now on; what was missed meanwhile is replayable (replay since).
        row.status, row.disabled_reason, row.cursor_seq = "enabled", None, _head_seq(session)
    elif enabled is False and row.status != "disabled":
        row.status, row.disabled_reason = "disabled", f"disabled by {member_id}"
    row.updated_at = utcnow()
    return row


def delete_endpoint(session: Session, member_id: str, endpoint_id: str) -> None:
    row = get_endpoint(session, member_id, endpoint_id)
    session.query(WebhookDelivery).filter(WebhookDelivery.endpoint_id == row.id).delete(synchronize_session=False)
    session.delete(row)


def rotate_secret(session: Session, runtime: Runtime, member_id: str, endpoint_id: str,
                  overlap_s: int) -> tuple[WebhookEndpoint, str]:
    """A new secret (shown once); the current one keeps signing beside it for ``overlap_s``."""
    if not 0 <= overlap_s <= ROTATION_OVERLAP_S_MAX:
        raise ValidationError(f"overlap_s is 0..{ROTATION_OVERLAP_S_MAX}", field="overlap_s")
    row = get_endpoint(session, member_id, endpoint_id)
    secret = _new_secret()
    if overlap_s > 0:
        row.previous_secret = row.secret
        row.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap_s)
    else:
        row.previous_secret, row.previous_secret_expires_at = None, None
    row.secret = _seal(runtime, row.id, secret)
    row.updated_at = utcnow()
    return row, secret


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def signing_secrets(runtime: Runtime, row: Any, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while its
    overlap lasts."""
    out = [_open(runtime, row.id, row.secret)]
    if row.previous_secret is not None and row.previous_secret_expires_at is not None \
            and _aware(row.previous_secret_expires_at) > now:
        out.append(_open(runtime, row.id, row.previous_secret))
    return out


@dataclass(frozen=True)
class DeliveryView:
    row: WebhookDelivery
    event_type: str
    object_id: str


def list_deliveries(session: Session, member_id: str, endpoint_id: str, status: str | None, after: int,
                    limit: int) -> tuple[list[DeliveryView], bool]:
    get_endpoint(session, member_id, endpoint_id)
    limit = max(1, min(limit, PAGE_MAX))
    q = (select(WebhookDelivery, EventRow.type, EventRow.object_id)
         .join(EventRow, EventRow.seq == WebhookDelivery.event_seq)
         .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id > after)
         .order_by(WebhookDelivery.id).limit(limit + 1))
    if status is not None:
        q = q.where(WebhookDelivery.status == status)
    rows = [DeliveryView(d, t, o) for d, t, o in session.execute(q)]
    return rows[:limit], len(rows) > limit


def _matches(types: list[str], event_type: str) -> bool:
    return not types or event_type in types or any(t.endswith(".*") and event_type.startswith(t[:-1])
                                                   for t in types)


def replay(session: Session, member_id: str, endpoint_id: str, *, event_id: str | None = None,
           since: datetime | None = None) -> int:
    """Queue again: one event of the member (whatever became of it), or every event since a time
    that the endpoint's filter takes and that is not delivered to it (failed, or never sent while
    the endpoint was disabled). Returns how many deliveries were queued."""
    endpoint = get_endpoint(session, member_id, endpoint_id)
    if (event_id is None) == (since is None):
        raise ValidationError("give event_id or since", field="event_id")
    mine = and_(EventRecipient.event_seq == EventRow.seq, EventRecipient.member_id == member_id)
    if event_id is not None:
        event = session.execute(select(EventRow.seq, EventRow.object_type, EventRow.object_id)
                                .join(EventRecipient, mine).where(EventRow.id == event_id)).first()
        if event is None:
            raise EventNotFoundError(f"no event {event_id}")
        candidates = [event]
        force = True
    else:
        candidates = list(session.execute(
            select(EventRow.seq, EventRow.object_type, EventRow.object_id, EventRow.type).join(EventRecipient, mine)
            .where(EventRow.occurred_at >= since).order_by(EventRow.seq).limit(REPLAY_EVENTS_MAX)))
        candidates = [c for c in candidates if _matches(endpoint.event_types, c.type)]
        force = False
    queued = 0
    now = utcnow()
    for c in candidates:
        states = list(session.execute(select(WebhookDelivery.round, WebhookDelivery.status).where(
            WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_seq == c.seq)))
        if any(s == "pending" for _r, s in states):
            continue  # already on its way
        if not force and any(s == "delivered" for _r, s in states):
            continue
        next_round = max((r for r, _s in states), default=-1) + 1
        event_id_of = session.scalar(select(EventRow.id).where(EventRow.seq == c.seq))
        session.add(WebhookDelivery(endpoint_id=endpoint.id, event_seq=c.seq, event_id=event_id_of,
                                    object_key=f"{c.object_type}:{c.object_id}", round=next_round, status="pending",
                                    attempts=0, next_attempt_at=now, created_at=now))
        queued += 1
    return queued
