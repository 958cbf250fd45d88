"""Gas per SettlementLedger operation, read from receipts, for two builds of the contract.

    python -m bench.gas_settlements [--before REV] [--out bench/out/gas_settlements.md]

``--before`` names a git revision whose ``settlement/chain/artifacts/SettlementLedger.json`` is the
"before" build (default ``4ecf83e``, the last commit before the separation-of-duty rules); "after" is this checkout's. Each build is deployed on the same
fresh managed anvil (zero fees) with its own registry and a small consortium (three finance
members, an operator), then driven through the same operations: record (single and batch of
200), pay (single and batch of 200), refund, submit and settle a two-member cycle; the after build
also acknowledges, attests a provider refund and attests the net payment the cycle needs. Gas is
deterministic: no load figure needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "settlement" / "chain" / "artifacts"
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's first dev account
BATCH = 200
FX = 10**12


def _artifact(name: str, rev: str | None = None) -> dict:
    if rev is None:
        return json.loads((ARTIFACTS / f"{name}.json").read_text())
    text = subprocess.run(["git", "show", f"{rev}:settlement/chain/artifacts/{name}.json"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    return json.loads(text)


class Driver:
    def __init__(self, w3: Web3, ledger_art: dict) -> None:
        self.w3 = w3
        self.admin = Account.from_key(DEV_KEY)
        self.nonces: dict[str, int] = {}
        registry = self._deploy(_artifact("ConsortiumRegistry"), self.admin.address, 0, self.admin.address,
                                "0x" + "00" * 20, [])
        forwarder = self._deploy(_artifact("LedgerForwarder"))
        self.ledger = self._deploy(ledger_art, registry.address, forwarder.address)
        self.f = self.ledger.functions
        self.acct: dict[str, LocalAccount] = {}
        self.member: dict[str, bytes] = {}
        roles = {"a": [keccak(b"FINANCE")], "b": [keccak(b"FINANCE")], "c": [keccak(b"FINANCE")],
                 "op": [keccak(b"OPERATOR")]}
        for name, rs in roles.items():
            self.acct[name] = Account.create()
            self.member[name] = keccak(f"gas-member:{name}:{os.urandom(4).hex()}".encode())
            self.gas(registry.functions.onboardMember(self.member[name], b"SG", [self.acct[name].address], rs),
                     self.admin)
        self.today = w3.eth.get_block("latest")["timestamp"] // 86_400
        self.n = 0

    def _deploy(self, art: dict, *args: Any) -> Any:
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(*args).build_transaction(self._tx(self.admin))
        receipt = self._send(tx, self.admin)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def _tx(self, sender: LocalAccount) -> dict:
        nonce = self.nonces.get(sender.address, self.w3.eth.get_transaction_count(sender.address, "pending"))
        self.nonces[sender.address] = nonce + 1
        return {"from": sender.address, "nonce": nonce, "gas": 16_000_000, "gasPrice": 0,
                "chainId": self.w3.eth.chain_id}

    def _send(self, tx: dict, sender: LocalAccount) -> Any:
        h = self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=60)
        if receipt["status"] != 1:
            raise RuntimeError("transaction reverted")
        return receipt

    def gas(self, fn: Any, sender: LocalAccount | str) -> int:
        account = self.acct[sender] if isinstance(sender, str) else sender
        return int(self._send(fn.build_transaction(self._tx(account)), account)["gasUsed"])

    def ins(self, payee: str, amount: int = 100_000) -> tuple:
        self.n += 1
        return (keccak(f"ref-{self.n}".encode()), self.member[payee], amount, b"USD", amount, b"USD", FX, 0,
                self.today, b"GDDS", keccak(f"pay-{self.n}".encode()))

    def s(self, payer: str, ins: tuple) -> tuple:
        return (self.member[payer], ins)

    def evidence(self, s: tuple, amount: int | None = None) -> tuple:
        return (b"alipay".ljust(16, b"\0"), keccak(b"tx:" + s[1][0]), s[1][4] if amount is None else amount)


def measure(rpc_url: str, ledger_art: dict, after: bool) -> dict[str, int]:
    d = Driver(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60})), ledger_art)
    f, out = d.f, {}
    one = d.ins("b")
    out["recordSettlement"] = d.gas(f.recordSettlement(one), "a")
    batch = [d.ins(("b", "c")[i % 2]) for i in range(BATCH)]
    out["recordBatch(200), per settlement"] = d.gas(f.recordBatch(batch), "a") // BATCH
    s1 = d.s("a", one)
    if after:
        out["acknowledgeReceipt"] = d.gas(f.acknowledgeReceipt(s1), "b")
    out["markPaid"] = d.gas(f.markPaid(s1, d.evidence(s1)), "op")
    settlements = [d.s("a", i) for i in batch]
    out["markPaidBatch(200), per settlement"] = d.gas(
        f.markPaidBatch(settlements, [d.evidence(s) for s in settlements]), "op") // BATCH
    out["refund (payee, partial)"] = d.gas(f.refund(s1, 1_000, keccak(b"rf-1")), "b")
    if after:
        out["attestRefund (provider refund, partial)"] = d.gas(
            f.attestRefund(s1, keccak(b"alipay:rf-2"), (b"alipay".ljust(16, b"\0"), keccak(b"rf-2"), 1_000)), "op")
    # a two-member cycle over two settlements a -> b and b -> a
    back = d.s("b", d.ins("a", 40_000))
    d.gas(f.recordSettlement(back[1]), "b")
    d.gas(f.markPaid(back, d.evidence(back)), "op")
    outstanding = 100_000 - (2_000 if after else 1_000)
    flows = {d.member["a"]: -outstanding + 40_000, d.member["b"]: outstanding - 40_000}
    members = sorted(flows)
    nets = [flows[m] for m in members]
    cycle = keccak(b"cycle-1")
    out["submitNettingCycle (2 settlements, 2 members)"] = d.gas(
        f.submitNettingCycle(cycle, b"USD", [s1, back], members, nets), "op")
    ids = [keccak(s1[0] + s1[1][0]), keccak(back[0] + back[1][0])]
    if after:
        out["attestNetPayment"] = d.gas(f.attestNetPayment(cycle, members, nets, d.member["a"], (
            b"wechatpay".ljust(16, b"\0"), keccak(b"net-in-1"), outstanding - 40_000)), "op")
        out["settleNettingCycle (2 settlements)"] = d.gas(f.settleNettingCycle(cycle, ids, members, nets), "op")
    else:
        out["settleNettingCycle (2 settlements)"] = d.gas(f.settleNettingCycle(cycle, ids), "op")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="4ecf83e", help="git revision of the before build (default: the last commit before the money-duty rules)")
    parser.add_argument("--out", default="bench/out/gas_settlements.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = ManagedAnvil(AnvilConfig(port=free_port(), log_path=Path(tmp) / "anvil.log")).start()
        try:
            before = measure(node.rpc_url, _artifact("SettlementLedger", args.before), after=False)
            after = measure(node.rpc_url, _artifact("SettlementLedger"), after=True)
        finally:
            node.stop()
    lines = [f"| operation | gas before ({args.before}) | gas after | change |", "|---|---:|---:|---:|"]
    for op, gas in after.items():
        old = before.get(op)
        change = f"{gas - old:+,}" if old is not None else "new"
        lines.append(f"| {op} | {old:,} | {gas:,} | {change} |" if old is not None else f"| {op} | - | {gas:,} | new |")
    table = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
