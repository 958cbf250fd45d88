"""Custody of the signing keys the service holds for its members and for the operator.

Private keys are encrypted at rest with AES-256-GCM under a key-encryption key (KEK). The KEK
comes from ``LEDGER_KEK`` (base64url of 32 bytes) or from ``$LEDGER_HOME/kek``, a file created
with mode 0600 on first start; it is never written to the database. Each ciphertext is bound to
its account address (GCM associated data), so a ciphertext moved to another row fails to decrypt.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account

from settlement.chain.signing import LocalSigner
from settlement.core.errors import ConfigurationError

KEK_BYTES = 32
NONCE_BYTES = 12
FORMAT_V1 = b"\x01"


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_kek(home: Path, from_env: str | None) -> bytes:
    """The KEK from the environment, else from the 0600 file in ``home`` (created if absent)."""
    if from_env:
        kek = _b64decode(from_env)
        if len(kek) != KEK_BYTES:
            raise ConfigurationError("LEDGER_KEK must be base64url of exactly 32 bytes")
        return kek
    path = home / "kek"
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigurationError(f"{path} must be readable by its owner only (chmod 600), is {oct(mode)}")
        kek = _b64decode(path.read_text())
        if len(kek) != KEK_BYTES:
            raise ConfigurationError(f"{path} does not hold a 32-byte key")
        return kek
    home.mkdir(parents=True, exist_ok=True)
    kek = secrets.token_bytes(KEK_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(kek).decode().rstrip("="))
    return kek


class KeyVault:
    """Encrypts and decrypts private keys under the KEK; hands out signers, caching them."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_BYTES:
            raise ConfigurationError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(kek)
        self._signers: dict[str, LocalSigner] = {}

    def __repr__(self) -> str:
        return "KeyVault(<kek hidden>)"

    def new_account(self) -> tuple[str, bytes]:
        """A fresh account: (checksummed address, encrypted private key)."""
        acct = Account.create()
        return acct.address, self.encrypt(acct.address, bytes(acct.key))

    def encrypt(self, address: str, private_key: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return FORMAT_V1 + nonce + self._aead.encrypt(nonce, private_key, address.lower().encode())

    def decrypt(self, address: str, blob: bytes) -> bytes:
        if not blob or blob[:1] != FORMAT_V1:
            raise ConfigurationError("unknown key format")
        nonce, ct = blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ct, address.lower().encode())
        except Exception:
            raise ConfigurationError(f"cannot decrypt the key of {address}: wrong KEK or tampered data") from None

    def signer(self, address: str, blob: bytes) -> LocalSigner:
        cached = self._signers.get(address)
        if cached is None:
            cached = LocalSigner(self.decrypt(address, blob))
            if cached.address != address:
                raise ConfigurationError(f"stored key does not belong to {address}")
            self._signers[address] = cached
        return cached

    def register(self, signer: LocalSigner) -> None:
        self._signers[signer.address] = signer

    def cached_signer(self, address: str) -> LocalSigner | None:
        return self._signers.get(address)


def load_or_create_operator(home: Path, vault: KeyVault, from_env: str | None) -> LocalSigner:
    """The operator (registry admin) key: LEDGER_OPERATOR_KEY, else one generated on first start
    and kept encrypted in ``$LEDGER_HOME/operator.key``."""
    if from_env:
        signer = LocalSigner(from_env)
        vault.register(signer)
        return signer
    path = home / "operator.key"
    if path.exists():
        address, blob_b64 = path.read_text().split(":", 1)
        signer = vault.signer(address, _b64decode(blob_b64))
        return signer
    address, blob = vault.new_account()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(address + ":" + base64.urlsafe_b64encode(blob).decode())
    return vault.signer(address, blob)
