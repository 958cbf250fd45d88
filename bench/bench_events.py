"""Events out: webhook deliveries per second to a local receiver, the lag from state change to
delivery (p50/p99), and the settlement batch throughput with delivery on against off, in the same
run (issue 16: on >= 90% of off).

    python -m bench.bench_events [--pairs N] [--batches B] [--clients C]

The world of ``bench.bench_settlements`` (managed anvil on automine, zero fees, SQLite, the real
app on uvicorn, the real dispatcher and follower, API clients in their own processes), plus a
receiver in its own process that verifies every delivery with the ``standardwebhooks`` library
and notes when it arrived. Each settlement makes two events (recorded, confirmed) for each of its
two parties; the payer and both payees have an endpoint, so each settlement is four deliveries.

Pairs alternate: a batch run with the delivery worker running (endpoints enabled), then one
without it (endpoints disabled, the worker stopped), at the same load. Events are produced in both
(they are part of the change's transaction); only delivery is switched. Writes
bench/out/events.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.bench_settlements import BATCH, Env, _wait, end_to_end, setup, teardown
from settlement.chain.anvil import free_port
from settlement.domains.events import webhooks as wh
from settlement.domains.events.delivery import DeliveryLimits, DeliveryWorker
from settlement.store.models.events import EventRow, WebhookDelivery

MEMBERS = ("payer", "payee-a", "payee-b")
DELIVERY_TIMEOUT_S = 600.0


def _receiver(port: int, secrets: list[str]) -> None:
    """The receiving end, in its own process: verify, note (webhook-id, arrival time), 204."""
    from standardwebhooks import Webhook

    hooks = [Webhook(s) for s in secrets]
    arrived: dict[str, float] = {}
    refused = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            now = time.time()
            headers = dict(self.headers.items())
            ok = False
            for hook in hooks:
                try:
                    hook.verify(raw, headers, json_parse=False)
                    ok = True
                    break
                except Exception:
                    continue
            with lock:
                if ok:
                    arrived.setdefault(headers.get("webhook-id", headers.get("Webhook-Id", "")), now)
                else:
                    refused[0] += 1
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                body = json.dumps({"arrived": arrived, "refused": refused[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def _received(url: str) -> dict:
    return httpx.get(url, timeout=30).json()


def _wait_receiver(url: str) -> None:
    deadline = time.monotonic() + 180  # a spawned interpreter on a busy machine
    while True:
        try:
            _received(url)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _set_endpoints(env: Env, ids: list[tuple[str, str]], enabled: bool) -> None:
    with env.rt.db.transaction() as s:
        for member, endpoint_id in ids:
            wh.update_endpoint(s, member, endpoint_id, enabled=enabled)


def _head(env: Env) -> int:
    with env.rt.db.read() as s:
        return int(s.scalar(select(func.max(EventRow.seq))) or 0)


def _pending(env: Env) -> int:
    with env.rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(WebhookDelivery)
                        .where(WebhookDelivery.status == "pending")) or 0


def _delivery_process(home: str, database_url: str, rpc_url: str, kek: bytes, operator_key: bytes) -> None:
    """The delivery worker alone in its own process (``ledger webhooks deliver``), on the same
    store: the ``process`` layout."""
    import signal

    from settlement.chain.client import ChainClient
    from settlement.chain.signing import LocalSigner
    from settlement.custody.vault import KeyVault
    from settlement.runtime import Runtime
    from settlement.store.db import Database

    vault = KeyVault(kek)
    rt = Runtime(home=Path(home), db=Database(database_url), chain=ChainClient(rpc_url), vault=vault,
                 operator=LocalSigner(operator_key))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = DeliveryWorker(rt).start()
    stop.wait()
    worker.stop()


class _ProcessWorker:
    def __init__(self, env: Env) -> None:
        self.proc = multiprocessing.get_context("spawn").Process(
            target=_delivery_process, daemon=True,
            args=(str(env.rt.home), env.rt.db.url, env.node.rpc_url, env.kek, env.operator_key))
        self.proc.start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(30)


def delivery_run(env: Env, endpoints: list[tuple[str, str]], limits: DeliveryLimits, url: str,
                 args: argparse.Namespace, *, count: int | None = None, per_request: int = BATCH,
                 clients: int | None = None) -> dict:
    """A run with the delivery worker running (batches by default); then every delivery of it,
    drained."""
    _set_endpoints(env, endpoints, True)
    worker = _ProcessWorker(env) if args.layout == "process" else DeliveryWorker(env.rt, limits).start()
    try:
        first_seq = _head(env) + 1
        on = end_to_end(env, env.url, count=count or args.batches * BATCH, per_request=per_request,
                        clients=clients or args.clients)
        _wait(lambda: _pending(env) == 0, "deliveries", timeout_s=DELIVERY_TIMEOUT_S)
    finally:
        worker.stop()
    with env.rt.db.read() as s:
        made = {e.id: e.occurred_at for e in s.scalars(select(EventRow).where(EventRow.seq >= first_seq))}
        deliveries = s.scalar(select(func.count()).select_from(WebhookDelivery).join(
            EventRow, EventRow.seq == WebhookDelivery.event_seq).where(EventRow.seq >= first_seq)) or 0
    got = _received(url)
    arrivals = {i: t for i, t in got["arrived"].items() if i in made}
    if len(arrivals) != len(made):
        raise RuntimeError(f"{len(made) - len(arrivals)} events not received")
    made_s = {i: m.replace(tzinfo=timezone.utc).timestamp() for i, m in made.items()}
    lags = sorted(arrivals[i] - made_s[i] for i in made)
    span = max(arrivals.values()) - min(made_s.values())
    return {"on": on["per_s"], "events": len(made), "deliveries": deliveries, "deliveries_per_s": deliveries / span,
            "p50_s": statistics.median(lags), "p99_s": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            "refused": got["refused"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="(delivery on, delivery off) run pairs")
    parser.add_argument("--batches", type=int, default=10, help="batches of 200 per run")
    parser.add_argument("--clients", type=int, default=2, help="concurrent API client processes")
    parser.add_argument("--layout", choices=("thread", "process"), default="thread",
                        help="the delivery worker as a thread of the service's process (ledger up's default) or "
                             "in its own process (ledger webhooks deliver)")
    parser.add_argument("--steady", type=int, default=200,
                        help="settlements posted one at a time by one client, for the lag without a backlog")
    parser.add_argument("--out", default=None, help="default bench/out/events-<layout>.md")
    args = parser.parse_args()
    env = setup(None)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    endpoints: list[tuple[str, str]] = []
    secrets: list[str] = []
    with env.rt.db.transaction() as s:
        for member in MEMBERS:
            row, secret = wh.create_endpoint(s, env.rt, member, url, ["settlement.*"])
            endpoints.append((member, row.id))
            secrets.append(secret)
    proc = multiprocessing.get_context("spawn").Process(target=_receiver, args=(port, secrets), daemon=True)
    proc.start()
    try:
        _wait_receiver(url)
    except BaseException:
        proc.terminate()
        teardown(env)
        raise
    limits = DeliveryLimits.from_env()
    pairs: list[dict] = []
    steady: dict = {}
    try:
        for n in range(args.pairs):
            load = os.getloadavg()[0]
            # Alternate which half goes first, so a drift of the shared machine's load during a
            # pair does not always favour the same side.
            off_first = n % 2 == 1
            if off_first:
                _set_endpoints(env, endpoints, False)
                off = end_to_end(env, env.url, count=args.batches * BATCH, per_request=BATCH, clients=args.clients)
            measured = delivery_run(env, endpoints, limits, url, args)
            if not off_first:
                _set_endpoints(env, endpoints, False)
                off = end_to_end(env, env.url, count=args.batches * BATCH, per_request=BATCH, clients=args.clients)
            result = {**measured, "off": off["per_s"], "load": load, "order": "off, on" if off_first else "on, off"}
            pairs.append(result)
            print(json.dumps(result), flush=True)
        steady = delivery_run(env, endpoints, limits, url, args, count=args.steady, per_request=1, clients=1)
        print(json.dumps(steady), flush=True)
    finally:
        proc.terminate()
        proc.join(10)
        teardown(env)
    ratios = sorted(p["on"] / p["off"] for p in pairs)
    lines = [
        f"Webhook delivery while batch settlements flow: anvil automine, zero fees, SQLite, {args.clients} API client "
        f"processes, {args.batches * BATCH} settlements per run, 3 endpoints (payer and two payees), 4 deliveries "
        f"per settlement, a receiver process verifying each with standardwebhooks; {os.cpu_count()} CPU cores shared "
        f"by everything. Delivery limits: {limits.threads_max} threads, {limits.per_endpoint_in_flight_max} in flight "
        f"per endpoint; the worker {'in its own process' if args.layout == 'process' else 'a thread of the service process'}. "
        f"{datetime.now(timezone.utc):%Y-%m-%d}.",
        "",
        "| pair | order | settlements/s, delivery on | delivery off | on / off | deliveries | deliveries/s | "
        "lag p50 | lag p99 | refused | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {i + 1} | {p['order']} | {p['on']:,.0f} | {p['off']:,.0f} | {p['on'] / p['off']:.0%} | "
              f"{p['deliveries']:,} | {p['deliveries_per_s']:,.0f} | {p['p50_s']:.2f} s | {p['p99_s']:.2f} s | "
              f"{p['refused']} | {p['load']:.1f} |" for i, p in enumerate(pairs)]
    lines += ["", f"Steady flow ({args.steady} settlements posted one at a time by one client, "
              f"{steady['on']:,.0f}/s, {steady['deliveries']:,} deliveries): lag from commit to delivery "
              f"p50 {steady['p50_s']:.2f} s, p99 {steady['p99_s']:.2f} s.",
              "", f"Median on / off over {len(ratios)} pairs: {statistics.median(ratios):.0%} "
              f"(lowest {ratios[0]:.0%}, highest {ratios[-1]:.0%})."]
    report = "\n".join(lines)
    print(report)
    out = Path(args.out or f"bench/out/events-{args.layout}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")


if __name__ == "__main__":
    main()
