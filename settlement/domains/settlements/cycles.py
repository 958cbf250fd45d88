"""Netting cycles: close (net the paid settlements of one currency, submit on chain), attest each
net payer's payment into the cycle, settle, report.

Every call is signed by the operator's account (the contract requires the OPERATOR role); only the
operator closes, attests and settles. A settlement joins a cycle when it is ``paid``, none of its
operations is waiting for the chain, it is in no other cycle and both its parties are active; a
cycle takes at most 200 settlements and 64 members (the contract's bounds), the oldest first. A
cycle settles only when every member with a negative net has paid it in, evidenced by a provider
transaction the operator attested (:func:`attest_net_payment`), and every member is still active.
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
    NetPaymentNotOwedError,
    NettingCycleNotFoundError,
    NettingPaymentUnattestedError,
    NotAttestorError,
    NothingToNetError,
    PaidAmountMismatchError,
    SettlementPendingOnChainError,
)
from settlement.core.money import check_currency
from settlement.domains.anchoring import digest_changed
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.commands import CONTRACT, _ascii_hex, _start, settlement_struct
from settlement.domains.settlements.transitions import (
    attestor_member,
    check_evidence,
    require_active,
    require_evidence_unused,
)
from settlement.domains.settlements.netting import (
    MEMBERS_PER_CYCLE_MAX,
    SETTLEMENTS_PER_CYCLE_MAX,
    Transfer,
    compute_nets,
)
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models import Member
from settlement.store.models.settlements import NetPayment, NettingCycle, Settlement

__all__ = ["close_cycle", "attest_net_payment", "net_payments_of", "party_settlement_ids", "settle_cycle", "get_cycle", "CycleReport",
           "cycle_report", "CANDIDATES_SCAN_MAX"]

CANDIDATES_SCAN_MAX = 2_000
GAS_SUBMIT_BASE = 200_000
GAS_SUBMIT_PER_SETTLEMENT = 40_000
GAS_SETTLE_BASE = 100_000
GAS_SETTLE_PER_SETTLEMENT = 20_000
GAS_NET_PAYMENT = 250_000


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
    inactive = select(Member.id).where(Member.status != "active")  # a suspended member's settlements wait
    candidates = session.scalars(
        select(Settlement).where(Settlement.target_currency == currency, Settlement.state == "paid",
                                 Settlement.chain_status != "pending", Settlement.cycle_id.is_(None),
                                 Settlement.payer_id.not_in(inactive), Settlement.payee_id.not_in(inactive))
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
    """Nets the waiting paid settlements in ``currency`` whose parties are all active, and enqueues
    ``submitNettingCycle``. Raises NothingToNetError when none is waiting. The operator's act."""
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


def _onchain_of(cycle: NettingCycle, member_id: str) -> tuple[str, int]:
    for (m, onchain), net in zip(cycle.members, cycle.nets):
        if m == member_id:
            return onchain, int(net)
    raise NetPaymentNotOwedError(f"member {member_id} is not in netting cycle {cycle.id}", cycle_id=cycle.id)


def _cycle_args(cycle: NettingCycle) -> tuple[list[str], list[int]]:
    return [onchain for _m, onchain in cycle.members], [int(n) for n in cycle.nets]


def party_settlement_ids(session: Session, cycle: NettingCycle, member_id: str) -> list[str]:
    """The settlements of ``cycle`` that ``member_id`` is a party to, in the cycle's order."""
    ids = list(cycle.settlement_ids)
    own = set(session.scalars(select(Settlement.id).where(
        Settlement.id.in_(ids), (Settlement.payer_id == member_id) | (Settlement.payee_id == member_id))))
    return [i for i in ids if i in own]


def net_payments_of(session: Session, cycle_id: str) -> list[NetPayment]:
    return list(session.scalars(select(NetPayment).where(NetPayment.cycle_id == cycle_id).order_by(NetPayment.id)))


def _require_submitted_on_chain(cycle: NettingCycle) -> None:
    if cycle.state != "submitted":
        raise InvalidStateError(f"netting cycle {cycle.id} is {cycle.state}; this needs submitted",
                                cycle_id=cycle.id, state=cycle.state)
    if cycle.submit_block is None or cycle.chain_status == "pending":
        raise SettlementPendingOnChainError(f"netting cycle {cycle.id} is not confirmed on chain yet",
                                            cycle_id=cycle.id, outbox_id=cycle.outbox_id)


def attest_net_payment(runtime: Runtime, session: Session, cycle_id: str, member_id: str, provider: str,
                       provider_txn_id_hash: str | bytes, amount: int) -> NetPayment:
    """The operator attests that ``member_id``, a net payer of submitted cycle ``cycle_id``, paid
    its net in: the provider transaction (``provider``, ``provider_txn_id_hash``) shows exactly the
    net owed and evidenced no other payment. Enqueues ``attestNetPayment``. Raises
    NetPaymentNotOwedError (not a net payer, or already attested), PaidAmountMismatchError,
    PaymentEvidenceUsedError, PartyNotActiveError, NotAttestorError, SettlementPendingOnChainError."""
    cycle = get_cycle(session, cycle_id, for_update=True)
    _require_submitted_on_chain(cycle)
    onchain, net = _onchain_of(cycle, member_id)
    if net >= 0:
        raise NetPaymentNotOwedError(f"member {member_id} has net {net} in cycle {cycle.id}: it pays nothing in",
                                     cycle_id=cycle.id, member_id=member_id)
    taken = session.scalar(select(NetPayment.id).where(NetPayment.cycle_id == cycle.id, NetPayment.member_id == member_id,
                                                       NetPayment.status != "rejected").limit(1))
    if taken is not None:
        raise NetPaymentNotOwedError(f"member {member_id}'s payment into cycle {cycle.id} is already attested",
                                     cycle_id=cycle.id, member_id=member_id, net_payment_id=taken)
    if amount != -net:
        raise PaidAmountMismatchError(f"paid {amount}, the net owed is {-net}", cycle_id=cycle.id,
                                      paid_minor=str(amount), expected_minor=str(-net))
    attestor = attestor_member(runtime, session)
    if attestor == member_id:
        raise NotAttestorError(f"member {member_id} cannot attest its own payment", cycle_id=cycle.id)
    require_active(session, cycle.id, [member_id])
    tx_hash = check_evidence(provider, provider_txn_id_hash)
    require_evidence_unused(session, provider, tx_hash, cycle.id)
    members, nets = _cycle_args(cycle)
    row = enqueue(session, kind="settlement.cycle_net_payment", contract=CONTRACT, function="attestNetPayment",
                  args=[cycle.id, members, nets, onchain, [_ascii_hex(provider, 16), tx_hash, amount]],
                  signer=runtime.operator.address, gas_limit=GAS_NET_PAYMENT, aggregate_id=cycle.id)
    payment = NetPayment(cycle_id=cycle.id, member_id=member_id, amount_minor=amount, provider=provider,
                         provider_tx_hash=tx_hash, attested_by=attestor, status="pending", outbox_id=row.id)
    session.add(payment)
    session.flush()
    return payment


def settle_cycle(runtime: Runtime, session: Session, cycle_id: str, settled_by: str) -> NettingCycle:
    """Every net payer's payment is attested and confirmed, every member active: enqueues
    ``settleNettingCycle``; its settlements become ``settled`` and the net settlement is posted to
    the journal. Raises NettingPaymentUnattestedError while a net payment is not attested."""
    cycle = get_cycle(session, cycle_id, for_update=True)
    _require_submitted_on_chain(cycle)
    payments = {p.member_id: p for p in net_payments_of(session, cycle.id) if p.status != "rejected"}
    payers = [m for (m, _onchain), n in zip(cycle.members, cycle.nets) if int(n) < 0]
    missing = [m for m in payers if m not in payments]
    if missing:
        raise NettingPaymentUnattestedError(
            f"{len(missing)} of the {len(payers)} net payers of cycle {cycle.id} have no attested payment in",
            cycle_id=cycle.id, unattested=missing)
    if any(payments[m].status != "confirmed" for m in payers):
        raise SettlementPendingOnChainError(f"a net payment into cycle {cycle.id} is not confirmed on chain yet",
                                            cycle_id=cycle.id)
    require_active(session, cycle.id, [m for m, _onchain in cycle.members])
    ids = list(cycle.settlement_ids)
    by_id = {s.id: s for s in session.scalars(select(Settlement).where(Settlement.id.in_(ids)).with_for_update())}
    settlements = [by_id[i] for i in ids]
    pending = [s.id for s in settlements if s.chain_status == "pending" or s.state != "in_cycle"]
    if pending:
        raise SettlementPendingOnChainError(f"{len(pending)} settlements of cycle {cycle.id} are not confirmed in it",
                                            cycle_id=cycle.id)
    members, nets = _cycle_args(cycle)
    row = enqueue(session, kind="settlement.cycle_settle", contract=CONTRACT, function="settleNettingCycle",
                  args=[cycle.id, ids, members, nets], signer=runtime.operator.address,
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
