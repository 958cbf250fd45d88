"""ReceivableRegistry on a real anvil, driven with web3.py and locally signed raw transactions.

Every member acts from a fresh eth_account key that holds no ether: the chain is zero-fee, so
zero-balance accounts transact with gas price 0 (checked by test_zero_balance_member_can_transact),
as on the permissioned network. Reverts are matched by custom error name and arguments, decoded
from the ABIs of the receivable registry and of the consortium registry (whose errors bubble up).

Most tests run on the session's shared `anvil_automine` and need no clock change: a receivable
can be registered with a past due date, so maturity and default are reached by choosing dates.
The one test that moves the chain's clock (financing 90 days ahead of maturity, then repaying at
maturity) runs on a private anvil, so that no other test sees the time jump.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractPanicError
from web3.logs import DISCARD

from settlement.domains.receivables import typed_data as td
from settlement.domains.receivables.terms import (
    DayCountBasis,
    financing_terms,
    invoice_number_hash,
    normalise_invoice_number,
    part_id,
    receivable_id,
)
from tests.chain_clock import clear_of_midnight
from tests.conftest import ANVIL_DEV_KEY, start_anvil

ARTIFACTS = Path(__file__).resolve().parents[2] / "settlement" / "chain" / "artifacts"
CHAIN_ID = 31337
GRACE_PERIOD_DAYS = 30
PART_AMOUNT_MIN = 100
PARTS_PER_RECEIVABLE_MAX = 32
ROLES = {name: Web3.keccak(text=name) for name in ("OPERATOR", "SUPPLIER", "BUYER", "FINANCIER")}
STATUS = {"None": 0, "Registered": 1, "Confirmed": 2, "Overdue": 3, "Settled": 4, "Defaulted": 5,
          "Cancelled": 6, "Rejected": 7}
DAY_S = 86_400

GAS: dict[str, int] = {}


@functools.cache
def artifact(name: str) -> dict[str, Any]:
    """Read once: the artifacts directory is rewritten whole whenever contracts are recompiled."""
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def _error_selectors() -> dict[bytes, tuple[str, list[str]]]:
    out: dict[bytes, tuple[str, list[str]]] = {}
    for name in ("ReceivableRegistry", "ConsortiumRegistry"):
        for item in artifact(name)["abi"]:
            if item["type"] == "error":
                types = [i["type"] for i in item["inputs"]]
                sig = f"{item['name']}({','.join(types)})"
                out[Web3.keccak(text=sig)[:4]] = (item["name"], types)
    return out


ERRORS = _error_selectors()


class Reverted(Exception):
    """A call or transaction reverted with custom error `name(args)` (or a panic)."""

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"{name}{args}")
        self.name = name
        self.args_ = args


def decode_revert(exc: Exception) -> Reverted:
    if isinstance(exc, ContractPanicError):
        return Reverted("Panic", (str(exc),))
    data = exc.data if isinstance(exc.data, str) else exc.message  # type: ignore[attr-defined]
    raw = bytes.fromhex(data.removeprefix("0x"))
    name, types = ERRORS[raw[:4]]
    values = abi_decode(types, raw[4:])
    return Reverted(name, tuple(Web3.to_checksum_address(v) if t == "address" else v
                                for t, v in zip(types, values, strict=True)))


# ---- chain harness -----------------------------------------------------------------------------


@dataclass
class Chain:
    """A web3 connection that signs and sends raw transactions with gas price 0."""

    w3: Web3
    nonces: dict[str, int] = field(default_factory=dict)

    def send(self, fn: Any, account: LocalAccount, label: str | None = None) -> Any:
        """Estimate (which surfaces the revert reason), sign, send, wait; returns the receipt."""
        nonce = self.nonces.get(account.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(account.address, "pending")
        try:
            tx = fn.build_transaction(
                {"from": account.address, "gasPrice": 0, "nonce": nonce, "chainId": CHAIN_ID}
            )
        except (ContractCustomError, ContractPanicError) as exc:
            raise decode_revert(exc) from None
        tx_hash = self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)
        assert receipt.status == 1, receipt
        if account.address != ADMIN.address:  # the dev account is shared with other test modules
            self.nonces[account.address] = nonce + 1
        if label is not None:
            GAS.setdefault(label, receipt.gasUsed)
        return receipt

    def today(self) -> int:
        """The chain's day, with its clock first moved clear of midnight (tests.chain_clock)."""
        return clear_of_midnight(self.w3.provider.make_request, self.w3.eth.get_block("latest")["timestamp"])

    def deploy(self, name: str, *args: Any) -> Contract:
        a = artifact(name)
        factory = self.w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"])
        receipt = self.send(factory.constructor(*args), ADMIN)
        return self.w3.eth.contract(address=receipt.contractAddress, abi=a["abi"])


ADMIN: LocalAccount = Account.from_key(ANVIL_DEV_KEY)


@dataclass
class Member:
    name: str
    id: bytes
    accounts: list[LocalAccount]
    roles: tuple[str, ...]

    @property
    def account(self) -> LocalAccount:
        return self.accounts[0]


@dataclass
class Env:
    chain: Chain
    registry: Contract
    receivables: Contract
    members: dict[str, Member]
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Member:
        return self.members[name]

    def send(self, fn: Any, member: Member | LocalAccount, label: str | None = None) -> Any:
        account = member.account if isinstance(member, Member) else member
        return self.chain.send(fn, account, label)

    def events(self, receipt: Any, name: str) -> list[Any]:
        return list(getattr(self.receivables.events, name)().process_receipt(receipt, errors=DISCARD))


# Members of every test consortium: name -> (roles, number of accounts).
MEMBER_SPECS: dict[str, tuple[tuple[str, ...], int]] = {
    "operator": (("OPERATOR",), 1),
    "supplier": (("SUPPLIER",), 1),
    "tier2": (("SUPPLIER",), 1),
    "buyer": (("BUYER",), 2),
    "buyer2": (("BUYER",), 1),
    "bank": (("FINANCIER",), 1),
    "factor": (("FINANCIER",), 1),
    "retailer": ((), 1),
}


def onboard(
    chain: Chain, registry: Contract, name: str, roles: tuple[str, ...], n_accounts: int = 1
) -> Member:
    member = Member(
        name=name,
        id=Web3.keccak(text=f"member:{name}:{uuid.uuid4()}"),
        accounts=[Account.create() for _ in range(n_accounts)],
        roles=roles,
    )
    chain.send(
        registry.functions.onboardMember(
            member.id, b"CN", [a.address for a in member.accounts], [ROLES[r] for r in roles]
        ),
        ADMIN,
    )
    return member


def build_env(w3: Web3) -> Env:
    chain = Chain(w3)
    # The admin is governance and guardian at once (no bootstrap, no timelock): the consortium's own
    # governance is covered by test_registry.py and test_governance.py; this module is about receivables.
    registry = chain.deploy("ConsortiumRegistry", ADMIN.address, 0, ADMIN.address, "0x" + "00" * 20, [])
    forwarder = chain.deploy("LedgerForwarder")
    receivables = chain.deploy("ReceivableRegistry", registry.address, forwarder.address, GRACE_PERIOD_DAYS)
    members = {name: onboard(chain, registry, name, roles, n) for name, (roles, n) in MEMBER_SPECS.items()}
    return Env(chain, registry, receivables, members)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    """A private anvil for this module: tests move its clock forward (to a due date, past the
    grace period), which no other module may see."""
    node = start_anvil()
    try:
        yield build_env(Web3(Web3.HTTPProvider(node.rpc_url)))
    finally:
        node.stop()


def advance_days(env: Env, days: int) -> None:
    """Move the private chain's clock forward by `days` and mine a block."""
    env.chain.w3.provider.make_request("evm_increaseTime", [days * DAY_S])
    env.chain.w3.provider.make_request("evm_mine", [])


@pytest.fixture(scope="module", autouse=True)
def gas_report() -> Iterator[None]:
    yield
    if GAS:
        print("\nReceivableRegistry gas per operation:")
        for label, gas in GAS.items():
            print(f"  {label:<36} {gas:>9,}")


_invoice_seq = itertools.count()


@dataclass
class Registered:
    id: bytes
    part0: bytes
    face_minor: int
    invoice_hash: bytes
    due_day: int


def register(
    env: Env,
    supplier: Member,
    buyer: Member,
    face_minor: int = 100_000_000,
    issue_day: int | None = None,
    due_day: int | None = None,
    invoice_number: str | None = None,
    label: str | None = None,
) -> Registered:
    today = env.chain.today()
    issue_day = today - 30 if issue_day is None else issue_day
    due_day = today + 60 if due_day is None else due_day
    number = invoice_number or f"INV-{next(_invoice_seq)}-{uuid.uuid4().hex[:8].upper()}"
    number_hash = invoice_number_hash(number)
    index = env.receivables.functions.registrationsOfInvoice(buyer.id, number_hash).call()
    receipt = env.send(
        env.receivables.functions.register(buyer.id, number, face_minor, b"CNY", issue_day, due_day),
        supplier,
        label,
    )
    (event,) = env.events(receipt, "ReceivableRegistered")
    rid = receivable_id(buyer.id, number_hash, index)
    assert event.args.receivableId == rid and event.args.partId == part_id(rid, 0)
    assert event.args.invoiceNumber == number and event.args.invoiceNumberHash == number_hash
    return Registered(rid, part_id(rid, 0), face_minor, number_hash, due_day)


ERRORS_SEEN: set[str] = set()  # every custom error a test of this module provoked


def revert_of(fn: Any, sender: Member | LocalAccount) -> Reverted:
    """The custom error with which `fn`, sent by `sender`, reverts (fails if it does not)."""
    account = sender.account if isinstance(sender, Member) else sender
    try:
        fn.call({"from": account.address})
    except (ContractCustomError, ContractPanicError) as exc:
        err = decode_revert(exc)
        ERRORS_SEEN.add(err.name)
        return err
    raise AssertionError("expected a revert")


def holdings(env: Env, rid: bytes) -> list[tuple[bytes, bytes, int, bool]]:
    ids, holders, amounts, financed = env.receivables.functions.partsOf(rid).call()
    return list(zip(ids, holders, amounts, financed, strict=True))


def finance(env: Env, holder: Member, financier: Member, pid: bytes, advance: int, fee: int = 0,
            labels: bool = False) -> Any:
    """Request, offer (ACT/360, 5 %) and accept directly; returns the acceptance receipt."""
    f = env.receivables.functions
    env.send(f.requestFinancing(pid, financier.id), holder, "requestFinancing" if labels else None)
    valid_until = env.chain.w3.eth.get_block("latest")["timestamp"] + 3600
    receipt = env.send(f.offerFinancing(pid, new_offer_id(), advance, fee, 50_000, 1, valid_until), financier,
                       "offerFinancing" if labels else None)
    (offered,) = env.events(receipt, "FinancingOffered")
    return env.send(f.acceptOffer(pid, offered.args.offerId), holder, "acceptOffer" if labels else None)


# ---- EIP-712 ------------------------------------------------------------------------------------


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def sign_typed(account: LocalAccount, typed: dict[str, Any]) -> bytes:
    return account.sign_message(encode_typed_data(full_message=typed)).signature


def confirm_typed(env: Env, rid: bytes, nonce: int, deadline: int, **override: Any) -> dict[str, Any]:
    """ConfirmReceivable over the receivable's terms as the chain holds them (the service's typed
    data builder: the contract checks that both agree); `override` changes a term."""
    r = env.receivables.functions.getReceivable(rid).call()
    terms = {"receivable_id": _hex(rid), "supplier_onchain_id": _hex(r[0]), "invoice_number_hash": _hex(r[2]),
             "face_value_minor": r[3], "currency": bytes(r[4]).decode(), "issue_day": r[5], "due_day": r[6],
             "nonce": nonce, "deadline": deadline, **override}
    return td.confirm_typed_data(CHAIN_ID, env.receivables.address, **terms)


def _part_terms(env: Env, pid: bytes) -> dict[str, Any]:
    p = env.receivables.functions.getPart(pid).call()
    r = env.receivables.functions.getReceivable(p[0]).call()
    return {"amount_minor": p[2], "currency": bytes(r[4]).decode(), "due_day": r[6]}


def new_offer_id() -> bytes:
    """A fresh offer id: the offering side chooses it (the service derives one; any unused id works)."""
    return uuid.uuid4().bytes * 2


def signed_offer_id(env: Env, pid: bytes, financier: Member, nonce: int) -> bytes:
    """The id the service gives a signed offer: derived from its nonce, as the typed data carries it."""
    return bytes.fromhex(td.offer_id_of(CHAIN_ID, env.receivables.address, part_id=_hex(pid),
                                        financier_onchain_id=_hex(financier.id), salt=nonce)[2:])


def offer_typed(env: Env, pid: bytes, financier: Member, terms: tuple[int, int, int, int, int], nonce: int,
                deadline: int, **override: Any) -> dict[str, Any]:
    advance, fee, rate, basis, valid_until = terms
    return td.offer_typed_data(CHAIN_ID, env.receivables.address, part_id=_hex(pid),
                               offer_id=_hex(signed_offer_id(env, pid, financier, nonce)),
                               financier_onchain_id=_hex(financier.id),
                               **{**_part_terms(env, pid), "advance_minor": advance, "fee_minor": fee,
                                  "discount_rate_ppm": rate, "day_count_basis": basis, "valid_until": valid_until,
                                  "nonce": nonce, "deadline": deadline, **override})


def accept_typed(env: Env, pid: bytes, nonce: int, deadline: int, **override: Any) -> dict[str, Any]:
    """AcceptFinancingOffer over the part's current offer as the chain holds it."""
    fin = env.receivables.functions.getFinancing(pid).call()
    terms = {**_part_terms(env, pid), "advance_minor": fin[2], "fee_minor": fin[3], "discount_rate_ppm": fin[5],
             "day_count_basis": fin[6], "valid_until": fin[4], "nonce": nonce, "deadline": deadline}
    fields = {"offer_id": _hex(fin[1]), "financier_onchain_id": _hex(fin[0]), **terms, **override}
    return td.accept_typed_data(CHAIN_ID, env.receivables.address, part_id=_hex(pid), **fields)


def repay_all(env: Env, rid: bytes, buyer: Member, labels: bool = False) -> list[tuple[bytes, bytes, int]]:
    """The buyer reports its repayment, then each holder confirms receipt of its part; returns
    (part, holder, amount) of each PartRepaid, in part order; the last one settles."""
    f = env.receivables.functions
    receipt = env.send(f.reportRepayment(rid), buyer, "reportRepayment" if labels else None)
    assert env.events(receipt, "RepaymentReported")[0].args.faceValueMinor == f.getReceivable(rid).call()[3]
    out = []
    rows = holdings(env, rid)
    for i, (pid, holder_id, amount, _financed) in enumerate(rows):
        assert f.statusOf(rid).call() != STATUS["Settled"]
        holder = next(m for m in env.members.values() if m.id == holder_id)
        receipt = env.send(f.confirmRepaymentReceived(pid), holder, "confirmRepaymentReceived" if labels else None)
        (event,) = env.events(receipt, "PartRepaid")
        out.append((event.args.partId, event.args.holderId, event.args.amountMinor))
        assert bool(env.events(receipt, "ReceivableSettled")) == (i == len(rows) - 1)
    return out


def key_of(record_id: bytes) -> int:
    return td.nonce_key(_hex(record_id))


# ---- tests ----------------------------------------------------------------------------------------


def test_zero_balance_member_can_transact(env: Env) -> None:
    """Members' fresh keys hold no ether, yet their transactions (gas price 0) are mined."""
    supplier = env["supplier"]
    assert env.chain.w3.eth.get_balance(supplier.account.address) == 0
    reg = register(env, supplier, env["buyer"])
    assert env.receivables.functions.getReceivable(reg.id).call()[7] == STATUS["Registered"]


def test_invoice_number_hash_matches_the_contract_and_only_canonical_numbers_pass(env: Env) -> None:
    """The contract hashes the canonical number's letters and digits itself (Python's
    invoice_number_hash agrees) and refuses any other form, naming the offending byte."""
    f = env.receivables.functions
    for typed in (" inv 2024/001 ", "INV-2024-001", "ＩＮＶ　２０２４－００１", "044031900111-12345678"):
        number = normalise_invoice_number(typed)
        assert f.invoiceNumberHashOf(number).call() == invoice_number_hash(typed)
    assert f.invoiceNumberHashOf("INV-2024/001").call() == f.invoiceNumberHashOf("INV2024001").call() == \
        Web3.keccak(text="INV2024001")
    for bad, position in (("", 0), ("inv-1", 0), ("-INV1", 0), ("INV1-", 4), ("INV--1", 4), ("INV 1", 3),
                          ("INV_1", 3), ("A" * 65, 65), ("ÄB", 0)):
        err = revert_of(f.invoiceNumberHashOf(bad), env["supplier"])
        assert (err.name, err.args_) == ("ReceivableInvalidInvoiceNumber", (position,)), bad
        today = env.chain.today()
        err = revert_of(f.register(env["buyer"].id, bad, 10_000, b"CNY", today, today), env["supplier"])
        assert err.name == "ReceivableInvalidInvoiceNumber"


def test_one_invoice_identity_whoever_registers_it_and_whatever_the_terms(env: Env) -> None:
    """Issue 13: the same buyer invoice registered again (another amount, other dates, another
    supplier, another spelling of its number) is refused; another buyer's invoice with the same
    number is another identity. Fails on the old contract, whose guard was a supplier-chosen hash
    covering amounts and dates."""
    f = env.receivables.functions
    supplier, tier2, buyer = env["supplier"], env["tier2"], env["buyer"]
    number = f"INV-{uuid.uuid4().hex[:10].upper()}"
    first = register(env, supplier, buyer, face_minor=1_000, invoice_number=number)
    today = env.chain.today()
    variant = number.replace("-", "/")
    for who, num, face, due in ((supplier, number, 1_001, today + 60), (tier2, number, 1_000, today + 60),
                                (supplier, variant, 1_000, today + 61), (tier2, number.replace("-", ""), 5, today)):
        err = revert_of(f.register(buyer.id, num, max(face, 100), b"CNY", today - 30, due), who)
        assert (err.name, err.args_) == \
            ("ReceivableInvoiceAlreadyRegistered", (buyer.id, first.invoice_hash, first.id))
    assert f.receivableOfInvoice(buyer.id, first.invoice_hash).call() == first.id
    other_buyer = register(env, supplier, env["buyer2"], invoice_number=number)
    assert other_buyer.id != first.id and other_buyer.invoice_hash == first.invoice_hash


def test_cancel_and_reject_free_the_identity_and_squatting_ends_with_the_buyers_rejection(env: Env) -> None:
    """A registered receivable may be cancelled by its supplier or rejected by its buyer, which
    frees its invoice identity (the next registration gets a new id); a squatter's registration of
    another supplier's invoice is undone by the buyer's rejection, never by the squatter's silence.
    Once confirmed, neither is possible."""
    f = env.receivables.functions
    supplier, tier2, buyer = env["supplier"], env["tier2"], env["buyer"]
    number = f"PO-{uuid.uuid4().hex[:10].upper()}"
    squat = register(env, tier2, buyer, invoice_number=number)
    assert revert_of(f.register(buyer.id, number, 10_000, b"CNY", 1, 2), supplier).name == \
        "ReceivableInvoiceAlreadyRegistered"
    err = revert_of(f.reject(squat.id), env["buyer2"])
    assert (err.name, err.args_) == ("ReceivableNotBuyer", (squat.id, env["buyer2"].id))
    assert revert_of(f.reject(squat.id), supplier).name == "RegistryMissingRole"
    assert revert_of(f.cancel(squat.id), supplier).name == "ReceivableNotSupplier"
    receipt = env.send(f.reject(squat.id), buyer, "reject")
    assert env.events(receipt, "ReceivableRejected")[0].args.buyerId == buyer.id
    assert f.statusOf(squat.id).call() == STATUS["Rejected"]
    assert f.receivableOfInvoice(buyer.id, squat.invoice_hash).call() == bytes(32)
    assert revert_of(f.confirm(squat.id), buyer).name == "ReceivableWrongStatus"
    assert revert_of(f.splitPart(squat.part0, [5_000, 5_000]), tier2).name == "ReceivableWrongStatus"

    genuine = register(env, supplier, buyer, invoice_number=number)
    assert genuine.id == receivable_id(buyer.id, squat.invoice_hash, 1) != squat.id
    receipt = env.send(f.cancel(genuine.id), supplier, "cancel")
    assert env.events(receipt, "ReceivableCancelled")[0].args.supplierId == supplier.id
    assert f.statusOf(genuine.id).call() == STATUS["Cancelled"]
    assert revert_of(f.cancel(genuine.id), supplier).name == "ReceivableWrongStatus"
    again = register(env, supplier, buyer, invoice_number=number)
    assert again.id == receivable_id(buyer.id, squat.invoice_hash, 2)
    assert f.registrationsOfInvoice(buyer.id, squat.invoice_hash).call() == 3
    env.send(f.confirm(again.id), buyer)
    assert revert_of(f.cancel(again.id), supplier).name == "ReceivableWrongStatus"
    assert revert_of(f.reject(again.id), buyer).name == "ReceivableWrongStatus"


def test_registration_checks_roles_and_fields(env: Env) -> None:
    """Only suppliers register; the buyer must be another active BUYER member; fields are checked."""
    f = env.receivables.functions
    today = env.chain.today()
    h = f"INV-{uuid.uuid4().hex[:12].upper()}"
    buyer = env["buyer"]
    supplier = env["supplier"]
    assert revert_of(f.register(buyer.id, h, 10_000, b"CNY", today, today + 1), env["bank"]).name == \
        "RegistryMissingRole"
    assert revert_of(f.register(env["bank"].id, h, 10_000, b"CNY", today, today + 1), supplier).name == \
        "ReceivableInvalidBuyer"
    assert revert_of(f.register(buyer.id, h, 99, b"CNY", today, today + 1), env["supplier"]).name == \
        "ReceivablePartTooSmall"
    assert revert_of(f.register(buyer.id, h, 10_000, b"cny", today, today + 1), env["supplier"]).name == \
        "ReceivableInvalidCurrency"
    assert revert_of(f.register(buyer.id, h, 10_000, b"CNY", today, today - 1), env["supplier"]).name == \
        "ReceivableInvalidDates"


def test_full_lifecycle_with_tier2_financing(env: Env) -> None:
    """Register, confirm, split, pass a part to a tier-2 supplier who finances it, finance the rest,
    repay at maturity: each holder is repaid exactly what it holds, in sum the face value."""
    f = env.receivables.functions
    supplier, tier2, buyer, bank, factor = (env[n] for n in ("supplier", "tier2", "buyer", "bank", "factor"))
    today = env.chain.today()
    reg = register(env, supplier, buyer, face_minor=100_000_000, issue_day=today - 90, due_day=today,
                   label="register")
    assert revert_of(f.requestFinancing(reg.part0, bank.id), supplier).name == "ReceivableWrongStatus"

    receipt = env.send(f.confirm(reg.id), buyer, "confirm")
    (confirmed,) = env.events(receipt, "ReceivableConfirmed")
    assert confirmed.args.buyerId == buyer.id and confirmed.args.signer == buyer.account.address

    receipt = env.send(f.splitPart(reg.part0, [60_000_000, 40_000_000]), supplier, "splitPart (2 parts)")
    (split,) = env.events(receipt, "PartSplit")
    part1 = split.args.newPartId
    assert part1 == part_id(reg.id, 1)
    env.send(f.transferPart(part1, tier2.id), supplier, "transferPart")

    # The tier-2 supplier finances the part it received; the terms come from settlement.domains.receivables.terms.
    terms = financing_terms(
        40_000_000, "CNY", 50_000, date(2025, 1, 1), date(2025, 3, 2), DayCountBasis.ACT_360, fee_minor=10_000
    )
    receipt = finance(env, tier2, bank, part1, terms.advance_minor, terms.fee_minor, labels=True)
    (accepted,) = env.events(receipt, "FinancingAccepted")
    assert accepted.args.sellerId == tier2.id and accepted.args.financierId == bank.id
    assert accepted.args.advanceMinor == terms.advance_minor == 40_000_000 - 333_333 - 10_000
    assert accepted.args.amountMinor == 40_000_000 and accepted.args.currency == b"CNY"
    finance(env, supplier, factor, reg.part0, 59_000_000)

    assert sum(h[2] for h in holdings(env, reg.id)) == reg.face_minor
    assert revert_of(f.transferPart(part1, supplier.id), bank).name == "ReceivablePartAlreadyFinanced"

    repaid = repay_all(env, reg.id, buyer, labels=True)
    assert repaid == [(reg.part0, factor.id, 60_000_000), (part1, bank.id, 40_000_000)]
    assert sum(a for _, _, a in repaid) == reg.face_minor
    assert env.receivables.functions.statusOf(reg.id).call() == STATUS["Settled"]
    # A settled receivable is closed: no second repayment, no financing.
    assert revert_of(f.reportRepayment(reg.id), buyer).name == "ReceivableWrongStatus"


def test_financing_refused_when_unconfirmed_financed_settled_or_defaulted(env: Env) -> None:
    """A part is financed at most once, and only while its receivable is confirmed and open."""
    f = env.receivables.functions
    supplier, buyer, bank, factor = (env[n] for n in ("supplier", "buyer", "bank", "factor"))
    today = env.chain.today()

    unconfirmed = register(env, supplier, buyer)
    err = revert_of(f.requestFinancing(unconfirmed.part0, bank.id), supplier)
    assert (err.name, err.args_) == ("ReceivableWrongStatus", (unconfirmed.id, STATUS["Registered"]))

    # Financed once: never again, by the new holder nor through another financier.
    overdue = register(env, supplier, buyer, face_minor=1_000_000, issue_day=today - 120, due_day=today + 1)
    env.send(f.confirm(overdue.id), buyer)
    env.send(f.splitPart(overdue.part0, [500_000, 500_000]), supplier)
    finance(env, supplier, bank, overdue.part0, 490_000)
    for holder in (supplier, bank):
        err = revert_of(f.requestFinancing(overdue.part0, factor.id), holder)
        assert err.name in ("ReceivablePartAlreadyFinanced", "RegistryMissingRole")
    err = revert_of(f.requestFinancing(overdue.part0, factor.id), supplier)
    assert (err.name, err.args_) == ("ReceivablePartAlreadyFinanced", (overdue.part0,))
    advance_days(env, GRACE_PERIOD_DAYS + 2)
    today = env.chain.today()
    assert f.statusOf(overdue.id).call() == STATUS["Overdue"]
    err = revert_of(f.splitPart(overdue.part0, [250_000, 250_000]), bank)
    assert (err.name, err.args_) == ("ReceivableDue", (overdue.id, overdue.due_day, today))

    # Default: only a financier holding a financed part, only once overdue.
    assert revert_of(f.declareDefault(overdue.id), factor).name == "ReceivableNotPartFinancier"
    receipt = env.send(f.declareDefault(overdue.id), bank, "declareDefault")
    assert env.events(receipt, "ReceivableDefaulted")[0].args.financierId == bank.id
    err = revert_of(f.requestFinancing(part_id(overdue.id, 1), factor.id), supplier)
    assert (err.name, err.args_) == ("ReceivableWrongStatus", (overdue.id, STATUS["Defaulted"]))
    assert revert_of(f.transferPart(part_id(overdue.id, 1), env["tier2"].id), supplier).name == \
        "ReceivableWrongStatus"
    # A defaulted receivable repaid late (recovery) settles to the current holders; the operator
    # cannot report a repayment for the buyer.
    assert revert_of(f.reportRepayment(overdue.id), env["operator"]).name == "RegistryMissingRole"
    assert sorted((h, a) for _, h, a in repay_all(env, overdue.id, buyer)) == \
        sorted([(bank.id, 500_000), (supplier.id, 500_000)])

    settled = register(env, supplier, buyer, face_minor=1_000_000, issue_day=today - 60, due_day=today)
    env.send(f.confirm(settled.id), buyer)
    repay_all(env, settled.id, buyer)
    err = revert_of(f.requestFinancing(settled.part0, bank.id), supplier)
    assert (err.name, err.args_) == ("ReceivableWrongStatus", (settled.id, STATUS["Settled"]))

    not_yet = register(env, supplier, buyer, due_day=today + 5)
    env.send(f.confirm(not_yet.id), buyer)
    assert revert_of(f.reportRepayment(not_yet.id), buyer).name == "ReceivableNotMatured"
    env.send(f.splitPart(not_yet.part0, [50_000_000, 50_000_000]), supplier)
    finance(env, supplier, bank, not_yet.part0, 49_000_000)
    assert revert_of(f.declareDefault(not_yet.id), bank).name == "ReceivableNotOverdue"
    # Repayment is the buyer's to report.
    assert revert_of(f.reportRepayment(not_yet.id), supplier).name == "RegistryMissingRole"
    err = revert_of(f.reportRepayment(not_yet.id), env["buyer2"])
    assert (err.name, err.args_) == ("ReceivableNotBuyer", (not_yet.id, env["buyer2"].id))


def test_split_and_transfer_rules(env: Env) -> None:
    """Splits keep the sum exact; more than held, dust parts and strangers are refused; an open
    financing request locks the part until withdrawn."""
    f = env.receivables.functions
    supplier, tier2, buyer, bank = (env[n] for n in ("supplier", "tier2", "buyer", "bank"))
    reg = register(env, supplier, buyer, face_minor=10_000)
    env.send(f.confirm(reg.id), buyer)
    err = revert_of(f.splitPart(reg.part0, [6_000, 5_000]), supplier)
    assert (err.name, err.args_) == ("ReceivableInvalidSplit", (reg.part0, 10_000, 11_000))
    assert revert_of(f.splitPart(reg.part0, [9_950, 50]), supplier).name == "ReceivablePartTooSmall"
    assert revert_of(f.splitPart(reg.part0, [10_000]), supplier).name == "ReceivableInvalidSplit"
    assert revert_of(f.splitPart(reg.part0, [5_000, 5_000]), tier2).name == "ReceivableNotHolder"
    too_many = [PART_AMOUNT_MIN] * (PARTS_PER_RECEIVABLE_MAX + 1)
    too_many[0] = 10_000 - PART_AMOUNT_MIN * PARTS_PER_RECEIVABLE_MAX
    assert revert_of(f.splitPart(reg.part0, too_many), supplier).name == "ReceivableTooManyParts"
    receipt = env.send(f.splitPart(reg.part0, [1_000] * 10), supplier, "splitPart (10 parts)")
    assert len(env.events(receipt, "PartSplit")) == 9
    assert [h[2] for h in holdings(env, reg.id)] == [1_000] * 10

    # Recipients: active members with the SUPPLIER or FINANCIER role, never the holder nor the buyer.
    for to in (supplier.id, Web3.keccak(text="nobody"), env["retailer"].id, buyer.id, env["operator"].id):
        err = revert_of(f.transferPart(reg.part0, to), supplier)
        assert (err.name, err.args_) == ("ReceivableInvalidRecipient", (to,))
    env.send(f.requestFinancing(reg.part0, bank.id), supplier)
    err = revert_of(f.transferPart(reg.part0, tier2.id), supplier)
    assert (err.name, err.args_) == ("ReceivablePartLocked", (reg.part0, bank.id))
    env.send(f.withdrawFinancingRequest(reg.part0), supplier)
    assert revert_of(f.offerFinancing(reg.part0, new_offer_id(), 900, 0, 50_000, 1, 2**40), bank).name == \
        "ReceivableNoFinancingRequest"
    env.send(f.transferPart(part_id(reg.id, 1), tier2.id), supplier)
    env.send(f.transferPart(reg.part0, env["factor"].id), supplier)  # a financier may buy outright
    # A holder without the SUPPLIER role cannot ask for financing.
    assert revert_of(f.requestFinancing(reg.part0, bank.id), env["factor"]).name == "RegistryMissingRole"
    assert sum(h[2] for h in holdings(env, reg.id)) == reg.face_minor


def test_parts_stop_moving_after_the_due_date(env: Env) -> None:
    """Issue 13: once its receivable is past its due date, a part can be neither split,
    transferred nor financed (the old contract allowed all three until default)."""
    f = env.receivables.functions
    supplier, tier2, buyer, bank = (env[n] for n in ("supplier", "tier2", "buyer", "bank"))
    today = env.chain.today()
    reg = register(env, supplier, buyer, face_minor=10_000, issue_day=today - 10, due_day=today)
    env.send(f.confirm(reg.id), buyer)
    env.send(f.splitPart(reg.part0, [5_000, 5_000]), supplier)  # on the due date itself: still allowed
    env.send(f.requestFinancing(part_id(reg.id, 1), bank.id), supplier)
    valid_until = env.chain.w3.eth.get_block("latest")["timestamp"] + 10 * DAY_S
    receipt = env.send(f.offerFinancing(part_id(reg.id, 1), new_offer_id(), 4_900, 0, 50_000, 1, valid_until), bank)
    offer_id = env.events(receipt, "FinancingOffered")[0].args.offerId
    advance_days(env, 1)
    due = ("ReceivableDue", (reg.id, reg.due_day, reg.due_day + 1))
    for fn, who in ((f.splitPart(reg.part0, [2_500, 2_500]), supplier), (f.transferPart(reg.part0, tier2.id), supplier),
                    (f.requestFinancing(reg.part0, bank.id), supplier),
                    (f.offerFinancing(part_id(reg.id, 1), new_offer_id(), 4_800, 0, 50_000, 1, valid_until), bank),
                    (f.acceptOffer(part_id(reg.id, 1), offer_id), supplier)):
        err = revert_of(fn, who)
        assert (err.name, err.args_) == due


def test_offer_rules(env: Env) -> None:
    """Only the named financier offers; bad terms, superseded and expired offers are refused."""
    f = env.receivables.functions
    supplier, buyer, bank, factor = (env[n] for n in ("supplier", "buyer", "bank", "factor"))
    reg = register(env, supplier, buyer, face_minor=10_000)
    env.send(f.confirm(reg.id), buyer)
    assert revert_of(f.requestFinancing(reg.part0, buyer.id), supplier).name == "ReceivableInvalidFinancier"
    env.send(f.requestFinancing(reg.part0, bank.id), supplier)
    now = env.chain.w3.eth.get_block("latest")["timestamp"]
    assert revert_of(f.offerFinancing(reg.part0, new_offer_id(), 9_000, 0, 50_000, 1, now + 600), factor).name == \
        "ReceivableNotFinancier"
    assert revert_of(f.offerFinancing(reg.part0, new_offer_id(), 9_000, 1_001, 50_000, 1, now + 600), bank).name == \
        "ReceivableInvalidOffer"
    assert revert_of(f.offerFinancing(reg.part0, new_offer_id(), 9_000, 0, 50_000, 3, now + 600), bank).name == \
        "ReceivableInvalidOffer"
    assert revert_of(f.offerFinancing(reg.part0, new_offer_id(), 0, 0, 50_000, 1, now + 600), bank).name == \
        "ReceivableInvalidOffer"
    first = env.events(env.send(f.offerFinancing(reg.part0, new_offer_id(), 9_000, 0, 50_000, 1, now + 600), bank),
                       "FinancingOffered")[0].args.offerId
    second = env.events(env.send(f.offerFinancing(reg.part0, new_offer_id(), 9_100, 0, 40_000, 2, now + 600), bank),
                        "FinancingOffered")[0].args.offerId
    assert revert_of(f.acceptOffer(reg.part0, first), supplier).name == "ReceivableUnknownOffer"
    assert revert_of(f.acceptOffer(reg.part0, second), env["tier2"]).name == "ReceivableNotHolder"
    env.send(f.acceptOffer(reg.part0, second), supplier)
    financing = f.getFinancing(reg.part0).call()
    assert financing[0] == bank.id and financing[1] == second and financing[2] == 9_100 and financing[7] is False
    assert f.partOfOffer(first).call() == f.partOfOffer(second).call() == reg.part0


def test_offer_ids_are_chosen_by_the_offering_side_and_never_reused(env: Env) -> None:
    """Issue 15: offers are keyed by an id the caller chooses (the service assigns it before
    sending, so its create answer names it); an id used before, by this or any other offer on any
    part, and the zero id are refused with ReceivableOfferIdTaken, and the event carries the id sent."""
    f = env.receivables.functions
    supplier, buyer, bank = env["supplier"], env["buyer"], env["bank"]
    reg, other = register(env, supplier, buyer), register(env, supplier, buyer)
    for r in (reg, other):
        env.send(f.confirm(r.id), buyer)
        env.send(f.requestFinancing(r.part0, bank.id), supplier)
    now = env.chain.w3.eth.get_block("latest")["timestamp"]
    chosen = new_offer_id()
    receipt = env.send(f.offerFinancing(reg.part0, chosen, 9_000, 0, 50_000, 1, now + 600), bank)
    assert env.events(receipt, "FinancingOffered")[0].args.offerId == chosen
    assert f.partOfOffer(chosen).call() == reg.part0
    for part in (reg.part0, other.part0):  # the same part (a superseding offer) or another part
        err = revert_of(f.offerFinancing(part, chosen, 8_000, 0, 50_000, 1, now + 600), bank)
        assert (err.name, err.args_) == ("ReceivableOfferIdTaken", (chosen,))
    err = revert_of(f.offerFinancing(other.part0, bytes(32), 8_000, 0, 50_000, 1, now + 600), bank)
    assert (err.name, err.args_) == ("ReceivableOfferIdTaken", (bytes(32),))
    assert f.getFinancing(reg.part0).call()[1] == chosen  # the refused offers changed nothing
    assert f.partOfOffer(bytes(32)).call() == bytes(32)
    receipt = env.send(f.acceptOffer(reg.part0, chosen), supplier)
    assert env.events(receipt, "FinancingAccepted")[0].args.offerId == chosen
    part = f.getPart(reg.part0).call()
    assert part[1] == bank.id and part[3] is True


def test_confirmation_only_by_the_named_buyer(env: Env) -> None:
    """Another buyer, the supplier or the operator cannot confirm; nor twice."""
    f = env.receivables.functions
    reg = register(env, env["supplier"], env["buyer"])
    err = revert_of(f.confirm(reg.id), env["buyer2"])
    assert (err.name, err.args_) == ("ReceivableNotBuyer", (reg.id, env["buyer2"].id))
    assert revert_of(f.confirm(reg.id), env["supplier"]).name == "RegistryMissingRole"
    assert revert_of(f.confirm(reg.id), env["operator"]).name == "RegistryMissingRole"
    unknown = Web3.keccak(text="no such receivable")
    assert revert_of(f.confirm(unknown), env["buyer"]).name == "ReceivableUnknown"
    env.send(f.confirm(reg.id), env["buyer"].accounts[1])  # any account of the buyer member
    assert revert_of(f.confirm(reg.id), env["buyer"]).name == "ReceivableWrongStatus"


def test_suspended_member_cannot_act(env: Env) -> None:
    """Suspension stops a member at once: it cannot register, confirm, move parts nor sign."""
    f = env.receivables.functions
    chain, registry = env.chain, env.registry
    supplier = onboard(chain, registry, "suspendable-supplier", ("SUPPLIER",))
    buyer = onboard(chain, registry, "suspendable-buyer", ("BUYER",))
    reg = register(env, supplier, buyer)
    pending = register(env, supplier, buyer)
    env.send(f.confirm(reg.id), buyer)

    chain.send(registry.functions.suspendMember(buyer.id), ADMIN)
    assert revert_of(f.confirm(pending.id), buyer).name == "RegistryMemberNotActive"
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 600
    nonce = f.nonces(buyer.id, key_of(pending.id)).call()
    sig = sign_typed(buyer.account, confirm_typed(env, pending.id, nonce, deadline))
    fn = f.confirmWithSignature(pending.id, buyer.account.address, nonce, deadline, sig)
    assert revert_of(fn, env["operator"]).name == "RegistryMemberNotActive"
    assert revert_of(f.register(buyer.id, "X1", 1_000, b"CNY", 1, 2), supplier).name == "ReceivableInvalidBuyer"

    chain.send(registry.functions.suspendMember(supplier.id), ADMIN)
    halves = [500, reg.face_minor - 500]
    assert revert_of(f.splitPart(reg.part0, halves), supplier).name == "RegistryMemberNotActive"
    assert revert_of(f.transferPart(reg.part0, env["tier2"].id), supplier).name == "RegistryMemberNotActive"
    assert revert_of(f.requestFinancing(reg.part0, env["bank"].id), supplier).name == \
        "RegistryMemberNotActive"
    # Nor can anyone pass a part to it.
    other = register(env, env["supplier"], env["buyer"])
    env.send(f.confirm(other.id), env["buyer"])
    assert revert_of(f.transferPart(other.part0, supplier.id), env["supplier"]).name == \
        "ReceivableInvalidRecipient"

    chain.send(registry.functions.reactivateMember(supplier.id), ADMIN)
    env.send(f.splitPart(reg.part0, halves), supplier)

    # A financier suspended after its offer cannot receive the part.
    financier = onboard(chain, registry, "suspendable-financier", ("FINANCIER",))
    env.send(f.requestFinancing(reg.part0, financier.id), supplier)
    valid_until = chain.w3.eth.get_block("latest")["timestamp"] + 600
    receipt = env.send(f.offerFinancing(reg.part0, new_offer_id(), 400, 0, 50_000, 1, valid_until), financier)
    offer_id = env.events(receipt, "FinancingOffered")[0].args.offerId
    chain.send(registry.functions.suspendMember(financier.id), ADMIN)
    err = revert_of(f.acceptOffer(reg.part0, offer_id), supplier)
    assert (err.name, err.args_) == ("ReceivableInvalidFinancier", (financier.id,))


def test_eip712_confirmation_and_acceptance(env: Env) -> None:
    """The operator relays the buyer's signed confirmation and the holder's signed acceptance;
    a signature by another member's key, a replay, a stale deadline, a used nonce or changed terms
    revert."""
    f = env.receivables.functions
    supplier, buyer, bank, operator = (env[n] for n in ("supplier", "buyer", "bank", "operator"))
    w3 = env.chain.w3
    reg = register(env, supplier, buyer)
    deadline = w3.eth.get_block("latest")["timestamp"] + 600
    nonce = f.nonces(buyer.id, key_of(reg.id)).call()
    assert nonce == key_of(reg.id) << 64  # sequence 0 of this receivable's key

    typed = confirm_typed(env, reg.id, nonce, deadline)
    forged = sign_typed(operator.account, typed)
    err = revert_of(f.confirmWithSignature(reg.id, operator.account.address, nonce, deadline, forged), operator)
    assert (err.name, err.args_) == ("ReceivableWrongSigner", (operator.account.address, operator.id, buyer.id))
    err = revert_of(f.confirmWithSignature(reg.id, buyer.account.address, nonce, deadline, forged), operator)
    assert (err.name, err.args_) == ("ReceivableInvalidSignature", (buyer.account.address,))
    stale = sign_typed(buyer.account, confirm_typed(env, reg.id, nonce, deadline - 3600))
    assert revert_of(f.confirmWithSignature(reg.id, buyer.account.address, nonce, deadline - 3600, stale),
                     operator).name == "ReceivableSignatureExpired"
    assert revert_of(f.confirmWithSignature(reg.id, buyer.account.address, nonce, deadline, b"\x01" * 64),
                     operator).name == "ReceivableInvalidSignature"
    ahead = sign_typed(buyer.account, confirm_typed(env, reg.id, nonce + 1, deadline))
    err = revert_of(f.confirmWithSignature(reg.id, buyer.account.address, nonce + 1, deadline, ahead), operator)
    assert (err.name, err.args_) == ("ReceivableInvalidNonce", (buyer.id, nonce + 1, nonce))

    good = sign_typed(buyer.accounts[1], typed)
    receipt = env.send(f.confirmWithSignature(reg.id, buyer.accounts[1].address, nonce, deadline, good), operator,
                       "confirmWithSignature")
    assert env.events(receipt, "ReceivableConfirmed")[0].args.signer == buyer.accounts[1].address
    assert f.nonces(buyer.id, key_of(reg.id)).call() == nonce + 1
    # Replaying the same signature on another receivable fails: other terms.
    other = register(env, supplier, buyer)
    assert revert_of(f.confirmWithSignature(other.id, buyer.accounts[1].address, nonce, deadline, good),
                     operator).name == "ReceivableInvalidSignature"

    env.send(f.requestFinancing(reg.part0, bank.id), supplier)
    receipt = env.send(f.offerFinancing(reg.part0, new_offer_id(), 98_000_000, 100_000, 50_000, 2, deadline), bank)
    offer_id = env.events(receipt, "FinancingOffered")[0].args.offerId
    s_nonce = f.nonces(supplier.id, key_of(reg.part0)).call()
    typed = accept_typed(env, reg.part0, s_nonce, deadline)
    assert typed["message"]["offerId"] == _hex(offer_id) and typed["message"]["advanceMinor"] == 98_000_000

    forged = sign_typed(operator.account, typed)
    fn = f.acceptOfferWithSignature(reg.part0, offer_id, operator.account.address, s_nonce, deadline, forged)
    assert revert_of(fn, operator).name == "ReceivableWrongSigner"
    # A signature over other terms (a higher advance, another rate) does not accept this offer.
    for tampered in ({"advance_minor": 99_000_000}, {"discount_rate_ppm": 40_000}, {"due_day": reg.due_day + 30}):
        sig = sign_typed(supplier.account, accept_typed(env, reg.part0, s_nonce, deadline, **tampered))
        fn = f.acceptOfferWithSignature(reg.part0, offer_id, supplier.account.address, s_nonce, deadline, sig)
        assert revert_of(fn, operator).name == "ReceivableInvalidSignature", tampered

    sig = sign_typed(supplier.account, typed)
    receipt = env.send(f.acceptOfferWithSignature(reg.part0, offer_id, supplier.account.address, s_nonce, deadline,
                                                   sig), operator, "acceptOfferWithSignature")
    accepted = env.events(receipt, "FinancingAccepted")[0].args
    assert (accepted.sellerId, accepted.financierId, accepted.advanceMinor) == \
        (supplier.id, bank.id, 98_000_000)
    fn = f.acceptOfferWithSignature(reg.part0, offer_id, supplier.account.address, s_nonce, deadline, sig)
    assert revert_of(fn, operator).name == "ReceivablePartAlreadyFinanced"
    domain_sep = f.domainSeparator().call()
    assert domain_sep == Web3.keccak(
        Web3.keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + Web3.keccak(text="ReceivableRegistry") + Web3.keccak(text="1")
        + CHAIN_ID.to_bytes(32, "big") + bytes(12) + bytes.fromhex(env.receivables.address[2:])
    )


def test_the_buyer_confirms_terms_not_a_hash(env: Env) -> None:
    """Issue 13: a buyer that signed its genuine invoice (5,000, due in 60 days) cannot be made to
    confirm a receivable registered with a face value of 5,000,000 or another due date or another
    supplier: the signature names the terms and the contract checks them against the receivable.
    On the old contract the confirmation covered only (id, invoice hash, nonce, deadline)."""
    f = env.receivables.functions
    supplier, tier2, buyer, operator = (env[n] for n in ("supplier", "tier2", "buyer", "operator"))
    today = env.chain.today()
    inflated = register(env, supplier, buyer, face_minor=5_000_000_00, due_day=today + 90)
    deadline = env.chain.w3.eth.get_block("latest")["timestamp"] + 600
    nonce = f.nonces(buyer.id, key_of(inflated.id)).call()
    for genuine in ({"face_value_minor": 5_000_00}, {"due_day": today + 60},
                    {"supplier_onchain_id": _hex(tier2.id)}, {"currency": "USD"},
                    {"invoice_number_hash": _hex(Web3.keccak(text="OTHER1"))}):
        sig = sign_typed(buyer.account, confirm_typed(env, inflated.id, nonce, deadline, **genuine))
        fn = f.confirmWithSignature(inflated.id, buyer.account.address, nonce, deadline, sig)
        err = revert_of(fn, operator)
        assert (err.name, err.args_) == ("ReceivableInvalidSignature", (buyer.account.address,)), genuine
    assert f.statusOf(inflated.id).call() == STATUS["Registered"]


def test_offer_by_signature_names_the_part_and_terms(env: Env) -> None:
    """A financier may offer by an EIP-712 FinancingOffer signature relayed by anyone; the
    signature covers the part (amount, currency, due date) and every term."""
    f = env.receivables.functions
    supplier, buyer, bank, factor, operator = (env[n] for n in ("supplier", "buyer", "bank", "factor", "operator"))
    reg = register(env, supplier, buyer, face_minor=1_000_000)
    env.send(f.confirm(reg.id), buyer)
    env.send(f.requestFinancing(reg.part0, bank.id), supplier)
    deadline = env.chain.w3.eth.get_block("latest")["timestamp"] + 600
    terms = (980_000, 1_000, 50_000, 1, deadline)
    nonce = f.nonces(bank.id, key_of(reg.part0)).call()
    by_factor = sign_typed(factor.account, offer_typed(env, reg.part0, bank, terms, nonce, deadline))
    err = revert_of(f.offerFinancingWithSignature(reg.part0, signed_offer_id(env, reg.part0, bank, nonce), terms, factor.account.address, nonce, deadline,
                                                  by_factor), operator)
    assert (err.name, err.args_) == ("ReceivableWrongSigner", (factor.account.address, factor.id, bank.id))
    cheaper = sign_typed(bank.account, offer_typed(env, reg.part0, bank, terms, nonce, deadline, advance_minor=900_000))
    assert revert_of(f.offerFinancingWithSignature(reg.part0, signed_offer_id(env, reg.part0, bank, nonce), terms, bank.account.address, nonce, deadline, cheaper),
                     operator).name == "ReceivableInvalidSignature"
    sig = sign_typed(bank.account, offer_typed(env, reg.part0, bank, terms, nonce, deadline))
    # The offer id is signed with the terms: a relayer cannot send the offer under another id.
    assert revert_of(f.offerFinancingWithSignature(reg.part0, new_offer_id(), terms, bank.account.address, nonce,
                                                   deadline, sig), operator).name == "ReceivableInvalidSignature"
    receipt = env.send(f.offerFinancingWithSignature(reg.part0, signed_offer_id(env, reg.part0, bank, nonce), terms, bank.account.address, nonce, deadline, sig),
                       operator, "offerFinancingWithSignature")
    offered = env.events(receipt, "FinancingOffered")[0].args
    assert (offered.financierId, offered.advanceMinor, offered.feeMinor) == (bank.id, 980_000, 1_000)
    assert revert_of(f.offerFinancingWithSignature(reg.part0, signed_offer_id(env, reg.part0, bank, nonce), terms, bank.account.address, nonce, deadline, sig),
                     operator).name == "ReceivableInvalidNonce"


def test_keyed_nonces_let_parallel_approvals_land_in_any_order_and_unused_ones_be_voided(env: Env) -> None:
    """Issue 13: with one sequential nonce per member, two approvals signed in parallel raced (the
    second relayed first failed). Nonces are keyed per flow (ERC-4337 style): approvals of
    different receivables land in any order. A member voids an unused signature with
    invalidateNonce (NoncesInvalidated); voiding below the current sequence is refused."""
    f = env.receivables.functions
    supplier, buyer, operator = env["supplier"], env["buyer"], env["operator"]
    deadline = env.chain.w3.eth.get_block("latest")["timestamp"] + 600
    regs = [register(env, supplier, buyer) for _ in range(3)]
    signed = []
    for reg in regs:
        nonce = f.nonces(buyer.id, key_of(reg.id)).call()
        signed.append((reg, nonce, sign_typed(buyer.account, confirm_typed(env, reg.id, nonce, deadline))))
    for reg, nonce, sig in (signed[1], signed[0]):  # relayed in the other order
        env.send(f.confirmWithSignature(reg.id, buyer.account.address, nonce, deadline, sig), operator)
        assert f.statusOf(reg.id).call() == STATUS["Confirmed"]

    reg, nonce, sig = signed[2]
    receipt = env.send(f.invalidateNonce(nonce), buyer.accounts[1], "invalidateNonce")
    (voided,) = env.events(receipt, "NoncesInvalidated")
    assert (voided.args.memberId, voided.args.key, voided.args.nextSequence) == (buyer.id, key_of(reg.id), 1)
    err = revert_of(f.confirmWithSignature(reg.id, buyer.account.address, nonce, deadline, sig), operator)
    assert (err.name, err.args_) == ("ReceivableInvalidNonce", (buyer.id, nonce, nonce + 1))
    err = revert_of(f.invalidateNonce(nonce), buyer)
    assert (err.name, err.args_) == ("ReceivableInvalidNonce", (buyer.id, nonce, nonce + 1))
    assert revert_of(f.invalidateNonce((key_of(reg.id) << 64) | (2**64 - 1)), buyer).name == "ReceivableInvalidNonce"
    # Voiding ahead skips every sequence up to it.
    env.send(f.invalidateNonce(nonce + 5), buyer)
    assert f.nonces(buyer.id, key_of(reg.id)).call() == nonce + 6
    assert revert_of(f.invalidateNonce(0), Account.create()).name == "RegistryNotAMember"


def _safe_of(env: Env, owners: list[LocalAccount], threshold: int) -> Contract:
    """A Safe 1.5.0 multisig (ConsortiumSafe proxy) whose fallback handler answers ERC-1271."""
    chain = env.chain
    if "safe" not in env.extra:
        env.extra["safe"] = (chain.deploy("ConsortiumSafe"), chain.deploy("ConsortiumSafeProxyFactory"),
                             chain.deploy("ConsortiumSafeFallbackHandler"))
    singleton, factory, handler = env.extra["safe"]
    zero = "0x" + "00" * 20
    setup = singleton.functions.setup([o.address for o in owners], threshold, zero, b"", handler.address, zero, 0,
                                      zero)
    receipt = chain.send(factory.functions.createProxyWithNonce(singleton.address, setup._encode_transaction_data(),
                                                                 uuid.uuid4().int % 2**64), ADMIN)
    (created,) = factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
    return chain.w3.eth.contract(address=created.args.proxy, abi=artifact("ConsortiumSafe")["abi"])


def safe_signature(env: Env, safe: Contract, owners: list[LocalAccount], typed: dict[str, Any]) -> bytes:
    """The owners' signatures, as the Safe's CompatibilityFallbackHandler checks them: each over
    the Safe message wrapping the EIP-712 digest, ordered by owner address."""
    handler = env.extra["safe"][2]
    digest = bytes.fromhex(td.typed_data_digest(typed)[2:])
    message_hash = handler.functions.getMessageHashForSafe(safe.address, digest.rjust(32, b"\0")).call()
    sigs = [o.unsafe_sign_hash(message_hash) for o in sorted(owners, key=lambda o: int(o.address, 16))]
    return b"".join(s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v]) for s in sigs)


def test_contract_wallets_approve_with_erc1271(env: Env) -> None:
    """Issue 13: a buyer and a bank whose accounts are Safe multisigs (2 of 3) confirm, offer and
    accept through ERC-1271; one owner's signature alone is not the wallet's approval."""
    f, chain, registry = env.receivables.functions, env.chain, env.registry
    operator, supplier = env["operator"], env["supplier"]
    owners = [Account.create() for _ in range(3)]
    buyer_safe, bank_safe = _safe_of(env, owners, 2), _safe_of(env, owners, 2)
    ms_buyer = Member("ms-buyer", Web3.keccak(text=f"member:ms-buyer:{uuid.uuid4()}"), [], ("BUYER",))
    ms_bank = Member("ms-bank", Web3.keccak(text=f"member:ms-bank:{uuid.uuid4()}"), [], ("FINANCIER",))
    for member, safe in ((ms_buyer, buyer_safe), (ms_bank, bank_safe)):
        chain.send(registry.functions.onboardMember(member.id, b"CN", [safe.address], [ROLES[member.roles[0]]]), ADMIN)

    reg = register(env, supplier, ms_buyer, face_minor=2_000_000)
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 600
    nonce = f.nonces(ms_buyer.id, key_of(reg.id)).call()
    typed = confirm_typed(env, reg.id, nonce, deadline)
    one = safe_signature(env, buyer_safe, owners[:1], typed)
    err = revert_of(f.confirmWithSignature(reg.id, buyer_safe.address, nonce, deadline, one), operator)
    assert (err.name, err.args_) == ("ReceivableInvalidSignature", (buyer_safe.address,))
    other_terms = safe_signature(env, buyer_safe, owners[:2], confirm_typed(env, reg.id, nonce, deadline,
                                                                             face_value_minor=1))
    assert revert_of(f.confirmWithSignature(reg.id, buyer_safe.address, nonce, deadline, other_terms),
                     operator).name == "ReceivableInvalidSignature"
    two = safe_signature(env, buyer_safe, owners[1:], typed)
    receipt = env.send(f.confirmWithSignature(reg.id, buyer_safe.address, nonce, deadline, two), operator,
                       "confirmWithSignature (Safe 2-of-3, ERC-1271)")
    assert env.events(receipt, "ReceivableConfirmed")[0].args.signer == buyer_safe.address

    env.send(f.requestFinancing(reg.part0, ms_bank.id), supplier)
    terms = (1_950_000, 0, 50_000, 2, deadline)
    b_nonce = f.nonces(ms_bank.id, key_of(reg.part0)).call()
    sig = safe_signature(env, bank_safe, owners[:2], offer_typed(env, reg.part0, ms_bank, terms, b_nonce, deadline))
    receipt = env.send(f.offerFinancingWithSignature(reg.part0, signed_offer_id(env, reg.part0, ms_bank, b_nonce), terms, bank_safe.address, b_nonce, deadline, sig),
                       operator, "offerFinancingWithSignature (Safe 2-of-3, ERC-1271)")
    offer_id = env.events(receipt, "FinancingOffered")[0].args.offerId
    env.send(f.acceptOffer(reg.part0, offer_id), supplier)
    assert f.getPart(reg.part0).call()[1] == ms_bank.id


def test_financed_ninety_days_then_repaid_at_maturity_with_clock_moving() -> None:
    """On a private chain whose clock we move: finance at day 0 with 90-day ACT/360 terms, the
    buyer cannot repay before the due date, repays on it; the financier is repaid the face value."""
    node = start_anvil()
    try:
        env = build_env(Web3(Web3.HTTPProvider(node.rpc_url)))
        f = env.receivables.functions
        supplier, buyer, bank = env["supplier"], env["buyer"], env["bank"]
        today = env.chain.today()
        reg = register(env, supplier, buyer, face_minor=100_000_000, issue_day=today, due_day=today + 90)
        env.send(f.confirm(reg.id), buyer)
        epoch = date(1970, 1, 1)
        terms = financing_terms(100_000_000, "CNY", 50_000, epoch + timedelta(days=today),
                                epoch + timedelta(days=today + 90), DayCountBasis.ACT_360)
        assert terms.discount_minor == 1_250_000
        receipt = finance(env, supplier, bank, reg.part0, terms.advance_minor)
        assert env.events(receipt, "FinancingAccepted")[0].args.advanceMinor == 98_750_000
        assert revert_of(f.reportRepayment(reg.id), buyer).name == "ReceivableNotMatured"

        env.chain.w3.provider.make_request("evm_increaseTime", [90 * DAY_S])
        env.chain.w3.provider.make_request("evm_mine", [])
        assert f.statusOf(reg.id).call() == STATUS["Confirmed"]
        assert [(h, a) for _, h, a in repay_all(env, reg.id, buyer)] == [(bank.id, 100_000_000)]

        late = register(env, supplier, buyer, face_minor=1_000_000, issue_day=today, due_day=today + 90)
        env.send(f.confirm(late.id), buyer)
        finance(env, supplier, bank, late.part0, 900_000)
        env.chain.w3.provider.make_request("evm_increaseTime", [(GRACE_PERIOD_DAYS + 1) * DAY_S])
        env.chain.w3.provider.make_request("evm_mine", [])
        assert f.statusOf(late.id).call() == STATUS["Overdue"]
        env.send(f.declareDefault(late.id), bank)
        assert f.statusOf(late.id).call() == STATUS["Defaulted"]
    finally:
        node.stop()


# ---- state machine ---------------------------------------------------------------------------------


class ReceivableMachine(RuleBasedStateMachine):
    """Random register/confirm/split/transfer/finance/repayment report/receipt/default sequences
    against the contract, mirrored by a Python model: holdings always sum to the face value and
    match the model, no part is financed twice, nothing moves once due or reported, and the repaid
    parts are each holder's exactly, face value in total when settled."""

    env: Env  # set by the test before running
    outcomes: Counter[str] = Counter()  # "rule: ok" or "rule: ErrorName", over the whole run

    HOLDERS = ("supplier", "tier2", "bank", "retailer", "buyer")
    SUPPLIERS = ("supplier", "tier2")
    FINANCIERS = ("bank", "factor")

    def __init__(self) -> None:
        super().__init__()
        self.receivables: list[dict[str, Any]] = []
        self.parts: list[tuple[int, bytes]] = []  # (receivable index, part id)
        self.holder: dict[bytes, str] = {}
        self.amount: dict[bytes, int] = {}
        self.financed: set[bytes] = set()
        self.today = self.env.chain.today()

    def _attempt(self, fn: Any, member: str, expected_error: str | None) -> Any:
        m = self.env[member]
        self.outcomes[f"{fn.fn_name}: {expected_error or 'ok'}"] += 1
        if expected_error is None:
            return self.env.send(fn, m)
        err = revert_of(fn, m)
        assert err.name == expected_error, (err, expected_error)
        return None

    def _pick_receivable(self, data: st.DataObject, useful: Any) -> dict[str, Any]:
        """Mostly a receivable on which the action can succeed (when there is one), else any."""
        candidates = [r for r in self.receivables if useful(r)]
        if candidates and data.draw(st.integers(0, 3)) > 0:
            return data.draw(st.sampled_from(candidates))
        return data.draw(st.sampled_from(self.receivables))

    def _pick_part(self, data: st.DataObject, useful: Any = None) -> tuple[int, bytes]:
        """Mostly a part on which the action can succeed (by default: an unfinanced part of a
        confirmed receivable), when there is one, else any."""
        useful = useful or (lambda r, p: r["status"] == "Confirmed" and p not in self.financed)
        candidates = [(ri, p) for ri, p in self.parts if useful(self.receivables[ri], p)]
        if candidates and data.draw(st.integers(0, 3)) > 0:
            return data.draw(st.sampled_from(candidates))
        return data.draw(st.sampled_from(self.parts))

    @initialize()
    def start(self) -> None:
        # Two confirmed receivables to work on from the first step: one repayable now, one not yet.
        for due in ("matured", "future"):
            self._register_one("supplier", 1_000_000, due)
            confirm = self.env.receivables.functions.confirm(self.receivables[-1]["id"])
            self.env.send(confirm, self.env["buyer"])
            self.receivables[-1]["status"] = "Confirmed"

    def _register_one(self, supplier: str, face: int, due: str) -> None:
        due_day = {"matured": self.today, "future": self.today + 30,
                   "overdue": self.today - GRACE_PERIOD_DAYS - 1}[due]
        reg = register(self.env, self.env[supplier], self.env["buyer"], face_minor=face,
                       issue_day=self.today - 120, due_day=due_day)
        self.receivables.append({"id": reg.id, "face": face, "status": "Registered", "due": due,
                                 "parts": [reg.part0]})
        self.parts.append((len(self.receivables) - 1, reg.part0))
        self.holder[reg.part0] = supplier
        self.amount[reg.part0] = face

    @rule(supplier=st.sampled_from(SUPPLIERS), face=st.integers(100, 10**9),
          due=st.sampled_from(["matured", "future", "overdue"]))
    def register_receivable(self, supplier: str, face: int, due: str) -> None:
        if len(self.receivables) < 6:
            self._register_one(supplier, face, due)

    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        r = self._pick_receivable(data, lambda r: r["status"] == "Registered")
        expected = None if r["status"] == "Registered" else "ReceivableWrongStatus"
        self._attempt(self.env.receivables.functions.confirm(r["id"]), "buyer", expected)
        if expected is None:
            r["status"] = "Confirmed"

    def _movable_error(self, r: dict[str, Any], pid: bytes) -> str | None:
        if r["status"] != "Confirmed":
            return "ReceivableWrongStatus"
        if r.get("reported"):
            return "ReceivableRepaymentAlreadyReported"
        if r["due"] == "overdue":
            return "ReceivableDue"
        if pid in self.financed:
            return "ReceivablePartAlreadyFinanced"
        return None

    @rule(data=st.data(), pieces=st.integers(2, 4))
    def split(self, data: st.DataObject, pieces: int) -> None:
        ri, pid = self._pick_part(data)
        r, held = self.receivables[ri], self.amount[pid]
        cuts = sorted(data.draw(st.lists(st.integers(0, held), min_size=pieces - 1, max_size=pieces - 1)))
        amounts = [b - a for a, b in zip([0, *cuts], [*cuts, held])]
        expected = self._movable_error(r, pid)
        if expected is None and len(r["parts"]) + pieces - 1 > PARTS_PER_RECEIVABLE_MAX:
            expected = "ReceivableTooManyParts"
        if expected is None and min(amounts) < PART_AMOUNT_MIN:
            expected = "ReceivablePartTooSmall"
        fn = self.env.receivables.functions.splitPart(pid, amounts)
        receipt = self._attempt(fn, self.holder[pid], expected)
        if receipt is None:
            return
        new_ids = [e.args.newPartId for e in self.env.events(receipt, "PartSplit")]
        assert new_ids == [part_id(r["id"], len(r["parts"]) + i) for i in range(pieces - 1)]
        self.amount[pid] = amounts[0]
        for new_id, amount in zip(new_ids, amounts[1:], strict=True):
            r["parts"].append(new_id)
            self.parts.append((ri, new_id))
            self.holder[new_id] = self.holder[pid]
            self.amount[new_id] = amount

    @rule(data=st.data(), to=st.sampled_from(HOLDERS))
    def transfer(self, data: st.DataObject, to: str) -> None:
        ri, pid = self._pick_part(data)
        expected = self._movable_error(self.receivables[ri], pid)
        if expected is None and (to == self.holder[pid] or to in ("retailer", "buyer")):
            expected = "ReceivableInvalidRecipient"
        to_id = self.env[to].id
        if self._attempt(self.env.receivables.functions.transferPart(pid, to_id), self.holder[pid], expected):
            self.holder[pid] = to

    @rule(data=st.data(), financier=st.sampled_from(FINANCIERS))
    def finance(self, data: st.DataObject, financier: str) -> None:
        ri, pid = self._pick_part(data)
        r, holder = self.receivables[ri], self.holder[pid]
        fn = self.env.receivables.functions.requestFinancing(pid, self.env[financier].id)
        if "SUPPLIER" not in self.env[holder].roles:
            expected: str | None = "RegistryMissingRole"
        elif r["status"] != "Confirmed":
            expected = "ReceivableWrongStatus"
        elif r.get("reported"):
            expected = "ReceivableRepaymentAlreadyReported"
        elif r["due"] == "overdue":
            expected = "ReceivableDue"
        elif pid in self.financed:
            expected = "ReceivablePartAlreadyFinanced"  # the double-financing guard
        else:
            expected = None
        if expected is not None:
            self._attempt(fn, holder, expected)
            return
        advance = max(1, self.amount[pid] * 98 // 100)
        self.outcomes["finance: ok"] += 1
        receipt = finance(self.env, self.env[holder], self.env[financier], pid, advance)
        (accepted,) = self.env.events(receipt, "FinancingAccepted")
        assert accepted.args.amountMinor == self.amount[pid] and accepted.args.sellerId == self.env[holder].id
        self.financed.add(pid)
        self.holder[pid] = financier

    @rule(data=st.data(), by=st.sampled_from(["buyer", "buyer", "operator"]))
    def repay(self, data: st.DataObject, by: str) -> None:
        r = self._pick_receivable(
            data, lambda r: r["status"] in ("Confirmed", "Defaulted") and r["due"] != "future"
            and not r.get("reported"))
        if by == "operator":
            expected: str | None = "RegistryMissingRole"  # the operator cannot report for the buyer
        elif r["status"] not in ("Confirmed", "Defaulted"):
            expected = "ReceivableWrongStatus"
        elif r.get("reported"):
            expected = "ReceivableRepaymentAlreadyReported"
        elif r["due"] == "future":
            expected = "ReceivableNotMatured"
        else:
            expected = None
        if self._attempt(self.env.receivables.functions.reportRepayment(r["id"]), by, expected):
            r["reported"] = True
            r["repaid"] = set()

    @rule(data=st.data())
    def confirm_receipt(self, data: st.DataObject) -> None:
        ri, pid = self._pick_part(data, lambda r, p: r.get("reported") and p not in r["repaid"])
        r = self.receivables[ri]
        if not r.get("reported"):
            expected: str | None = "ReceivableRepaymentNotReported"
        elif pid in r["repaid"]:
            expected = "ReceivablePartAlreadyRepaid"
        else:
            expected = None
        receipt = self._attempt(self.env.receivables.functions.confirmRepaymentReceived(pid), self.holder[pid],
                                expected)
        if receipt is None:
            return
        (event,) = self.env.events(receipt, "PartRepaid")
        assert (event.args.holderId, event.args.amountMinor) == (self.env[self.holder[pid]].id, self.amount[pid])
        r["repaid"].add(pid)
        r["repaid_minor"] = r.get("repaid_minor", 0) + self.amount[pid]
        settled = bool(self.env.events(receipt, "ReceivableSettled"))
        assert settled == (r["repaid"] == set(r["parts"]))
        if settled:
            assert r["repaid_minor"] == r["face"]  # each holder received exactly its part, face value in all
            r["status"] = "Settled"

    @rule(data=st.data(), financier=st.sampled_from(FINANCIERS))
    def declare_default(self, data: st.DataObject, financier: str) -> None:
        r = self._pick_receivable(data, lambda r: r["status"] == "Confirmed" and r["due"] == "overdue")
        holds_financed = any(p in self.financed and self.holder[p] == financier and p not in r.get("repaid", ())
                             for p in r["parts"])
        if r["status"] != "Confirmed":
            expected: str | None = "ReceivableWrongStatus"
        elif r["due"] != "overdue":
            expected = "ReceivableNotOverdue"
        elif not holds_financed:
            expected = "ReceivableNotPartFinancier"
        else:
            expected = None
        if self._attempt(self.env.receivables.functions.declareDefault(r["id"]), financier, expected):
            r["status"] = "Defaulted"

    @invariant()
    def holdings_match_model_and_sum_to_face(self) -> None:
        for r in self.receivables:
            rows = holdings(self.env, r["id"])
            assert sum(amount for _, _, amount, _ in rows) == r["face"]
            assert [row[0] for row in rows] == r["parts"]
            for pid, holder_id, amount, financed in rows:
                assert (holder_id, amount, financed) == (
                    self.env[self.holder[pid]].id, self.amount[pid], pid in self.financed)
            status = self.env.receivables.functions.getReceivable(r["id"]).call()[7]
            assert status == STATUS[r["status"]]


@pytest.mark.slow(seconds=35)
def test_state_machine_over_the_contract(env: Env) -> None:
    """Hypothesis drives the contract through random lifecycles (see ReceivableMachine)."""
    ReceivableMachine.env = env
    ReceivableMachine.outcomes.clear()
    started = time.monotonic()
    run_state_machine_as_test(
        ReceivableMachine,
        settings=settings(max_examples=8, stateful_step_count=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
    outcomes = ReceivableMachine.outcomes
    print(f"\nstate machine: {time.monotonic() - started:.1f} s, outcomes: {dict(sorted(outcomes.items()))}")
    # The run is not vacuous: every transition succeeded at least once.
    for op in ("confirm", "splitPart", "transferPart", "finance", "reportRepayment", "confirmRepaymentReceived"):
        assert outcomes[f"{op}: ok"] > 0, dict(outcomes)


def test_unknown_parts_expired_offers_and_a_second_receipt_are_refused(env: Env) -> None:
    """An unknown part id, an offer valid until the past, the acceptance of an offer that expired
    meanwhile, and a holder confirming the receipt of its part twice."""
    f = env.receivables.functions
    supplier, buyer, bank = env["supplier"], env["buyer"], env["bank"]
    nowhere = Web3.keccak(text="no such part")
    err = revert_of(f.splitPart(nowhere, [100, 100]), supplier)
    assert (err.name, err.args_) == ("ReceivableUnknownPart", (nowhere,))
    today = env.chain.today()
    reg = register(env, supplier, buyer, face_minor=10_000, issue_day=today - 5, due_day=today + 3)
    env.send(f.confirm(reg.id), buyer)
    env.send(f.requestFinancing(reg.part0, bank.id), supplier)
    now = env.chain.w3.eth.get_block("latest")["timestamp"]
    stale = new_offer_id()
    err = revert_of(f.offerFinancing(reg.part0, stale, 9_000, 0, 50_000, 1, now - 1), bank)
    assert (err.name, err.args_) == ("ReceivableOfferExpired", (reg.part0, stale, now - 1))
    receipt = env.send(f.offerFinancing(reg.part0, new_offer_id(), 9_000, 0, 50_000, 1, now + 3600), bank)
    offer_id = env.events(receipt, "FinancingOffered")[0].args.offerId
    advance_days(env, 1)
    err = revert_of(f.acceptOffer(reg.part0, offer_id), supplier)
    assert (err.name, err.args_) == ("ReceivableOfferExpired", (reg.part0, offer_id, now + 3600))
    env.send(f.withdrawFinancingRequest(reg.part0), supplier)
    advance_days(env, 2)  # the due date
    env.send(f.reportRepayment(reg.id), buyer)
    env.send(f.confirmRepaymentReceived(reg.part0), supplier)
    assert f.statusOf(reg.id).call() == STATUS["Settled"]
    err = revert_of(f.confirmRepaymentReceived(reg.part0), supplier)
    assert (err.name, err.args_) == ("ReceivablePartAlreadyRepaid", (reg.part0,))


# Errors in the ABI that no call can raise once deployed: OpenZeppelin's ShortStrings errors of the
# EIP-712 constructor (the domain name and version are constants).
UNREACHABLE_ERRORS = {"InvalidShortString", "StringTooLong"}


def test_zz_every_custom_error_of_the_registry_is_triggered(env: Env) -> None:
    """Every custom error in ReceivableRegistry's ABI (its own and those inherited from the
    registry guard) was provoked by a test of this module (run the whole module: this test comes
    last and reads what the others recorded)."""
    in_abi = {item["name"] for item in artifact("ReceivableRegistry")["abi"] if item["type"] == "error"}
    assert {"RegistryNotAMember", "RegistryMemberNotActive", "RegistryMissingRole"} <= in_abi
    assert in_abi == {item["name"] for item in artifact("IReceivableRegistry")["abi"]
                      if item["type"] == "error"} | (in_abi & UNREACHABLE_ERRORS)
    missing = sorted(in_abi - UNREACHABLE_ERRORS - ERRORS_SEEN)
    assert not missing, f"never triggered: {missing}"
