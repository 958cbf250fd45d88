"""SettlementLedger on a real anvil (zero fees, automine), driven with web3.py directly.

Each test deploys a fresh ConsortiumRegistry + SettlementLedger and onboards a small consortium
with fresh keys that hold no ETH (a permissioned chain runs at gas price zero).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.logs import DISCARD

from tests.conftest import ANVIL_DEV_KEY

ARTIFACTS = Path(__file__).resolve().parents[2] / "settlement" / "chain" / "artifacts"
TX_GAS_LIMIT = 16_000_000  # under the per-transaction cap of recent hardforks (2^24)
FX_RATE_SCALE = 10**12
BATCH_SIZE_MAX = 200
GAS_PER_SETTLEMENT_BATCH_MAX = 35_000
INSTRUCTION_ABI_TYPE = "(bytes32,bytes32,uint128,bytes3,uint128,bytes3,uint64,uint128,uint32,bytes4,bytes32)"

ROLE_OPERATOR = keccak(b"OPERATOR")
ROLE_FINANCE = keccak(b"FINANCE")
ROLE_AUDITOR = keccak(b"AUDITOR")

# ISettlementLedger.State
NONE, INSTRUCTED, PAID, IN_CYCLE, SETTLED, CANCELLED, REFUNDED = range(7)
# ISettlementLedger.CycleState
CYCLE_SUBMITTED, CYCLE_SETTLED, CYCLE_CANCELLED = 1, 2, 3


def artifact(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def b32(text: str) -> bytes:
    return keccak(text.encode())


def ascii_bytes(text: str, size: int) -> bytes:
    return text.encode().ljust(size, b"\0")


def round_half_up(source_minor: int, rate: int) -> int:
    return int(
        (Decimal(source_minor) * Decimal(rate) / Decimal(FX_RATE_SCALE)).to_integral_value(ROUND_HALF_UP)
    )


class Reverted(AssertionError):
    pass


def _error_catalogue() -> dict[bytes, tuple[str, list[str]]]:
    """Selector -> (name, argument types) of every custom error the ledger can bubble up."""
    catalogue: dict[bytes, tuple[str, list[str]]] = {}
    for name in ("SettlementLedger", "ConsortiumRegistry"):
        for item in artifact(name)["abi"]:
            if item["type"] == "error":
                types = [p["type"] for p in item["inputs"]]
                catalogue[keccak(f"{item['name']}({','.join(types)})".encode())[:4]] = (item["name"], types)
    return catalogue


ERRORS = _error_catalogue()


@dataclass
class Ledger:
    """A fresh deployment and its consortium: who is who, and helpers to transact."""

    w3: Web3
    registry: Any
    ledger: Any
    admin: LocalAccount
    accounts: dict[str, LocalAccount]
    members: dict[str, bytes]
    nonces: dict[str, int] = field(default_factory=dict)
    today: int = 0

    def send(self, fn: Any, sender: LocalAccount) -> Any:
        """Sign and send `fn` from `sender` at gas price zero; returns the receipt (must succeed)."""
        receipt = self.send_raw(fn, sender)
        if receipt["status"] != 1:
            raise Reverted(f"transaction reverted: {self.revert_of(fn, sender)}")
        return receipt

    def send_raw(self, fn: Any, sender: LocalAccount) -> Any:
        nonce = self.nonces.get(sender.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(sender.address, "pending")
        tx = fn.build_transaction(
            {
                "from": sender.address,
                "nonce": nonce,
                "gas": TX_GAS_LIMIT,
                "gasPrice": 0,
                "chainId": self.w3.eth.chain_id,
            }
        )
        self.nonces[sender.address] = nonce + 1
        signed = sender.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    def revert_of(self, fn: Any, sender: LocalAccount) -> tuple[str, tuple] | None:
        """The decoded custom error of calling `fn` from `sender` now, or None if it succeeds."""
        answer = self.w3.provider.make_request(
            "eth_call",
            [
                {
                    "from": sender.address,
                    "to": fn.address,
                    "data": fn._encode_transaction_data(),
                    "gas": hex(TX_GAS_LIMIT),
                },
                "latest",
            ],
        )
        if "error" not in answer:
            return None
        data = answer["error"].get("data")
        assert data, f"revert without data: {answer['error']}"
        raw = bytes.fromhex(data.removeprefix("0x"))
        name, types = ERRORS[raw[:4]]
        values = abi_decode(types, raw[4:])
        return name, tuple(
            Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
        )

    def assert_reverts(self, fn: Any, sender: LocalAccount, name: str, *args: Any) -> None:
        """`fn` from `sender` reverts with custom error `name` (and `args`, when given), also when sent."""
        error = self.revert_of(fn, sender)
        assert error is not None, f"expected {name}, but the call succeeded"
        assert error[0] == name, f"expected {name}, got {error}"
        if args:
            assert error[1] == args, f"expected {name}{args}, got {error}"
        assert self.send_raw(fn, sender)["status"] == 0

    def events(self, receipt: Any, name: str) -> list[Any]:
        """The `name` events of the ledger in `receipt` (other contracts' logs ignored)."""
        return list(getattr(self.ledger.events, name)().process_receipt(receipt, errors=DISCARD))

    def state(self, settlement_id: bytes) -> tuple[int, int]:
        state, refunded, _ = self.ledger.functions.getSettlement(settlement_id).call()
        return state, refunded

    # --- domain helpers -------------------------------------------------------------------

    def instruction(
        self,
        ref: str,
        payee: str,
        source_minor: int = 100_000,
        source_ccy: str = "USD",
        target_ccy: str = "USD",
        rate: int = FX_RATE_SCALE,
        target_minor: int | None = None,
        fees_minor: int = 250,
        value_date: int | None = None,
    ) -> tuple:
        if target_minor is None:
            target_minor = round_half_up(source_minor, rate)
        return (
            b32(ref),
            self.members[payee],
            source_minor,
            source_ccy.encode(),
            target_minor,
            target_ccy.encode(),
            rate,
            fees_minor,
            self.today if value_date is None else value_date,
            b"GDDS",
            b32(f"payment-reference:{ref}"),
        )

    def settlement(self, payer: str, ins: tuple) -> tuple:
        return (self.members[payer], ins)

    def settlement_id(self, payer: str, ins: tuple) -> bytes:
        return keccak(self.members[payer] + ins[0])

    def record(self, payer: str, ins: tuple) -> tuple:
        """Record `ins` from `payer`'s finance account; returns the Settlement tuple."""
        self.send(self.ledger.functions.recordSettlement(ins), self.accounts[payer])
        return self.settlement(payer, ins)

    def pay(self, s: tuple, by: str = "op", amount: int | None = None) -> Any:
        return self.send(self.ledger.functions.markPaid(s, self.evidence(s, amount)), self.accounts[by])

    def evidence(self, s: tuple, amount: int | None = None) -> tuple:
        paid = s[1][4] if amount is None else amount
        return (ascii_bytes("alipay", 16), b32(f"alipay-tx:{s[1][0].hex()}"), paid)

    def attest_nets(self, cycle_id: bytes, members: list[bytes], nets: list[int], by: str = "op") -> None:
        """The operator attests each net payer's payment into the cycle (one provider transaction each)."""
        for member, net in zip(members, nets, strict=True):
            if net < 0:
                evidence = (ascii_bytes("wechatpay", 16), b32(f"net-in:{cycle_id.hex()}:{member.hex()}"), -net)
                self.send(
                    self.ledger.functions.attestNetPayment(cycle_id, members, nets, member, evidence),
                    self.accounts[by],
                )

    def settle(self, cycle_id: bytes, ids: list[bytes], members: list[bytes], nets: list[int]) -> Any:
        """Attest every net payment, then settle the cycle (the operator)."""
        self.attest_nets(cycle_id, members, nets)
        return self.send(
            self.ledger.functions.settleNettingCycle(cycle_id, ids, members, nets), self.accounts["op"]
        )

    def sid(self, s: tuple) -> bytes:
        return keccak(s[0] + s[1][0])


def _deploy(w3: Web3, contract_name: str, sender: LocalAccount, *args: Any) -> Any:
    art = artifact(contract_name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).build_transaction(
        {
            "from": sender.address,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "gas": TX_GAS_LIMIT,
            "gasPrice": 0,
            "chainId": w3.eth.chain_id,
        }
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction), timeout=30
    )
    assert receipt["status"] == 1, f"deploying {contract_name} failed"
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


# Member name -> (country, roles); each member gets one fresh account of the same name.
CONSORTIUM = {
    "retailer": ("DE", [ROLE_FINANCE]),
    "bank": ("CN", [ROLE_FINANCE]),
    "psp": ("SG", [ROLE_FINANCE]),
    "op": ("GB", [ROLE_OPERATOR]),
    "auditor": ("CH", [ROLE_AUDITOR]),
}


def deploy_consortium(rpc_url: str) -> Ledger:
    """Deploy a registry and a ledger, and onboard {CONSORTIUM} with fresh zero-balance keys."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    admin = Account.from_key(ANVIL_DEV_KEY)
    # The admin is governance and guardian at once (no bootstrap, no timelock): the consortium's own
    # governance is covered by test_registry.py and test_governance.py; this module is about the ledger.
    registry = _deploy(w3, "ConsortiumRegistry", admin, admin.address, 0, admin.address, "0x" + "00" * 20, [])
    forwarder = _deploy(w3, "LedgerForwarder", admin)
    ledger_contract = _deploy(w3, "SettlementLedger", admin, registry.address, forwarder.address)
    accounts = {name: Account.create() for name in [*CONSORTIUM, "outsider"]}
    members = {name: b32(f"member:{name}:{os.urandom(8).hex()}") for name in CONSORTIUM}
    today = w3.eth.get_block("latest")["timestamp"] // 86_400
    ledger = Ledger(w3, registry, ledger_contract, admin, accounts, members, today=today)
    for name, (country, roles) in CONSORTIUM.items():
        ledger.send(
            registry.functions.onboardMember(
                members[name], country.encode(), [accounts[name].address], roles
            ),
            admin,
        )
    return ledger


@pytest.fixture
def chain(anvil_automine: Any) -> Ledger:
    return deploy_consortium(anvil_automine.rpc_url)


# --------------------------------------------------------------------------- lifecycle


def test_member_accounts_without_ether_transact_at_gas_price_zero(chain: Ledger) -> None:
    """Proves members need no ETH on the zero-fee chain: a zero-balance account records a settlement."""
    payer = chain.accounts["retailer"]
    assert chain.w3.eth.get_balance(payer.address) == 0
    s = chain.record("retailer", chain.instruction("inv-1", "bank"))
    assert chain.state(chain.sid(s)) == (INSTRUCTED, 0)
    assert chain.w3.eth.get_balance(payer.address) == 0


def test_record_pay_net_settle(chain: Ledger) -> None:
    """Proves the happy path: record -> paid (operator, payee) -> netted in a cycle -> settled."""
    ins = chain.instruction(
        "inv-1", "bank", source_minor=123_456, source_ccy="EUR", target_ccy="USD", rate=1_083_250_000_000
    )
    receipt = chain.send(chain.ledger.functions.recordSettlement(ins), chain.accounts["retailer"])
    s1 = chain.settlement("retailer", ins)
    id1 = chain.sid(s1)
    assert chain.ledger.functions.settlementIdOf(chain.members["retailer"], ins[0]).call() == id1
    (recorded,) = chain.events(receipt, "SettlementRecorded")
    assert recorded.args.id == id1
    assert recorded.args.payer == chain.members["retailer"]
    assert recorded.args.payee == chain.members["bank"]
    assert tuple(recorded.args.instruction.values()) == ins  # the event carries every detail
    assert chain.ledger.functions.isRecorded(s1).call()
    assert not chain.ledger.functions.isRecorded((s1[0], (*ins[:2], ins[2] + 1, *ins[3:]))).call()
    commitment = chain.ledger.functions.commitmentOf(s1).call()
    assert chain.ledger.functions.getSettlement(id1).call() == [INSTRUCTED, 0, commitment[:19]]
    # Anyone can recompute the commitment off chain from the event: keccak256(abi.encode(payer, instruction)).
    assert commitment == keccak(abi_encode(["bytes32", INSTRUCTION_ABI_TYPE], [s1[0], ins]))

    s2 = chain.record("bank", chain.instruction("inv-2", "psp", source_minor=50_000))
    s3 = chain.record("psp", chain.instruction("inv-3", "retailer", source_minor=20_000))
    paid = chain.pay(s1, by="op")
    (event,) = chain.events(paid, "SettlementPaid")
    assert event.args.amountPaidMinor == s1[1][4] and event.args.provider == ascii_bytes("alipay", 16)
    chain.pay(s2, by="op")
    chain.pay(s3, by="op")
    assert [chain.state(chain.sid(s))[0] for s in (s1, s2, s3)] == [PAID] * 3

    flows = {name: 0 for name in ("retailer", "bank", "psp")}
    for s, payer, payee in ((s1, "retailer", "bank"), (s2, "bank", "psp"), (s3, "psp", "retailer")):
        flows[payee] += s[1][4]
        flows[payer] -= s[1][4]
    order = sorted(flows, key=lambda n: chain.members[n])
    members = [chain.members[n] for n in order]
    nets = [flows[n] for n in order]
    cycle_id = b32("cycle-usd-1")
    receipt = chain.send(
        chain.ledger.functions.submitNettingCycle(cycle_id, b"USD", [s1, s2, s3], members, nets),
        chain.accounts["op"],
    )
    (submitted,) = chain.events(receipt, "NettingCycleSubmitted")
    assert (
        submitted.args.members == members
        and submitted.args.nets == nets
        and submitted.args.settlementCount == 3
    )
    assert len(chain.events(receipt, "SettlementNetted")) == 3
    assert [chain.state(chain.sid(s))[0] for s in (s1, s2, s3)] == [IN_CYCLE] * 3
    ids = [chain.sid(s) for s in (s1, s2, s3)]
    cycle = chain.ledger.functions.getNettingCycle(cycle_id).call()
    assert cycle[:3] == (CYCLE_SUBMITTED, b"USD", 3)
    assert cycle[4] == sum(1 for n in nets if n < 0) and cycle[5] == 0  # net payers, attested
    assert cycle[6] == keccak(b"".join(ids))

    receipt = chain.settle(cycle_id, ids, members, nets)
    settled = chain.events(receipt, "SettlementSettled")
    assert [e.args.id for e in settled] == ids
    assert len(chain.events(receipt, "NettingCycleSettled")) == 1
    assert [chain.state(i)[0] for i in ids] == [SETTLED] * 3
    assert chain.ledger.functions.getNettingCycle(cycle_id).call()[0] == CYCLE_SETTLED
    chain.assert_reverts(
        chain.ledger.functions.settleNettingCycle(cycle_id, ids, members, nets),
        chain.accounts["op"],
        "SettlementCycleInvalidState",
        cycle_id,
        CYCLE_SETTLED,
    )


def test_cancel_only_by_payer_while_instructed(chain: Ledger) -> None:
    """Proves cancel: only the payer's finance, only while Instructed; a cancelled settlement is final."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank"))
    sid = chain.sid(s)
    cancel = chain.ledger.functions.cancelSettlement(s)
    chain.assert_reverts(
        cancel,
        chain.accounts["bank"],
        "SettlementUnauthorized",
        sid,
        chain.accounts["bank"].address,
        chain.members["bank"],
    )
    chain.assert_reverts(
        cancel,
        chain.accounts["op"],
        "RegistryMissingRole",
        chain.accounts["op"].address,
        chain.members["op"],
        ROLE_FINANCE,
    )
    receipt = chain.send(cancel, chain.accounts["retailer"])
    assert [e.args.id for e in chain.events(receipt, "SettlementCancelled")] == [sid]
    assert chain.state(sid) == (CANCELLED, 0)
    chain.assert_reverts(cancel, chain.accounts["retailer"], "SettlementInvalidState", sid, CANCELLED)
    chain.assert_reverts(
        chain.ledger.functions.markPaid(s, chain.evidence(s)),
        chain.accounts["op"],
        "SettlementInvalidState",
        sid,
        CANCELLED,
    )

    paid = chain.record("retailer", chain.instruction("inv-2", "bank"))
    chain.pay(paid)
    chain.assert_reverts(
        chain.ledger.functions.cancelSettlement(paid),
        chain.accounts["retailer"],
        "SettlementInvalidState",
        chain.sid(paid),
        PAID,
    )


def test_partial_then_full_refund_never_exceeds_paid(chain: Ledger) -> None:
    """Proves refunds: partial keeps Paid and accumulates; the total never exceeds paid; full -> Refunded."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    sid = chain.sid(s)
    refund = chain.ledger.functions.refund
    chain.assert_reverts(
        refund(s, 1, b32("r0")), chain.accounts["bank"], "SettlementInvalidState", sid, INSTRUCTED
    )
    chain.pay(s)
    # The payer cannot refund itself; a third member cannot either.
    chain.assert_reverts(
        refund(s, 1, b32("r0")),
        chain.accounts["retailer"],
        "SettlementUnauthorized",
        sid,
        chain.accounts["retailer"].address,
        chain.members["retailer"],
    )
    chain.assert_reverts(
        refund(s, 1, b32("r0")),
        chain.accounts["psp"],
        "SettlementUnauthorized",
        sid,
        chain.accounts["psp"].address,
        chain.members["psp"],
    )
    chain.assert_reverts(
        refund(s, 0, b32("r0")), chain.accounts["bank"], "SettlementRefundExceedsPaid", sid, 0, 0, 1_000
    )

    receipt = chain.send(refund(s, 300, b32("r1")), chain.accounts["bank"])
    (event,) = chain.events(receipt, "SettlementRefunded")
    assert (event.args.amountMinor, event.args.refundedTotalMinor, event.args.fully) == (300, 300, False)
    assert chain.state(sid) == (PAID, 300)
    chain.assert_reverts(
        refund(s, 701, b32("r2")), chain.accounts["bank"], "SettlementRefundExceedsPaid", sid, 701, 300, 1_000
    )
    receipt = chain.send(refund(s, 700, b32("r2")), chain.accounts["bank"])
    (event,) = chain.events(receipt, "SettlementRefunded")
    assert (event.args.refundedTotalMinor, event.args.fully) == (1_000, True)
    assert chain.state(sid) == (REFUNDED, 1_000)
    chain.assert_reverts(
        refund(s, 1, b32("r3")), chain.accounts["bank"], "SettlementInvalidState", sid, REFUNDED
    )


def test_refund_of_a_settled_settlement_and_netting_of_the_outstanding_amount(chain: Ledger) -> None:
    """Proves a partly refunded Paid settlement nets what is outstanding; Settled ones stay refundable."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    sid = chain.sid(s)
    chain.pay(s)
    chain.send(chain.ledger.functions.refund(s, 400, b32("r1")), chain.accounts["bank"])
    members = sorted([chain.members["retailer"], chain.members["bank"]])
    nets = [600 if m == chain.members["bank"] else -600 for m in members]
    cycle_id = b32("cycle-1")
    submit = chain.ledger.functions.submitNettingCycle(cycle_id, b"USD", [s], members, nets)
    chain.send(submit, chain.accounts["op"])
    # No refund while the cycle's nets are fixed.
    chain.assert_reverts(
        chain.ledger.functions.refund(s, 1, b32("r2")),
        chain.accounts["bank"],
        "SettlementInvalidState",
        sid,
        IN_CYCLE,
    )
    chain.settle(cycle_id, [sid], members, nets)
    chain.send(chain.ledger.functions.refund(s, 100, b32("r2")), chain.accounts["bank"])
    assert chain.state(sid) == (SETTLED, 500)
    chain.send(chain.ledger.functions.refund(s, 500, b32("r3")), chain.accounts["bank"])
    assert chain.state(sid) == (REFUNDED, 1_000)


def test_cancelled_cycle_releases_its_settlements(chain: Ledger) -> None:
    """Proves cancelling a cycle returns its settlements to Paid: nettable again, never twice at once."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    sid = chain.sid(s)
    chain.pay(s)
    members = sorted([chain.members["retailer"], chain.members["bank"]])
    nets = [1_000 if m == chain.members["bank"] else -1_000 for m in members]
    submit = chain.ledger.functions.submitNettingCycle
    chain.send(submit(b32("c1"), b"USD", [s], members, nets), chain.accounts["op"])
    chain.assert_reverts(
        submit(b32("c2"), b"USD", [s], members, nets),
        chain.accounts["op"],
        "SettlementInvalidState",
        sid,
        IN_CYCLE,
    )
    chain.assert_reverts(
        submit(b32("c1"), b"USD", [s], members, nets),
        chain.accounts["op"],
        "SettlementCycleExists",
        b32("c1"),
    )
    chain.assert_reverts(
        chain.ledger.functions.cancelNettingCycle(b32("c1"), [b32("other")]),
        chain.accounts["op"],
        "SettlementCycleSettlementsMismatch",
        b32("c1"),
    )
    receipt = chain.send(chain.ledger.functions.cancelNettingCycle(b32("c1"), [sid]), chain.accounts["op"])
    assert [e.args.id for e in chain.events(receipt, "SettlementReleased")] == [sid]
    assert chain.state(sid) == (PAID, 0)
    assert chain.ledger.functions.getNettingCycle(b32("c1")).call()[0] == CYCLE_CANCELLED
    chain.send(submit(b32("c2"), b"USD", [s], members, nets), chain.accounts["op"])
    assert chain.state(sid) == (IN_CYCLE, 0)


# --------------------------------------------------------------------------- rejections


def test_duplicate_instruction_reverts(chain: Ledger) -> None:
    """Proves the on-chain id (payer, client reference) rules out recording the same instruction twice."""
    ins = chain.instruction("inv-1", "bank")
    chain.record("retailer", ins)
    sid = chain.settlement_id("retailer", ins)
    chain.assert_reverts(
        chain.ledger.functions.recordSettlement(ins),
        chain.accounts["retailer"],
        "SettlementAlreadyExists",
        sid,
    )
    # Even with other details: the id is the payer's reference.
    other = chain.instruction("inv-1", "psp", source_minor=7)
    chain.assert_reverts(
        chain.ledger.functions.recordSettlement(other),
        chain.accounts["retailer"],
        "SettlementAlreadyExists",
        sid,
    )
    # Another payer may use the same client reference.
    chain.record("psp", chain.instruction("inv-1", "bank"))


def test_who_may_record(chain: Ledger) -> None:
    """Proves record needs an active member with FINANCE, paying another active member."""
    ins = chain.instruction("inv-1", "bank")
    record = chain.ledger.functions.recordSettlement(ins)
    outsider = chain.accounts["outsider"]
    chain.assert_reverts(record, outsider, "RegistryNotAMember", outsider.address)
    auditor = chain.accounts["auditor"]
    chain.assert_reverts(
        record, auditor, "RegistryMissingRole", auditor.address, chain.members["auditor"], ROLE_FINANCE
    )
    chain.assert_reverts(
        chain.ledger.functions.recordSettlement(chain.instruction("inv-2", "retailer")),
        chain.accounts["retailer"],
        "SettlementSelfPayment",
        chain.members["retailer"],
    )
    unknown = (*ins[:1], b32("member:nobody"), *ins[2:])
    chain.assert_reverts(
        chain.ledger.functions.recordSettlement(unknown),
        chain.accounts["retailer"],
        "SettlementPayeeNotActive",
        b32("member:nobody"),
    )

    chain.send(chain.registry.functions.suspendMember(chain.members["retailer"]), chain.admin)
    chain.assert_reverts(
        record,
        chain.accounts["retailer"],
        "RegistryMemberNotActive",
        chain.accounts["retailer"].address,
        chain.members["retailer"],
    )
    chain.send(chain.registry.functions.reactivateMember(chain.members["retailer"]), chain.admin)
    chain.send(chain.registry.functions.suspendMember(chain.members["bank"]), chain.admin)
    chain.assert_reverts(
        record, chain.accounts["retailer"], "SettlementPayeeNotActive", chain.members["bank"]
    )
    chain.send(chain.registry.functions.reactivateMember(chain.members["bank"]), chain.admin)
    chain.send(record, chain.accounts["retailer"])


def test_who_may_mark_paid_and_net(chain: Ledger) -> None:
    """Proves markPaid needs the operator (no party, no other member), and netting/settling need the operator."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank"))
    sid = chain.sid(s)
    mark = chain.ledger.functions.markPaid(s, chain.evidence(s))
    for name in ("retailer", "bank", "psp", "auditor"):
        chain.assert_reverts(
            mark,
            chain.accounts[name],
            "RegistryMissingRole",
            chain.accounts[name].address,
            chain.members[name],
            ROLE_OPERATOR,
        )
    chain.assert_reverts(
        mark, chain.accounts["outsider"], "RegistryNotAMember", chain.accounts["outsider"].address
    )
    chain.send(chain.registry.functions.suspendMember(chain.members["op"]), chain.admin)
    chain.assert_reverts(
        mark,
        chain.accounts["op"],
        "RegistryMemberNotActive",
        chain.accounts["op"].address,
        chain.members["op"],
    )
    chain.send(chain.registry.functions.reactivateMember(chain.members["op"]), chain.admin)
    chain.send(mark, chain.accounts["op"])

    members = sorted([chain.members["retailer"], chain.members["bank"]])
    nets = [s[1][4] if m == chain.members["bank"] else -s[1][4] for m in members]
    submit = chain.ledger.functions.submitNettingCycle(b32("c1"), b"USD", [s], members, nets)
    chain.assert_reverts(
        submit,
        chain.accounts["bank"],
        "RegistryMissingRole",
        chain.accounts["bank"].address,
        chain.members["bank"],
        ROLE_OPERATOR,
    )
    chain.send(submit, chain.accounts["op"])
    chain.assert_reverts(
        chain.ledger.functions.settleNettingCycle(b32("c1"), [sid], members, nets),
        chain.accounts["retailer"],
        "RegistryMissingRole",
        chain.accounts["retailer"].address,
        chain.members["retailer"],
        ROLE_OPERATOR,
    )


def test_details_must_match_the_commitment(chain: Ledger) -> None:
    """Proves later transitions reject details other than those recorded, and unknown settlements."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    sid = chain.sid(s)
    ins = s[1]
    forged = (s[0], (*ins[:2], 2_000, *ins[3:4], 2_000, *ins[5:]))
    chain.assert_reverts(
        chain.ledger.functions.markPaid(forged, chain.evidence(forged)),
        chain.accounts["op"],
        "SettlementDetailsMismatch",
        sid,
    )
    other_payee = (s[0], (ins[0], chain.members["psp"], *ins[2:]))
    chain.assert_reverts(
        chain.ledger.functions.markPaid(other_payee, chain.evidence(s)),
        chain.accounts["op"],
        "SettlementDetailsMismatch",
        sid,
    )
    unknown = (s[0], (b32("inv-unknown"), *ins[1:]))
    chain.assert_reverts(
        chain.ledger.functions.markPaid(unknown, chain.evidence(unknown)),
        chain.accounts["op"],
        "SettlementNotFound",
        chain.sid(unknown),
    )


def test_payment_evidence_must_show_the_target_amount(chain: Ledger) -> None:
    """Proves markPaid rejects short or over-payment and empty evidence."""
    s = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    sid = chain.sid(s)
    for amount in (999, 1_001):
        chain.assert_reverts(
            chain.ledger.functions.markPaid(s, chain.evidence(s, amount)),
            chain.accounts["op"],
            "SettlementPaidAmountMismatch",
            sid,
            amount,
            1_000,
        )
    empty = (b"\0" * 16, b32("tx"), 1_000)
    chain.assert_reverts(
        chain.ledger.functions.markPaid(s, empty), chain.accounts["op"], "SettlementInvalidEvidence", sid
    )


def test_instruction_validation(chain: Ledger) -> None:
    """Proves inconsistent FX, bad amounts, currencies, references and value dates revert."""
    record = chain.ledger.functions.recordSettlement
    retailer = chain.accounts["retailer"]
    rate = 7_812_500_000_000  # 7.8125 CNY fen per USD cent
    good = chain.instruction("fx", "bank", source_minor=1_001, source_ccy="USD", target_ccy="CNY", rate=rate)
    assert good[4] == 7_820  # 7820.3125 rounds to 7820
    for target in (good[4] - 1, good[4] + 1):
        bad = chain.instruction(
            "fx",
            "bank",
            source_minor=1_001,
            source_ccy="USD",
            target_ccy="CNY",
            rate=rate,
            target_minor=target,
        )
        chain.assert_reverts(record(bad), retailer, "SettlementInconsistentFx", 1_001, rate, target, 7_820)
    same_ccy = chain.instruction("fx", "bank", source_minor=1_000, rate=2 * FX_RATE_SCALE)
    chain.assert_reverts(
        record(same_ccy), retailer, "SettlementInconsistentFx", 1_000, 2 * FX_RATE_SCALE, 2_000, 2_000
    )
    zero_rate = chain.instruction("fx", "bank", source_minor=1_000, target_ccy="EUR", rate=0, target_minor=0)
    chain.assert_reverts(record(zero_rate), retailer, "SettlementInvalidAmount", 0)
    zero_rate = chain.instruction("fx", "bank", source_minor=1_000, target_ccy="EUR", rate=0, target_minor=1)
    chain.assert_reverts(record(zero_rate), retailer, "SettlementInconsistentFx", 1_000, 0, 1, 0)
    # Rounding is half up: 0.5 minor unit rounds to 1.
    chain.send(
        record(chain.instruction("half", "bank", source_minor=1, target_ccy="JPY", rate=FX_RATE_SCALE // 2)),
        retailer,
    )

    too_big = 2**96
    chain.assert_reverts(
        record(chain.instruction("big", "bank", source_minor=too_big)),
        retailer,
        "SettlementInvalidAmount",
        too_big,
    )
    chain.assert_reverts(
        record(chain.instruction("fee", "bank", fees_minor=too_big)),
        retailer,
        "SettlementInvalidAmount",
        too_big,
    )
    chain.assert_reverts(
        record(chain.instruction("ccy", "bank", source_ccy="usd", target_ccy="usd")),
        retailer,
        "SettlementInvalidCurrency",
        b"usd",
    )
    chain.assert_reverts(record((b"\0" * 32, *good[1:])), retailer, "SettlementInvalidReference")
    chain.assert_reverts(record((*good[:9], b"\0" * 4, good[10])), retailer, "SettlementInvalidPurposeCode")
    for currency in (b"usd", b"US@", b"US[", b"U\0D", b"\xc1SD", b"\x80SD"):
        bad = (bad[0], bad[1], 1_000, b"EUR", 1_000, currency, FX_RATE_SCALE, *good[7:])
        chain.assert_reverts(record(bad), retailer, "SettlementInvalidCurrency", currency)
    assert chain.revert_of(record(chain.instruction("ccy", "bank", target_ccy="AZZ")), retailer) is None
    earliest, latest = chain.today - 7, chain.today + 366
    for date in (earliest - 1, latest + 1):
        chain.assert_reverts(
            record(chain.instruction("date", "bank", value_date=date)),
            retailer,
            "SettlementInvalidValueDate",
            date,
            earliest,
            latest,
        )
    chain.send(record(chain.instruction("date", "bank", value_date=earliest)), retailer)


def test_non_canonical_encoding_is_rejected(chain: Ledger) -> None:
    """Proves dirty padding in an instruction's calldata reverts: the commitment and event are copied raw."""
    ins = chain.instruction("inv-1", "bank")
    data = bytearray(bytes.fromhex(chain.ledger.encode_abi("recordSettlement", args=[ins])[2:]))
    currency_word = 4 + 3 * 32  # selector, then the fourth word: sourceCurrency (left-aligned bytes3)
    assert data[currency_word : currency_word + 3] == b"USD"
    data[currency_word + 31] = 1
    answer = chain.w3.provider.make_request(
        "eth_call",
        [
            {
                "from": chain.accounts["retailer"].address,
                "to": chain.ledger.address,
                "data": "0x" + data.hex(),
            },
            "latest",
        ],
    )
    selector = keccak(b"SettlementMalformedInstruction()")[:4]
    assert answer["error"]["data"] == "0x" + selector.hex()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.integers(1, 10**15), rate=st.integers(1, 2**64 - 1))
def test_fx_rule_accepts_exactly_round_half_up(chain: Ledger, source: int, rate: int) -> None:
    """Proves the contract's FX check equals Python's Decimal ROUND_HALF_UP of source * rate / 1e12."""
    target = round_half_up(source, rate)
    if target == 0 or target >= 2**96:
        return
    record = chain.ledger.functions.recordSettlement
    retailer = chain.accounts["retailer"]
    ref = f"fx-{source}-{rate}"
    ok = chain.instruction(ref, "bank", source_minor=source, source_ccy="USD", target_ccy="IDR", rate=rate)
    assert chain.revert_of(record(ok), retailer) is None
    for wrong in (target - 1, target + 1):
        if wrong == 0:
            continue
        bad = chain.instruction(
            ref,
            "bank",
            source_minor=source,
            source_ccy="USD",
            target_ccy="IDR",
            rate=rate,
            target_minor=wrong,
        )
        assert chain.revert_of(record(bad), retailer) == (
            "SettlementInconsistentFx",
            (source, rate, wrong, target),
        )


def test_netting_rejections(chain: Ledger) -> None:
    """Proves a cycle must net to zero, match the flows, list sorted members, one currency, Paid only."""
    s1 = chain.record("retailer", chain.instruction("inv-1", "bank", source_minor=1_000))
    s2 = chain.record("bank", chain.instruction("inv-2", "psp", source_minor=400))
    chain.pay(s1)
    chain.pay(s2)
    order = sorted(["retailer", "bank", "psp"], key=lambda n: chain.members[n])
    flows = {"retailer": -1_000, "bank": 1_000 - 400, "psp": 400}
    members = [chain.members[n] for n in order]
    nets = [flows[n] for n in order]
    submit = chain.ledger.functions.submitNettingCycle
    op = chain.accounts["op"]
    cycle_id = b32("c1")

    not_zero = [*nets[:-1], nets[-1] + 1]
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], members, not_zero), op, "SettlementCycleNetsNotZeroSum", 1
    )
    huge = [2**255 - 1, -(2**255 - 1), 0]  # sums to zero, but no cycle can net that much
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], members, huge),
        op,
        "SettlementCycleNetOutOfRange",
        members[0],
        huge[0],
    )
    shifted = [nets[0] + 1, nets[1] - 1, nets[2]]
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], members, shifted),
        op,
        "SettlementCycleNetMismatch",
        members[0],
        shifted[0],
        nets[0],
    )
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], members[::-1], nets[::-1]),
        op,
        "SettlementCycleMembersNotSorted",
        1,
    )
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], [members[0], members[0]], [0, 0]),
        op,
        "SettlementCycleMembersNotSorted",
        1,
    )
    two = sorted([chain.members["retailer"], chain.members["bank"]])
    two_nets = [1_000 if m == chain.members["bank"] else -1_000 for m in two]
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], two, two_nets),
        op,
        "SettlementCycleMemberMissing",
        chain.sid(s2),
        chain.members["psp"],
    )
    chain.assert_reverts(
        submit(cycle_id, b"EUR", [s1, s2], members, nets),
        op,
        "SettlementCycleCurrencyMismatch",
        chain.sid(s1),
        b"USD",
    )
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s1], members, nets),
        op,
        "SettlementInvalidState",
        chain.sid(s1),
        IN_CYCLE,
    )
    s3 = chain.record("psp", chain.instruction("inv-3", "retailer", source_minor=5))
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s3], members, [0, 0, 0]),
        op,
        "SettlementInvalidState",
        chain.sid(s3),
        INSTRUCTED,
    )
    chain.assert_reverts(
        submit(b"\0" * 32, b"USD", [s1, s2], members, nets), op, "SettlementCycleExists", b"\0" * 32
    )
    chain.assert_reverts(submit(cycle_id, b"USD", [], members, nets), op, "SettlementBatchSize", 0, 200)
    chain.assert_reverts(
        submit(cycle_id, b"USD", [s1, s2], members, nets[:2]), op, "SettlementLengthMismatch", 3, 2
    )
    chain.send(submit(cycle_id, b"USD", [s1, s2], members, nets), op)
    chain.attest_nets(cycle_id, members, nets)
    chain.assert_reverts(
        chain.ledger.functions.settleNettingCycle(cycle_id, [chain.sid(s2), chain.sid(s1)], members, nets),
        op,
        "SettlementCycleSettlementsMismatch",
        cycle_id,
    )
    chain.assert_reverts(
        chain.ledger.functions.settleNettingCycle(cycle_id, [chain.sid(s1), chain.sid(s2)], members, shifted),
        op,
        "SettlementCycleNetsMismatch",
        cycle_id,
    )
    chain.assert_reverts(
        chain.ledger.functions.settleNettingCycle(b32("c-unknown"), [], [], []),
        op,
        "SettlementCycleInvalidState",
        b32("c-unknown"),
        0,
    )


# --------------------------------------------------------------------------- batches and gas


def test_batch_of_200_costs_at_most_35k_gas_per_settlement(chain: Ledger) -> None:
    """Proves the footprint: a full batch records 200 settlements at <= 35,000 gas each, all included."""
    retailer = chain.accounts["retailer"]
    single = chain.send(
        chain.ledger.functions.recordSettlement(chain.instruction("single", "bank")), retailer
    )
    payees = ("bank", "psp")
    batch = [
        chain.instruction(
            f"batch-{i:03d}",
            payees[i % 2],
            source_minor=10_000 + i,
            source_ccy="EUR",
            target_ccy="USD",
            rate=1_083_250_000_000,
        )
        for i in range(BATCH_SIZE_MAX)
    ]
    receipt = chain.send(chain.ledger.functions.recordBatch(batch), retailer)
    per_settlement = receipt["gasUsed"] / BATCH_SIZE_MAX
    print(
        f"\nrecordSettlement: {single['gasUsed']} gas; recordBatch(200): {receipt['gasUsed']} gas, "
        f"{per_settlement:.0f} per settlement"
    )
    assert per_settlement <= GAS_PER_SETTLEMENT_BATCH_MAX
    recorded = chain.events(receipt, "SettlementRecorded")
    assert [e.args.id for e in recorded] == [chain.settlement_id("retailer", ins) for ins in batch]

    settlements = [chain.settlement("retailer", ins) for ins in batch]
    paid = chain.send(
        chain.ledger.functions.markPaidBatch(settlements, [chain.evidence(s) for s in settlements]),
        chain.accounts["op"],
    )
    print(f"markPaidBatch(200): {paid['gasUsed']} gas, {paid['gasUsed'] / BATCH_SIZE_MAX:.0f} per settlement")
    assert all(chain.state(chain.sid(s))[0] == PAID for s in settlements[:: BATCH_SIZE_MAX // 10])

    flows = {name: 0 for name in ("retailer", *payees)}
    for i, s in enumerate(settlements):
        flows[payees[i % 2]] += s[1][4]
        flows["retailer"] -= s[1][4]
    order = sorted(flows, key=lambda n: chain.members[n])
    submit = chain.ledger.functions.submitNettingCycle(
        b32("c-200"), b"USD", settlements, [chain.members[n] for n in order], [flows[n] for n in order]
    )
    netted = chain.send(submit, chain.accounts["op"])
    settled = chain.settle(
        b32("c-200"), [chain.sid(s) for s in settlements], [chain.members[n] for n in order], [flows[n] for n in order]
    )
    print(
        f"submitNettingCycle(200): {netted['gasUsed']} gas; settleNettingCycle(200): {settled['gasUsed']} gas"
    )
    assert chain.state(chain.sid(settlements[-1]))[0] == SETTLED


def test_batches_are_bounded_and_all_or_nothing(chain: Ledger) -> None:
    """Proves batch bounds, and that one invalid item reverts the whole batch (nothing recorded)."""
    retailer = chain.accounts["retailer"]
    record_batch = chain.ledger.functions.recordBatch
    chain.assert_reverts(record_batch([]), retailer, "SettlementBatchSize", 0, BATCH_SIZE_MAX)
    too_many = [chain.instruction(f"b-{i}", "bank") for i in range(BATCH_SIZE_MAX + 1)]
    chain.assert_reverts(
        record_batch(too_many), retailer, "SettlementBatchSize", BATCH_SIZE_MAX + 1, BATCH_SIZE_MAX
    )

    first = chain.instruction("b-1", "bank")
    duplicate = [first, chain.instruction("b-2", "psp"), first]
    chain.assert_reverts(
        record_batch(duplicate), retailer, "SettlementAlreadyExists", chain.settlement_id("retailer", first)
    )
    self_pay = [first, chain.instruction("b-2", "retailer")]
    chain.assert_reverts(record_batch(self_pay), retailer, "SettlementSelfPayment", chain.members["retailer"])
    assert chain.state(chain.settlement_id("retailer", first)) == (NONE, 0)
    chain.assert_reverts(
        record_batch([first]),
        chain.accounts["auditor"],
        "RegistryMissingRole",
        chain.accounts["auditor"].address,
        chain.members["auditor"],
        ROLE_FINANCE,
    )

    chain.send(record_batch([first, chain.instruction("b-2", "psp")]), retailer)
    s1, s2 = (
        chain.settlement("retailer", first),
        chain.settlement("retailer", chain.instruction("b-2", "psp")),
    )
    mark_batch = chain.ledger.functions.markPaidBatch
    chain.assert_reverts(
        mark_batch([s1, s2], [chain.evidence(s1)]), chain.accounts["op"], "SettlementLengthMismatch", 2, 1
    )
    # One provider transaction for two settlements: the batch fails on the second, the first stays Instructed.
    chain.assert_reverts(
        mark_batch([s1, s2], [chain.evidence(s1), chain.evidence(s1, s2[1][4])]),
        chain.accounts["op"],
        "SettlementEvidenceUsed",
        ascii_bytes("alipay", 16),
        chain.evidence(s1)[1],
        chain.sid(s1),
    )
    assert chain.state(chain.sid(s1)) == (INSTRUCTED, 0)
    chain.send(mark_batch([s1, s2], [chain.evidence(s1), chain.evidence(s2)]), chain.accounts["op"])
    assert [chain.state(chain.sid(s))[0] for s in (s1, s2)] == [PAID, PAID]
