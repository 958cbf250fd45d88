"""The pull side: ``GET /v1/events?after=`` pages with a cursor, and the SSE stream resumes from
``Last-Event-ID`` after a dropped connection without losing or repeating an event."""

from __future__ import annotations

import httpx

from .conftest import CWorld
from .support import all_events, sse_events


def _read_sse(http: httpx.Client, headers: dict[str, str], count: int) -> list[dict]:
    """Open the stream, read ``count`` messages, drop the connection."""
    got: list[dict] = []
    buffer = ""
    with http.stream("GET", "/v1/events/stream", params={"types": "settlement.*"}, headers=headers,
                     timeout=30.0) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for chunk in r.iter_text():
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                got.extend(sse_events(block + "\n\n"))
                if len(got) >= count:
                    return got
    return got


def test_cursor_paging_and_sse_resume_lose_nothing(cworld: CWorld) -> None:
    """(Settlement events only: whether onboarding made member events depends on what ran before.)
    Pages of 2 give every event once; an SSE connection dropped after 3 messages and resumed
    with Last-Event-ID continues exactly after the last one, including events made meanwhile."""
    w = cworld.w
    for _ in range(3):
        cworld.settlement(payee="bank")
    paged = all_events(w.http, w.h("retailer"), limit=2, types="settlement.*")
    assert len(paged) == 6 and len({e["id"] for e in paged}) == 6
    first = _read_sse(w.http, w.h("retailer"), 3)
    assert [m["data"]["id"] for m in first] == [e["id"] for e in paged[:3]]
    assert [m["id"] for m in first] == [e["cursor"] for e in paged[:3]]
    assert [m["event"] for m in first] == [e["type"] for e in paged[:3]]
    # the connection is gone; more happens
    cworld.settlement(payee="bank")
    cworld.settlement(payee="psp")
    everything = all_events(w.http, w.h("retailer"), types="settlement.*")
    assert len(everything) == 10
    rest = _read_sse(w.http, {**w.h("retailer"), "Last-Event-ID": first[-1]["id"]}, 7)
    assert [m["data"]["id"] for m in first + rest] == [e["id"] for e in everything]
    # the payee reads its own only
    bank = all_events(w.http, w.h("bank"), types="settlement.*")
    assert {e["data"]["object"]["payee"] for e in bank} == {"bank"} and len(bank) == 8
    bad = w.http.get("/v1/events", params={"types": "settlement.nope"}, headers=w.h("bank"))
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    only = w.http.get("/v1/events", params={"types": "settlement.confirmed"}, headers=w.h("bank")).json()["data"]
    assert len(only) == 4 and {e["type"] for e in only} == {"settlement.confirmed"}
    assert w.http.get("/v1/events").status_code == 401
