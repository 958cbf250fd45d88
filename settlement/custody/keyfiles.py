"""A member's or governor's own key, kept by its holder in a local file (for ``ledger sign``).

Two formats, told apart by content:

- an Ethereum keystore (JSON, the V3 format of ``eth-account`` / geth: scrypt + AES-128-CTR), whose
  passphrase comes from ``LEDGER_KEY_PASSPHRASE`` or a prompt: the recommended format;
- a hex private key (``0x`` + 64 hex digits) in a file readable by its owner only (mode 0600; any
  other mode is refused): simple, for tests and demos.

The service never reads these files: they belong to whoever signs.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from eth_account import Account

from settlement.chain.signing import LocalSigner
from settlement.core.errors import ConfigurationError

__all__ = ["KEYFILE_BYTES_MAX", "load_key_file", "write_key_file"]

KEYFILE_BYTES_MAX = 64 * 1024


def load_key_file(path: Path, passphrase: Callable[[], str]) -> LocalSigner:
    """The signer of ``path``; ``passphrase()`` is asked for a keystore only."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key file {path}: {exc.strerror}") from None
    if info.st_size > KEYFILE_BYTES_MAX:
        raise ConfigurationError(f"{path} is too large to be a key file")
    text = path.read_text().strip()
    if text.startswith("{"):
        try:
            key = Account.decrypt(json.loads(text), passphrase())
        except ValueError as exc:
            raise ConfigurationError(f"cannot decrypt the keystore {path}: {exc}") from None
        return LocalSigner(bytes(key))
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigurationError(f"{path} holds a plain private key: make it readable by its owner only "
                                 f"(chmod 600), it is {oct(stat.S_IMODE(info.st_mode))}")
    try:
        return LocalSigner(text)
    except ValueError:
        raise ConfigurationError(f"{path} is neither a keystore nor a 0x-hex private key") from None


def write_key_file(path: Path, *, passphrase: str | None = None) -> str:
    """A new key in ``path`` (created 0600, never overwritten): a keystore when ``passphrase`` is
    given, else hex. Returns its address."""
    account = Account.create()
    body = json.dumps(Account.encrypt(account.key, passphrase)) if passphrase else "0x" + bytes(account.key).hex()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body + "\n")
    return account.address
