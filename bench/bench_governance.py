"""Gas of governance and of members' own keys, through the service, read from receipts.

    python -m bench.bench_governance [--out bench/out/governance.md]

On a fresh managed anvil (zero fees) and a fresh SQLite store, with the demo governors (2-of-3):

1. a settlement recorded and cancelled custodially, then by a member that signs with its own key
   (its key added with consent and proof of possession, the custodial one removed with the own
   key's consent): the intents relayed through the LedgerForwarder;
2. governance: a role grant (slow path: publish, two approvals, schedule, execute after the
   delay), an onboarding (same), a suspension (fast path: publish, two approvals, execute).

Not a speed target: gas is deterministic. The figures are in docs/governance.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from eth_account import Account
from sqlalchemy import select

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import deploy, seal_bootstrap
from settlement.chain.signing import LocalSigner, sign_typed_data
from settlement.custody.governors import demo_governance
from settlement.custody.vault import KeyVault
from settlement.domains import governance as gov
from settlement.domains import members as members_svc
from settlement.domains import settlements as settlements_svc
from settlement.pipeline import intents
from settlement.pipeline.workers import build
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.store.models import MemberAccount, OutboxRow
from settlement.wiring import build_registry

KINDS = ("settlement.record", "settlement.cancel", "member.add_key", "member.remove_key", "governance.propose",
         "governance.approve", "governance.schedule", "governance.execute")


def setup() -> tuple[ManagedAnvil, Runtime]:
    node = ManagedAnvil(AnvilConfig(port=free_port())).start()
    home = Path(tempfile.mkdtemp(prefix="bench-governance-"))
    url = f"sqlite:///{home / 'ledger.db'}"
    migrate(url)
    vault = KeyVault(os.urandom(32))
    operator = LocalSigner(os.urandom(32))
    vault.register(operator)
    chain = ChainClient(node.rpc_url)
    params, governors = demo_governance()
    rt = Runtime(home=home, db=Database(url), chain=chain, vault=vault, operator=operator,
                 manifest=deploy(chain, operator, home, governance=params))
    rt.register_governors(governors)
    with rt.db.transaction() as s:  # founding members, in the bootstrap window
        for member in ("payer", "payee"):
            members_svc.onboard_member(rt, s, member_id=member, name=member, country="SG", roles=["finance"])
    return node, rt


def run(rt: Runtime) -> dict[str, list[tuple[str, int]]]:
    dispatcher, follower = build(rt, build_registry())

    def settle() -> None:
        for _ in range(20):
            dispatcher.drain(timeout_s=120)
            if not follower.run_once():
                return

    settle()
    seal_bootstrap(rt.chain, rt.operator, rt.manifest, rt.home)  # type: ignore[arg-type]
    n = [0]

    def instruction() -> settlements_svc.InstructionInput:
        n[0] += 1
        return settlements_svc.InstructionInput(client_reference=f"B-{n[0]}", payee_id="payee", source_minor=10_000,
                                                source_currency="USD", target_currency="USD", fx_rate="1",
                                                purpose_code="GDDS", payment_reference=f"P-{n[0]}")

    def record_and_cancel(own: LocalSigner | None) -> None:
        facts = intents.own_key(rt, "payer") if own else None
        with rt.db.transaction() as s:
            sid = settlements_svc.create_settlement(rt, s, "payer", instruction(), own=facts).id
        sign_intents(own)
        settle()
        facts = intents.own_key(rt, "payer") if own else None
        with rt.db.transaction() as s:
            settlements_svc.cancel_settlement(rt, s, sid, "payer", own=facts)
        sign_intents(own)
        settle()

    def sign_intents(own: LocalSigner | None) -> None:
        if own is None:
            return
        with rt.db.read() as s:
            held, _more = intents.list_intents(s, "payer", status="held", limit=intents.LIST_LIMIT_MAX)
            typed = [(i.id, intents.typed_data(rt.chain.chain_id, rt.address(intents.FORWARDER), i)) for i in held]
        for intent_id, data in typed:
            check = intents.check_signature(rt, intent_id, "payer", "0x" + sign_typed_data(own, data).hex())
            with rt.db.transaction() as s:
                intents.accept_signature(s, rt, check, "payer")

    record_and_cancel(None)
    own = LocalSigner(bytes(Account.create().key))
    change = members_svc.keys.prepare_key_change(rt, "payer", "add", own.address)
    with rt.db.transaction() as s:
        members_svc.keys.change_key(rt, s, change, consent_signature=None, custodial_consent=True,
                                    possession_signature="0x" + sign_typed_data(own, change.typed_data).hex())
    settle()
    with rt.db.read() as s:
        custodial = s.scalar(select(MemberAccount.address).where(MemberAccount.member_id == "payer",
                                                                 MemberAccount.encrypted_key.is_not(None)))
    change = members_svc.keys.prepare_key_change(rt, "payer", "remove", custodial, signer=own.address)
    with rt.db.transaction() as s:
        members_svc.keys.change_key(rt, s, change, possession_signature=None,
                                    consent_signature="0x" + sign_typed_data(own, change.typed_data).hex())
    settle()
    record_and_cancel(own)

    def decide(action: gov.Action) -> None:
        with rt.db.transaction() as s:
            pid = gov.propose(rt, s, gov.read_facts(rt), action, proposed_by="bench").id
        settle()
        with rt.db.transaction() as s:
            gov.approve_custodially(rt, s, gov.read_facts(rt), pid)
        settle()
        for _step in range(2):
            with rt.db.read() as s:
                p = gov.get_proposal(s, pid)
                status, op_id = p.status, p.op_id
            if status == "executed":
                return
            if status == "scheduled":
                rt.chain.rpc("evm_increaseTime", [rt.governance.delay_s + 1])  # type: ignore[union-attr]
                rt.chain.rpc("evm_mine", [])
            with rt.db.transaction() as s:
                gov.execute(rt, s, gov.read_facts(rt, (op_id,) if op_id else ()), pid)
            settle()

    decide(gov.Action("grant_role", member_id="payee", role="auditor"))
    decide(gov.Action("onboard", member_id="newco", name="NewCo", country="SG", roles=("finance",)))
    decide(gov.Action("suspend", member_id="payee"))
    out: dict[str, list[tuple[str, int]]] = {}
    with rt.db.read() as s:
        for kind in KINDS:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.kind == kind).order_by(OutboxRow.id)).all()
            receipts = rt.chain.receipts([r.tx_hash for r in rows])
            out[kind] = [(r.function, receipts[r.tx_hash].gas_used) for r in rows]  # type: ignore[union-attr]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/governance.md"))
    args = parser.parse_args(argv)
    node, rt = setup()
    try:
        gas = run(rt)
    finally:
        node.stop()
    lines = ["# Gas of governance and own-key actions, through the service", "", "| outbox kind | call | gas |",
             "|---|---|---|"]
    for kind, calls in gas.items():
        for function, used in calls:
            lines.append(f"| {kind} | {function} | {used:,} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
