"""Soak: the real service under a mixed load with a random fault every minute, against the same
load without faults in the same run, and a 5,000-row backlog drain.

    python -m bench.bench_soak [--duration-s 900] [--fault-every-s 60] [--baseline-s 300]
                               [--backlog 5000] [--database-url URL] [--out bench/out/soak.md]

The load and the faults are those of the fault suite (``tests/faults/harness.py``): single and
batch settlements, receivable registrations and signed payment notifications (each delivered
twice, and all once more at the end), over real HTTP against `ledger up --demo`. The faulted
time is split in two halves: the managed chain (SIGKILL of the service's process group, of its
anvil, of both) and an external node with 1 s blocks, like the production network (SIGSTOP for
``--pause-s``, SIGKILL and restart from its state file, SIGKILL of the service); each fault is
picked at random from its half's list. After each fault the time until everything accepted
before it is on chain is measured (the drain time). At the end the chain's own events are
counted: accepted, on chain, lost (must be 0), doubled (must be 0), and the API's confirmed
settlements are checked against their receipts. Counting waits until everything is on chain or
the service has nothing left to send (its outbox empty for a while); what is still in the outbox
when it gives up (300 s) is reported as pending, not lost. An accepted request without its event whose
effect the contracts' state holds is counted apart ("in state, record lost by the node"): anvil
writes its state dump in two parts, and one killed between them comes back with the effects of
its last transactions but not the transactions (see ``Dispatcher._effects_present``).

Baseline: the same load on a fresh stack of each kind for ``--baseline-s`` in all, without faults.
Backlog: an external node is killed, ``--backlog`` single settlements are accepted into the outbox
while it is down, then it restarts and the clock runs until every one of them is on chain.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.faults.harness import (
    DRAIN_QUIET_S,
    EXTERNAL_FAULTS,
    MANAGED_FAULTS,
    Ledger,
    Load,
    Stack,
    Verdict,
    drain_time,
    inject,
    outbox_depth,
    verify,
)

RATE_PER_S = 15.0
THREADS = 3
BACKLOG_CLIENTS = 4


def say(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_phase(stack: Stack, seconds: float, faults: tuple[str, ...], fault_every_s: float, pause_s: float,
              rng: random.Random, seed: int) -> tuple[Ledger, Verdict, list[dict], float]:
    """``seconds`` of load on a started stack, a fault every ``fault_every_s`` when ``faults``."""
    ledger = Ledger()
    load = Load(stack, ledger, threads=THREADS, rate_per_s=RATE_PER_S, seed=seed).start()
    events: list[dict] = []
    t_start = time.monotonic()
    try:
        next_fault = t_start + fault_every_s / 2
        while time.monotonic() - t_start < seconds:
            if faults and time.monotonic() >= next_fault:
                fault = rng.choice(faults)
                t_fault = time.monotonic()
                say(f"fault: {fault}")
                inject(stack, fault, pause_s=pause_s)
                back = time.monotonic() - t_fault
                budget = max(5.0, min(fault_every_s - back - 1, t_start + seconds - time.monotonic()))
                drained = drain_time(stack, ledger, t_fault, timeout_s=budget)
                events.append({"fault": fault, "recovery_s": back, "drain_s": drained})
                say(f"  back in {back:.1f}s, drained {'%.1fs' % drained if drained is not None else 'not yet'}")
                next_fault = t_fault + fault_every_s
            time.sleep(0.5)
    finally:
        load.stop()
    elapsed = time.monotonic() - t_start
    load.redeliver_all()
    verdict = verify(stack, ledger, timeout_s=300)
    return ledger, verdict, events, elapsed


def backlog_drain(base: Path, count: int, database_url: str | None) -> dict:
    """Accept ``count`` single settlements while the external node is down, then time the drain."""
    stack = Stack(home=base / "backlog", database_url=database_url, external=True, block_time_s=1)
    try:
        stack.start()
        demo = stack.demo()
        key = next(m["api_key"] for m in demo["members"] if m["id"] == "retailer")
        assert stack.node is not None
        stack.node.kill()
        say(f"backlog: node down; accepting {count} settlements")
        accepted: list[str] = []
        lock = threading.Lock()
        counter = iter(range(10**9))
        t0 = time.monotonic()

        def client() -> None:
            with httpx.Client(base_url=stack.api, timeout=60) as http:
                while True:
                    with lock:
                        if len(accepted) >= count:
                            return
                        n = next(counter)
                    body = {"client_reference": f"BL-{n}", "payee": "supplier", "source": {"value": 1000 + n, "currency": "USD"},
                            "target": {"value": 1000 + n, "currency": "USD"}, "fx_rate": "1", "purpose_code": "GDDS",
                            "payment_reference": f"BLP-{n}"}
                    try:
                        r = http.post("/v1/settlements", json=body,
                                      headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"bl-{n}"})
                    except httpx.HTTPError:
                        continue
                    if r.status_code in (200, 201):
                        with lock:
                            accepted.append(r.json()["id"])

        threads = [threading.Thread(target=client) for _ in range(BACKLOG_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accept_s = time.monotonic() - t0
        depth = outbox_depth(stack)  # the store's figures need the operator's key
        say(f"backlog: {len(accepted)} accepted in {accept_s:.0f}s while the node was down (outbox depth {depth})")
        ledger = Ledger()
        ledger.settlements.update(accepted)
        t_back = time.monotonic()
        stack.node.start()
        drained = drain_time(stack, ledger, t_back, timeout_s=900)
        verdict = verify(stack, ledger, timeout_s=60)
        say(f"backlog: drained in {drained}s; lost {len(verdict.lost)}, doubled {len(verdict.doubled)}")
        return {"count": len(accepted), "accept_s": accept_s, "outbox_depth": depth, "drain_s": drained,
                "lost": len(verdict.lost), "doubled": len(verdict.doubled)}
    finally:
        stack.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=900.0, help="faulted load, in all (both halves)")
    parser.add_argument("--fault-every-s", type=float, default=60.0)
    parser.add_argument("--baseline-s", type=float, default=None, help="load without faults (default: a third "
                        "of --duration-s)")
    parser.add_argument("--pause-s", type=float, default=20.0, help="how long a paused node stays stopped")
    parser.add_argument("--backlog", type=int, default=5_000, help="rows accepted while the node is down (0: skip)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in the data dir)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", default="bench/out/soak.md")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs (printed)")
    args = parser.parse_args()
    baseline_s = args.baseline_s if args.baseline_s is not None else args.duration_s / 3
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    say(f"data dirs under {base}")
    t_all = time.monotonic()
    results: dict[str, dict] = {}
    ok = True
    try:
        for kind, faults in (("managed", MANAGED_FAULTS), ("external", EXTERNAL_FAULTS)):
            for label, seconds, fault_list in (("faults", args.duration_s / 2, faults),
                                               ("baseline", baseline_s / 2, ())):
                stack = Stack(home=base / f"{kind}-{label}", database_url=args.database_url, external=kind == "external",
                              block_time_s=1 if kind == "external" else None)
                try:
                    stack.start()
                    say(f"{kind} chain, {label}: {seconds:.0f}s of load")
                    ledger, verdict, events, elapsed = run_phase(stack, seconds, fault_list, args.fault_every_s,
                                                                 args.pause_s, rng, args.seed)
                finally:
                    stack.close()
                results[f"{kind}-{label}"] = {"verdict": verdict, "events": events, "elapsed": elapsed,
                                              "state_restores": stack.state_restores}
                ok = ok and verdict.ok
                say(f"{kind} {label}: accepted {verdict.accepted}, on chain {verdict.on_chain}, lost {len(verdict.lost)}, "
                    f"pending {len(verdict.pending)} (outbox {verdict.detail.get('outbox_depth_at_count')}), doubled {len(verdict.doubled)}, in state without record {len(verdict.unrecorded)}, "
                    f"confirmed without receipt {len(verdict.confirmed_without_receipt)}")
                if verdict.lost or verdict.pending or verdict.doubled or verdict.unrecorded:
                    say(f"  lost {verdict.lost[:5]} pending {verdict.pending[:5]} doubled {verdict.doubled[:5]} "
                        f"unrecorded {verdict.unrecorded[:5]}")
                if args.database_url:
                    reset_postgres(args.database_url)
        backlog = backlog_drain(base, args.backlog, args.database_url) if args.backlog else None
        if backlog is not None:
            ok = ok and backlog["lost"] == 0 and backlog["doubled"] == 0 and backlog["drain_s"] is not None
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    report = render(results, backlog, args, baseline_s, time.monotonic() - t_all)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")
    return 0 if ok else 1


def reset_postgres(url: str) -> None:
    """Each stack gets an empty database: drop every table of the previous one."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def render(results: dict[str, dict], backlog: dict | None, args: argparse.Namespace, baseline_s: float,
           total_s: float) -> str:
    store = "PostgreSQL" if args.database_url else "SQLite"
    lines = [f"Soak: {args.duration_s:.0f}s of mixed load with a random fault every {args.fault_every_s:.0f}s, "
             f"baseline {baseline_s:.0f}s without faults, {store}, load {RATE_PER_S:.0f} requests/s in {THREADS} "
             f"clients; run took {total_s / 60:.1f} min", "",
             "Counted once the service had nothing left to send (its outbox empty for "
             f"{DRAIN_QUIET_S:.0f} s) or everything was on chain: \"lost\" is what is not on chain then; "
             "\"pending\" what was still in the outbox when counting gave up (300 s), which may still land.", "",
             "| chain | phase | faults | accepted | on chain | lost | pending | doubled | in state, record lost by the node | "
             "confirmed w/o receipt | accepted/s | on chain/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        v: Verdict = r["verdict"]
        kind, phase = name.split("-")
        lines.append(f"| {kind} | {phase} | {len(r['events'])} | {v.accepted:,} | {v.on_chain:,} | {len(v.lost)} | "
                     f"{len(v.pending)} | {len(v.doubled)} | {len(v.unrecorded)} | {len(v.confirmed_without_receipt)} | "
                     f"{v.accepted / r['elapsed']:.1f} | {v.on_chain / r['elapsed']:.1f} |")
    lines += ["", "Faults, in order (back: until the service answers again; drain: until everything accepted "
              "before the fault is on chain):", "", "| # | chain | fault | back (s) | drain (s) |", "|---:|---|---|---:|---:|"]
    n = 0
    drains: list[float] = []
    for name, r in results.items():
        for e in r["events"]:
            n += 1
            d = e["drain_s"]
            if d is not None:
                drains.append(d)
            lines.append(f"| {n} | {name.split('-')[0]} | {e['fault']} | {e['recovery_s']:.1f} | "
                         f"{'%.1f' % d if d is not None else 'not before the next fault'} |")
    restores = sum(r.get("state_restores", 0) for r in results.values())
    if restores:
        lines += ["", f"The managed anvil's state file was found cut short {restores} time(s) after a SIGKILL (anvil "
                      "rewrites it in place, docs/operations.md): the service restored its last good copy (at most "
                      "10 s old), an older state it recovered from like any other lost blocks."]
    if drains:
        lines += ["", f"Drain after a fault: median {statistics.median(drains):.1f}s, max {max(drains):.1f}s "
                      f"({len(drains)} of {n} drained before the next fault)."]
    if backlog is not None:
        lines += ["", f"Backlog: {backlog['count']:,} single settlements accepted in {backlog['accept_s']:.0f}s while the "
                      f"external node was down (outbox depth {backlog['outbox_depth']}); drained in "
                      f"{'%.0fs' % backlog['drain_s'] if backlog['drain_s'] is not None else 'NOT within 900 s'} after "
                      f"it came back (1 s blocks), lost {backlog['lost']}, doubled {backlog['doubled']}."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
