"""No request can wedge the store (issue 11, item 4).

Proves, against the real `ledger up --demo` (anvil, workers, uvicorn) on SQLite and on PostgreSQL,
over real HTTP: every route of the app, hit concurrently from several threads without a key, with
a bad key and with each member's key (plus the requests the issue found turning 4xx into 500s and
a burst of 2 x 100 unauthenticated `GET /v1/balances`), never answers 5xx and never hangs; a
writer keeps getting its settlements accepted during the flood; and after it a settlement is
accepted and confirmed on chain.

On the old store (a thread-owned RLock taken by the session dependency, which FastAPI enters and
leaves on different threads) this fails: requests hang (the lock stays held by an idle worker
thread) and answers turn into 500 `cannot release un-acquired lock`.
"""

from __future__ import annotations

import collections
import itertools
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from ledger_api.routes import api_router
from tests.store.ledger_up import LedgerUp

FLOOD_THREADS = 8
REQUEST_TIMEOUT_S = 30.0  # generous: an answer later than this is a hang
CONFIRM_TIMEOUT_S = 90.0
BALANCES_BURST = 100  # per client, two clients (the reproduction)
WRITES_DURING_FLOOD_MAX = 40
# Server-Sent Events: an answer that lasts until the client hangs up.
STREAMS = frozenset({"/v1/events/stream"})
PATH_VALUE = "0"  # an id nothing has: every path parameter, so nothing real is touched


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None


ROUTES_MIN = 80  # the app serves more than this: a walk that finds fewer has missed some


def _walk(router: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in getattr(router, "routes", []):
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x includes routers lazily
        if included is not None:
            yield from _walk(included, prefix + (getattr(route.include_context, "prefix", "") or ""))
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                yield method, prefix + route.path


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves."""
    found = sorted(set(_walk(api_router)))
    assert len(found) >= ROUTES_MIN, found
    return found


def _fill(template: str) -> str:
    path = template
    while "{" in path:
        start = path.index("{")
        path = path[:start] + PATH_VALUE + path[path.index("}", start) + 1:]
    return path


def _calls(keys: dict[str, str]) -> list[Call]:
    auths: list[dict[str, str]] = [{}, {"Authorization": "Bearer lk_not_a_key"}, {"Authorization": "Basic x"}]
    auths += [{"Authorization": f"Bearer {key}"} for key in keys.values()]
    calls = []
    for method, template in _routes():
        path = _fill(template)
        for auth in auths:
            headers = dict(auth)
            body = None
            if method in ("POST", "PUT"):
                headers |= {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
                body = b"{}"
            calls.append(Call(method, path, headers, body))
        if method in ("POST", "PUT"):  # bodies that are not JSON, or nothing at all
            member = {"Authorization": f"Bearer {keys['operator']}", "Idempotency-Key": uuid.uuid4().hex}
            calls.append(Call(method, path, member | {"Content-Type": "application/json"}, b"{not json"))
            calls.append(Call(method, path, member))
    finance = {"Authorization": f"Bearer {keys['retailer']}"}
    financier = {"Authorization": f"Bearer {keys['bank']}"}
    supplier = {"Authorization": f"Bearer {keys['supplier']}"}
    json_ = {"Content-Type": "application/json"}
    for n in range(5):  # the answers issue 11 saw turn from 4xx into 500
        calls.append(Call("POST", "/v1/netting-cycles", finance | json_ | {"Idempotency-Key": f"net-{n}"},
                          b'{"currency":"CNY"}'))
        calls.append(Call("GET", "/v1/reconciliation/runs/0/report?format=", finance))
        for who in (financier, supplier):
            for action in ("financing-request", "financing-request/withdraw", "offers", "acceptances"):
                calls.append(Call("POST", f"/v1/receivables/0x{'ab' * 32}/parts/1/{action}",
                                  who | json_ | {"Idempotency-Key": uuid.uuid4().hex},
                                  b'{"financier":"bank","amount":{"value":100,"currency":"CNY"}}'))
    calls += [Call("GET", "/v1/balances", {}) for _ in range(BALANCES_BURST)]
    return calls


def _settlement(n: int) -> bytes:
    return (b'{"client_reference":"FLOOD-%d","payee":"supplier","source":{"value":100000,"currency":"HKD"},'
            b'"target":{"value":91400,"currency":"CNY"},"fx_rate":"0.914","purpose_code":"GDDS",'
            b'"payment_reference":"FLOOD-REF-%d"}' % (n, n))


def _create_settlement(http: httpx.Client, key: str, n: int) -> httpx.Response:
    return http.post("/v1/settlements", content=_settlement(n),
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                              "Idempotency-Key": f"flood-{n}"})


class Outcomes:
    """Status counts per route, and every 5xx or hang seen (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[int | str] = collections.Counter()
        self.failures: list[str] = []

    def record(self, call: Call, status: int | str, detail: str = "") -> None:
        with self.lock:
            self.counts[status] += 1
            if not isinstance(status, int) or status >= 500:
                self.failures.append(f"{call.method} {call.path} ({sorted(call.headers)}): {status} {detail[:200]}")


def _flood(api: str, calls: list[Call], outcomes: Outcomes, hung: threading.Event) -> None:
    """Send every call from FLOOD_THREADS threads; after the first hang the rest are skipped (a
    wedged service would hang each of them for REQUEST_TIMEOUT_S)."""
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=api, timeout=REQUEST_TIMEOUT_S)
        return local.http

    def send(call: Call) -> None:
        if hung.is_set():
            return
        try:
            if call.path in STREAMS:  # never ends by design: its status and first line, then hang up
                with client().stream(call.method, call.path, headers=call.headers) as answer:
                    first = next(answer.iter_lines(), "") if answer.status_code < 300 else answer.read().decode()
                outcomes.record(call, answer.status_code, first if answer.status_code >= 500 else "")
                return
            answer = client().request(call.method, call.path, headers=call.headers, content=call.body)
            outcomes.record(call, answer.status_code, answer.text if answer.status_code >= 500 else "")
        except httpx.HTTPError as exc:  # a timeout here is a hung request
            outcomes.record(call, type(exc).__name__)
            hung.set()

    with ThreadPoolExecutor(FLOOD_THREADS, thread_name_prefix="flood") as pool:
        list(pool.map(send, calls))


def _wait_confirmed(http: httpx.Client, key: str, settlement_id: str) -> dict:
    deadline = time.monotonic() + CONFIRM_TIMEOUT_S
    body: dict = {}
    while time.monotonic() < deadline:
        body = http.get(f"/v1/settlements/{settlement_id}", headers={"Authorization": f"Bearer {key}"}).json()
        if body["chain"]["status"] == "confirmed":
            return body
        time.sleep(0.3)
    raise AssertionError(f"settlement {settlement_id} not confirmed on chain: {body.get('chain')}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerUp]:
    database_url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    up = LedgerUp(tmp_path / "home", database_url=database_url).start()
    try:
        up.wait_ready()
        yield up
    finally:
        up.kill()


def test_a_flood_of_every_route_never_wedges_writes_nor_answers_500(service: LedgerUp) -> None:
    keys = service.demo_keys()
    calls = _calls(keys)
    random.Random(11).shuffle(calls)
    outcomes = Outcomes()
    accepted_during: list[str] = []  # settlement ids
    flooding, hung = threading.Event(), threading.Event()
    flooding.set()

    def writer() -> None:  # a finance member keeps writing while the flood runs
        with httpx.Client(base_url=service.api, timeout=REQUEST_TIMEOUT_S) as http:
            for n in itertools.count(1):
                if not flooding.is_set() or hung.is_set() or n > WRITES_DURING_FLOOD_MAX:
                    return
                call = Call("POST", "/v1/settlements", {"writer": ""})
                try:
                    answer = _create_settlement(http, keys["retailer"], n)
                    outcomes.record(call, answer.status_code, answer.text if answer.status_code >= 500 else "")
                    if answer.status_code == 201:
                        accepted_during.append(answer.json()["id"])
                except httpx.HTTPError as exc:
                    outcomes.record(call, type(exc).__name__)
                    hung.set()

    write_thread = threading.Thread(target=writer, name="flood-writer")
    write_thread.start()
    burst = [threading.Thread(target=_flood, args=(service.api, calls[i::2], outcomes, hung)) for i in range(2)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    flooding.clear()
    write_thread.join()

    assert outcomes.failures == [], f"{len(outcomes.failures)} answers were 5xx or hung: {outcomes.failures[:20]}"
    assert not hung.is_set()
    assert sum(v for k, v in outcomes.counts.items() if isinstance(k, int)) >= len(calls)
    assert accepted_during, "no settlement was accepted while the flood ran"
    assert outcomes.counts[401] > 0 and outcomes.counts[404] > 0 and outcomes.counts[422] > 0

    # After the flood: a write goes through and reaches the chain; so do the ones accepted during it.
    with httpx.Client(base_url=service.api, timeout=REQUEST_TIMEOUT_S) as http:
        answer = _create_settlement(http, keys["retailer"], 10_000)
        assert answer.status_code == 201, answer.text
        _wait_confirmed(http, keys["retailer"], answer.json()["id"])
        for settlement_id in accepted_during:
            _wait_confirmed(http, keys["retailer"], settlement_id)
        ready = http.get("/ready")
        assert ready.status_code == 200, ready.text
        # Nothing set aside by the chain-loss recovery: with no fault injected, an orphaned row is
        # a transaction whose nonce another one took (the bootstrap seal, sent around the outbox,
        # took the nonce of the first anchor batch the flood's /v1/anchors/flush made).
        assert ready.json()["checks"]["outbox_orphaned"] == 0, ready.text
    assert service.stop() == 0, "ledger up did not stop cleanly on SIGTERM after the flood"
