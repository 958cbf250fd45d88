"""Recording provenance events: validate all, then store all with their leaves, or nothing.

The acting member is the caller (its registry id goes into the leaf); an event never names its
own member. An event id already recorded with the same content is accepted again without a new
row (a client retrying after a lost answer); with other content it is a conflict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anchors.errors import InvalidInputError
from anchors.events import LEAF_ENCODING_V1, SCHEMA_VERSION, ProvenanceEvent
from anchors.merkle import leaf_hashes, to_hex
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.core.errors import (
    ProvenanceBatchTooLargeError,
    ProvenanceEventConflictError,
    ProvenanceEventInvalidError,
)
from settlement.domains.anchoring.limits import EVENTS_PER_REQUEST_MAX, EVENTS_REQUEST_BYTES_MAX
from settlement.store.models.anchoring import ProvenanceEventRow

# Lookups of existing ids go in chunks (bound on the SQL IN list).
_ID_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class RecordedEvent:
    event_id: str
    lot_id: str
    leaf_hash: str
    duplicate: bool  # already recorded with the same content: nothing new was written


def event_json_bytes(event: ProvenanceEvent) -> int:
    """Size of the event's compact JSON: what the batch and request byte bounds count."""
    return len(json.dumps(event.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def parse_events(raw_events: Sequence[Mapping[str, Any]], member_onchain_id: str) -> list[ProvenanceEvent]:
    """Validate a request's events; the first bad one raises ProvenanceEventInvalidError with its
    index, and ProvenanceBatchTooLargeError when the request is over its bounds."""
    if len(raw_events) > EVENTS_PER_REQUEST_MAX:
        raise ProvenanceBatchTooLargeError(
            f"{len(raw_events)} events in one request; at most {EVENTS_PER_REQUEST_MAX}",
            limit_events=EVENTS_PER_REQUEST_MAX)
    if not raw_events:
        raise ProvenanceEventInvalidError("no events given", field="events")
    events: list[ProvenanceEvent] = []
    seen: dict[str, int] = {}
    total_bytes = 0
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, Mapping):
            raise ProvenanceEventInvalidError(f"events[{index}] must be an object", index=index, field="event")
        if "member_id" in raw:
            raise ProvenanceEventInvalidError(
                f"events[{index}]: member_id is not accepted; the acting member is the API key's member",
                index=index, field="member_id")
        try:
            event = ProvenanceEvent.from_json({**raw, "member_id": member_onchain_id})
        except InvalidInputError as exc:
            raise ProvenanceEventInvalidError(f"events[{index}]: {exc.detail}", index=index,
                                              field=exc.extra.get("field")) from None
        if event.event_id in seen:
            raise ProvenanceEventInvalidError(
                f"events[{index}]: event_id {event.event_id!r} repeats events[{seen[event.event_id]}]",
                index=index, field="event_id")
        seen[event.event_id] = index
        total_bytes += event_json_bytes(event)
        if total_bytes > EVENTS_REQUEST_BYTES_MAX:
            raise ProvenanceBatchTooLargeError(
                f"the events exceed {EVENTS_REQUEST_BYTES_MAX} bytes of JSON in one request (at events[{index}])",
                limit_bytes=EVENTS_REQUEST_BYTES_MAX)
        events.append(event)
    return events


def record_events(session: Session, member_id: str, member_onchain_id: str,
                  raw_events: Sequence[Mapping[str, Any]]) -> list[RecordedEvent]:
    """Validate and store events posted by ``member_id`` in ``session`` (all or nothing)."""
    events = parse_events(raw_events, member_onchain_id)
    existing: dict[str, ProvenanceEventRow] = {}
    ids = [e.event_id for e in events]
    for start in range(0, len(ids), _ID_LOOKUP_CHUNK):
        for row in session.scalars(select(ProvenanceEventRow)
                                   .where(ProvenanceEventRow.event_id.in_(ids[start:start + _ID_LOOKUP_CHUNK]))):
            existing[row.event_id] = row
    values = [e.leaf_value(SCHEMA_VERSION) for e in events]
    hashes = leaf_hashes(LEAF_ENCODING_V1, values)
    recorded: list[RecordedEvent] = []
    for index, (event, value, leaf) in enumerate(zip(events, values, hashes)):
        leaf_hex = to_hex(leaf)
        old = existing.get(event.event_id)
        if old is not None:
            if old.leaf_hash != leaf_hex or old.member_id != member_id:
                raise ProvenanceEventConflictError(
                    f"events[{index}]: event_id {event.event_id!r} is already recorded with other content",
                    index=index, event_id=event.event_id)
            recorded.append(RecordedEvent(event.event_id, event.lot_id, leaf_hex, True))
            continue
        session.add(ProvenanceEventRow(
            event_id=event.event_id, lot_id=event.lot_id, product=event.product, member_id=member_id,
            occurred_at_s=event.occurred_at_s,
            schema_version=SCHEMA_VERSION, event=event.to_json(), event_bytes=event_json_bytes(event),
            value=value, leaf_hash=leaf_hex))
        recorded.append(RecordedEvent(event.event_id, event.lot_id, leaf_hex, False))
    try:
        session.flush()
    except IntegrityError:
        # Another request recorded one of these ids between our lookup and our insert.
        raise ProvenanceEventConflictError("an event id of this request was recorded concurrently; retry") from None
    return recorded


__all__ = ["RecordedEvent", "event_json_bytes", "parse_events", "record_events"]
