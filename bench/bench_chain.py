"""Chain capacity vs the chain client's throughput on the same contract call, in one run.

    python -m bench.bench_chain [--count N] [--block-time S]

1. raw: N transactions signed beforehand, flooded over JSON-RPC batches with a bare HTTP client,
   at most ``INFLIGHT`` unmined at any time (the dispatcher's limit per signer); the clock stops
   when the last receipt is in. This is what the node can do.
2. client: the same call N times through ChainClient: encode, sign (local), send in batches,
   wait for receipts. This is what the service's sending path adds.
3. dispatcher: the same N calls written to the outbox (SQLite) and drained by the dispatcher
   (sign, write-ahead, broadcast, receipts, status updates): end to end from the store.

Each phase runs on its own fresh anvil with the same settings, so none pays for another's state.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import requests
from eth_account import Account

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import deploy
from settlement.custody.governors import demo_governance
from settlement.chain.signing import LocalSigner, keccak256
from settlement.custody.vault import KeyVault
from settlement.pipeline.dispatcher import INFLIGHT_PER_SIGNER_DEFAULT
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.pipeline.workers import build
from settlement.wiring import build_registry

BATCH = 200
# Every phase keeps at most INFLIGHT transactions in the node's pool (the dispatcher's default
# limit per signer), sending WINDOW_BATCH at a time: 2,000 sent at once grew an automining anvil to
# 15 GB without finishing.
INFLIGHT = INFLIGHT_PER_SIGNER_DEFAULT
WINDOW_BATCH = INFLIGHT // 2
FINANCE = keccak256(b"FINANCE")
CALL_GAS = 300_000


def onboard_args(i: int) -> list:
    # A distinct member per call: every transaction does the same amount of real work.
    return ["0x" + keccak256(b"bench-%d" % i).hex(), "0x434e", ["0x" + keccak256(b"acct-%d" % i).hex()[-40:]],
            ["0x" + FINANCE.hex()]]


def fresh_chain(block_time: int | None) -> tuple[ManagedAnvil, ChainClient, LocalSigner, str, Path]:
    node = ManagedAnvil(AnvilConfig(port=free_port(), block_time_s=block_time)).start()
    client = ChainClient(node.rpc_url)
    operator = LocalSigner(bytes(Account.create().key))
    home = Path(tempfile.mkdtemp(prefix="bench-chain-"))
    manifest = deploy(client, operator, home, governance=demo_governance()[0])  # onboarding: bootstrap window
    return node, client, operator, manifest.address("ConsortiumRegistry"), home


def wait_all(client: ChainClient, hashes: list[str]) -> None:
    got = client.wait_for_receipts(hashes, timeout_s=600)
    assert len(got) == len(hashes) and all(r.status == 1 for r in got.values()), "not all transactions succeeded"


def phase_raw(count: int, block_time: int | None) -> float:
    node, client, operator, registry, _ = fresh_chain(block_time)
    try:
        base = client.pending_nonce(operator.address)
        signed = [client.sign(operator, to=registry, data=client.encode("ConsortiumRegistry", "onboardMember", onboard_args(i)),
                              gas=CALL_GAS, nonce=base + i) for i in range(count)]
        bodies = [json.dumps([{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction",
                               "params": ["0x" + t.raw.hex()]} for j, t in enumerate(signed[k:k + WINDOW_BATCH])])
                  for k in range(0, count, WINDOW_BATCH)]
        session = requests.Session()
        t0 = time.perf_counter()
        for k, body in enumerate(bodies):
            # Bounded like the dispatcher: never more than INFLIGHT in the node's pool.
            client.wait_for_room(operator.address, base + k * WINDOW_BATCH, INFLIGHT)
            session.post(client.rpc_url, data=body, headers={"Content-Type": "application/json"}).raise_for_status()
        wait_all(client, [t.tx_hash for t in signed])
        return count / (time.perf_counter() - t0)
    finally:
        node.stop()


def phase_client(count: int, block_time: int | None) -> float:
    node, client, operator, registry, _ = fresh_chain(block_time)
    try:
        base = client.pending_nonce(operator.address)
        hashes: list[str] = []

        def batches():
            for k in range(0, count, WINDOW_BATCH):
                client.wait_for_room(operator.address, base + k, INFLIGHT)
                txs = [client.sign(operator, to=registry, gas=CALL_GAS, nonce=base + i,
                                   data=client.encode("ConsortiumRegistry", "onboardMember", onboard_args(i)))
                       for i in range(k, min(k + WINDOW_BATCH, count))]
                hashes.extend(t.tx_hash for t in txs)
                yield txs

        t0 = time.perf_counter()
        results = client.send_pipelined(batches())
        assert all(r.accepted for r in results)
        wait_all(client, hashes)
        return count / (time.perf_counter() - t0)
    finally:
        node.stop()


def phase_dispatcher(count: int, block_time: int | None) -> float:
    node, client, operator, registry, home = fresh_chain(block_time)
    try:
        url = f"sqlite:///{home / 'bench.db'}"
        migrate(url)
        vault = KeyVault(os.urandom(32))
        vault.register(operator)
        from settlement.chain.deploy import Manifest

        rt = Runtime(home=home, db=Database(url), chain=client, vault=vault, operator=operator, manifest=Manifest.load(home))
        with rt.db.transaction() as s:
            for i in range(count):
                enqueue(s, kind="bench", contract="ConsortiumRegistry", function="onboardMember", args=onboard_args(i),
                        signer=operator.address, gas_limit=CALL_GAS)
        dispatcher, _ = build(rt, build_registry(), batch_size=BATCH, inflight_max=INFLIGHT)
        t0 = time.perf_counter()
        dispatcher.drain(timeout_s=600, idle_sleep_s=0.01)
        return count / (time.perf_counter() - t0)
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--block-time", type=int, default=None, help="interval mining seconds (default automine)")
    parser.add_argument("--out", default="bench/out/chain.md")
    args = parser.parse_args()
    mode = f"interval mining {args.block_time}s" if args.block_time else "automine"
    raw = phase_raw(args.count, args.block_time)
    client = phase_client(args.count, args.block_time)
    dispatcher = phase_dispatcher(args.count, args.block_time)
    lines = [
        f"Chain throughput, {args.count} x ConsortiumRegistry.onboardMember, anvil {mode}, zero fees",
        "",
        "| path | tx/s confirmed | vs raw |",
        "|---|---:|---:|",
        f"| raw: pre-signed flood over JSON-RPC batches | {raw:,.0f} | 100% |",
        f"| chain client: encode + sign + batch send + receipts | {client:,.0f} | {client / raw:.0%} |",
        f"| dispatcher: outbox (SQLite) -> chain, write-ahead | {dispatcher:,.0f} | {dispatcher / raw:.0%} |",
    ]
    report = "\n".join(lines)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
