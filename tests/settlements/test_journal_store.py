"""The journal and the settlement state machine on the store alone, on SQLite and PostgreSQL.

The chain is played by calling the follower's event handlers and the dispatcher's failure hooks
with the events and errors the contract would produce, so any sequence of operations, confirmed
or refused, can be driven quickly."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from settlement.chain.client import DecodedLog
from settlement.chain.signing import LocalSigner
from settlement.core.errors import ChainRevertError, JournalImbalanceError, LedgerError
from settlement.custody.vault import KeyVault
from settlement.domains.members.service import onchain_id
from settlement.runtime import Runtime
from settlement.domains.settlements import events as handlers
from settlement.store import idempotency
from settlement.domains import settlements as svc
from settlement.domains.settlements import cycles
from settlement.domains.settlements import postings as jr
from settlement.store.db import Database, migrate
from settlement.store.models import Member, MemberAccount, OutboxRow
from settlement.store.models.settlements import NetPayment, NettingCycle, Settlement, SettlementOperation

MEMBERS = ("alpha", "beta", "gamma")
ROOT = Path(__file__).resolve().parents[2]


def _runtime(url: str, home: Path) -> Runtime:
    migrate(url)
    db = Database(url)
    with db.transaction() as s:
        for m in MEMBERS:
            s.add(Member(id=m, onchain_id=onchain_id(m), name=m, country="SG", roles=["finance"], status="active"))
            s.flush()
            s.add(MemberAccount(address="0x" + os.urandom(20).hex(), member_id=m, encrypted_key=b"\x01sealed"))
    operator = LocalSigner(os.urandom(32))
    with db.transaction() as s:  # the attestor: the operator's account, a member that is no party
        s.add(Member(id="operator", onchain_id=onchain_id("operator"), name="operator", country="SG",
                     roles=["operator"], status="active"))
        s.flush()
        s.add(MemberAccount(address=operator.address, member_id="operator", encrypted_key=None))
    return Runtime(home=home, db=db, chain=None, vault=KeyVault(os.urandom(32)), operator=operator)  # type: ignore[arg-type]


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Runtime:
    runtime = _runtime(database_url, tmp_path)
    yield runtime
    runtime.db.dispose()


def _log(event: str, block: list[int], **args: object) -> DecodedLog:
    block[0] += 1
    return DecodedLog(contract="ISettlementLedger", event=event, address="0x" + "11" * 20, args=dict(args),
                      tx_hash="0x" + os.urandom(32).hex(), log_index=0, block_number=block[0], block_hash="0x" + "22" * 32)


def confirm_all(rt: Runtime, block: list[int]) -> None:
    """Play the follower: every pending operation's event, as the contract would emit it."""
    with rt.db.transaction() as s:
        for op in s.scalars(select(SettlementOperation).where(SettlementOperation.status == "pending")
                            .order_by(SettlementOperation.id)).all():
            st_ = s.scalar(select(Settlement).where(Settlement.id == op.settlement_id))
            if op.kind == "record":
                handlers.on_recorded(s, [_log("SettlementRecorded", block, id=st_.id)])
            elif op.kind == "pay":
                handlers.on_paid(s, _log("SettlementPaid", block, id=st_.id, provider="0x" + b"alipay".ljust(16, b"\0").hex(),
                                         providerTxHash=st_.provider_tx_hash, amountPaidMinor=st_.paid_minor))
            elif op.kind == "cancel":
                handlers.on_cancelled(s, _log("SettlementCancelled", block, id=st_.id))
            elif op.kind == "refund":
                handlers.on_refunded(s, _log("SettlementRefunded", block, id=st_.id, amountMinor=op.amount_minor,
                                             refundedTotalMinor=st_.refunded_minor, refundRefHash="0x" + "33" * 32,
                                             fully=st_.state == "refunded"))
            elif op.kind == "net":
                handlers.on_netted(s, _log("SettlementNetted", block, id=st_.id, cycleId=op.cycle_id,
                                           amountMinor=op.amount_minor))
            elif op.kind == "settle":
                handlers.on_settled(s, _log("SettlementSettled", block, id=st_.id, cycleId=op.cycle_id))
        for p in s.scalars(select(NetPayment).where(NetPayment.status == "pending")).all():
            c = s.get(NettingCycle, p.cycle_id)
            onchain = next(o for m, o in c.members if m == p.member_id)
            handlers.on_net_payment_attested(s, _log("NetPaymentAttested", block, cycleId=c.id, member=onchain,
                                                     provider="0x" + b"wechatpay".ljust(16, b"\0").hex(),
                                                     providerTxHash=p.provider_tx_hash, amountMinor=p.amount_minor))
        for c in s.scalars(select(NettingCycle).where(NettingCycle.chain_status == "pending")).all():
            if c.chain_op == "submit":
                handlers.on_cycle_submitted(s, _log("NettingCycleSubmitted", block, cycleId=c.id))
            else:
                handlers.on_cycle_settled(s, _log("NettingCycleSettled", block, cycleId=c.id))


def reject_last(rt: Runtime) -> None:
    """Play the dispatcher: the newest outbox row still awaited reverts; its kind's hook runs."""
    with rt.db.transaction() as s:
        awaited = set(s.scalars(select(SettlementOperation.outbox_id).where(SettlementOperation.status == "pending")))
        awaited |= set(s.scalars(select(NettingCycle.outbox_id).where(NettingCycle.chain_status == "pending")))
        awaited |= set(s.scalars(select(NetPayment.outbox_id).where(NetPayment.status == "pending")))
        if not awaited:
            return
        row = s.get(OutboxRow, max(awaited))
        row.status = "failed"
        error = ChainRevertError("reverted", error_name="SettlementInvalidState", args={"current": 5})
        if row.kind == "settlement.cycle_net_payment":
            handlers.on_net_payment_failure(s, row, error)
        elif row.kind.startswith("settlement.cycle"):
            handlers.on_cycle_failure(s, row, error)
        else:
            handlers.reject_ops(s, row, error)


def _instruction(i: int, payee: str, amount: int, pair: tuple[str, str, str]) -> svc.InstructionInput:
    src, dst, rate = pair
    return svc.InstructionInput(client_reference=f"ref-{i}", payee_id=payee, source_minor=amount, source_currency=src,
                                target_currency=dst, fx_rate=rate, fees_minor=amount // 100, purpose_code="GDDS",
                                payment_reference=f"pay-{i}", value_date=date.today())


PAIRS = [("USD", "USD", "1"), ("EUR", "USD", "1.08325"), ("USD", "JPY", "150.25"), ("KWD", "USD", "3.25")]
OPS = st.lists(st.tuples(st.sampled_from(["create", "create", "pay", "cancel", "refund", "close", "settle",
                                          "confirm", "confirm", "reject"]),
                         st.integers(0, 30), st.integers(1, 10**9), st.integers(0, 3)), min_size=1, max_size=30)


def _apply(rt: Runtime, op: str, n: int, amount: int, k: int, counter: list[int], block: list[int]) -> None:
    if op == "confirm":
        confirm_all(rt, block)
        return
    if op == "reject":
        reject_last(rt)
        return
    try:
        with rt.db.transaction() as s:
            ids = list(s.scalars(select(Settlement.id).order_by(Settlement.seq)))
            target = ids[n % len(ids)] if ids else None
            if op == "create":
                counter[0] += 1
                payer, payee = MEMBERS[k % 3], MEMBERS[(k + 1 + n % 2) % 3]
                svc.create_settlement(rt, s, payer, _instruction(counter[0], payee, amount, PAIRS[k]))
            elif op == "pay" and target:
                st_ = svc.get_settlement(s, target)
                svc.mark_paid(rt, s, st_, "alipay", svc.provider_txn_hash(f"tx-{target}"), st_.target_amount_minor)
            elif op == "cancel" and target:
                st_ = svc.get_settlement(s, target)
                svc.cancel_settlement(rt, s, st_, st_.payer_id)
            elif op == "refund" and target:
                st_ = svc.get_settlement(s, target)
                svc.refund_settlement(rt, s, st_, max(1, st_.paid_minor * (k + 1) // 4), f"r-{counter[0]}-{n}",
                                      by=st_.payee_id)
                counter[0] += 1
            elif op == "close":
                cycles.close_cycle(rt, s, ("USD", "JPY")[k % 2], "operator")
            elif op == "settle":
                cid = s.scalar(select(NettingCycle.id).where(NettingCycle.state == "submitted").limit(1))
                if cid:
                    cycle = s.get(NettingCycle, cid)
                    attested = {p.member_id for p in cycles.net_payments_of(s, cid) if p.status != "rejected"}
                    owing = [(m, -int(net)) for (m, _o), net in zip(cycle.members, cycle.nets)
                             if int(net) < 0 and m not in attested]
                    if owing:  # the operator attests each net payer's payment in, then a later step settles
                        for m, owed in owing:
                            cycles.attest_net_payment(rt, s, cid, m, "wechatpay",
                                                      svc.provider_txn_hash(f"net-{cid}-{m}-{counter[0]}"), owed)
                    else:
                        cycles.settle_cycle(rt, s, cid, "operator")
    except LedgerError as exc:
        if isinstance(exc, JournalImbalanceError):
            raise


def _check_invariants(rt: Runtime) -> None:
    with rt.db.read() as s:
        jr.verify_journal(s)
        for st_ in s.scalars(select(Settlement)):
            assert 0 <= st_.refunded_minor <= st_.paid_minor
            assert st_.paid_minor in (0, st_.target_amount_minor)
        # Per currency, the members' clearing balances are what the next cycles will net: they sum to zero.
        totals: dict[str, int] = {}
        for m in MEMBERS:
            for b in jr.balances(s, m):
                if b.account in (jr.CLEARING_PAYABLE, jr.CLEARING_RECEIVABLE, jr.NET_SETTLEMENT,
                                 jr.REFUND_PAYABLE, jr.REFUND_RECEIVABLE):
                    totals[b.currency] = totals.get(b.currency, 0) + b.balance_minor
        assert all(v == 0 for v in totals.values()), totals


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_journal_stays_balanced_under_any_sequence(rt: Runtime, ops: list) -> None:
    """Whatever is created, paid, cancelled, refunded, netted, settled, confirmed or refused by the
    chain, in any order: every journal transaction balances per currency, the running balances
    equal the entries, and members' clearing positions sum to zero per currency."""
    counter, block = [len(list(_all_ids(rt)))], [0]
    for op, n, amount, k in ops:
        _apply(rt, op, n, amount, k, counter, block)
        _check_invariants(rt)


def _all_ids(rt: Runtime) -> list[str]:
    with rt.db.read() as s:
        return list(s.scalars(select(Settlement.id)))


def test_unbalanced_postings_are_refused_and_write_nothing(rt: Runtime) -> None:
    with rt.db.transaction() as s:
        jr.post(s, "test", [jr.debit("alpha", jr.CLEARING_RECEIVABLE, "USD", 5),
                            jr.credit("beta", jr.CLEARING_PAYABLE, "USD", 5)])
    for postings in ([jr.debit("alpha", jr.CLEARING_RECEIVABLE, "USD", 5), jr.credit("beta", jr.CLEARING_PAYABLE, "USD", 4)],
                     [jr.debit("alpha", jr.CLEARING_RECEIVABLE, "USD", 5), jr.credit("beta", jr.CLEARING_PAYABLE, "EUR", 5)],
                     [jr.debit("alpha", jr.CLEARING_RECEIVABLE, "USD", 0), jr.credit("beta", jr.CLEARING_PAYABLE, "USD", 0)],
                     [jr.debit("alpha", jr.CLEARING_RECEIVABLE, "USD", 5)]):
        with pytest.raises(JournalImbalanceError):
            with rt.db.transaction() as s:
                jr.post(s, "test", postings)
    with rt.db.read() as s:
        jr.verify_journal(s)
        assert [(b.account, b.balance_minor) for b in jr.balances(s, "alpha")] == [(jr.CLEARING_RECEIVABLE, 5)]
        assert jr.trial_balance(s) == {"USD": (5, 5)}


def test_amounts_beyond_64_bits_are_exact(rt: Runtime) -> None:
    big = 2**96 - 1
    with rt.db.transaction() as s:
        for _ in range(3):
            jr.post(s, "test", [jr.debit("alpha", jr.CLEARING_RECEIVABLE, "USD", big),
                                jr.credit("beta", jr.CLEARING_PAYABLE, "USD", big)])
    with rt.db.read() as s:
        assert jr.balances(s, "alpha")[0].balance_minor == 3 * big
        jr.verify_journal(s)


def test_the_balance_check_survives_python_O() -> None:
    """The invariant is a raise, not an assert: python -O keeps it."""
    code = ("from settlement.domains.settlements import postings as jr\n"
            "try:\n jr.check_balanced([jr.debit('a', jr.FX_CLEARING, 'USD', 2), jr.credit('b', jr.FX_CLEARING, 'USD', 1)])\n"
            "except Exception as e: print(type(e).__name__)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "JournalImbalanceError"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.tuples(st.sampled_from(["k1", "k2", "k3"]), st.sampled_from(["a", "b"])),
                         min_size=1, max_size=12))
def test_idempotency_same_key_same_answer(rt: Runtime, requests: list[tuple[str, str]]) -> None:
    """Per key: the first body's work runs once; the same body replays its answer; another body is refused."""
    member = f"m{os.urandom(4).hex()}"
    first: dict[str, tuple[str, dict]] = {}
    runs: list[str] = []
    for key, body in requests:
        def work(session: object, key: str = key, body: str = body) -> tuple[int, dict]:
            runs.append(key)
            return 201, {"key": key, "body": body, "n": len(runs)}
        try:
            status, answer, replayed = idempotency.run(rt.db, member, key, idempotency.request_hash("op", body), work)
        except LedgerError as exc:
            assert exc.type_slug == "idempotency-key-reused" and first[key][0] != body
            continue
        if key in first:
            assert replayed and (body, answer) == first[key]
        else:
            assert not replayed
            first[key] = (body, answer)
    assert sorted(runs) == sorted(first)


def test_a_refused_operation_returns_the_settlement_to_its_previous_state(rt: Runtime) -> None:
    """Pay refused by the chain: back to instructed, payment postings reversed, pay again later."""
    block = [0]
    with rt.db.transaction() as s:
        sid = svc.create_settlement(rt, s, "alpha", _instruction(1, "beta", 1_000, PAIRS[1])).id
    confirm_all(rt, block)
    with rt.db.transaction() as s:
        st_ = svc.get_settlement(s, sid)
        svc.mark_paid(rt, s, st_, "alipay", svc.provider_txn_hash("t1"), st_.target_amount_minor)
    reject_last(rt)
    with rt.db.read() as s:
        st_ = svc.get_settlement(s, sid)
        assert (st_.state, st_.chain_op, st_.chain_status, st_.paid_minor) == ("instructed", "pay", "rejected", 0)
        assert st_.chain_error["name"] == "SettlementInvalidState"
        assert all(b.balance_minor == 0 for b in jr.balances(s, "beta") if b.account == jr.CLEARING_RECEIVABLE)
        jr.verify_journal(s)
    with rt.db.transaction() as s:
        st_ = svc.get_settlement(s, sid)
        svc.mark_paid(rt, s, st_, "alipay", svc.provider_txn_hash("t1"), st_.target_amount_minor)
        again = svc.mark_paid(rt, s, st_, "alipay", svc.provider_txn_hash("t1"), st_.target_amount_minor)
        assert again.state == "paid"  # the same evidence twice: applied once (callback retries)
    with rt.db.read() as s:
        assert svc.find_by_payment_reference(s, "pay-1").id == sid
        assert svc.find_by_payment_reference(s, "pay-unknown") is None
