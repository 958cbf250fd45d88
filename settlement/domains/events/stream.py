"""Reading events: a member's own, in order, from a cursor (the list, the SSE stream, deliveries).

The cursor is an event's ``seq`` (a decimal string to clients): events are read with
``seq > cursor`` in ``seq`` order, and because event-writing transactions commit in ``seq`` order
(:mod:`.producer`), a reader that saw ``seq = n`` will never later find a committed event below
``n``: resuming from the last cursor seen loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from settlement.core.errors import ValidationError
from settlement.domains.events.catalogue import PAYLOAD_VERSION, check_types
from settlement.store.models.events import EventRecipient, EventRow

__all__ = ["EVENTS_PAGE_MAX", "EventPage", "body_bytes", "envelope", "parse_cursor", "read_page", "type_filter"]

EVENTS_PAGE_MAX = 500
CURSOR_DIGITS_MAX = 19

_EVENTS = EventRow.__table__
_RECIPIENTS = EventRecipient.__table__


def _iso(value: datetime) -> str:
    utc = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(row: Any) -> dict[str, Any]:
    """The event as members receive it (webhook body, SSE data, list item): the same for all."""
    return {"id": row.id, "type": row.type, "timestamp": _iso(row.occurred_at), "version": PAYLOAD_VERSION,
            "data": {"object_type": row.object_type, "object_id": row.object_id, "state": row.state,
                     "tx_hash": row.tx_hash, "block_number": row.block_number, "object": row.data}}


def body_bytes(row: Any) -> bytes:
    """The envelope as bytes, the same on every delivery of the event (what is signed)."""
    return json.dumps(envelope(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_cursor(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > CURSOR_DIGITS_MAX:
        raise ValidationError("a cursor is the decimal string of a previous event's cursor", field="after")
    return int(value)


def type_filter(types: Sequence[str]) -> Any:
    """A WHERE clause for a filter of types and family wildcards (``settlement.*``); None: all."""
    if not types:
        return None
    try:
        checked = check_types(list(types))
    except ValueError as exc:
        raise ValidationError(f"{exc} is not a catalogued event type (docs/events.md)", field="types") from None
    exact = [t for t in checked if not t.endswith(".*")]
    families = [t[:-1] for t in checked if t.endswith(".*")]
    clauses = ([_EVENTS.c.type.in_(exact)] if exact else []) + [_EVENTS.c.type.startswith(f) for f in families]
    return or_(*clauses)


@dataclass(frozen=True)
class EventPage:
    rows: list[Any]
    next_cursor: str | None
    has_more: bool


def read_page(session: Session, member_id: str, after: int, limit: int, types: Sequence[str] = ()) -> EventPage:
    """Up to ``limit`` of ``member_id``'s events after ``after``, oldest first."""
    limit = max(1, min(limit, EVENTS_PAGE_MAX))
    q = (select(_EVENTS).join(_RECIPIENTS, _RECIPIENTS.c.event_seq == _EVENTS.c.seq)
         .where(_RECIPIENTS.c.member_id == member_id, _RECIPIENTS.c.event_seq > after)
         .order_by(_RECIPIENTS.c.event_seq).limit(limit + 1))
    where = type_filter(types)
    if where is not None:
        q = q.where(where)
    rows = list(session.execute(q))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = str(rows[-1].seq) if rows else (str(after) if after else None)
    return EventPage(rows, next_cursor, has_more)
