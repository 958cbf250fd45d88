"""SoftHSM2 for the custody tests: one fresh token per test session, under a temporary
SOFTHSM2_CONF, so no test sees /etc/softhsm or another run's keys.

`make test` installs Debian's softhsm2 when missing and sets LEDGER_TEST_HSM_MODULE; run pytest
directly and this file asks scripts/test-softhsm.sh the same way. Like PostgreSQL, it is never
skipped: a test that needs the token and cannot get one fails.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from settlement.custody.hsm import HsmToken

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    conf: Path
    token_dir: Path
    token_label: str
    pin: str = field(repr=False)


def softhsm_module() -> Path:
    module = os.environ.get("LEDGER_TEST_HSM_MODULE")
    if not module:
        module = subprocess.run([str(ROOT / "scripts" / "test-softhsm.sh")], check=True, capture_output=True,
                                text=True).stdout.strip().splitlines()[-1]
        os.environ["LEDGER_TEST_HSM_MODULE"] = module
    return Path(module)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A new SoftHSM2 token (random PINs) in a temporary token directory. SOFTHSM2_CONF is set
    for the session before the PKCS#11 module is first loaded (it reads it at C_Initialize)."""
    module = softhsm_module()
    base = tmp_path_factory.mktemp("softhsm")
    token_dir = base / "tokens"
    token_dir.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label, pin = "ledger-test-" + secrets.token_hex(4), secrets.token_hex(8)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                    "--so-pin", secrets.token_hex(8)], check=True, capture_output=True)
    yield SoftHsm(module, conf, token_dir, label, pin)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="session")
def hsm_token(softhsm: SoftHsm) -> Iterator[HsmToken]:
    token = HsmToken(softhsm.module, softhsm.token_label, softhsm.pin)
    yield token
    token.close()
