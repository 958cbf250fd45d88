"""Custody of the signing keys the service holds for its members and for the operator.

Private keys are encrypted at rest with AES-256-GCM under a key-encryption key (KEK). The KEK
comes from ``LEDGER_KEK`` (base64url of 32 bytes) or from ``$LEDGER_HOME/kek``, a file created
with mode 0600 on first start; it is never written to the database. Each ciphertext is bound to
its account address (GCM associated data), so a ciphertext moved to another row fails to decrypt.

With a PKCS#11 token configured (:mod:`settlement.custody.hsm`), the keys named in ``hsm_keys``
(``operator``, ``members``) are generated in the token instead, and the vault keeps for each only
a reference (format byte 0x02 and the key's CKA_ID) where an encrypted key would be: nothing in
the store or the data dir can be decrypted into such a key. Which kind a stored account is, is
read from its blob's format byte, so both kinds live side by side (accounts created before the
token was configured keep their encrypted keys).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account

from settlement.chain.signing import LocalSigner, Signer
from settlement.core.errors import ConfigurationError
from settlement.custody.hsm import REFERENCE_FORMAT, HsmToken

KEK_BYTES = 32
NONCE_BYTES = 12
FORMAT_V1 = b"\x01"  # an encrypted private key; REFERENCE_FORMAT (0x02): a key in the HSM
HSM_KEY_KINDS = ("operator", "members")  # which of the service's keys may live in a token


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
    """Encrypts and decrypts private keys under the KEK, or names keys held in an HSM; hands out
    signers, caching them."""

    def __init__(self, kek: bytes, *, hsm: HsmToken | None = None, hsm_keys: Iterable[str] = ()) -> None:
        if len(kek) != KEK_BYTES:
            raise ConfigurationError("the key-encryption key must be 32 bytes")
        kinds = frozenset(hsm_keys)
        if not kinds <= set(HSM_KEY_KINDS):
            raise ConfigurationError(f"LEDGER_HSM_KEYS names {', '.join(sorted(kinds - set(HSM_KEY_KINDS)))}; "
                                     f"known: {', '.join(HSM_KEY_KINDS)}")
        if kinds and hsm is None:
            raise ConfigurationError("keys are to live in an HSM but none is configured (LEDGER_HSM_MODULE)")
        self._aead = AESGCM(kek)
        self._signers: dict[str, Signer] = {}
        self.hsm = hsm
        self.hsm_keys = kinds

    def __repr__(self) -> str:
        return f"KeyVault(<kek hidden>, hsm={self.hsm!r}, hsm_keys={sorted(self.hsm_keys)})"

    def in_hsm(self, kind: str) -> bool:
        """Whether new keys of ``kind`` (``operator``, ``members``) are generated in the token."""
        return kind in self.hsm_keys

    def new_account(self, kind: str = "members") -> tuple[str, bytes]:
        """A fresh account: (checksummed address, blob to store). The blob is the encrypted
        private key, or, when keys of ``kind`` live in the HSM, the reference to a key generated
        inside the token (the private key then exists nowhere else)."""
        if kind not in HSM_KEY_KINDS:
            raise ValueError(f"unknown key kind {kind!r}")
        if self.hsm is not None and kind in self.hsm_keys:
            key_id, address = self.hsm.generate(f"ledger {kind}")
            signer = self.hsm.signer(key_id, address)
            self._signers[address] = signer
            return address, HsmToken.reference(key_id)
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

    def signer(self, address: str, blob: bytes) -> Signer:
        cached = self._signers.get(address)
        if cached is None:
            if blob[:1] == REFERENCE_FORMAT:
                if self.hsm is None:
                    raise ConfigurationError(f"the key of {address} lives in an HSM; configure LEDGER_HSM_MODULE")
                cached = self.hsm.signer(HsmToken.key_id_of(blob), address)
            else:
                cached = LocalSigner(self.decrypt(address, blob))
            if cached.address != address:
                raise ConfigurationError(f"stored key does not belong to {address}")
            self._signers[address] = cached
        return cached

    def register(self, signer: Signer) -> None:
        self._signers[signer.address] = signer

    def cached_signer(self, address: str) -> Signer | None:
        return self._signers.get(address)


def load_or_create_operator(home: Path, vault: KeyVault, from_env: str | None) -> Signer:
    """The operator (registry admin) key: LEDGER_OPERATOR_KEY, else one generated on first start
    and kept in ``$LEDGER_HOME/operator.key`` (encrypted, or as a reference to a key generated in
    the HSM when the operator's key lives there).

    An operator key that must live in the HSM but exists outside it (LEDGER_OPERATOR_KEY, or an
    encrypted key from before the HSM was configured) is refused rather than used: it cannot be
    moved into the token without having existed outside it, and changing the operator's account
    is a consortium decision, not a start-up side effect."""
    in_hsm = vault.in_hsm("operator")
    if from_env:
        if in_hsm:
            raise ConfigurationError("LEDGER_OPERATOR_KEY is set but LEDGER_HSM_KEYS puts the operator's key "
                                     "in the HSM: unset one of them")
        signer = LocalSigner(from_env)
        vault.register(signer)
        return signer
    path = home / "operator.key"
    if path.exists():
        address, blob_b64 = path.read_text().split(":", 1)
        blob = _b64decode(blob_b64)
        if in_hsm and blob[:1] != REFERENCE_FORMAT:
            raise ConfigurationError(f"{path} holds an encrypted operator key, but LEDGER_HSM_KEYS puts the "
                                     "operator's key in the HSM; a key made outside the token is never moved into "
                                     "it (see docs/custody.md)")
        return vault.signer(address, blob)
    address, blob = vault.new_account("operator")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(address + ":" + base64.urlsafe_b64encode(blob).decode())
    return vault.signer(address, blob)
