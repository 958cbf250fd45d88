"""The HSM's PIN never reaches a log (issue 15, structured logs): with every logger at DEBUG, a
login with the PIN and with a PIN file, key generation in the token, a signature, a vault making
an HSM-held account, and a login with a wrong PIN (refused) leave no trace of either PIN in any
captured record (message, fields or traceback), captured raw. Shares the session's SoftHSM2 token
(tests/custody/conftest.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from settlement.core.errors import LedgerError
from settlement.custody.hsm import open_token
from settlement.custody.vault import KeyVault

from .conftest import SoftHsm


class RawCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.texts.append(f"{record.name} {record.getMessage()} {vars(record)!r} {exc}")


def test_the_pin_is_never_logged(softhsm: SoftHsm, tmp_path: Path) -> None:
    root = logging.getLogger()
    capture, level = RawCapture(), root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    wrong_pin = "7" * 12
    try:
        token = open_token(softhsm.module, softhsm.token_label, softhsm.pin, None)
        key_id, _address = token.generate("log test")
        token.signer(key_id).unsafe_sign_hash(b"\x11" * 32)
        vault = KeyVault(os.urandom(32), hsm=token, hsm_keys=["members"])
        vault.new_account("members")
        pin_file = tmp_path / "pin"
        pin_file.write_text(softhsm.pin + "\n")
        os.chmod(pin_file, 0o600)
        again = open_token(softhsm.module, softhsm.token_label, None, pin_file)
        again.generate("log test 2")
        with pytest.raises(LedgerError) as refused:
            open_token(softhsm.module, softhsm.token_label, wrong_pin, None).generate("never")
        assert wrong_pin not in str(refused.value.detail)
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
    text = "\n".join(capture.texts)
    assert softhsm.pin not in text and wrong_pin not in text
