"""SettlementLedger's separation of duties on money (issue 12, "Money moves on one party's word"
and "Suspension"; issue 13 item 6), on a real anvil, attacking the contract directly.

Each test names the scenario it refuses; every one of them succeeded on the contract before these
rules. The consortium of ``test_settlement_ledger`` is extended with a second operator (``op2``)
and a member holding both OPERATOR and FINANCE (``opfin``): the cases where the attestor would be
a party.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from collections import Counter

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.contracts import test_settlement_ledger as base
from tests.contracts.test_settlement_ledger import (
    CANCELLED,
    IN_CYCLE,
    INSTRUCTED,
    PAID,
    REFUNDED,
    ROLE_FINANCE,
    ROLE_OPERATOR,
    SETTLED,
    Ledger,
    artifact,
    ascii_bytes,
    b32,
    deploy_consortium,
)

ALIPAY = ascii_bytes("alipay", 16)


def _onboard(chain: Ledger, name: str, roles: list[bytes]) -> None:
    chain.accounts[name] = Account.create()
    chain.members[name] = b32(f"member:{name}")
    chain.send(
        chain.registry.functions.onboardMember(chain.members[name], b"SG", [chain.accounts[name].address], roles),
        chain.admin,
    )


def deploy(rpc_url: str) -> Ledger:
    chain = deploy_consortium(rpc_url)
    _onboard(chain, "op2", [ROLE_OPERATOR])
    _onboard(chain, "opfin", [ROLE_OPERATOR, ROLE_FINANCE])
    return chain


@pytest.fixture
def chain(anvil_automine: Any) -> Ledger:
    return deploy(anvil_automine.rpc_url)


def _suspend(chain: Ledger, name: str) -> None:
    chain.send(chain.registry.functions.suspendMember(chain.members[name]), chain.admin)


def _reactivate(chain: Ledger, name: str) -> None:
    chain.send(chain.registry.functions.reactivateMember(chain.members[name]), chain.admin)


def _cycle(chain: Ledger, settlements: list[tuple]) -> tuple[list[bytes], list[int]]:
    """Members (ascending) and nets of netting `settlements` (outstanding = target amount)."""
    flows: dict[bytes, int] = {}
    for s in settlements:
        flows[s[1][1]] = flows.get(s[1][1], 0) + s[1][4]
        flows[s[0]] = flows.get(s[0], 0) - s[1][4]
    members = sorted(flows)
    return members, [flows[m] for m in members]


def _net_evidence(tag: str, amount: int) -> tuple:
    return (ascii_bytes("wechatpay", 16), b32(f"net-in:{tag}"), amount)


# --------------------------------------------------------------------------- one provider transaction


def test_one_provider_transaction_marks_one_settlement_paid(chain: Ledger) -> None:
    """Refuses: one provider transaction hash marking several settlements paid (SettlementEvidenceUsed),
    in single calls, in a batch, and as a net payment into a cycle."""
    s1 = chain.record("retailer", chain.instruction("inv-1", "bank"))
    s2 = chain.record("retailer", chain.instruction("inv-2", "psp"))
    evidence = (ALIPAY, b32("alipay-tx:2026112200001"), s1[1][4])
    chain.send(chain.ledger.functions.markPaid(s1, evidence), chain.accounts["op"])
    assert chain.ledger.functions.evidenceUsedBy(ALIPAY, evidence[1], False).call() == chain.sid(s1)
    # Another operator, another settlement of the same amount: the transaction is spent.
    chain.assert_reverts(
        chain.ledger.functions.markPaid(s2, evidence),
        chain.accounts["op2"],
        "SettlementEvidenceUsed",
        ALIPAY,
        evidence[1],
        chain.sid(s1),
    )
    chain.assert_reverts(
        chain.ledger.functions.markPaidBatch([s2], [evidence]),
        chain.accounts["op"],
        "SettlementEvidenceUsed",
        ALIPAY,
        evidence[1],
        chain.sid(s1),
    )
    # The same transaction id at another provider is another transaction.
    chain.send(
        chain.ledger.functions.markPaid(s2, (ascii_bytes("stripe", 16), evidence[1], s2[1][4])), chain.accounts["op"]
    )
    members, nets = _cycle(chain, [s1, s2])
    chain.send(chain.ledger.functions.submitNettingCycle(b32("c1"), b"USD", [s1, s2], members, nets), chain.accounts["op"])
    retailer = chain.members["retailer"]
    owed = -nets[members.index(retailer)]
    chain.assert_reverts(
        chain.ledger.functions.attestNetPayment(b32("c1"), members, nets, retailer, (ALIPAY, evidence[1], owed)),
        chain.accounts["op"],
        "SettlementEvidenceUsed",
        ALIPAY,
        evidence[1],
        chain.sid(s1),
    )


# --------------------------------------------------------------------------- the payee's own word


def test_payee_cannot_mark_its_own_settlement_paid(chain: Ledger) -> None:
    """Refuses: the payee marking its incoming settlement paid with made-up evidence (ending the payer's
    cancel right and putting it into netting). Its acknowledgement is recorded, and changes nothing."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank"))
    sid = chain.sid(s)
    made_up = chain.evidence(s)
    chain.assert_reverts(
        chain.ledger.functions.markPaid(s, made_up),
        chain.accounts["bank"],
        "RegistryMissingRole",
        chain.accounts["bank"].address,
        chain.members["bank"],
        ROLE_OPERATOR,
    )
    # A payee that also holds the OPERATOR role is still a party: it attests nothing of its own.
    to_opfin = chain.record("retailer", chain.instruction("inv-2", "opfin"))
    chain.assert_reverts(
        chain.ledger.functions.markPaid(to_opfin, chain.evidence(to_opfin)),
        chain.accounts["opfin"],
        "SettlementAttestorIsParty",
        chain.sid(to_opfin),
        chain.members["opfin"],
    )
    from_opfin = chain.record("opfin", chain.instruction("inv-3", "bank"))
    chain.assert_reverts(
        chain.ledger.functions.markPaid(from_opfin, chain.evidence(from_opfin)),
        chain.accounts["opfin"],
        "SettlementAttestorIsParty",
        chain.sid(from_opfin),
        chain.members["opfin"],
    )

    ack = chain.ledger.functions.acknowledgeReceipt(s)
    chain.assert_reverts(
        ack, chain.accounts["retailer"], "SettlementUnauthorized", sid, chain.accounts["retailer"].address,
        chain.members["retailer"],
    )
    receipt = chain.send(ack, chain.accounts["bank"])
    (event,) = chain.events(receipt, "SettlementReceiptAcknowledged")
    assert (event.args.id, event.args.payee) == (sid, chain.members["bank"])
    assert chain.ledger.functions.isAcknowledged(sid).call()
    assert chain.state(sid) == (INSTRUCTED, 0)
    chain.assert_reverts(ack, chain.accounts["bank"], "SettlementAlreadyAcknowledged", sid)
    # Not nettable on the payee's word...
    members, nets = _cycle(chain, [s])
    chain.assert_reverts(
        chain.ledger.functions.submitNettingCycle(b32("c1"), b"USD", [s], members, nets),
        chain.accounts["op"],
        "SettlementInvalidState",
        sid,
        INSTRUCTED,
    )
    # ...and the payer may still cancel.
    chain.send(chain.ledger.functions.cancelSettlement(s), chain.accounts["retailer"])
    assert chain.state(sid) == (CANCELLED, 0)
    assert chain.ledger.functions.isAcknowledged(sid).call()  # the acknowledgement stays on record
    chain.assert_reverts(ack, chain.accounts["bank"], "SettlementInvalidState", sid, CANCELLED)


# --------------------------------------------------------------------------- refunds


def test_operator_alone_cannot_refund(chain: Ledger) -> None:
    """Refuses: the operator fully refunding a paid settlement on its own with a zero reference. A
    refund is the payee's (returning the money) or a provider's refund attested like a payment; its
    reference is non-zero and unique per settlement."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    sid = chain.sid(s)
    chain.pay(s)
    refund = chain.ledger.functions.refund
    chain.assert_reverts(
        refund(s, 1_000, b"\0" * 32),
        chain.accounts["op"],
        "RegistryMissingRole",
        chain.accounts["op"].address,
        chain.members["op"],
        ROLE_FINANCE,
    )
    chain.assert_reverts(refund(s, 1_000, b"\0" * 32), chain.accounts["bank"], "SettlementInvalidRefundReference", sid)
    chain.send(refund(s, 100, b32("RF-1")), chain.accounts["bank"])
    chain.assert_reverts(
        refund(s, 100, b32("RF-1")), chain.accounts["bank"], "SettlementRefundReferenceUsed", sid, b32("RF-1")
    )

    attest = chain.ledger.functions.attestRefund
    provider_refund = (ALIPAY, b32("alipay-refund:1"), 200)
    chain.assert_reverts(attest(s, b"\0" * 32, provider_refund), chain.accounts["op"], "SettlementInvalidRefundReference", sid)
    chain.assert_reverts(
        attest(s, b32("RF-1"), provider_refund), chain.accounts["op"], "SettlementRefundReferenceUsed", sid, b32("RF-1")
    )
    chain.assert_reverts(
        attest(s, b32("alipay:r1"), provider_refund),
        chain.accounts["bank"],
        "RegistryMissingRole",
        chain.accounts["bank"].address,
        chain.members["bank"],
        ROLE_OPERATOR,
    )
    chain.assert_reverts(
        attest(s, b32("alipay:r1"), (b"\0" * 16, b32("x"), 200)), chain.accounts["op"], "SettlementInvalidEvidence", sid
    )
    receipt = chain.send(attest(s, b32("alipay:r1"), provider_refund), chain.accounts["op"])
    (attested,) = chain.events(receipt, "SettlementRefundAttested")
    assert (attested.args.providerTxHash, attested.args.attestor) == (provider_refund[1], chain.members["op"])
    (refunded,) = chain.events(receipt, "SettlementRefunded")
    assert (refunded.args.amountMinor, refunded.args.refundedTotalMinor) == (200, 300)
    assert chain.ledger.functions.evidenceUsedBy(ALIPAY, provider_refund[1], True).call() == sid
    # The same provider refund evidences one refund only (another reference does not help).
    chain.assert_reverts(
        attest(s, b32("alipay:r2"), provider_refund), chain.accounts["op"], "SettlementEvidenceUsed", ALIPAY,
        provider_refund[1], sid,
    )
    # A party holding OPERATOR attests no refund of its own settlement.
    own = chain.record("opfin", chain.instruction("inv-2", "bank"))
    chain.pay(own, by="op2")
    chain.assert_reverts(
        attest(own, b32("r"), (ALIPAY, b32("alipay-refund:2"), 1)), chain.accounts["opfin"],
        "SettlementAttestorIsParty", chain.sid(own), chain.members["opfin"],
    )
    chain.send(refund(s, 700, b32("RF-2")), chain.accounts["bank"])
    assert chain.state(sid) == (REFUNDED, 1_000)


# --------------------------------------------------------------------------- netting


def test_cycle_settles_only_with_every_net_payment_attested(chain: Ledger) -> None:
    """Refuses: the operator settling a cycle with no evidence of the nets paid in
    (SettlementCycleNetPaymentsMissing), and a net payer declaring its own payment (attestor is party)."""
    s1 = chain.record("opfin", chain.instruction("inv-1", "bank", source_minor=1_000))
    s2 = chain.record("bank", chain.instruction("inv-2", "psp", source_minor=400))
    chain.pay(s1, by="op")
    chain.pay(s2, by="op")
    members, nets = _cycle(chain, [s1, s2])
    ids = [chain.sid(s1), chain.sid(s2)]
    cycle_id = b32("c1")
    chain.send(chain.ledger.functions.submitNettingCycle(cycle_id, b"USD", [s1, s2], members, nets), chain.accounts["op"])
    settle = chain.ledger.functions.settleNettingCycle(cycle_id, ids, members, nets)
    chain.assert_reverts(settle, chain.accounts["op"], "SettlementCycleNetPaymentsMissing", cycle_id, 0, 1)
    attest = chain.ledger.functions.attestNetPayment
    opfin, bank, psp = chain.members["opfin"], chain.members["bank"], chain.members["psp"]
    owed = -nets[members.index(opfin)]
    assert owed == 1_000 and nets[members.index(bank)] == 600
    # The net payer cannot attest its own payment, even holding the OPERATOR role.
    chain.assert_reverts(
        attest(cycle_id, members, nets, opfin, _net_evidence("a", owed)), chain.accounts["opfin"],
        "SettlementAttestorIsParty", cycle_id, opfin,
    )
    chain.assert_reverts(
        attest(cycle_id, members, nets, bank, _net_evidence("a", 600)), chain.accounts["op"],
        "SettlementCycleNotNetPayer", cycle_id, bank, 600,
    )
    chain.assert_reverts(
        attest(cycle_id, members, nets, opfin, _net_evidence("a", owed - 1)), chain.accounts["op"],
        "SettlementPaidAmountMismatch", cycle_id, owed - 1, owed,
    )
    chain.assert_reverts(
        attest(cycle_id, members, [n + 0 for n in nets[::-1]], opfin, _net_evidence("a", owed)), chain.accounts["op"],
        "SettlementCycleNetsMismatch", cycle_id,
    )
    chain.assert_reverts(
        attest(cycle_id, members, nets, chain.members["retailer"], _net_evidence("a", owed)), chain.accounts["op"],
        "SettlementCycleMemberMissing", cycle_id, chain.members["retailer"],
    )
    chain.assert_reverts(
        attest(cycle_id, members, nets, opfin, (ALIPAY, b"\0" * 32, owed)), chain.accounts["op"],
        "SettlementInvalidEvidence", cycle_id,
    )
    receipt = chain.send(attest(cycle_id, members, nets, opfin, _net_evidence("a", owed)), chain.accounts["op"])
    (event,) = chain.events(receipt, "NetPaymentAttested")
    assert (event.args.member, event.args.amountMinor, event.args.attestor) == (opfin, owed, chain.members["op"])
    assert chain.ledger.functions.isNetPaymentAttested(cycle_id, opfin).call()
    chain.assert_reverts(
        attest(cycle_id, members, nets, opfin, _net_evidence("b", owed)), chain.accounts["op2"],
        "SettlementCycleNetPaymentAttested", cycle_id, opfin,
    )
    assert chain.ledger.functions.getNettingCycle(cycle_id).call()[4:6] == (1, 1)
    chain.send(settle, chain.accounts["op"])
    assert [chain.state(i)[0] for i in ids] == [SETTLED, SETTLED]
    chain.assert_reverts(
        attest(cycle_id, members, nets, opfin, _net_evidence("c", owed)), chain.accounts["op"],
        "SettlementCycleInvalidState", cycle_id, 2,
    )
    assert psp in members


# --------------------------------------------------------------------------- suspension


def test_suspended_member_takes_part_in_no_payment_or_netting(chain: Ledger) -> None:
    """Refuses, with the payer (the 'buyer') suspended: the operator marking its settlements paid,
    submitting a cycle that includes it, attesting its net payment and settling that cycle; and a
    refund to it. Each succeeds again once it is reinstated."""
    s1 = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    s2 = chain.record("retailer", chain.instruction("inv-2", "bank", source_minor=500))
    chain.pay(s1)
    retailer = chain.members["retailer"]
    _suspend(chain, "retailer")
    chain.assert_reverts(
        chain.ledger.functions.markPaid(s2, chain.evidence(s2)), chain.accounts["op"],
        "SettlementPartyNotActive", chain.sid(s2), retailer,
    )
    members, nets = _cycle(chain, [s1])
    submit = chain.ledger.functions.submitNettingCycle(b32("c1"), b"USD", [s1], members, nets)
    chain.assert_reverts(submit, chain.accounts["op"], "SettlementPartyNotActive", b32("c1"), retailer)
    chain.assert_reverts(
        chain.ledger.functions.refund(s1, 10, b32("r1")), chain.accounts["bank"],
        "SettlementPartyNotActive", chain.sid(s1), retailer,
    )
    _reactivate(chain, "retailer")
    chain.send(submit, chain.accounts["op"])
    _suspend(chain, "retailer")
    attest = chain.ledger.functions.attestNetPayment(b32("c1"), members, nets, retailer, _net_evidence("c1", 1_000))
    chain.assert_reverts(attest, chain.accounts["op"], "SettlementPartyNotActive", b32("c1"), retailer)
    _reactivate(chain, "retailer")
    chain.send(attest, chain.accounts["op"])
    # Suspended after paying in: the cycle does not settle (the operator cancels it or waits).
    _suspend(chain, "bank")
    settle = chain.ledger.functions.settleNettingCycle(b32("c1"), [chain.sid(s1)], members, nets)
    chain.assert_reverts(settle, chain.accounts["op"], "SettlementPartyNotActive", b32("c1"), chain.members["bank"])
    _reactivate(chain, "bank")
    chain.send(settle, chain.accounts["op"])
    assert chain.state(chain.sid(s1))[0] == SETTLED


# --------------------------------------------------------------------------- issue 13, item 6


def test_record_batch_refuses_payee_zero_like_a_single_record(chain: Ledger) -> None:
    """Refuses: recordBatch with payee 0x0 (first item, or after a run of another payee), as recordSettlement does."""
    record_batch = chain.ledger.functions.recordBatch
    retailer = chain.accounts["retailer"]
    zero = b"\0" * 32
    to_zero = (*chain.instruction("z-1", "bank")[:1], zero, *chain.instruction("z-1", "bank")[2:])
    chain.assert_reverts(chain.ledger.functions.recordSettlement(to_zero), retailer, "SettlementPayeeNotActive", zero)
    chain.assert_reverts(record_batch([to_zero]), retailer, "SettlementPayeeNotActive", zero)
    chain.assert_reverts(record_batch([chain.instruction("z-0", "bank"), to_zero]), retailer, "SettlementPayeeNotActive", zero)
    assert chain.state(chain.settlement_id("retailer", to_zero)) == (0, 0)


def test_no_payment_before_the_value_date(anvil_factory: Any) -> None:
    """Refuses: a settlement dated ahead being paid (hence netted and settled) before its value date;
    the same settlement is paid once its day comes (on a node of its own: the test moves its clock)."""
    chain = deploy(anvil_factory().rpc_url)
    s = chain.record("retailer", chain.instruction("later", "bank", value_date=chain.today + 2))
    sid = chain.sid(s)
    mark = chain.ledger.functions.markPaid(s, chain.evidence(s))
    chain.assert_reverts(mark, chain.accounts["op"], "SettlementValueDateNotReached", sid, chain.today + 2, chain.today)
    members, nets = _cycle(chain, [s])
    chain.assert_reverts(
        chain.ledger.functions.submitNettingCycle(b32("c1"), b"USD", [s], members, nets), chain.accounts["op"],
        "SettlementInvalidState", sid, INSTRUCTED,
    )
    chain.w3.provider.make_request("evm_increaseTime", [2 * 86_400])
    chain.w3.provider.make_request("evm_mine", [])
    chain.send(mark, chain.accounts["op"])
    assert chain.state(sid)[0] == PAID


# --------------------------------------------------------------------------- money conserved (hypothesis)

NAMES = ("retailer", "bank", "psp")


@dataclass
class Model:
    """What the contract should hold: per settlement (payer, payee, amount, state, refunded)."""

    settlements: dict[bytes, dict] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)
    evidence_used: set[bytes] = field(default_factory=set)
    settled_nets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))
    settled_flows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NAMES, 0))


class SettlementMachine(RuleBasedStateMachine):
    """Random sequences of record, pay (fresh or reused evidence), acknowledge, cancel, refunds (payee
    and attested), netting cycles with all, some or none of the net payments attested (settled or
    cancelled), suspension and reinstatement. Invariants: the chain's states and
    refunded totals equal the model's; refunds never exceed what was paid; every settled cycle's nets
    sum to zero and equal the settled settlements' flows (money conserved); no evidence used twice;
    nothing of a suspended member is paid, netted or settled."""

    chain: Ledger
    seen: Counter = Counter()  # outcomes over all examples: the test checks the machine reached them

    def __init__(self) -> None:
        super().__init__()
        w3 = self.chain.w3
        w3.provider.make_request("evm_revert", [self.snapshot])
        type(self).snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
        self.chain.nonces.clear()
        self.model = Model()
        self.n = 0
        self.seen["examples"] += 1
        self.seen["steps"] -= 1  # counted by the invariant, which also runs once before any step

    def _ok(self, fn: Any, who: str) -> bool:
        return self.chain.send_raw(fn, self.chain.accounts[who])["status"] == 1

    def _pick(self, data: Any, state: int) -> tuple | None:
        ids = [i for i, m in self.model.settlements.items() if m["state"] == state]
        return self.model.settlements[data.draw(st.sampled_from(ids))]["s"] if ids else None

    @rule(payer=st.sampled_from(NAMES), offset=st.sampled_from((1, 1, 1, 2, 2, 2, 0)), amount=st.integers(1, 10_000))
    def record(self, payer: str, offset: int, amount: int) -> None:
        payee = NAMES[(NAMES.index(payer) + offset) % len(NAMES)]  # offset 0: a self-payment, refused
        self.n += 1
        ins = self.chain.instruction(f"h-{self.n}", payee, source_minor=amount, fees_minor=0)
        ok = self._ok(self.chain.ledger.functions.recordSettlement(ins), payer)
        self.seen["record " + ("done" if ok else "refused")] += 1
        assert ok == (payer != payee and not {payer, payee} & self.model.suspended)
        if ok:
            s = self.chain.settlement(payer, ins)
            self.model.settlements[self.chain.sid(s)] = {"s": s, "payer": payer, "payee": payee, "amount": amount,
                                                         "state": INSTRUCTED, "refunded": 0}

    @precondition(lambda self: any(m["state"] == INSTRUCTED for m in self.model.settlements.values()))
    @rule(data=st.data(), reuse=st.booleans())
    def pay(self, data: Any, reuse: bool) -> None:
        s = self._pick(data, INSTRUCTED)
        if s is None:
            return
        m = self.model.settlements[self.chain.sid(s)]
        tx = data.draw(st.sampled_from(sorted(self.model.evidence_used))) if reuse and self.model.evidence_used \
            else b32(f"pay:{self.chain.sid(s).hex()}")
        ok = self._ok(self.chain.ledger.functions.markPaid(s, (ALIPAY, tx, m["amount"])), "op")
        assert ok == (tx not in self.model.evidence_used and not {m["payer"], m["payee"]} & self.model.suspended)
        event("pay: " + ("paid" if ok else "refused"))
        self.seen["pay " + ("paid" if ok else "refused")] += 1
        if ok:
            m["state"] = PAID
            self.model.evidence_used.add(tx)

    @precondition(lambda self: any(m["state"] == INSTRUCTED for m in self.model.settlements.values()))
    @rule(data=st.data())
    def acknowledge_then_cancel(self, data: Any) -> None:
        s = self._pick(data, INSTRUCTED)
        if s is None:
            return
        m = self.model.settlements[self.chain.sid(s)]
        if {m["payer"], m["payee"]} & self.model.suspended:
            return
        self._ok(self.chain.ledger.functions.acknowledgeReceipt(s), m["payee"])
        assert self.chain.state(self.chain.sid(s))[0] == INSTRUCTED  # the payee's word changes nothing
        assert self._ok(self.chain.ledger.functions.cancelSettlement(s), m["payer"])
        m["state"] = CANCELLED

    @precondition(lambda self: any(m["state"] in (PAID, SETTLED) for m in self.model.settlements.values()))
    @rule(data=st.data(), attested=st.booleans(), share=st.integers(1, 4))
    def refund(self, data: Any, attested: bool, share: int) -> None:
        candidates = [i for i, m in self.model.settlements.items() if m["state"] in (PAID, SETTLED)]
        if not candidates:
            return
        m = self.model.settlements[data.draw(st.sampled_from(candidates))]
        self.n += 1
        amount = max(1, m["amount"] * share // 4)
        if attested:
            fn = self.chain.ledger.functions.attestRefund(m["s"], b32(f"r-{self.n}"), (ALIPAY, b32(f"rf-{self.n}"), amount))
            who = "op"
        else:
            fn, who = self.chain.ledger.functions.refund(m["s"], amount, b32(f"r-{self.n}")), m["payee"]
        ok = self._ok(fn, who)
        allowed = m["refunded"] + amount <= m["amount"] and not {m["payer"], m["payee"]} & self.model.suspended
        assert ok == allowed
        event(f"refund ({'attested' if attested else 'payee'}): " + ("done" if ok else "refused"))
        self.seen["refund " + ("done" if ok else "refused")] += 1
        if ok:
            m["refunded"] += amount
            if m["refunded"] == m["amount"]:
                m["state"] = REFUNDED

    @precondition(lambda self: any(m["state"] == PAID for m in self.model.settlements.values()))
    @rule(attest=st.sampled_from(("all", "all", "some", "none")), cancel=st.booleans())
    def net_cycle(self, attest: str, cancel: bool) -> None:
        """Submit a cycle over every paid settlement, attest all, some or none of the net payments,
        then settle it (refused unless every net payment is attested and everyone is active) or cancel it."""
        f = self.chain.ledger.functions
        paid = [m for m in self.model.settlements.values() if m["state"] == PAID]
        members, nets = _cycle(self.chain, [(m["s"][0], (*m["s"][1][:4], m["amount"] - m["refunded"], *m["s"][1][5:]))
                                            for m in paid])
        self.n += 1
        cycle_id = b32(f"cycle-{self.n}")
        ok = self._ok(f.submitNettingCycle(cycle_id, b"USD", [m["s"] for m in paid], members, nets), "op")
        involved = {n for m in paid for n in (m["payer"], m["payee"])}
        assert ok == (not involved & self.model.suspended)
        self.seen["submit " + ("done" if ok else "refused")] += 1
        if not ok:
            return
        ids = [self.chain.sid(m["s"]) for m in paid]
        payers = [m for m, n in zip(members, nets) if n < 0]
        chosen = payers if attest == "all" else payers[:-1] if attest == "some" else []
        for member in chosen:
            net = nets[members.index(member)]
            evidence = _net_evidence(f"{cycle_id.hex()}:{member.hex()}", -net)
            assert self._ok(f.attestNetPayment(cycle_id, members, nets, member, evidence), "op")
        if cancel:
            assert self._ok(f.cancelNettingCycle(cycle_id, ids), "op")
            self.seen["cycle cancelled"] += 1
            return
        ok = self._ok(f.settleNettingCycle(cycle_id, ids, members, nets), "op")
        assert ok == (len(chosen) == len(payers))
        self.seen["settle " + ("settled" if ok else "refused")] += 1
        if not ok:
            assert self._ok(f.cancelNettingCycle(cycle_id, ids), "op")
            return
        assert sum(nets) == 0
        for m in paid:
            m["state"] = SETTLED
            self.model.settled_flows[m["payee"]] += m["amount"] - m["refunded"]
            self.model.settled_flows[m["payer"]] -= m["amount"] - m["refunded"]
        for member, net in zip(members, nets):
            self.model.settled_nets[next(x for x in NAMES if self.chain.members[x] == member)] += net

    @rule(name=st.sampled_from(NAMES))
    def suspend_or_reinstate(self, name: str) -> None:
        """Suspends ``name`` when no one is suspended, else reinstates whoever is."""
        if self.model.suspended:
            for who in sorted(self.model.suspended):
                _reactivate(self.chain, who)
            self.model.suspended.clear()
        else:
            _suspend(self.chain, name)
            self.model.suspended.add(name)

    @invariant()
    def chain_matches_model(self) -> None:
        self.seen["steps"] += 1
        for sid, m in self.model.settlements.items():
            assert self.chain.state(sid) == (m["state"], m["refunded"])
            assert 0 <= m["refunded"] <= m["amount"]

    @invariant()
    def money_is_conserved(self) -> None:
        # What the settled cycles moved (their nets, checked by the contract) sums to zero and equals
        # the flows of the settlements they settled (each at its outstanding amount when netted).
        assert sum(self.model.settled_nets.values()) == 0
        assert self.model.settled_nets == self.model.settled_flows


@pytest.mark.slow(seconds=35)
def test_settlement_state_machine(anvil_automine: Any) -> None:
    """Runs :class:`SettlementMachine` (see its docstring for the invariants) on one deployment,
    reverted to a snapshot between examples; derandomized, and checked to have reached payments
    (made and refused), refunds, settled cycles and refused settlements, so it proves something."""
    chain = deploy(anvil_automine.rpc_url)
    SettlementMachine.chain = chain
    SettlementMachine.snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    run_state_machine_as_test(
        SettlementMachine,
        settings=settings(max_examples=8, stateful_step_count=40, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck)),
    )
    assert {"pay paid", "pay refused", "refund done", "settle settled", "settle refused"} <= set(SettlementMachine.seen)


# --------------------------------------------------------------------------- every error


def test_every_settlement_ledger_error_is_raised_by_some_test() -> None:
    """Proves the two SettlementLedger test modules cover the ABI: every custom error the contract can
    give (its own and the registry guard's) is asserted by name in a test, and the interface's ABI
    declares each of them (a client holding only ISettlementLedger decodes every refusal)."""
    declared = {i["name"] for i in artifact("SettlementLedger")["abi"] if i["type"] == "error"}
    interface = {i["name"] for i in artifact("ISettlementLedger")["abi"] if i["type"] == "error"}
    assert declared == interface
    assert {"RegistryNotAMember", "RegistryMemberNotActive", "RegistryMissingRole"} <= interface
    source = inspect.getsource(sys.modules[__name__]) + inspect.getsource(base)
    missing = sorted(n for n in declared if f'"{n}"' not in source and f'b"{n}()"' not in source)
    assert missing == [], f"errors never asserted: {missing}"
