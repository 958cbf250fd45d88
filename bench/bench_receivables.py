"""Receivables through the service, end to end, and gas per operation from receipts.

    python -m bench.bench_receivables [--count N] [--block-time S] [--out bench/out/receivables.md]

1. throughput: N receivables registered through the service layer (each request its own database
   transaction: checks, canonical invoice hash, uniqueness, operation + outbox row), then the
   dispatcher drains the outbox and the follower applies the events; the clock stops when the
   last receivable is REGISTERED in the store. Reported: requests accepted per second, and
   receivables registered on chain and mirrored per second, end to end.
2. gas: one receivable walked through confirm, split, transfer, request, offer, accept (custodial
   and own-key EIP-712), repay; gas used is read from each transaction's receipt.

Runs on a fresh managed anvil (zero fees) and a fresh SQLite store.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import func, select

from settlement.domains import members as members_svc
from settlement.domains import receivables as svc
from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import deploy, seal_bootstrap
from settlement.chain.signing import sign_typed_data
from settlement.custody.governors import demo_governance
from settlement.chain.signing import LocalSigner
from settlement.custody.vault import KeyVault
from settlement.core.money import Money
from settlement.domains.receivables.models import Actor
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.store.models import OutboxRow
from settlement.store.models.receivables import Receivable, ReceivableOperation, ReceivablePart
from settlement.pipeline.workers import build
from settlement.wiring import build_registry

CONSORTIUM = {"acme": ["supplier"], "tier2": ["supplier"], "bigbuy": ["buyer"], "bank": ["financier"]}


def setup(block_time: int | None) -> tuple[ManagedAnvil, Runtime]:
    node = ManagedAnvil(AnvilConfig(port=free_port(), block_time_s=block_time)).start()
    home = Path(tempfile.mkdtemp(prefix="bench-receivables-"))
    url = f"sqlite:///{home / 'ledger.db'}"
    migrate(url)
    vault = KeyVault(os.urandom(32))
    operator = LocalSigner(bytes(Account.create().key))
    vault.register(operator)
    chain = ChainClient(node.rpc_url)
    rt = Runtime(home=home, db=Database(url), chain=chain, vault=vault, operator=operator,
                 manifest=deploy(chain, operator, home, governance=demo_governance()[0]))
    with rt.db.transaction() as s:  # founding members, in the bootstrap window (sealed once on chain)
        for member, roles in CONSORTIUM.items():
            members_svc.onboard_member(rt, s, member_id=member, name=member, country="CN", roles=roles)
    return node, rt


def settle(rt: Runtime, dispatcher, follower) -> None:  # type: ignore[no-untyped-def]
    dispatcher.drain(timeout_s=600)
    while follower.run_once():
        pass


def throughput(rt: Runtime, dispatcher, follower, count: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    supplier = Actor("acme", frozenset({"supplier"}))
    facts = svc.read_chain_facts(rt)
    today = facts.today
    t0 = time.perf_counter()
    for i in range(count):
        with rt.db.transaction() as s:
            svc.register_receivable(facts, s, supplier, buyer_id="bigbuy", invoice_number=f"BENCH-{i:06d}",
                                    face_value=Money(1_000_000 + i, "CNY"), issue_date=today - timedelta(days=5),
                                    due_date=today + timedelta(days=60))
    t_accept = time.perf_counter() - t0
    while True:
        dispatcher.run_once()
        follower.run_once()
        with rt.db.read() as s:
            left = s.scalar(select(func.count()).select_from(Receivable).where(Receivable.status == "pending"))
        if not left:
            break
    t_total = time.perf_counter() - t0
    with rt.db.read() as s:
        registered = s.scalar(select(func.count()).select_from(Receivable).where(Receivable.status == "registered"))
    if registered != count:
        raise RuntimeError(f"only {registered} of {count} receivables registered")
    return {"accept_per_s": count / t_accept, "end_to_end_per_s": count / t_total, "seconds": t_total}


def _gas(rt: Runtime, op_ids: list[int]) -> int:
    with rt.db.read() as s:
        hashes = [s.get(OutboxRow, s.get(ReceivableOperation, i).outbox_id).tx_hash for i in op_ids]
    receipts = rt.chain.receipts(hashes)
    if any(r is None or r.status != 1 for r in receipts.values()):
        raise RuntimeError("an operation failed on chain")
    return sum(r.gas_used for r in receipts.values())  # type: ignore[union-attr]


def gas_per_operation(rt: Runtime, dispatcher, follower) -> dict[str, int]:  # type: ignore[no-untyped-def]
    actors = {m: Actor(m, frozenset(r)) for m, r in CONSORTIUM.items()}
    settle(rt, dispatcher, follower)
    if rt.bootstrap_open():
        seal_bootstrap(rt.chain, rt.operator, rt.manifest, rt.home)  # type: ignore[arg-type]
    own = Account.create()  # tier2's own key: consent by its custodial key, proof of possession by the new one
    change = members_svc.keys.prepare_key_change(rt, "tier2", members_svc.keys.ADD, own.address)
    possession = "0x" + sign_typed_data(LocalSigner(bytes(own.key)), change.typed_data).hex()
    with rt.db.transaction() as s:
        members_svc.keys.change_key(rt, s, change, possession_signature=possession, consent_signature=None,
                                    custodial_consent=True)
    settle(rt, dispatcher, follower)
    today = svc.read_chain_facts(rt).today
    gas: dict[str, int] = {}

    def run(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        facts = svc.read_chain_facts(rt, nonces_of=kwargs.pop("nonces_of", ()))
        with rt.db.transaction() as s:
            done = fn(facts, s, *args, **kwargs)
            ids = [o.id for o in done.operations]
        settle(rt, dispatcher, follower)
        gas[label] = _gas(rt, ids)
        return done

    face = Money(90_000_000, "CNY")
    # Cancelled and rejected registrations (each frees the invoice identity for the next).
    for label, undo, who in (("cancel (supplier)", svc.cancel_receivable, "acme"),
                             ("reject (buyer)", svc.reject_receivable, "bigbuy")):
        gone = run("register", svc.register_receivable, actors["acme"], buyer_id="bigbuy", invoice_number="GAS-1",
                   face_value=face, issue_date=today - timedelta(days=30), due_date=today)
        run(label, undo, actors[who], gone.receivable.id)
    done = run("register", svc.register_receivable, actors["acme"], buyer_id="bigbuy", invoice_number="GAS-1",
               face_value=face, issue_date=today - timedelta(days=30), due_date=today)
    rid, p0 = done.receivable.id, done.part_ids[0]
    run("confirm (custodial)", svc.confirm_receivable, actors["bigbuy"], rid)
    p1 = run("split into 2", svc.split_part, actors["acme"], rid, p0, [60_000_000, 30_000_000]).part_ids[0]
    run("split into 3", svc.split_part, actors["acme"], rid, p0, [20_000_000, 20_000_000,
                                                                         20_000_000])
    run("transfer", svc.transfer_part, actors["acme"], rid, p1, to_member_id="tier2")
    valid_until = int(rt.chain.get_block("latest")["timestamp"]) + 3600
    for part, holder, accept in ((p0, "acme", "finance accept (custodial)"),
                                 (p1, "tier2", "finance accept (own-key EIP-712)")):
        run("finance request", svc.request_financing, actors[holder], rid, part, financier_id="bank")
        run("finance offer", svc.offer_financing, actors["bank"], rid, part, rate_ppm=50_000, basis=1,
            fee_minor=1_000, valid_until_s=valid_until)
        with rt.db.read() as s:
            offer_id = s.get(ReceivablePart, part).offer_id
        if holder == "acme":
            run(accept, svc.accept_offer, actors[holder], rid, part, offer_id=offer_id)
        else:
            with rt.db.read() as s:
                typed = svc.acceptance_typed_data(svc.read_chain_facts(rt, nonces_of=[(holder, svc.nonce_key(part))]),
                                                  s, actors[holder], rid, part)
            signature = "0x" + own.sign_message(encode_typed_data(full_message=typed)).signature.hex().removeprefix("0x")
            run(accept, svc.accept_offer, actors[holder], rid, part, offer_id=offer_id, signature=signature,
                deadline=typed["message"]["deadline"], nonces_of=[(holder, svc.nonce_key(part))])
    with rt.db.read() as s:
        holders = [(p.id, p.holder_id) for p in s.scalars(select(ReceivablePart).where(
            ReceivablePart.receivable_id == rid).order_by(ReceivablePart.index))]
    run(f"repayment reported by the buyer ({len(holders)} parts)", svc.repay_receivable, actors["bigbuy"], rid)
    for i, (part, holder) in enumerate(holders):
        label = ("receipt confirmed by a holder, last part: settles "
                 f"({len(holders)} parts)") if i == len(holders) - 1 else "receipt confirmed by a holder"
        run(label, svc.confirm_repayment_received, actors[holder], rid, part)
    return gas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--block-time", type=int, default=None, help="interval mining (s); default automine")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "receivables.md")
    args = parser.parse_args()
    node, rt = setup(args.block_time)
    try:
        dispatcher, follower = build(rt, build_registry())
        settle(rt, dispatcher, follower)
        tp = throughput(rt, dispatcher, follower, args.count)
        gas = gas_per_operation(rt, dispatcher, follower)
    finally:
        rt.db.dispose()
        node.stop()
    mining = f"interval mining {args.block_time}s" if args.block_time else "automine"
    lines = [
        f"Receivables, {args.count} registrations through the service, anvil {mining}, zero fees, SQLite store",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| requests accepted by the service (checks + store + outbox), per second | {tp['accept_per_s']:,.0f} |",
        f"| receivables registered on chain and mirrored by the follower, per second (end to end) | "
        f"{tp['end_to_end_per_s']:,.0f} |",
        f"| wall time for all {args.count}, end to end | {tp['seconds']:.1f} s |",
        "",
        "Gas per operation (from receipts)",
        "",
        "| operation | gas used |",
        "|---|---:|",
        *[f"| {label} | {g:,} |" for label, g in gas.items()],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
