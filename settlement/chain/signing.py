"""Transaction signing: legacy (EIP-155) and EIP-1559 transactions, and the one protocol every
signer of the service follows (:class:`Signer`: an address and ``sign``).

A signer's key lives either in this process (:class:`LocalSigner`) or in a device that signs
32-byte hashes for it (``settlement.custody.hsm.HsmSigner``, a PKCS#11 token). Both build the
transaction the same way (:class:`HashSigner`); only ``_sign_hash`` differs.

eth-account's ``sign_transaction`` spends most of its time validating and re-formatting the
transaction dict, not on ECDSA. The dispatcher signs thousands of transactions a second, so this
module serialises with ``rlp`` and signs the hash with ``coincurve`` (libsecp256k1, RFC 6979
deterministic nonces, low-s), which produces byte-for-byte the same raw transactions as
eth-account (checked in tests/chain/test_signing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import coincurve
import rlp
from anchors.keccak import keccak256
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    tx_hash: str  # 0x-prefixed hex
    nonce: int


@dataclass(frozen=True, slots=True)
class FeeParams:
    """Fees for one transaction. ``max_fee_per_gas`` set: EIP-1559 (type 2); else legacy."""

    gas_price: int = 0
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int = 0


@runtime_checkable
class Signer(Protocol):
    """What the chain client, the dispatcher and deployment ask of a signer: its address and
    signed transactions (and, for typed data signed for a custodial member, a signature over a
    digest). Any object with these members will do: a key in memory, in an HSM, behind a remote
    signing service."""

    address: str  # checksummed

    def sign(self, *, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
             fees: FeeParams, value: int = 0) -> SignedTx: ...

    def unsafe_sign_hash(self, msg_hash: bytes) -> bytes: ...


def address_of(public_key_uncompressed: bytes) -> bytes:
    """The 20-byte account address of a public key given as 0x04 || X || Y (65 bytes)."""
    if len(public_key_uncompressed) != 65 or public_key_uncompressed[0] != 4:
        raise ValueError("an uncompressed secp256k1 public key is 65 bytes starting with 0x04")
    return keccak256(public_key_uncompressed[1:])[12:]


def to_checksum(address_bytes: bytes) -> str:
    """EIP-55 checksummed 0x address of 20 bytes."""
    return to_checksum_address(address_bytes)


def ethereum_signature(msg_hash: bytes, r: int, s: int, address_bytes: bytes) -> tuple[int, int, int]:
    """(r, s, recovery id) for a plain ECDSA signature (r, s) over ``msg_hash`` made elsewhere.

    A device signs with the textbook algorithm: s may be in the upper half, and it says nothing
    about which of the two candidate public keys the signature recovers to. Ethereum wants both:
    s is normalised to the lower half (EIP-2; (r, n - s) is the same signature's twin), and the
    recovery id is the one of 0 and 1 whose recovered key has ``address_bytes`` as its address.
    Recovering also verifies the signature: a wrong or corrupted one recovers to another address
    for both ids and raises ValueError. (Ids 2 and 3 need r >= n, chance about 2**-128, and are
    not valid in Ethereum transactions anyway.)
    """
    if len(msg_hash) != 32 or len(address_bytes) != 20:
        raise ValueError("a 32-byte hash and a 20-byte address are needed")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ValueError("r and s must be within 1..n-1")
    if s > SECP256K1_HALF_N:
        s = SECP256K1_N - s
    compact = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for recid in (0, 1):
        try:
            public = coincurve.PublicKey.from_signature_and_message(compact + bytes((recid,)), msg_hash,
                                                                    hasher=None)
        except ValueError:  # no curve point for this id
            continue
        if address_of(public.format(compressed=False)) == address_bytes:
            return r, s, recid
    raise ValueError("the signature does not recover to the signer's address")


class HashSigner:
    """Builds and serialises a transaction around ``_sign_hash`` (a subclass's: the 32-byte hash
    in, (r, s, recovery id) out, s already low). One implementation for every kind of key, so an
    HSM-signed transaction is byte-for-byte what the local signer makes of the same fields."""

    __slots__ = ()
    address: str

    def _sign_hash(self, msg_hash: bytes) -> tuple[int, int, int]:
        raise NotImplementedError

    def unsafe_sign_hash(self, msg_hash: bytes) -> bytes:
        """65 bytes r || s || v (v = 27 + recovery id) over any 32-byte hash, for EIP-712 digests
        the service signs for a custodial member. Unsafe as in eth-account: whoever chooses the
        hash chooses what is signed (a transaction's hash included), so callers hash typed data
        they built themselves, never a hash handed in from outside."""
        if len(msg_hash) != 32:
            raise ValueError("a 32-byte hash is signed")
        r, s, recid = self._sign_hash(msg_hash)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((27 + recid,))

    def sign(self, *, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
             fees: FeeParams, value: int = 0) -> SignedTx:
        to_bytes = bytes.fromhex(to[2:]) if to else b""
        if fees.max_fee_per_gas is not None:
            fields = [chain_id, nonce, fees.max_priority_fee_per_gas, fees.max_fee_per_gas, gas,
                      to_bytes, value, data, []]
            unsigned = b"\x02" + rlp.encode(fields)
            r, s, recid = self._sign_hash(keccak256(unsigned))
            raw = b"\x02" + rlp.encode(fields + [recid, r, s])
        else:
            fields = [nonce, fees.gas_price, gas, to_bytes, value, data]
            r, s, recid = self._sign_hash(keccak256(rlp.encode(fields + [chain_id, 0, 0])))
            raw = rlp.encode(fields + [recid + 35 + 2 * chain_id, r, s])
        return SignedTx(raw=raw, tx_hash="0x" + keccak256(raw).hex(), nonce=nonce)


class LocalSigner(HashSigner):
    """Holds one private key in memory and signs transactions for it. Never logs the key."""

    __slots__ = ("_address_bytes", "_key", "address")

    def __init__(self, private_key: bytes | str) -> None:
        if isinstance(private_key, str):
            private_key = bytes.fromhex(private_key.removeprefix("0x"))
        if len(private_key) != 32:
            raise ValueError("a private key is 32 bytes")
        self._key = coincurve.PrivateKey(private_key)
        self.address = Account.from_key(private_key).address
        self._address_bytes = bytes.fromhex(self.address[2:])

    def __repr__(self) -> str:
        return f"LocalSigner({self.address})"

    def _sign_hash(self, msg_hash: bytes) -> tuple[int, int, int]:
        sig = self._key.sign_recoverable(msg_hash, hasher=None)
        r = int.from_bytes(sig[0:32], "big")
        s = int.from_bytes(sig[32:64], "big")
        recid = sig[64]
        if s > SECP256K1_N // 2:  # libsecp256k1 already normalises; kept as a hard check
            raise AssertionError("high-s signature")
        return r, s, recid


# -- EIP-712 typed data ----------------------------------------------------------------------------------


def typed_data_hash(typed: dict) -> bytes:
    """The 32-byte EIP-712 digest of ``eth_signTypedData_v4`` input (what a signature covers)."""
    message = encode_typed_data(full_message=typed)
    return keccak256(b"\x19" + message.version + message.header + message.body)


def sign_typed_data(signer: Signer, typed: dict) -> bytes:
    """A 65-byte (r, s, v = 27/28) signature of ``typed`` by ``signer`` (a local key or one in an HSM)."""
    return signer.unsafe_sign_hash(typed_data_hash(typed))


def recover_typed_data(typed: dict, signature: bytes) -> str:
    """The checksummed address whose key signed ``typed``; ValueError when none can have."""
    if len(signature) != 65:
        raise ValueError("a signature is 65 bytes (r, s, v)")
    try:
        return Account._recover_hash(typed_data_hash(typed), signature=signature)
    except Exception as exc:  # eth_keys raises several types for malformed (r, s, v)
        raise ValueError(f"the signature cannot be recovered: {type(exc).__name__}") from None
