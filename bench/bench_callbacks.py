"""Verified callbacks per second over HTTP (verify + durable write) against a no-op endpoint of the
same app, in the same run: ``python -m bench.bench_callbacks``.

Set-up: a fresh SQLite store (``--database-url`` for PostgreSQL), a Stripe-style (HMAC-SHA256) and
an Alipay (RSA2, 2048-bit) account, the app served by uvicorn on a local port; the no-op route is
added to THIS bench's app instance only. Notifications are pre-signed (the client's signing is not
what is measured); each is a distinct provider fact for a reference the ledger does not know, so
each delivery verifies, records the raw body, parsed fields, outcome and journal digest, and
queues a reconciliation exception in one committed transaction before the provider is answered.
``--clients`` concurrent httpx clients (a thread pool in a separate process, as the providers are
other machines) post them; latency per request is measured client-side. Both kinds of endpoint are
warmed up first (not measured). ``--rounds`` rounds of (no-op, Stripe, Alipay) run on the same
server; each round's ratio is taken against that round's no-op, and the verdict is on the medians
(a shared machine's noise moves single rounds a lot). Writes ``bench/out/callbacks.md`` with every
round, the medians, the store's durability settings and the group-commit figures; exit 1 when a
median ratio is under 0.5, a request failed, or a callback is missing from the store.
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
    from settlement.custody.vault import KeyVault
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


def _store_settings(runtime) -> str:  # type: ignore[no-untyped-def]
    """How durable a commit is, as the store is configured (SQLite pragmas; PostgreSQL settings)."""
    import sqlalchemy as sa

    with runtime.db.engine.connect() as conn:
        if runtime.db.dialect == "sqlite":
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, level)
            return f"SQLite (file), journal_mode={mode}, synchronous={sync}"
        fsync = conn.execute(sa.text("SHOW fsync")).scalar()
        commit = conn.execute(sa.text("SHOW synchronous_commit")).scalar()
        return f"PostgreSQL, fsync={fsync}, synchronous_commit={commit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="callbacks per provider and round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (no-op, stripe, alipay) in the same run; the verdict is on the medians")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    from fastapi.responses import Response

    from ledger_api.app import create_app
    from ledger_api.bootstrap import tune_interpreter
    from ledger_api.settings import Settings
    from settlement.domains.payments import configure_demo_providers
    from settlement.domains.payments.writer import writer_for

    tune_interpreter()  # as `ledger up` does
    from settlement.chain.anvil import free_port
    from settlement.core.money import Money
    from settlement.providers.testing import demo_credentials, simulator_from_credentials
    from settlement.store.models.payments import ProviderCallback

    providers = (("stripe", "HMAC-SHA256"), ("alipay", "RSA2 2048"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = args.database_url or f"sqlite:///{home / 'bench.db'}"
        runtime = _runtime(home, url)
        creds = {p: demo_credentials(p, f"{p}-bench") for p, _ in providers}
        configure_demo_providers(runtime, creds)
        app = create_app(runtime, Settings(home=home))
        store = _store_settings(runtime)

        @app.post("/bench/noop")
        async def noop() -> Response:  # the baseline: same app, middleware and server; no work
            return Response(b"success", media_type="text/plain")

        sims = {p: simulator_from_credentials(p, creds[p]) for p, _ in providers}
        made = [0]

        def notifications(provider: str, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
            """``count`` distinct facts (never delivered before in this run) for unknown references."""
            items = []
            for _ in range(count):
                made[0] += 1
                ref, value = f"BENCH-{provider}-{made[0]:07d}", 1000 + made[0] % 100_000
                note = (sims[provider].payment_intent_succeeded(ref, Money(value, "USD")) if provider == "stripe"
                        else sims[provider].payment(ref, Money(value, "CNY")))
                items.append((f"/v1/callbacks/{provider}/{provider}-bench", note.body, note.headers))
            return items

        warmup = 100
        expected = 0
        rounds: list[list[tuple[str, int, float, list[float], int]]] = []
        with _Server(app, free_port()) as server:
            base = f"http://127.0.0.1:{server.server.config.port}"
            # Both kinds of endpoint warmed up (not measured): routes, caches, compiled statements.
            _drive_elsewhere(base, [("/bench/noop", b, h) for _, b, h in notifications("stripe", 200)], args.clients)
            for provider, _ in providers:
                _drive_elsewhere(base, notifications(provider, warmup), args.clients)
                expected += warmup
            writer = writer_for(runtime.db)
            writer.groups = writer.grouped = writer.fallbacks = 0
            for _ in range(args.rounds):
                batch = {p: notifications(p, args.count) for p, _ in providers}
                # The no-op gets the same bodies and headers as the Stripe row (same bytes over the wire).
                noop_requests = [("/bench/noop", body, headers) for _, body, headers in batch["stripe"]]
                rows = []
                seconds, lat, fail = _drive_elsewhere(base, noop_requests, args.clients)
                rows.append(("no-op endpoint", len(noop_requests), seconds, lat, fail))
                for provider, scheme in providers:
                    seconds, lat, fail = _drive_elsewhere(base, batch[provider], args.clients)
                    rows.append((f"{provider} callback ({scheme})", len(batch[provider]), seconds, lat, fail))
                    expected += len(batch[provider])
                rounds.append(rows)
        with runtime.db.read() as session:
            stored = session.query(ProviderCallback).count()
        runtime.db.dispose()

    def rate(row: tuple[str, int, float, list[float], int]) -> float:
        return row[1] / row[2]

    setup = (f"Store: {store}; {args.clients} concurrent clients in another process; {args.count} requests per "
             f"row; {args.rounds} rounds (no-op, Stripe, Alipay each) on the same app and uvicorn; cores: "
             f"{os.cpu_count()}.")
    lines = ["# Callbacks: verified callbacks per second over HTTP", "", setup, "",
             "| round | endpoint | requests | req/s | p50 ms | p99 ms | ratio to no-op | failures |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    failures = 0
    for number, rows in enumerate(rounds, start=1):
        noop_rate = rate(rows[0])
        for row in rows:
            name, n, _, lat, fail = row
            failures += fail
            lines.append(f"| {number} | {name} | {n} | {rate(row):,.0f} | {statistics.median(lat):.1f} | "
                         f"{_pct(lat, 0.99):.1f} | {rate(row) / noop_rate:.2f} | {fail} |")
    lines += ["", "Medians over the rounds (the ratio is taken per round, against that round's no-op):", "",
              "| endpoint | req/s | p50 ms | p99 ms | ratio to no-op |", "|---|---:|---:|---:|---:|"]
    ok = failures == 0 and stored == expected
    for k, name in enumerate(row[0] for row in rounds[0]):
        ratio = statistics.median(rate(rows[k]) / rate(rows[0]) for rows in rounds)
        if k and ratio < TARGET_RATIO:
            ok = False
        lines.append(f"| {name} | {statistics.median(rate(rows[k]) for rows in rounds):,.0f} | "
                     f"{statistics.median(statistics.median(rows[k][3]) for rows in rounds):.1f} | "
                     f"{statistics.median(_pct(rows[k][3], 0.99) for rows in rounds):.1f} | {ratio:.2f} |")
    group_mean = writer.grouped / writer.groups if writer.groups else 0.0
    group_line = (f"Group commit: {writer.groups} transactions held {writer.grouped} callbacks (mean "
                  f"{group_mean:.1f} per transaction); {writer.fallbacks} groups fell back to one transaction "
                  "per callback.")
    verdict = (f"Callbacks durably recorded: {stored} (expected {expected}, warm-up included). "
               f"Target median ratio >= {TARGET_RATIO}: {'met' if ok else 'NOT met'}.")
    lines += ["", group_line, verdict, ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
