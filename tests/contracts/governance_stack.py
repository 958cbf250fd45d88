"""The consortium's governance stack on a real anvil, for the registry, governance and forwarder tests.

`deploy_stack` follows the deployment sequence documented in docs/governance.md (the one the
Python deploy code must follow): Safe singleton and proxy factory, the governors' Safe (M-of-N)
and the guardian Safe (k-of-n), the timelock, the forwarder, the registry (governed by the
timelock, bootstrapped by the deployer), the proposal log, the founding members, then the seal.
The deployer is the operator's own service key, so that the tests prove that this key keeps no
power once deployment is complete.

Everything is driven with web3.py and locally signed raw transactions at gas price zero, from
fresh keys that hold no ether, as on the permissioned network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.logs import DISCARD

ARTIFACTS = Path(__file__).resolve().parents[2] / "settlement" / "chain" / "artifacts"
TX_GAS_LIMIT = 16_000_000  # under the per-transaction cap of recent hardforks (2^24)
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = b"\0" * 32

ROLE_OPERATOR = keccak(b"OPERATOR")
ROLE_FINANCE = keccak(b"FINANCE")
ROLE_SUPPLIER = keccak(b"SUPPLIER")
ROLE_BUYER = keccak(b"BUYER")
ROLE_FINANCIER = keccak(b"FINANCIER")
ROLE_AUDITOR = keccak(b"AUDITOR")
DEFAULT_ADMIN_ROLE = ZERO_BYTES32
SUSPENDER_ROLE = keccak(b"SUSPENDER")
# TimelockController roles.
PROPOSER_ROLE = keccak(b"PROPOSER_ROLE")
EXECUTOR_ROLE = keccak(b"EXECUTOR_ROLE")
CANCELLER_ROLE = keccak(b"CANCELLER_ROLE")

# IConsortiumRegistry.MemberStatus
NONE, ACTIVE, SUSPENDED = 0, 1, 2

# Demo-like parameters: 2-of-3 governors, 2-of-3 guardians (the same keys), a short delay.
GOVERNORS_N = 3
THRESHOLD_M = 2
GUARDIAN_THRESHOLD_K = 2
TIMELOCK_DELAY_S = 60
ADMIN_TRANSFER_DELAY_S = 86_400

# Founding members: name -> (country, roles). The three banks are the governors' members.
FOUNDERS: dict[str, tuple[str, list[bytes]]] = {
    "op": ("GB", [ROLE_OPERATOR]),
    "bank1": ("CN", [ROLE_FINANCE, ROLE_FINANCIER]),
    "bank2": ("HK", [ROLE_FINANCE, ROLE_FINANCIER]),
    "bank3": ("SG", [ROLE_FINANCE]),
    "supplier": ("VN", [ROLE_SUPPLIER]),
    "buyer": ("DE", [ROLE_BUYER]),
    "auditor": ("CH", [ROLE_AUDITOR]),
}


def artifact(name: str) -> dict[str, Any]:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def b32(text: str) -> bytes:
    return keccak(text.encode())


class Reverted(AssertionError):
    """A transaction that had to succeed reverted; carries the decoded reason."""


def _error_catalogue() -> dict[bytes, tuple[str, list[str]]]:
    """Selector -> (name, argument types) of every custom error any contract of the stack may raise."""
    catalogue: dict[bytes, tuple[str, list[str]]] = {
        bytes.fromhex("08c379a0"): ("Error", ["string"]),
        bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
    }
    for path in ARTIFACTS.glob("*.json"):
        if path.name == "build-info.json":
            continue
        for item in json.loads(path.read_text())["abi"]:
            if item["type"] == "error":
                types = [_abi_type(p) for p in item["inputs"]]
                catalogue[keccak(f"{item['name']}({','.join(types)})".encode())[:4]] = (item["name"], types)
    return catalogue


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return param["type"]


ERRORS = _error_catalogue()


def decode_revert(data: str | bytes | None) -> tuple[str, tuple[Any, ...]]:
    """(error name, arguments) of revert data; addresses checksummed."""
    if not data:
        return ("<empty>", ())
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    name, types = ERRORS[raw[:4]]
    values = abi_decode(types, raw[4:])
    return name, tuple(
        Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )


@dataclass
class Chain:
    """A JSON-RPC chain and the helpers to transact on it."""

    w3: Web3
    gas_used: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def connect(cls, rpc_url: str) -> Chain:
        return cls(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30})))

    def send(self, fn: Any, sender: LocalAccount, label: str | None = None) -> Any:
        """Sign and send `fn` from `sender` at gas price zero; the receipt (must succeed)."""
        receipt = self.send_raw(fn, sender)
        if receipt["status"] != 1:
            raise Reverted(f"transaction reverted: {self.revert_of(fn, sender)}")
        if label:
            self.gas_used.setdefault(label, []).append(receipt["gasUsed"])
        return receipt

    def send_raw(self, fn: Any, sender: LocalAccount) -> Any:
        tx = fn.build_transaction(
            {
                "from": sender.address,
                "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
                "gas": TX_GAS_LIMIT,
                "gasPrice": 0,
                "chainId": self.w3.eth.chain_id,
            }
        )
        signed = sender.sign_transaction(tx)
        return self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30)

    def call_error(self, to: str, data: bytes | str, sender: str) -> tuple[str, tuple[Any, ...]] | None:
        """The decoded revert of an eth_call of `data` on `to` from `sender`, or None if it succeeds."""
        payload = data if isinstance(data, str) else "0x" + data.hex()
        answer = self.w3.provider.make_request(
            "eth_call", [{"from": sender, "to": to, "data": payload, "gas": hex(TX_GAS_LIMIT)}, "latest"]
        )
        if "error" not in answer:
            return None
        return decode_revert(answer["error"].get("data"))

    def revert_of(self, fn: Any, sender: LocalAccount) -> tuple[str, tuple[Any, ...]] | None:
        return self.call_error(fn.address, fn._encode_transaction_data(), sender.address)

    def assert_reverts(self, fn: Any, sender: LocalAccount, name: str, *args: Any) -> None:
        """`fn` from `sender` reverts with `name` (and `args`, when given), in a call and on chain."""
        error = self.revert_of(fn, sender)
        assert error is not None, f"expected {name}, but the call succeeded"
        assert error[0] == name, f"expected {name}, got {error}"
        if args:
            assert error[1] == args, f"expected {name}{args}, got {error}"
        assert self.send_raw(fn, sender)["status"] == 0

    def deploy(self, name: str, sender: LocalAccount, *args: Any, label: str | None = None) -> Any:
        art = artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self.send(factory.constructor(*args), sender, label)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=address, abi=artifact(name)["abi"])

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def warp(self, seconds: int) -> None:
        """Moves the chain's clock `seconds` ahead and mines a block there."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])


def events(contract: Any, receipt: Any, name: str) -> list[Any]:
    """The `name` events of `contract` in `receipt` (other contracts' logs ignored)."""
    return [e for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
            if e["address"] == contract.address]


def approval_signatures(owners: list[str]) -> bytes:
    """Safe signatures of type 1 ("approved hash"): r = owner, s = 0, v = 1, ordered by owner address."""
    out = b""
    for owner in sorted(owners, key=lambda a: int(a, 16)):
        out += bytes.fromhex(owner[2:].lower()).rjust(32, b"\0") + ZERO_BYTES32 + b"\x01"
    return out


@dataclass(frozen=True)
class Call:
    """One call a governance operation makes (on the registry, the timelock itself, ...)."""

    target: str
    data: bytes
    value: int = 0


@dataclass
class Operation:
    """A timelock operation: the batch of calls, its salt and id."""

    calls: tuple[Call, ...]
    salt: bytes
    op_id: bytes = b""
    safe_tx_hash: bytes = b""
    safe_nonce: int = 0


@dataclass
class Stack:
    """A deployed, sealed consortium: contracts, governors, members and the governance pipeline."""

    chain: Chain
    singleton: Any
    factory: Any
    gov_safe: Any
    guardian_safe: Any
    timelock: Any
    forwarder: Any
    registry: Any
    proposals: Any
    probe: Any
    operator: LocalAccount  # the operator's service key, also the deployer
    governors: list[LocalAccount]
    guardians: list[LocalAccount]
    accounts: dict[str, LocalAccount]
    members: dict[str, bytes]
    delay_s: int
    salt_counter: int = 0

    # ------------------------------------------------------------------ calls

    def registry_call(self, fn_name: str, *args: Any) -> Call:
        fn = getattr(self.registry.functions, fn_name)(*args)
        return Call(self.registry.address, bytes.fromhex(fn._encode_transaction_data()[2:]))

    def timelock_call(self, fn_name: str, *args: Any) -> Call:
        fn = getattr(self.timelock.functions, fn_name)(*args)
        return Call(self.timelock.address, bytes.fromhex(fn._encode_transaction_data()[2:]))

    def operation(self, *calls: Call) -> Operation:
        self.salt_counter += 1
        op = Operation(tuple(calls), b32(f"salt:{self.salt_counter}:{os.urandom(4).hex()}"))
        op.op_id = self.timelock.functions.hashOperationBatch(*self._batch_args(op)).call()
        return op

    def _batch_args(self, op: Operation) -> tuple[list[str], list[int], list[bytes], bytes, bytes]:
        return ([c.target for c in op.calls], [c.value for c in op.calls], [c.data for c in op.calls],
                ZERO_BYTES32, op.salt)

    # ------------------------------------------------------------------ Safe transactions

    def safe_tx_hash(self, safe: Any, to: str, data: bytes, nonce: int) -> bytes:
        return safe.functions.getTransactionHash(to, 0, data, 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, nonce).call()

    def propose(self, safe: Any, proposer: LocalAccount, to: str, data: bytes, description: str,
                nonce: int | None = None, label: str | None = None) -> tuple[bytes, int]:
        """A governor publishes a Safe transaction in the proposal log; returns (hash, nonce)."""
        nonce = safe.functions.nonce().call() if nonce is None else nonce
        receipt = self.chain.send(
            self.proposals.functions.propose(safe.address, to, 0, data, nonce, description), proposer, label
        )
        (event,) = events(self.proposals, receipt, "ProposalSubmitted")
        assert event.args.safeTxHash == self.safe_tx_hash(safe, to, data, nonce)
        return event.args.safeTxHash, nonce

    def approve(self, safe: Any, owner: LocalAccount, safe_tx_hash: bytes, label: str | None = None) -> Any:
        return self.chain.send(safe.functions.approveHash(safe_tx_hash), owner, label)

    def exec_safe_fn(self, safe: Any, to: str, data: bytes, approvers: list[str]) -> Any:
        return safe.functions.execTransaction(
            to, 0, data, 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, approval_signatures(approvers)
        )

    def exec_safe(self, safe: Any, to: str, data: bytes, approvers: list[str], executor: LocalAccount,
                  label: str | None = None) -> Any:
        return self.chain.send(self.exec_safe_fn(safe, to, data, approvers), executor, label)

    # ------------------------------------------------------------------ the governed pipeline

    def schedule_data(self, op: Operation) -> bytes:
        fn = self.timelock.functions.scheduleBatch(*self._batch_args(op), self.delay_s)
        return bytes.fromhex(fn._encode_transaction_data()[2:])

    def schedule(self, op: Operation, approvers: list[LocalAccount] | None = None,
                 executor: LocalAccount | None = None, labels: bool = False) -> Any:
        """Propose, approve (M governors by default) and execute the Safe transaction that schedules `op`."""
        approvers = self.governors[:THRESHOLD_M] if approvers is None else approvers
        data = self.schedule_data(op)
        op.safe_tx_hash, op.safe_nonce = self.propose(
            self.gov_safe, approvers[0] if approvers else self.governors[0], self.timelock.address, data,
            "governed registry change", label="propose (proposal log)" if labels else None,
        )
        for governor in approvers:
            self.approve(self.gov_safe, governor, op.safe_tx_hash, "approveHash (each governor)" if labels else None)
        return self.exec_safe(self.gov_safe, self.timelock.address, data, [a.address for a in approvers],
                              executor or self.operator, "execTransaction -> scheduleBatch" if labels else None)

    def execute_fn(self, op: Operation) -> Any:
        return self.timelock.functions.executeBatch(*self._batch_args(op))

    def execute(self, op: Operation, executor: LocalAccount | None = None, label: str | None = None) -> Any:
        return self.chain.send(self.execute_fn(op), executor or self.operator, label)

    def govern(self, *calls: Call) -> Any:
        """The whole slow path: schedule with M approvals, wait the delay, execute. The execution receipt."""
        op = self.operation(*calls)
        self.schedule(op)
        self.chain.warp(self.delay_s)
        return self.execute(op)

    def fast_suspend(self, member: str, approvers: list[LocalAccount] | None = None,
                     executor: LocalAccount | None = None, labels: bool = False) -> Any:
        """The fast path: k guardians approve a Safe call of `suspendMember`, executed at once."""
        approvers = self.guardians[:GUARDIAN_THRESHOLD_K] if approvers is None else approvers
        call = self.registry_call("suspendMember", self.members[member])
        h, _ = self.propose(self.guardian_safe, approvers[0], call.target, call.data, f"suspend {member}",
                            label="fast path: propose (proposal log)" if labels else None)
        for guardian in approvers:
            self.approve(self.guardian_safe, guardian, h, "fast path: approveHash (each guardian)" if labels else None)
        return self.exec_safe(self.guardian_safe, call.target, call.data, [a.address for a in approvers],
                              executor or self.operator, "fast path: execTransaction -> suspendMember" if labels else None)

    # ------------------------------------------------------------------ member consent (EIP-712)

    def registry_domain(self) -> dict[str, Any]:
        return {"name": "ConsortiumRegistry", "version": "1", "chainId": self.chain.w3.eth.chain_id,
                "verifyingContract": self.registry.address}

    def sign_account_change(self, key: LocalAccount, kind: str, member: bytes, account: str, signer: str,
                            nonce: int, deadline: int) -> bytes:
        """`kind` is "AddAccount" or "RemoveAccount"; `key` signs the typed data."""
        return key.sign_typed_data(
            domain_data=self.registry_domain(),
            message_types={kind: [
                {"name": "memberId", "type": "bytes32"}, {"name": "account", "type": "address"},
                {"name": "signer", "type": "address"}, {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]},
            message_data={"memberId": member, "account": account, "signer": signer, "nonce": nonce,
                          "deadline": deadline},
        ).signature

    def add_with_consent_fn(self, member: str, new: LocalAccount, signer: LocalAccount,
                            deadline: int | None = None) -> Any:
        mid = self.members[member]
        deadline = self.chain.now() + 3600 if deadline is None else deadline
        nonce = self.registry.functions.nonces(signer.address).call()
        consent = self.sign_account_change(signer, "AddAccount", mid, new.address, signer.address, nonce, deadline)
        possession = self.sign_account_change(new, "AddAccount", mid, new.address, signer.address, nonce, deadline)
        return self.registry.functions.addAccountWithConsent(mid, new.address, signer.address, deadline, consent,
                                                             possession)

    def remove_with_consent_fn(self, member: str, account: str, signer: LocalAccount,
                               deadline: int | None = None) -> Any:
        mid = self.members[member]
        deadline = self.chain.now() + 3600 if deadline is None else deadline
        nonce = self.registry.functions.nonces(signer.address).call()
        consent = self.sign_account_change(signer, "RemoveAccount", mid, account, signer.address, nonce, deadline)
        return self.registry.functions.removeAccountWithConsent(mid, account, signer.address, deadline, consent)

    # ------------------------------------------------------------------ reading

    def status(self, member: str) -> int:
        return self.registry.functions.getMember(self.members[member]).call()[0]

    def accounts_of(self, member: str) -> list[str]:
        return list(self.registry.functions.getMember(self.members[member]).call()[3])


def create_safe(chain: Chain, factory: Any, singleton: Any, owners: list[str], threshold: int, salt: int,
                deployer: LocalAccount, label: str | None = None) -> Any:
    """A Safe proxy set up with `owners` and `threshold` in one transaction (no modules, no fallback handler)."""
    setup = singleton.functions.setup(owners, threshold, ZERO_ADDRESS, b"", ZERO_ADDRESS, ZERO_ADDRESS, 0,
                                      ZERO_ADDRESS)
    receipt = chain.send(
        factory.functions.createProxyWithNonce(singleton.address, setup._encode_transaction_data(), salt),
        deployer, label,
    )
    (created,) = events(factory, receipt, "ProxyCreation")
    return chain.contract("ConsortiumSafe", created.args.proxy)


def deploy_stack(rpc_url: str, *, delay_s: int = TIMELOCK_DELAY_S, threshold: int = THRESHOLD_M,
                 guardian_threshold: int = GUARDIAN_THRESHOLD_K, governors_n: int = GOVERNORS_N,
                 admin_transfer_delay_s: int = ADMIN_TRANSFER_DELAY_S, seal: bool = True,
                 labels: bool = False, chain: Chain | None = None) -> Stack:
    """Deploys and bootstraps the stack in the documented order; seals the bootstrap unless told not to."""
    chain = chain or Chain.connect(rpc_url)
    lab = (lambda s: s) if labels else (lambda s: None)  # noqa: E731
    accounts = {name: Account.create() for name in [*FOUNDERS, "outsider", "rogue"]}
    operator = accounts["op"]  # the operator's service key deploys: it must keep nothing afterwards
    governors = [Account.create() for _ in range(governors_n)]
    guardians = governors  # the demo's guardians are the same governor keys, with a threshold of k

    singleton = chain.deploy("ConsortiumSafe", operator, label=lab("deploy Safe singleton"))
    factory = chain.deploy("ConsortiumSafeProxyFactory", operator, label=lab("deploy Safe proxy factory"))
    gov_safe = create_safe(chain, factory, singleton, [g.address for g in governors], threshold, 1, operator,
                           lab("create governance Safe (proxy + setup)"))
    guardian_safe = create_safe(chain, factory, singleton, [g.address for g in guardians], guardian_threshold, 2,
                                operator, lab("create guardian Safe (proxy + setup)"))
    timelock = chain.deploy("ConsortiumTimelock", operator, delay_s, [gov_safe.address], [ZERO_ADDRESS],
                            label=lab("deploy timelock"))
    forwarder = chain.deploy("LedgerForwarder", operator, label=lab("deploy forwarder"))
    registry = chain.deploy(
        "ConsortiumRegistry", operator, timelock.address, admin_transfer_delay_s, guardian_safe.address,
        operator.address, [gov_safe.address, guardian_safe.address], label=lab("deploy registry"),
    )
    proposals = chain.deploy("GovernanceProposals", operator, label=lab("deploy proposal log"))
    probe = chain.deploy("ConsortiumGuardProbe", operator, registry.address, forwarder.address)
    members = {name: b32(f"member:{name}:{os.urandom(8).hex()}") for name in FOUNDERS}
    for name, (country, roles) in FOUNDERS.items():
        chain.send(registry.functions.onboardMember(members[name], country.encode(), [accounts[name].address], roles),
                   operator, lab("bootstrap onboardMember"))
    if seal:
        chain.send(registry.functions.sealBootstrap(), operator, lab("sealBootstrap"))
    return Stack(chain, singleton, factory, gov_safe, guardian_safe, timelock, forwarder, registry, proposals,
                 probe, operator, governors, guardians, accounts, members, delay_s)
