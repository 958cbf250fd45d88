"""Local transaction signing: legacy (EIP-155) and EIP-1559 transactions, signed in-process.

eth-account's ``sign_transaction`` spends most of its time validating and re-formatting the
transaction dict, not on ECDSA. The dispatcher signs thousands of transactions a second, so this
module serialises with ``rlp`` and signs the hash with ``coincurve`` (libsecp256k1, RFC 6979
deterministic nonces, low-s), which produces byte-for-byte the same raw transactions as
eth-account (checked in tests/chain/test_signing.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
import rlp
from anchors.keccak import keccak256
from eth_account import Account

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


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


class LocalSigner:
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


# -- EIP-712 typed data ----------------------------------------------------------------------------------


def typed_data_hash(typed: dict) -> bytes:
    """The 32-byte EIP-712 digest of ``eth_signTypedData_v4`` input (what a signature covers)."""
    from eth_account.messages import encode_typed_data

    message = encode_typed_data(full_message=typed)
    return keccak256(b"\x19" + message.version + message.header + message.body)


def sign_typed_data(signer: LocalSigner, typed: dict) -> bytes:
    """A 65-byte (r, s, v = 27/28) signature of ``typed`` by ``signer``."""
    r, s, recid = signer._sign_hash(typed_data_hash(typed))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + recid])


def recover_typed_data(typed: dict, signature: bytes) -> str:
    """The checksummed address whose key signed ``typed``; ValueError when none can have."""
    if len(signature) != 65:
        raise ValueError("a signature is 65 bytes (r, s, v)")
    try:
        return Account._recover_hash(typed_data_hash(typed), signature=signature)
    except Exception as exc:  # eth_keys raises several types for malformed (r, s, v)
        raise ValueError(f"the signature cannot be recovered: {type(exc).__name__}") from None
