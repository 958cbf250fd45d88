"""Signing in a PKCS#11 token (SoftHSM2) vs in memory, in one run.

    python -m bench.bench_hsm [--count N] [--rows N] [--repeat N]

1. signatures: N transactions (ConsortiumRegistry.onboardMember calldata, legacy, zero fees)
   signed by a LocalSigner and by an HsmSigner; for the HSM also the token's bare C_Sign rate
   and the cost of turning its (r, s) into an Ethereum signature (low s, recovery id).
2. dispatcher: the same outbox rows (SQLite) drained to a fresh anvil (automine, zero fees)
   once with the operator's key in memory and once with it in the token.

SoftHSM2 is provided as for the tests (scripts/test-softhsm.sh: Debian's package) with a fresh
token under a temporary SOFTHSM2_CONF; it is software, so these figures say what the service's
side costs, not what a hardware HSM does (network HSMs add a round trip per signature).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from eth_account import Account

from bench.bench_chain import CALL_GAS, onboard_args
from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import Manifest, deploy
from settlement.chain.signing import FeeParams, LocalSigner, Signer, ethereum_signature, keccak256
from settlement.custody.hsm import HsmToken, signature_rs
from settlement.custody.vault import KeyVault
from settlement.pipeline.outbox import enqueue
from settlement.pipeline.workers import build
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.wiring import build_registry

ROOT = Path(__file__).resolve().parent.parent
BATCH = 200


def fresh_token() -> HsmToken:
    module = subprocess.run([str(ROOT / "scripts" / "test-softhsm.sh")], check=True, capture_output=True,
                            text=True).stdout.strip().splitlines()[-1]
    base = Path(tempfile.mkdtemp(prefix="bench-hsm-"))
    (base / "tokens").mkdir()
    (base / "softhsm2.conf").write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n"
                                        "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(base / "softhsm2.conf")
    label, pin = "bench-" + secrets.token_hex(4), secrets.token_hex(8)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                    "--so-pin", secrets.token_hex(8)], check=True, capture_output=True)
    return HsmToken(module, label, pin)


def rate(fn, count: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for i in range(count):
        fn(i)
    return count / (time.perf_counter() - t0)


def sign_rate(signer: Signer, count: int) -> float:
    to = "0x" + "12" * 20
    data = ChainClient("http://127.0.0.1:9").encode("ConsortiumRegistry", "onboardMember", onboard_args(1))
    fees = FeeParams()
    return rate(lambda i: signer.sign(chain_id=31337, nonce=i, to=to, data=data, gas=CALL_GAS, fees=fees), count)


def phase_signatures(token: HsmToken, count: int) -> dict[str, float]:
    local = LocalSigner(bytes(Account.create().key))
    key_id, address = token.generate("bench")
    hsm = token.signer(key_id, address)
    digests = [keccak256(i.to_bytes(8, "big")) for i in range(count)]
    raw = [token.sign_digest(key_id, d) for d in digests[:min(count, 2000)]]
    address_bytes = bytes.fromhex(address[2:])
    sign_hsm = sign_rate(hsm, count)
    return {
        "local": sign_rate(local, count),
        "hsm": sign_hsm,
        "token": rate(lambda i: token.sign_digest(key_id, digests[i]), count),
        "convert": rate(lambda i: ethereum_signature(digests[i], *signature_rs(raw[i]), address_bytes), len(raw)),
    }


def phase_dispatcher(operator: Signer, rows: int) -> float:
    node = ManagedAnvil(AnvilConfig(port=free_port())).start()
    try:
        client = ChainClient(node.rpc_url)
        home = Path(tempfile.mkdtemp(prefix="bench-hsm-dispatch-"))
        deploy(client, operator, home)
        url = f"sqlite:///{home / 'bench.db'}"
        migrate(url)
        vault = KeyVault(os.urandom(32))
        vault.register(operator)
        rt = Runtime(home=home, db=Database(url), chain=client, vault=vault, operator=operator,
                     manifest=Manifest.load(home))
        with rt.db.transaction() as s:
            for i in range(rows):
                enqueue(s, kind="bench", contract="ConsortiumRegistry", function="onboardMember",
                        args=onboard_args(i), signer=operator.address, gas_limit=CALL_GAS)
        dispatcher, _ = build(rt, build_registry(), batch_size=BATCH)
        t0 = time.perf_counter()
        dispatcher.drain(timeout_s=600, idle_sleep_s=0.01)
        return rows / (time.perf_counter() - t0)
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="signatures per signer")
    parser.add_argument("--rows", type=int, default=1000, help="outbox rows per dispatcher run (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="dispatcher runs per signer, alternated")
    parser.add_argument("--out", default="bench/out/hsm.md")
    args = parser.parse_args()
    token = fresh_token()
    try:
        sig = phase_signatures(token, args.count)
        lines = [
            f"Signing, {args.count} onboardMember transactions (legacy, zero fees), SoftHSM2 "
            f"{token._lib.library_version[0]}.{token._lib.library_version[1]}",
            "",
            "| signer | signatures/s | vs local |",
            "|---|---:|---:|",
            f"| LocalSigner (coincurve, key in memory) | {sig['local']:,.0f} | 100% |",
            f"| HsmSigner (SoftHSM2: C_Sign + low s + recovery id + RLP) | {sig['hsm']:,.0f} | "
            f"{sig['hsm'] / sig['local']:.0%} |",
            f"| of which the token's CKM_ECDSA alone | {sig['token']:,.0f} | |",
            f"| of which (r, s) -> Ethereum signature alone | {sig['convert']:,.0f} | |",
        ]
        if args.rows:
            # Alternated and repeated: anvil's speed drifts with the machine's load more than the
            # signer's cost moves the result, so each side gets its best of --repeat runs.
            local_runs, hsm_runs = [], []
            for _ in range(args.repeat):
                local_runs.append(phase_dispatcher(LocalSigner(bytes(Account.create().key)), args.rows))
                key_id, address = token.generate("bench operator")
                hsm_runs.append(phase_dispatcher(token.signer(key_id, address), args.rows))
            local_rows, hsm_rows = max(local_runs), max(hsm_runs)
            lines += [
                "",
                f"Dispatcher, {args.rows} outbox rows (SQLite) -> anvil automine, zero fees, best of {args.repeat}",
                "",
                "| operator key | rows/s confirmed | vs local |",
                "|---|---:|---:|",
                f"| in memory | {local_rows:,.0f} | 100% |",
                f"| in the token | {hsm_rows:,.0f} | {hsm_rows / local_rows:.0%} |",
            ]
    finally:
        token.close()
    report = "\n".join(lines)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
