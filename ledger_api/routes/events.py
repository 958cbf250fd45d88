"""Events: a member's own events, cursor-paged (``GET /v1/events?after=``) or as a Server-Sent
Events stream resuming from ``Last-Event-ID`` (``GET /v1/events/stream``).

Tenancy: every member reads only the events it is a recipient of (the parties of the event's
object, docs/events.md); no role reads across.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ledger_api.deps import CurrentMember, RuntimeDep
from ledger_api.schemas import Problem
from ledger_api.schemas.events import EventPublic, EventsPublic
from settlement.domains import events as ev
from settlement.runtime import Runtime

router = APIRouter(prefix="/v1/events", tags=["events"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}})

# The stream polls the store this often while idle, sends a comment line this often to keep
# proxies from closing it, reads at most a page per poll, and ends after this long (the client
# reconnects with Last-Event-ID; a bound on what one connection holds).
STREAM_POLL_INTERVAL_S = 0.25
STREAM_HEARTBEAT_S = 15.0
STREAM_PAGE_MAX = 200
STREAM_LIFETIME_S = 3600.0
STREAM_RETRY_MS = 1000

class EventStreamResponse(StreamingResponse):
    """``text/event-stream``, and only that, in the OpenAPI document (not JSON beside it)."""

    media_type = "text/event-stream"


TypesQuery = Annotated[list[str], Query(max_length=64, description="catalogued types or `family.*`; "
                                        "repeat the parameter for more")]
AfterQuery = Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$",
                                         description="the `cursor` of the last event seen (empty: from the start)")]


def _public(row) -> EventPublic:  # type: ignore[no-untyped-def]
    return EventPublic(**ev.envelope(row), cursor=str(row.seq))


def _page(runtime: Runtime, member_id: str, after: int, limit: int, types: list[str]) -> ev.stream.EventPage:
    with runtime.db.read() as session:
        return ev.read_page(session, member_id, after, limit, types)


@router.get("", response_model=EventsPublic, operation_id="events.list",
            summary="The caller's events after a cursor, oldest first")
def list_events(runtime: RuntimeDep, who: CurrentMember, after: AfterQuery = None,
                types: TypesQuery = [],  # noqa: B006 - FastAPI copies query defaults
                limit: Annotated[int, Query(ge=1, le=ev.EVENTS_PAGE_MAX)] = 100) -> EventsPublic:
    page = _page(runtime, who.member_id, ev.parse_cursor(after), limit, types)
    return EventsPublic(data=[_public(r) for r in page.rows], next_cursor=page.next_cursor, has_more=page.has_more)


def _sse(row) -> bytes:  # type: ignore[no-untyped-def]
    data = json.dumps(_public(row).model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)
    return f"id: {row.seq}\nevent: {row.type}\ndata: {data}\n\n".encode()


@router.get("/stream", operation_id="events.stream", response_class=EventStreamResponse,
            summary="Server-Sent Events: the caller's events as they happen, resuming after Last-Event-ID",
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`id:` is the event's cursor, `event:` its type, `data:` the event"}})
async def stream_events(request: Request, runtime: RuntimeDep, who: CurrentMember, after: AfterQuery = None,
                        types: TypesQuery = [],  # noqa: B006
                        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20,
                                                                    pattern=r"^[0-9]*$")] = None
                        ) -> EventStreamResponse:
    cursor = ev.parse_cursor(last_event_id if last_event_id else after)
    ev.stream.type_filter(types)  # a bad filter is a 422 before the stream starts
    member_id = who.member_id

    async def messages() -> AsyncIterator[bytes]:
        nonlocal cursor
        started = last_sent = time.monotonic()
        yield f"retry: {STREAM_RETRY_MS}\n\n".encode()
        while time.monotonic() - started < STREAM_LIFETIME_S:
            if await request.is_disconnected():
                return
            page = await run_in_threadpool(_page, runtime, member_id, cursor, STREAM_PAGE_MAX, types)
            for row in page.rows:
                yield _sse(row)
                cursor = row.seq
            if page.rows:
                last_sent = time.monotonic()
                if page.has_more:
                    continue
            elif time.monotonic() - last_sent >= STREAM_HEARTBEAT_S:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(STREAM_POLL_INTERVAL_S)

    return EventStreamResponse(messages(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
