"""Netting cycles: close (net the paid settlements of one currency, submit on chain), settle, report.

Both calls are signed by the operator's account (the contract requires the OPERATOR role). A
settlement joins a cycle when it is ``paid``, none of its operations is waiting for the chain, and
it is in no other cycle; a cycle takes at most 200 settlements and 64 members (the contract's bounds), the
oldest first.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.signing import keccak256
from settlement.core.errors import (
    InvalidStateError,
    NettingCycleNotFoundError,
    NothingToNetError,
    SettlementPendingOnChainError,
)
from settlement.core.money import check_currency
from settlement.domains.anchoring import digest_changed
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.commands import CONTRACT, _ascii_hex, _start, settlement_struct
from settlement.domains.settlements.netting import (
    MEMBERS_PER_CYCLE_MAX,
    SETTLEMENTS_PER_CYCLE_MAX,
    Transfer,
    compute_nets,
)
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models.settlements import NettingCycle, Settlement

__all__ = ["close_cycle", "settle_cycle", "get_cycle", "CycleReport", "cycle_report", "CANDIDATES_SCAN_MAX"]

CANDIDATES_SCAN_MAX = 2_000
GAS_SUBMIT_BASE = 200_000
GAS_SUBMIT_PER_SETTLEMENT = 40_000
GAS_SETTLE_BASE = 100_000
GAS_SETTLE_PER_SETTLEMENT = 20_000


def get_cycle(session: Session, cycle_id: str, *, for_update: bool = False) -> NettingCycle:
    q = select(NettingCycle).where(NettingCycle.id == cycle_id)
    if for_update:
        q = q.with_for_update()
    cycle = session.scalar(q) if isinstance(cycle_id, str) and len(cycle_id) == 66 else None
    if cycle is None:
        raise NettingCycleNotFoundError(f"no netting cycle {str(cycle_id)[:80]!r}")
    return cycle


def _outstanding(s: Settlement) -> int:
    return s.paid_minor - s.refunded_minor


def _select(session: Session, currency: str) -> list[Settlement]:
    candidates = session.scalars(
        select(Settlement).where(Settlement.target_currency == currency, Settlement.state == "paid",
                                 Settlement.chain_status != "pending", Settlement.cycle_id.is_(None))
        .order_by(Settlement.seq).limit(CANDIDATES_SCAN_MAX).with_for_update()).all()
    chosen: list[Settlement] = []
    members: set[str] = set()
    for s in candidates:
        if len(chosen) == SETTLEMENTS_PER_CYCLE_MAX:
            break
        if _outstanding(s) <= 0:
            continue
        joined = members | {s.payer_onchain_id, s.payee_onchain_id}
        if len(joined) > MEMBERS_PER_CYCLE_MAX:
            continue
        members = joined
        chosen.append(s)
    return chosen


def close_cycle(runtime: Runtime, session: Session, currency: str, closed_by: str) -> NettingCycle:
    """Nets the waiting paid settlements in ``currency`` and enqueues ``submitNettingCycle``.
    Raises NothingToNetError when none is waiting."""
    check_currency(currency)
    chosen = _select(session, currency)
    if not chosen:
        raise NothingToNetError(f"no confirmed paid settlement in {currency} is waiting for a cycle",
                                currency=currency)
    result = compute_nets(Transfer(s.payer_onchain_id, s.payee_onchain_id, _outstanding(s)) for s in chosen)
    by_onchain = {}
    for s in chosen:
        by_onchain[s.payer_onchain_id] = s.payer_id
        by_onchain[s.payee_onchain_id] = s.payee_id
    cycle_id = "0x" + keccak256(f"netting-cycle:{currency}:{uuid.uuid4().hex}".encode()).hex()
    row = enqueue(session, kind="settlement.cycle_submit", contract=CONTRACT, function="submitNettingCycle",
                  args=[cycle_id, _ascii_hex(currency, 3), [settlement_struct(s) for s in chosen],
                        list(result.members), list(result.nets)],
                  signer=runtime.operator.address,
                  gas_limit=GAS_SUBMIT_BASE + GAS_SUBMIT_PER_SETTLEMENT * len(chosen), aggregate_id=cycle_id)
    cycle = NettingCycle(
        id=cycle_id, currency=currency, state="submitted", settlement_ids=[s.id for s in chosen],
        members=[[by_onchain[m], m] for m in result.members], nets=[str(n) for n in result.nets],
        gross_count=result.gross_count, gross_value_minor=result.gross_value_minor, net_count=result.net_count,
        net_value_minor=result.net_value_minor, closed_by=closed_by, chain_op="submit", chain_status="pending",
        outbox_id=row.id)
    session.add(cycle)
    digest_changed(session, "netting.cycle", cycle)
    session.flush()
    for s in chosen:
        _start(session, s, "net", row.id, "in_cycle", closed_by, amount=_outstanding(s), cycle_id=cycle_id)
        s.cycle_id = cycle_id
    session.flush()
    return cycle


def _settle_postings(cycle: NettingCycle, settlements: list[Settlement]) -> list[jr.Posting]:
    incoming: dict[str, int] = defaultdict(int)
    outgoing: dict[str, int] = defaultdict(int)
    for s in settlements:
        incoming[s.payee_id] += _outstanding(s)
        outgoing[s.payer_id] += _outstanding(s)
    postings: list[jr.Posting] = []
    for member_id in sorted(set(incoming) | set(outgoing)):
        received, paid = incoming[member_id], outgoing[member_id]
        if paid:
            postings.append(jr.debit(member_id, jr.CLEARING_PAYABLE, cycle.currency, paid))
        if received:
            postings.append(jr.credit(member_id, jr.CLEARING_RECEIVABLE, cycle.currency, received))
        net = received - paid
        if net > 0:
            postings.append(jr.debit(member_id, jr.NET_SETTLEMENT, cycle.currency, net))
        elif net < 0:
            postings.append(jr.credit(member_id, jr.NET_SETTLEMENT, cycle.currency, -net))
    return postings


def settle_cycle(runtime: Runtime, session: Session, cycle_id: str, settled_by: str) -> NettingCycle:
    """The members paid their nets: enqueues ``settleNettingCycle``; its settlements become
    ``settled`` and the net settlement is posted to the journal."""
    cycle = get_cycle(session, cycle_id, for_update=True)
    if cycle.state != "submitted":
        raise InvalidStateError(f"netting cycle {cycle.id} is {cycle.state}; this needs submitted",
                                cycle_id=cycle.id, state=cycle.state)
    if cycle.submit_block is None or cycle.chain_status == "pending":
        raise SettlementPendingOnChainError(f"netting cycle {cycle.id} is not confirmed on chain yet",
                                            cycle_id=cycle.id, outbox_id=cycle.outbox_id)
    ids = list(cycle.settlement_ids)
    by_id = {s.id: s for s in session.scalars(select(Settlement).where(Settlement.id.in_(ids)).with_for_update())}
    settlements = [by_id[i] for i in ids]
    pending = [s.id for s in settlements if s.chain_status == "pending" or s.state != "in_cycle"]
    if pending:
        raise SettlementPendingOnChainError(f"{len(pending)} settlements of cycle {cycle.id} are not confirmed in it",
                                            cycle_id=cycle.id)
    row = enqueue(session, kind="settlement.cycle_settle", contract=CONTRACT, function="settleNettingCycle",
                  args=[cycle.id, ids], signer=runtime.operator.address,
                  gas_limit=GAS_SETTLE_BASE + GAS_SETTLE_PER_SETTLEMENT * len(ids), aggregate_id=cycle.id)
    txn = jr.post(session, "cycle.settled", _settle_postings(cycle, settlements), cycle_id=cycle.id)
    for s in settlements:
        _start(session, s, "settle", row.id, "settled", settled_by, cycle_id=cycle.id)
    cycle.state, cycle.chain_op, cycle.chain_status, cycle.outbox_id = "settled", "settle", "pending", row.id
    cycle.settle_journal_txn_id = txn
    cycle.chain_error = None
    digest_changed(session, "netting.cycle", cycle)
    session.flush()
    return cycle


@dataclass(frozen=True)
class CycleReport:
    gross_count: int
    gross_value_minor: int
    net_count: int
    net_value_minor: int

    @property
    def transfers_saved(self) -> int:
        return self.gross_count - self.net_count

    @property
    def value_saved_minor(self) -> int:
        return self.gross_value_minor - self.net_value_minor

    @property
    def value_saved_ratio(self) -> str:
        """Share of gross value that did not have to move, as a decimal string with 4 places."""
        if self.gross_value_minor == 0:
            return "0.0000"
        basis_points = self.value_saved_minor * 10_000 // self.gross_value_minor
        return f"{basis_points // 10_000}.{basis_points % 10_000:04d}"


def cycle_report(cycle: NettingCycle) -> CycleReport:
    return CycleReport(cycle.gross_count, cycle.gross_value_minor, cycle.net_count, cycle.net_value_minor)
