"""The consortium's governance stack as the chain sees it: parameters, and the pure encodings the
service needs to drive it (Safe transaction hashes, timelock operation ids, approval signatures).

The stack (docs/governance.md): a governors' Safe (M-of-N) proposes to an OpenZeppelin
``TimelockController`` that is the registry's only admin; a guardian Safe (k-of-n) may suspend at
once. Everything here is pure (no node calls): the hashes are the ones the contracts compute, which
tests check against ``getTransactionHash`` and ``hashOperationBatch`` on chain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from settlement.chain.signing import keccak256
from settlement.core.errors import ConfigurationError

__all__ = [
    "GOVERNORS_MAX", "DELAY_S_MAX", "ADMIN_TRANSFER_DELAY_S", "ZERO_ADDRESS", "ZERO_BYTES32", "Governor",
    "GovernanceParams", "parse_governors", "safe_tx_hash", "safe_tx_typed_data", "approval_signatures",
    "operation_id", "SAFE_TX_TYPES", "ECDSA_SIGNATURE_LEN",
]

GOVERNORS_MAX = 20  # Safe owners; a consortium has a handful of governing banks
DELAY_S_MAX = 30 * 86_400  # the timelock's delay is bounded: a longer one is a typo, not a policy
ADMIN_TRANSFER_DELAY_S = 86_400  # AccessControlDefaultAdminRules: only matters for moving the admin
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = "0x" + "00" * 32
ECDSA_SIGNATURE_LEN = 65
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_MEMBER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Governor:
    """One governor key: the member (bank) that holds it, and its address (a Safe owner)."""

    member_id: str
    address: str


@dataclass(frozen=True)
class GovernanceParams:
    """What is set at deployment: governors, thresholds and the timelock's delay. The guardians
    are the governors' keys with their own (usually lower) threshold k."""

    governors: tuple[Governor, ...]
    threshold: int
    guardian_threshold: int
    delay_s: int
    admin_transfer_delay_s: int = ADMIN_TRANSFER_DELAY_S
    demo: bool = False  # deterministic test keys: only ever on the managed dev chain and in tests

    def __post_init__(self) -> None:
        n = len(self.governors)
        if not 1 <= n <= GOVERNORS_MAX:
            raise ConfigurationError(f"governance needs 1..{GOVERNORS_MAX} governors, got {n}")
        if len({g.address.lower() for g in self.governors}) != n:
            raise ConfigurationError("a governor address is listed twice")
        if not 1 <= self.threshold <= n:
            raise ConfigurationError(f"the governance threshold must be within 1..{n}, got {self.threshold}")
        if not 1 <= self.guardian_threshold <= n:
            raise ConfigurationError(f"the guardian threshold must be within 1..{n}, got {self.guardian_threshold}")
        if not 0 <= self.delay_s <= DELAY_S_MAX:
            raise ConfigurationError(f"the governance delay must be within 0..{DELAY_S_MAX} s, got {self.delay_s}")
        if not 0 <= self.admin_transfer_delay_s < 2**48:
            raise ConfigurationError("the admin transfer delay does not fit uint48")

    @property
    def addresses(self) -> list[str]:
        return [g.address for g in self.governors]

    def governor(self, address: str) -> Governor | None:
        return next((g for g in self.governors if g.address.lower() == address.lower()), None)

    def governors_of(self, member_id: str) -> list[Governor]:
        return [g for g in self.governors if g.member_id == member_id]

    def to_json(self) -> dict[str, Any]:
        return {"governors": [{"member_id": g.member_id, "address": g.address} for g in self.governors],
                "threshold": self.threshold, "guardian_threshold": self.guardian_threshold,
                "delay_s": self.delay_s, "admin_transfer_delay_s": self.admin_transfer_delay_s, "demo": self.demo}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GovernanceParams:
        return cls(governors=tuple(Governor(g["member_id"], to_checksum_address(g["address"]))
                                   for g in data["governors"]),
                   threshold=int(data["threshold"]), guardian_threshold=int(data["guardian_threshold"]),
                   delay_s=int(data["delay_s"]), admin_transfer_delay_s=int(data["admin_transfer_delay_s"]),
                   demo=bool(data.get("demo", False)))


def parse_governors(text: str) -> tuple[Governor, ...]:
    """``LEDGER_GOVERNORS``: comma-separated ``member-id:0xADDRESS`` (or a bare ``0xADDRESS``,
    then labelled ``governor-<n>``)."""
    out = []
    for n, item in enumerate((part.strip() for part in text.split(",") if part.strip()), start=1):
        member, _, address = item.rpartition(":")
        member = member or f"governor-{n}"
        if not _ADDRESS_RE.match(address):
            raise ConfigurationError(f"LEDGER_GOVERNORS entry {n} is not member-id:0xADDRESS")
        if not _MEMBER_RE.match(member):
            raise ConfigurationError(f"LEDGER_GOVERNORS entry {n}: {member[:64]!r} is not a member id")
        out.append(Governor(member, to_checksum_address(address)))
    if not out:
        raise ConfigurationError("LEDGER_GOVERNORS lists no governor")
    return tuple(out)


# -- Safe transactions ---------------------------------------------------------------------------------

SAFE_TX_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "SafeTx": [
        {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}, {"name": "data", "type": "bytes"},
        {"name": "operation", "type": "uint8"}, {"name": "safeTxGas", "type": "uint256"},
        {"name": "baseGas", "type": "uint256"}, {"name": "gasPrice", "type": "uint256"},
        {"name": "gasToken", "type": "address"}, {"name": "refundReceiver", "type": "address"},
        {"name": "nonce", "type": "uint256"},
    ],
}
_DOMAIN_TYPEHASH = keccak256(b"EIP712Domain(uint256 chainId,address verifyingContract)")
_SAFE_TX_TYPEHASH = keccak256(b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
                              b"uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,"
                              b"uint256 nonce)")


def safe_tx_hash(chain_id: int, safe: str, to: str, data: bytes, nonce: int, value: int = 0) -> str:
    """The Safe's ``getTransactionHash`` of a plain CALL with no gas refund (what the service
    proposes): EIP-712 over ``SafeTx`` in the Safe's domain (chain id, Safe address)."""
    domain = keccak256(abi_encode(["bytes32", "uint256", "address"], [_DOMAIN_TYPEHASH, chain_id, safe]))
    struct = keccak256(abi_encode(
        ["bytes32", "address", "uint256", "bytes32", "uint8", "uint256", "uint256", "uint256", "address", "address",
         "uint256"],
        [_SAFE_TX_TYPEHASH, to, value, keccak256(data), 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, nonce]))
    return "0x" + keccak256(b"\x19\x01" + domain + struct).hex()


def safe_tx_typed_data(chain_id: int, safe: str, to: str, data: bytes, nonce: int) -> dict[str, Any]:
    """The same Safe transaction as ``eth_signTypedData_v4`` input: what an own-key governor signs
    (a signature over it counts as that owner's approval in ``execTransaction``)."""
    return {"types": SAFE_TX_TYPES, "primaryType": "SafeTx",
            "domain": {"chainId": chain_id, "verifyingContract": to_checksum_address(safe)},
            "message": {"to": to_checksum_address(to), "value": 0, "data": "0x" + data.hex(), "operation": 0,
                        "safeTxGas": 0, "baseGas": 0, "gasPrice": 0, "gasToken": ZERO_ADDRESS,
                        "refundReceiver": ZERO_ADDRESS, "nonce": nonce}}


def approval_signatures(approvals: Sequence[tuple[str, bytes | None]]) -> bytes:
    """The ``signatures`` of ``execTransaction``: for each (owner, ECDSA signature or None), in
    ascending owner order (the Safe requires it). None means the owner approved on chain
    (``approveHash``): type 1, r = owner, s = 0, v = 1. An ECDSA signature over the SafeTx
    typed data is passed as is (v = 27/28)."""
    out = b""
    for owner, signature in sorted(approvals, key=lambda a: int(a[0], 16)):
        if signature is None:
            out += bytes.fromhex(owner[2:].lower()).rjust(32, b"\0") + b"\0" * 32 + b"\x01"
        else:
            if len(signature) != ECDSA_SIGNATURE_LEN or signature[64] not in (27, 28):
                raise ValueError("an owner's signature is 65 bytes with v 27 or 28")
            out += signature
    return out


# -- timelock operations ---------------------------------------------------------------------------------


def operation_id(targets: Sequence[str], values: Sequence[int], payloads: Sequence[bytes], salt: str,
                 predecessor: str = ZERO_BYTES32) -> str:
    """``TimelockController.hashOperationBatch``."""
    return "0x" + keccak256(abi_encode(["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"],
                                       [list(targets), list(values), list(payloads),
                                        bytes.fromhex(predecessor[2:]), bytes.fromhex(salt[2:])])).hex()
