"""Random sequences of register, confirm, split, transfer, finance, repayment reports, holders'
receipts (and double-financing attempts) through the SERVICE layer, on a real chain with the real
dispatcher and follower. Receivables fall due today (parts still move, repayment is possible) or
in 30 days (parts move, no repayment yet).

Proves, after every step: the holders' amounts sum to the face value, in the store and on chain
(the store's parts equal ``partsOf``); no part is ever financed twice (one acceptance and one
disbursement per part at most); a reported repayment is owed to each holder for exactly its part,
face value in total; a settled receivable has every part repaid to its holder and nothing moves
after the report; and every command the service accepts is accepted by the contract (its checks
are at least as strict), while a refused one writes nothing."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import func, select

from settlement.domains import receivables as svc
from settlement.core.errors import LedgerError
from settlement.core.money import Money
from settlement.store.models import OutboxRow
from settlement.store.models.receivables import (
    Receivable, ReceivableEvent, ReceivableOperation, ReceivablePart, ReceivablePayment,
)

from .support import World, make_world

_numbers = itertools.count(1)


def _writes(world: World) -> int:
    with world.runtime.db.read() as s:
        return s.scalar(select(func.count()).select_from(OutboxRow)) or 0


def run_machine(world: World) -> None:
    rt = world.runtime
    actors = {m: world.actor(m) for m in ("acme", "tier2", "bigbuy", "bank", "factor")}

    class Receivables(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.ids: list[str] = []

        # -- helpers ---------------------------------------------------------------------------

        def attempt(self, fn, *args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
            """Run one command in its own transaction; True if accepted (and then confirmed on chain)."""
            before = _writes(world)
            try:
                facts = svc.read_chain_facts(rt)
                with rt.db.transaction() as s:
                    done = fn(facts, s, *args, **kwargs)
                    op_ids = [o.id for o in done.operations]
            except LedgerError:
                assert _writes(world) == before, "a refused command wrote something"
                return False
            world.step()
            with rt.db.read() as s:
                ops = [s.get(ReceivableOperation, i) for i in op_ids]
                assert all(o.status == "confirmed" for o in ops), [(o.kind, o.error_name) for o in ops]
            return True

        def parts(self, rid: str, session=None) -> list[ReceivablePart]:  # type: ignore[no-untyped-def]
            if session is None:  # one session at a time: SQLite sessions take the write lock at BEGIN
                with rt.db.read() as s:
                    return self.parts(rid, s)
            return list(session.scalars(select(ReceivablePart).where(ReceivablePart.receivable_id == rid)
                                        .order_by(ReceivablePart.index)))

        def pick(self, ri: int, pi: int) -> tuple[str, ReceivablePart] | None:
            if not self.ids:
                return None
            rid = self.ids[ri % len(self.ids)]
            parts = self.parts(rid)
            return (rid, parts[pi % len(parts)]) if parts else None

        # -- rules -----------------------------------------------------------------------------

        @rule(face=st.integers(200, 5_000_000), due_in=st.sampled_from([0, 30]))
        def register_and_confirm(self, face: int, due_in: int) -> None:
            today = world.today()
            number = f"SM-{next(_numbers)}"
            assert self.attempt(svc.register_receivable, actors["acme"], buyer_id="bigbuy", invoice_number=number,
                                face_value=Money(face, "CNY"), issue_date=today - timedelta(days=30),
                                due_date=today + timedelta(days=due_in))
            with rt.db.read() as s:
                rid = s.scalar(select(Receivable.id).where(Receivable.invoice_number == number))
            assert self.attempt(svc.confirm_receivable, actors["bigbuy"], rid)
            self.ids.append(rid)
            # The same invoice again, whatever its spelling: refused.
            assert not self.attempt(svc.register_receivable, actors["acme"], buyer_id="bigbuy",
                                    invoice_number=f"  {number.lower()} ", face_value=Money(face, "CNY"),
                                    issue_date=today - timedelta(days=30), due_date=today)

        @precondition(lambda self: bool(self.ids))
        @rule(ri=st.integers(0, 99), pi=st.integers(0, 99), share=st.floats(0.0, 1.0))
        def split(self, ri: int, pi: int, share: float) -> None:
            rid, p = self.pick(ri, pi)  # type: ignore[misc]
            first = max(1, int(p.amount_minor * share))
            holder = actors.get(p.holder_id or "", actors["acme"])
            self.attempt(svc.split_part, holder, rid, p.id, [first, p.amount_minor - first])

        @precondition(lambda self: bool(self.ids))
        @rule(ri=st.integers(0, 99), pi=st.integers(0, 99), to=st.sampled_from(["acme", "tier2", "factor"]),
              share=st.sampled_from([None, 0.5]))
        def transfer(self, ri: int, pi: int, to: str, share: float | None) -> None:
            rid, p = self.pick(ri, pi)  # type: ignore[misc]
            holder = actors.get(p.holder_id or "", actors["acme"])
            amount = None if share is None else max(1, int(p.amount_minor * share))
            self.attempt(svc.transfer_part, holder, rid, p.id, to_member_id=to, amount=amount)

        @precondition(lambda self: bool(self.ids))
        @rule(ri=st.integers(0, 99), pi=st.integers(0, 99), financier=st.sampled_from(["bank", "factor"]),
              rate_ppm=st.integers(0, 200_000), fee=st.integers(0, 50))
        def finance(self, ri: int, pi: int, financier: str, rate_ppm: int, fee: int) -> None:
            rid, p = self.pick(ri, pi)  # type: ignore[misc]
            holder = actors.get(p.holder_id or "", actors["acme"])
            if not self.attempt(svc.request_financing, holder, rid, p.id, financier_id=financier):
                return
            valid_until = int(world.runtime.chain.get_block("latest")["timestamp"]) + 3600
            assert self.attempt(svc.offer_financing, actors[financier], rid, p.id, rate_ppm=rate_ppm, basis=1,
                                fee_minor=fee, valid_until_s=valid_until)
            with rt.db.read() as s:
                offer_id = s.get(ReceivablePart, p.id).offer_id
            assert self.attempt(svc.accept_offer, holder, rid, p.id, offer_id=offer_id)
            # Financing the same part again: refused by the service.
            assert not self.attempt(svc.request_financing, actors[financier], rid, p.id, financier_id="bank")

        @precondition(lambda self: bool(self.ids))
        @rule(ri=st.integers(0, 99))
        def repay(self, ri: int) -> None:
            self.attempt(svc.repay_receivable, actors["bigbuy"], self.ids[ri % len(self.ids)])

        @precondition(lambda self: bool(self.ids))
        @rule(ri=st.integers(0, 99), pi=st.integers(0, 99))
        def confirm_receipt(self, ri: int, pi: int) -> None:
            rid, p = self.pick(ri, pi)  # type: ignore[misc]
            holder = actors.get(p.holder_id or "", actors["acme"])
            self.attempt(svc.confirm_repayment_received, holder, rid, p.id)

        # -- invariants ------------------------------------------------------------------------

        @invariant()
        def holdings_sum_to_face_value_in_store_and_on_chain(self) -> None:
            address = rt.address("ReceivableRegistry")
            for rid in self.ids:
                with rt.db.read() as s:
                    r = s.get(Receivable, rid)
                    parts = self.parts(rid, s)
                    assert sum(p.amount_minor for p in parts) == r.face_value_minor
                    ids, holders, amounts, financed = rt.chain.call("ReceivableRegistry", address, "partsOf", [rid])
                    assert ["0x" + bytes(i).hex() for i in ids] == [p.id for p in parts]
                    assert ["0x" + bytes(h).hex() for h in holders] == [p.holder_onchain_id for p in parts]
                    assert list(amounts) == [p.amount_minor for p in parts]
                    assert list(financed) == [p.financed for p in parts]

        @invariant()
        def no_part_financed_twice(self) -> None:
            with rt.db.read() as s:
                accepted = s.execute(select(ReceivableEvent.part_id, func.count()).where(
                    ReceivableEvent.event == "FinancingAccepted").group_by(ReceivableEvent.part_id)).all()
                assert all(n == 1 for _, n in accepted)
                disbursed = s.execute(select(ReceivablePayment.part_id, func.count()).where(
                    ReceivablePayment.kind == "disbursement").group_by(ReceivablePayment.part_id)).all()
                assert all(n == 1 for _, n in disbursed)
                financed = set(s.scalars(select(ReceivablePart.id).where(ReceivablePart.financed.is_(True))))
                assert financed == {pid for pid, _ in accepted} == {pid for pid, _ in disbursed}

        @invariant()
        def repayments_equal_face_value_exactly(self) -> None:
            with rt.db.read() as s:
                for rid in self.ids:
                    r = s.get(Receivable, rid)
                    pays = s.scalars(select(ReceivablePayment).where(ReceivablePayment.receivable_id == rid,
                                                                     ReceivablePayment.kind == "repayment")).all()
                    if r.status not in ("repaying", "settled"):
                        assert not pays
                        continue
                    parts = {p.id: p for p in self.parts(rid, s)}
                    if r.status == "settled":
                        assert all(p.repaid_minor == p.amount_minor for p in parts.values())
                    assert sum(p.repaid_minor or 0 for p in parts.values()) <= r.face_value_minor
                    assert sum(p.amount_minor for p in pays) == r.face_value_minor
                    assert sorted(p.part_id for p in pays) == sorted(parts)
                    assert all(p.payee_id == parts[p.part_id].holder_id and p.amount_minor ==
                               parts[p.part_id].amount_minor and p.payer_id == "bigbuy" for p in pays)

    run_state_machine_as_test(Receivables, settings=settings(
        max_examples=6, stateful_step_count=8, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_receivable_state_machine(tmp_path: Path, sqlite_url: str, anvil_automine) -> None:  # type: ignore[no-untyped-def]
    """See the module docstring."""
    world, stop = make_world(tmp_path, sqlite_url, anvil_automine.rpc_url, serve=False)
    try:
        run_machine(world)
    finally:
        for item in reversed(stop):
            item.stop()
        world.runtime.db.dispose()
