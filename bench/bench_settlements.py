"""Settlements per second confirmed end to end (API -> confirmed on chain), single and batch mode,
against the raw chain capacity measured in the same run, with gas per settlement in each mode.

    python -m bench.bench_settlements [--single N] [--batches B] [--clients C] [--block-time S]

One managed anvil (zero fees; automine unless --block-time), one SQLite store, the real app on a
real uvicorn, the real dispatcher and follower; the API clients run in their own processes:

1. raw: recordSettlement and recordBatch(200) transactions signed beforehand and flooded over
   JSON-RPC batches; the clock stops at the last receipt. This is what the node can do.
2. single: C client processes POST /v1/settlements (one settlement each, Idempotency-Key); the
   clock stops when the follower has marked the last one confirmed in the store.
3. batch: C client processes POST /v1/settlements:batch (200 each); same clock.

``--journal-pairs N`` instead alternates N batch runs with and without the record journal's
digests (issue 14), in the same process at the same load.

Modes 2 and 3 run twice: with the API, dispatcher and follower in ONE process (as ``ledger up``
runs them), and SPLIT (the API in its own process, the workers in this one), which lets the two
halves use two cores. Writes a markdown table to bench/out/settlements.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import requests
import uvicorn
from eth_account import Account
from sqlalchemy import func, select

from ledger_api.app import create_app
from ledger_api.cli.governance import seal_when_applied
from ledger_api.demo import ensure_operator_member
from ledger_api.settings import Settings
from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import deploy
from settlement.custody.governors import demo_governance
from settlement.chain.signing import LocalSigner, keccak256
from settlement.custody.vault import KeyVault
from settlement.domains.members.service import onboard_member, onchain_id
from settlement.runtime import Runtime
from settlement.domains.settlements.commands import GAS_BATCH_BASE, GAS_BATCH_PER_ITEM, reference_hash
from settlement.store.db import Database, migrate
from settlement.store.models import OutboxRow
from settlement.store.models.settlements import Settlement
from settlement.pipeline.dispatcher import INFLIGHT_PER_SIGNER_DEFAULT
from settlement.pipeline.workers import Workers
from settlement.wiring import build_registry

BATCH = 200
RPC_BATCH = 100
SINGLE_GAS = 250_000
CONFIRM_TIMEOUT_S = 600.0
POLL_S = 0.02
FINANCE = keccak256(b"FINANCE")
STALL_S = 0.5
KICKS = [0]  # how often the bench had to kick a stalled automine node


@dataclass
class Env:
    node: ManagedAnvil
    rt: Runtime
    workers: Workers
    server: uvicorn.Server
    url: str  # the API in this process (one-process layout)
    keys: dict[str, str]
    mode: str
    kek: bytes
    operator_key: bytes
    raw_account: LocalSigner  # a FINANCE member's key held here, for the raw floods


def _serve(app: object) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                          access_log=False))
    threading.Thread(target=server.run, name="bench-uvicorn", daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}"


def setup(block_time: int | None) -> Env:
    node = ManagedAnvil(AnvilConfig(port=free_port(), block_time_s=block_time)).start()
    home = Path(tempfile.mkdtemp(prefix="bench-settlements-"))
    url = f"sqlite:///{home / 'ledger.db'}"
    migrate(url)
    kek, operator_key = os.urandom(32), os.urandom(32)
    vault = KeyVault(kek)
    operator = LocalSigner(operator_key)
    vault.register(operator)
    chain = ChainClient(node.rpc_url)
    rt = Runtime(home=home, db=Database(url), chain=chain, vault=vault, operator=operator,
                 manifest=deploy(chain, operator, home, governance=demo_governance()[0]))
    ensure_operator_member(rt)  # the founding members, in the bootstrap window (sealed below)
    keys = {}
    for name in ("payer", "payee-a", "payee-b"):
        with rt.db.transaction() as s:
            _member, keys[name] = onboard_member(rt, s, member_id=name, name=name, country="SG", roles=["finance"])
    # The raw floods' member is a founding member too: after the seal only governance onboards.
    # Sent directly, so before the workers start: once the dispatcher runs it owns the operator's
    # nonces, and a transaction of that key sent around it takes a nonce the dispatcher already
    # counted (its row then waits for the audit to re-sign it: "nonce N ... was consumed on chain
    # by another transaction").
    raw_account = LocalSigner(bytes(Account.create().key))
    member = "0x" + keccak256(b"bench-raw-" + os.urandom(8)).hex()
    chain.transact(operator, to=rt.address("ConsortiumRegistry"), gas=600_000, data=chain.encode(
        "ConsortiumRegistry", "onboardMember", [member, "0x5347", [raw_account.address], ["0x" + FINANCE.hex()]]))
    workers = Workers(rt, build_registry(), dispatch_interval_s=0.01, follow_interval_s=0.02, batch_size=BATCH).start()
    _wait(lambda: _outbox_left(rt) == 0, "onboarding")
    seal_when_applied(rt, lambda _msg: None, through_outbox=True)  # the seal too, through the outbox
    server, api = _serve(create_app(rt, Settings(home=home), registry_cache_ttl_s=5.0))
    mode = f"interval mining {block_time}s" if block_time else "automine"
    return Env(node, rt, workers, server, api, keys, mode, kek, operator_key, raw_account)


def _api_process(home: str, database_url: str, rpc_url: str, kek: bytes, operator_key: bytes, port: int) -> None:
    """The app alone in its own process, on the same store and chain (split layout)."""
    from settlement.chain.deploy import Manifest

    vault = KeyVault(kek)
    operator = LocalSigner(operator_key)
    vault.register(operator)
    rt = Runtime(home=Path(home), db=Database(database_url), chain=ChainClient(rpc_url), vault=vault,
                 operator=operator, manifest=Manifest.load(Path(home)))
    app = create_app(rt, Settings(home=Path(home)), registry_cache_ttl_s=5.0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)


def start_api_process(env: Env) -> tuple[multiprocessing.process.BaseProcess, str]:
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(
        target=_api_process, daemon=True,
        args=(str(env.rt.home), env.rt.db.url, env.node.rpc_url, env.kek, env.operator_key, port))
    proc.start()
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: _up(url), "API process start", timeout_s=60)
    return proc, url


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def teardown(env: Env) -> None:
    env.server.should_exit = True
    env.workers.stop()
    env.rt.db.dispose()
    env.node.stop()


def _outbox_left(rt: Runtime) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(OutboxRow)
                        .where(OutboxRow.status.in_(("pending", "signed", "sent")))) or 0


def _wait(done: Callable[[], bool], what: str, timeout_s: float = CONFIRM_TIMEOUT_S,
          client: ChainClient | None = None) -> None:
    """Polls ``done``. With ``client`` on automine, kicks a stalled node (see :func:`_kick`)."""
    deadline = time.monotonic() + timeout_s
    last_block, last_change = -1, time.monotonic()
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done in {timeout_s}s")
        if client is not None:
            block = client.block_number()
            if block != last_block:
                last_block, last_change = block, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                _kick(client)
                last_change = time.monotonic()
        time.sleep(POLL_S)


def _kick(client: ChainClient) -> None:
    """anvil's automine mines when a transaction arrives, one block at a time: transactions beyond
    one block's gas stay in its pool until the next one arrives. When nothing more arrives (the end
    of a flood) they would wait forever, so a stalled automine node with a non-empty pool is asked
    to mine (``evm_mine``, a bench-only, anvil-only call; the service never uses it)."""
    pending = int(client.rpc("txpool_status")["pending"], 16)
    if pending:
        client.rpc("evm_mine")
        KICKS[0] += 1


def _today_days() -> int:
    return (datetime.now(timezone.utc).date() - datetime(1970, 1, 1).date()).days


# -- raw chain capacity ----------------------------------------------------------------------------------


def _same_ccy(tag: str, i: int, payee: str) -> list:
    return [reference_hash(f"{tag}-{i}"), payee, 10_000 + i, "0x555344", 10_000 + i, "0x555344", 1_000_000_000_000,
            0, _today_days(), "0x47444453", reference_hash(f"{tag}-pay-{i}")]


def raw_capacity(env: Env, single_count: int, batch_count: int) -> dict[str, float]:
    """Pre-signed floods from a member account whose key this process holds."""
    rt, client = env.rt, env.rt.chain
    ledger = rt.address("SettlementLedger")
    acct = env.raw_account
    payees = [onchain_id("payee-a"), onchain_id("payee-b")]
    tag = os.urandom(4).hex()

    def flood(calls: list[bytes], gas: int) -> tuple[float, int]:
        base = client.pending_nonce(acct.address)
        signed = [client.sign(acct, to=ledger, data=d, gas=gas, nonce=base + i) for i, d in enumerate(calls)]
        session = requests.Session()
        t0 = time.perf_counter()
        for k in range(0, len(signed), RPC_BATCH):
            # At most the dispatcher's in-flight limit per signer in the node's pool (a flood of
            # thousands at once grows an automining anvil without bound).
            client.wait_for_room(acct.address, base + k, INFLIGHT_PER_SIGNER_DEFAULT)
            body = json.dumps([{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction",
                                "params": ["0x" + t.raw.hex()]} for j, t in enumerate(signed[k:k + RPC_BATCH])])
            session.post(client.rpc_url, data=body, headers={"Content-Type": "application/json"}).raise_for_status()
        hashes = [t.tx_hash for t in signed]
        _wait(lambda: client.receipts(hashes[-1:])[hashes[-1]] is not None, "raw flood",
              client=client if env.mode == "automine" else None)
        receipts = client.wait_for_receipts(hashes, timeout_s=CONFIRM_TIMEOUT_S)
        elapsed = time.perf_counter() - t0
        if len(receipts) != len(signed) or any(r.status != 1 for r in receipts.values()):
            raise RuntimeError("raw flood: not every transaction succeeded")
        return elapsed, sum(r.gas_used for r in receipts.values())

    singles = [client.encode("SettlementLedger", "recordSettlement", [_same_ccy(f"{tag}s", i, payees[i % 2])])
               for i in range(single_count)]
    t_single, gas_single = flood(singles, SINGLE_GAS)
    batches = [client.encode("SettlementLedger", "recordBatch",
                             [[_same_ccy(f"{tag}b{b}", i, payees[i % 2]) for i in range(BATCH)]])
               for b in range(batch_count)]
    t_batch, gas_batch = flood(batches, GAS_BATCH_BASE + GAS_BATCH_PER_ITEM * BATCH)
    return {"single_per_s": single_count / t_single, "single_gas": gas_single / single_count,
            "batch_per_s": batch_count * BATCH / t_batch, "batch_gas": gas_batch / (batch_count * BATCH)}


# -- end to end ---------------------------------------------------------------------------------------------


def _item(tag: str, i: int) -> dict:
    return {"client_reference": f"{tag}-{i}", "payee": ("payee-a", "payee-b")[i % 2],
            "source": {"value": 10_000 + i, "currency": "EUR"}, "target": {"value": None, "currency": "USD"},
            "fx_rate": "1.0833", "purpose_code": "GDDS", "payment_reference": f"{tag}-pay-{i}"}


def _confirmed(rt: Runtime, tag: str) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(Settlement).where(
            Settlement.client_reference.like(f"{tag}-%"), Settlement.chain_status == "confirmed")) or 0


def _rows_confirmed(rt: Runtime, first_outbox_id: int) -> int:
    with rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.status == "confirmed", OutboxRow.id >= first_outbox_id,
            OutboxRow.kind.in_(("settlement.record", "settlement.record_batch")))) or 0


def _gas_per_settlement(rt: Runtime, tag: str) -> float:
    with rt.db.read() as s:
        hashes = list(s.scalars(select(OutboxRow.tx_hash).where(OutboxRow.id.in_(
            select(Settlement.outbox_id).where(Settlement.client_reference.like(f"{tag}-%")))).distinct()))
        count = s.scalar(select(func.count()).select_from(Settlement).where(
            Settlement.client_reference.like(f"{tag}-%"))) or 1
    receipts = rt.chain.receipts(hashes)
    return sum(r.gas_used for r in receipts.values() if r is not None) / count


def _client_process(url: str, key: str, tag: str, per_request: int, indices: list[int], ready: object,
                    go: object, failures: object) -> None:
    """One API client in its own process (clients are not the service: they must not share its GIL)."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=120.0) as http:
        bodies = []
        for n in indices:
            if per_request == 1:
                bodies.append(("/v1/settlements", n, _item(tag, n)))
            else:
                items = [_item(tag, n * per_request + i) for i in range(per_request)]
                bodies.append(("/v1/settlements:batch", n, {"items": items}))
        ready.release()  # type: ignore[attr-defined]
        go.wait()  # type: ignore[attr-defined]
        for path, n, body in bodies:
            r = http.post(path, json=body, headers={**headers, "Idempotency-Key": f"{tag}-{n}"})
            if r.status_code != 201:
                failures.put(r.text[:300])  # type: ignore[attr-defined]
                return


def end_to_end(env: Env, url: str, *, count: int, per_request: int, clients: int) -> dict[str, float]:
    """``count`` settlements posted ``per_request`` at a time by ``clients`` client processes;
    settlements/s from the first request to the last confirmation."""
    tag = f"e2e{per_request}-{os.urandom(3).hex()}"
    requests_total = count // per_request
    ctx = multiprocessing.get_context("spawn")
    ready, go, failures = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client_process, daemon=True,
                         args=(url, env.keys["payer"], tag, per_request,
                               list(range(c, requests_total, clients)), ready, go, failures))
             for c in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    with env.rt.db.read() as s:
        first_outbox_id = (s.scalar(select(func.max(OutboxRow.id))) or 0) + 1
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    accepted_s = time.perf_counter() - t0
    if not failures.empty():
        raise RuntimeError(f"requests refused: {failures.get()}")
    # The clock stops when the last outbox row of the run is confirmed (the follower confirms a
    # row only after its block's events, i.e. its settlements, are applied). The observer polls
    # one indexed query on the small outbox table, not the growing settlements table: it runs in
    # the service's process and must not be what the run measures.
    _wait(lambda: _rows_confirmed(env.rt, first_outbox_id) >= requests_total, f"confirming {tag}",
          client=env.rt.chain if env.mode == "automine" else None)
    elapsed = time.perf_counter() - t0
    total = requests_total * per_request
    if _confirmed(env.rt, tag) != total:
        raise RuntimeError(f"{tag}: outbox rows confirmed but not every settlement of the run")
    return {"per_s": total / elapsed, "accepted_per_s": total / accepted_s, "gas": _gas_per_settlement(env.rt, tag),
            "count": total, "seconds": elapsed}


def journal_comparison(env: Env, pairs: int, batches: int, clients: int) -> list[tuple[float, float, float]]:
    """``pairs`` batch runs with the record journal's digests and, alternating in the same
    process at the same load, without them (the two ``digest_new`` calls of the batch path
    patched out: a measurement device, never a service setting). (on, off, load) per pair."""
    from settlement.domains.settlements import commands, postings

    real = commands.digest_new
    results = []
    for _ in range(pairs):
        load = os.getloadavg()[0]
        on = end_to_end(env, env.url, count=batches * BATCH, per_request=BATCH, clients=clients)["per_s"]
        commands.digest_new = postings.digest_new = lambda *_a, **_k: None  # type: ignore[assignment]
        try:
            off = end_to_end(env, env.url, count=batches * BATCH, per_request=BATCH, clients=clients)["per_s"]
        finally:
            commands.digest_new = postings.digest_new = real  # type: ignore[assignment]
        results.append((on, off, load))
        print(f"journal on {on:,.0f}/s, off {off:,.0f}/s ({on / off:.0%}), load {load:.1f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=1_000, help="settlements in single mode")
    parser.add_argument("--batches", type=int, default=25, help="batches of 200 in batch mode")
    parser.add_argument("--clients", type=int, default=2, help="concurrent API client processes")
    parser.add_argument("--block-time", type=int, default=None, help="interval mining seconds (default automine)")
    parser.add_argument("--out", default="bench/out/settlements.md")
    parser.add_argument("--journal-pairs", type=int, default=0,
                        help="only compare batch runs with and without the record journal's digests, N pairs")
    args = parser.parse_args()
    env = setup(args.block_time)
    if args.journal_pairs:
        try:
            pairs = journal_comparison(env, args.journal_pairs, args.batches, args.clients)
        finally:
            teardown(env)
        lines = ["| run | journal on: settlements/s confirmed | journal off | on / off | load |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {i + 1} | {on:,.0f} | {off:,.0f} | {on / off:.0%} | {load:.1f} |" for i, (on, off, load) in enumerate(pairs)]
        report = "\n".join(lines)
        print(report)
        Path("bench/out/settlements-journal.md").parent.mkdir(parents=True, exist_ok=True)
        Path("bench/out/settlements-journal.md").write_text(report + "\n")
        return
    api_proc = None
    try:
        raw = raw_capacity(env, args.single, args.batches)
        single_one = end_to_end(env, env.url, count=args.single, per_request=1, clients=args.clients)
        batch_one = end_to_end(env, env.url, count=args.batches * BATCH, per_request=BATCH, clients=args.clients)
        api_proc, split_url = start_api_process(env)
        single_split = end_to_end(env, split_url, count=args.single, per_request=1, clients=args.clients)
        batch_split = end_to_end(env, split_url, count=args.batches * BATCH, per_request=BATCH, clients=args.clients)
    finally:
        if api_proc is not None:
            api_proc.terminate()
            api_proc.join(10)
        teardown(env)

    def row(label: str, r: dict[str, float], raw_per_s: float) -> str:
        return (f"| {label} | {r['count']:,} | {r['per_s']:,.0f} | {r['per_s'] / raw_per_s:.0%} | {r['gas']:,.0f} | "
                f"{r['accepted_per_s']:,.0f} |")

    lines = [
        f"Settlements confirmed on chain: anvil {env.mode}, zero fees, SQLite store, {args.clients} API client "
        f"processes, {os.cpu_count()} CPU cores shared by everything (anvil, API, workers, clients).",
        "",
        "- one process: the API (uvicorn), the dispatcher and the follower in one Python process;",
        "- split: the API in its own process, the dispatcher and follower in another (same store, same chain).",
        "",
        "| path | settlements | settlements/s confirmed | vs raw (same mode) | gas per settlement | "
        "API accepted/s |",
        "|---|---:|---:|---:|---:|---:|",
        f"| raw chain: pre-signed recordSettlement flood | {args.single:,} | {raw['single_per_s']:,.0f} | 100% | "
        f"{raw['single_gas']:,.0f} | |",
        f"| raw chain: pre-signed recordBatch(200) flood | {args.batches * BATCH:,} | {raw['batch_per_s']:,.0f} | "
        f"100% | {raw['batch_gas']:,.0f} | |",
        row("single, one process: POST /v1/settlements -> confirmed", single_one, raw["single_per_s"]),
        row("single, split", single_split, raw["single_per_s"]),
        row("batch, one process: POST /v1/settlements:batch (200) -> confirmed", batch_one, raw["batch_per_s"]),
        row("batch, split", batch_split, raw["batch_per_s"]),
        "",
        f"Stalled-automine kicks (evm_mine, see bench/bench_settlements.py): {KICKS[0]}.",
    ]
    report = "\n".join(lines)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
