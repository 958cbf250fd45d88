"""Failed authentication is throttled per client address (issue 15: it was not): past the named
limit within the window, failures get 429 ``authentication-throttled`` problem+json with
``Retry-After``; a valid key is never throttled; the security log gets one ``auth.throttled``
event instead of one row per failure; the window ends and 401s come back; memory is bounded.
Over real HTTP (the app served by uvicorn) with a fake clock for the window."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger_api.app import create_app
from ledger_api.settings import Settings
from ledger_api.throttle import FailedAuthThrottle
from settlement.store.models import SecurityEvent

from .support import Api, LiveServer

THROTTLED = "urn:ledger:problem:authentication-throttled"
LIMIT = 3
WINDOW_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _events(api: Api, kind: str) -> int:
    with api.runtime.db.read() as s:
        return s.scalar(select(func.count()).select_from(SecurityEvent).where(SecurityEvent.kind == kind)) or 0


def test_failures_past_the_limit_get_429_with_retry_after_and_valid_keys_pass(
        api: Api, settings: Settings, serve: Callable[[FastAPI], LiveServer]) -> None:
    clock = Clock()
    throttle = FailedAuthThrottle(failures_max=LIMIT, window_s=WINDOW_S, clock=clock)
    server = serve(create_app(api.runtime, settings, registry_cache_ttl_s=0.0, auth_throttle=throttle))
    bad = {"Authorization": "Bearer lk_nosuchkey_" + "A" * 43}
    good = {"Authorization": f"Bearer {api.operator_key}"}
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for _ in range(LIMIT):
            assert http.get("/v1/me", headers=bad).status_code == 401
        before = _events(api, "auth.invalid_key")
        clock.now += 10
        for n in range(5):
            r = http.get("/v1/me", headers=bad if n % 2 else {})  # a bad key or none at all
            assert r.status_code == 429, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"] == THROTTLED and r.json()["status"] == 429
            assert r.headers["retry-after"] == str(int(WINDOW_S - 10))
            # successful requests are never throttled, from the very same address
            assert http.get("/v1/me", headers=good).status_code == 200
        assert _events(api, "auth.invalid_key") == before  # throttled failures are not logged one by one
        assert _events(api, "auth.throttled") == 1
        clock.now += WINDOW_S  # the window is over: failures are 401 again (and counted anew)
        assert http.get("/v1/me", headers=bad).status_code == 401


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=60))
def test_each_address_has_its_own_window_and_memory_is_bounded(addresses: list[str]) -> None:
    """No address is throttled before its own limit; at most ``clients_max`` are remembered."""
    throttle = FailedAuthThrottle(failures_max=5, window_s=60, clients_max=3, clock=lambda: 0.0)
    seen: dict[str, int] = {}
    for address in addresses:
        verdict = throttle.failed(address)
        # forgetting (eviction) can only reset a count, never raise it
        seen[address] = seen.get(address, 0) + 1
        if verdict.retry_after_s is not None:
            assert seen[address] > 5 and verdict.retry_after_s == 60
        assert len(throttle) <= 3
