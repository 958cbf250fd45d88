"""Verified callbacks per second over HTTP (verify + durable write) against a no-op endpoint of the
same app, in the same run: ``python -m bench.bench_callbacks``.

Set-up: a fresh SQLite store (``--database-url`` for PostgreSQL), a Stripe-style (HMAC-SHA256) and
an Alipay (RSA2, 2048-bit) account, the app served by uvicorn on a local port; the no-op route is
added to THIS bench's app instance only. Notifications are pre-signed (the client's signing is not
what is measured); each is a distinct provider fact for a reference the ledger does not know, so
each delivery verifies, records the raw body, parsed fields, outcome and journal digest, and
queues a reconciliation exception in one committed transaction before the provider is answered.
``--clients`` concurrent httpx clients (a thread pool in a separate process, as the providers are
other machines) post them; latency per request is measured client-side. Writes ``bench/out/callbacks.md``; exit 1 when the ratio is under 0.5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

TARGET_RATIO = 0.5
OUT = Path(__file__).resolve().parent / "out" / "callbacks.md"


def _runtime(home: Path, database_url: str):  # type: ignore[no-untyped-def]
    from settlement.chain.client import ChainClient
    from settlement.chain.signing import LocalSigner
    from settlement.keys import KeyVault
    from settlement.runtime import Runtime
    from settlement.store.db import Database, migrate

    migrate(database_url)
    vault = KeyVault(os.urandom(32))
    # No chain is needed: ingestion never calls it (only the outbox dispatcher does).
    chain = ChainClient.__new__(ChainClient)
    return Runtime(home=home, db=Database(database_url), chain=chain, vault=vault, operator=LocalSigner(os.urandom(32)))


class _Server:
    def __init__(self, app, port: int) -> None:  # type: ignore[no-untyped-def]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _drive(url: str, requests: list[tuple[str, bytes, dict[str, str]]], clients: int) -> tuple[float, list[float], int]:
    """Post every request with ``clients`` concurrent clients; (seconds, latencies ms, failures)."""
    local = threading.local()
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def one(item: tuple[str, bytes, dict[str, str]]) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(base_url=url, timeout=60)
        path, body, headers = item
        t0 = time.perf_counter()
        r = http.post(path, content=body, headers=headers)
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(dt)
            if r.status_code >= 300:
                failures[0] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, requests))
    return time.perf_counter() - t0, latencies, failures[0]


def _drive_elsewhere(url: str, requests: list[tuple[str, bytes, dict[str, str]]],
                     clients: int) -> tuple[float, list[float], int]:
    """:func:`_drive` in a child process: the providers are other machines, so their HTTP client
    work must not compete with the server for this process's interpreter lock."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_drive, (url, requests, clients))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="callbacks per provider")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    from fastapi.responses import Response

    from ledger_api.app import create_app
    from ledger_api.bootstrap import tune_interpreter
    from ledger_api.settings import Settings
    from settlement.callbacks import configure_demo_providers

    tune_interpreter()  # as `ledger up` does
    from settlement.chain.anvil import free_port
    from settlement.money import Money
    from settlement.providers.testing import demo_credentials, simulator_from_credentials
    from settlement.store.models_callbacks import ProviderCallback

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = args.database_url or f"sqlite:///{home / 'bench.db'}"
        runtime = _runtime(home, url)
        creds = {p: demo_credentials(p, f"{p}-bench") for p in ("stripe", "alipay")}
        configure_demo_providers(runtime, creds)
        app = create_app(runtime, Settings(home=home))

        @app.post("/bench/noop")
        async def noop() -> Response:  # the baseline: same app, middleware and server; no work
            return Response(b"success", media_type="text/plain")

        requests: dict[str, list[tuple[str, bytes, dict[str, str]]]] = {}
        for provider in creds:
            sim = simulator_from_credentials(provider, creds[provider])
            items = []
            for i in range(args.count):
                ref = f"BENCH-{provider}-{i:07d}"
                note = (sim.payment_intent_succeeded(ref, Money(1000 + i, "USD")) if provider == "stripe"
                        else sim.payment(ref, Money(1000 + i, "CNY")))
                items.append((f"/v1/callbacks/{provider}/{provider}-bench", note.body, note.headers))
            requests[provider] = items
        noop_requests = [("/bench/noop", body, headers) for _, body, headers in requests["stripe"]]

        rows = []
        with _Server(app, free_port()) as server:
            base = f"http://127.0.0.1:{server.server.config.port}"
            _drive_elsewhere(base, noop_requests[:200], args.clients)  # warm-up
            noop_s, noop_lat, noop_fail = _drive_elsewhere(base, noop_requests, args.clients)
            rows.append(("no-op endpoint", len(noop_requests), noop_s, noop_lat, noop_fail))
            for provider, scheme in (("stripe", "HMAC-SHA256"), ("alipay", "RSA2 2048")):
                seconds, lat, fail = _drive_elsewhere(base, requests[provider], args.clients)
                rows.append((f"{provider} callback ({scheme})", len(requests[provider]), seconds, lat, fail))
        with runtime.db.read() as session:
            stored = session.query(ProviderCallback).count()
        runtime.db.dispose()

    noop_rate = rows[0][1] / rows[0][2]
    lines = ["# Callbacks: verified callbacks per second over HTTP", "",
             f"Store: {'SQLite (file)' if url.startswith('sqlite') else 'PostgreSQL'}; {args.clients} concurrent "
             f"clients; {args.count} requests per row; same app, same uvicorn; cores: {os.cpu_count()}.", "",
             "| endpoint | requests | req/s | p50 ms | p99 ms | ratio to no-op | failures |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    ok = True
    for name, n, seconds, lat, fail in rows:
        rate = n / seconds
        ratio = rate / noop_rate
        if name != "no-op endpoint" and (ratio < TARGET_RATIO or fail):
            ok = False
        lines.append(f"| {name} | {n} | {rate:,.0f} | {statistics.median(lat):.1f} | {_pct(lat, 0.99):.1f} | "
                     f"{ratio:.2f} | {fail} |")
    lines += ["", f"Callbacks durably recorded: {stored} (expected {2 * args.count}). Target ratio >= {TARGET_RATIO}: "
              f"{'met' if ok and stored == 2 * args.count else 'NOT met'}.", ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0 if ok and stored == 2 * args.count else 1


if __name__ == "__main__":
    sys.exit(main())
