"""`ledger sign` shows what is signed in human terms, computed from the typed data alone (contract
and function, decoded arguments, amounts with their currency's exponent, dates, deadlines, nested
calls of a governance batch), and writes a signature that recovers to the key file's address;
`ledger keygen` makes key files; a plain key file readable by others is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from ledger_api.cli import main as ledger_main
from settlement.chain.contracts import catalogue
from settlement.chain.governance import ZERO_BYTES32, safe_tx_typed_data
from settlement.chain.signing import recover_typed_data
from settlement.domains.members import ROLE_HASHES
from settlement.domains.settlements.commands import reference_hash
from settlement.pipeline.intents import FORWARD_REQUEST_TYPES

REGISTRY = "0x" + "12" * 20
TIMELOCK = "0x" + "34" * 20


def _instruction() -> list:
    return [reference_hash("INV-1"), "0x" + "ab" * 32, 123_456, "0x484b44", 112_839, "0x434e59", 914_000_000_000, 500,
            20_454, "0x47444453", reference_hash("ORDER-1")]


def _forward_request() -> dict:
    data = catalogue().function("SettlementLedger", "recordSettlement").encode([_instruction()])
    return {"types": FORWARD_REQUEST_TYPES, "primaryType": "ForwardRequest",
            "domain": {"name": "LedgerForwarder", "version": "1", "chainId": 31337, "verifyingContract": "0x" + "56" * 20},
            "message": {"from": "0x" + "78" * 20, "to": "0x" + "9a" * 20, "value": 0, "gas": 250_000, "nonce": 3,
                        "deadline": 1_900_000_000, "data": "0x" + data.hex()}}


def _key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "own.key"
    assert ledger_main(["keygen", str(path)]) == 0
    return path, Account.from_key(path.read_text().strip()).address


def test_sign_shows_an_intent_in_human_terms_and_signs_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, address = _key(tmp_path)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    typed = _forward_request()
    doc = tmp_path / "intent.json"
    doc.write_text(json.dumps({"intent": {"id": "int_x", "typed_data": typed, "summary": ["the service's words"]}}))
    capsys.readouterr()
    assert ledger_main(["sign", str(doc), "--key", str(key), "--out", str(tmp_path / "sig"), "--yes"]) == 0
    out = capsys.readouterr().out
    for expected in ("ForwardRequest for LedgerForwarder", "SettlementLedger.recordSettlement(",
                     "sourceAmountMinor: 1,234.56 HKD", "targetAmountMinor: 1,128.39 CNY", "feesMinor: 5.00 HKD",
                     "valueDate: 2026-01-01", "deadline: 2030-03-17T17:46:40Z", "purposeCode: 'GDDS'",
                     f"with the key of {address}"):
        assert expected in out, (expected, out)
    assert "the service's words" not in out  # the summary is computed, not taken from the file
    signature = bytes.fromhex((tmp_path / "sig").read_text().strip()[2:])
    assert recover_typed_data(typed, signature) == address


def test_sign_decodes_a_governance_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A governor sees the registry call inside the timelock batch inside the Safe transaction."""
    key, address = _key(tmp_path)
    payload = catalogue().function("ConsortiumRegistry", "grantMemberRole").encode(["0x" + "cd" * 32,
                                                                                  ROLE_HASHES["financier"]])
    data = catalogue().function("ConsortiumTimelock", "scheduleBatch").encode(
        [[REGISTRY], [0], [payload], ZERO_BYTES32, "0x" + "01" * 32, 172_800])
    doc = tmp_path / "proposal.json"
    doc.write_text(json.dumps({"typed_data": safe_tx_typed_data(31337, "0x" + "ef" * 20, TIMELOCK, data, 4)}))
    capsys.readouterr()
    assert ledger_main(["sign", str(doc), "--key", str(key), "--yes"]) == 0
    out = capsys.readouterr().out
    for expected in ("SafeTx", "ConsortiumTimelock.scheduleBatch(", "ConsortiumRegistry.grantMemberRole(",
                     "role: financier", "delay: 172800 s", "nonce: 4", "signature: 0x"):
        assert expected in out, (expected, out)


def test_key_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A keystore opens with its passphrase; a plain key readable by others, a wrong passphrase or
    a file without typed data are refused, and nothing is signed."""
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "correct horse")
    store = tmp_path / "store.json"
    assert ledger_main(["keygen", str(store), "--keystore"]) == 0
    assert ledger_main(["keygen", str(store)]) == 2  # never overwrites a key
    doc = tmp_path / "t.json"
    doc.write_text(json.dumps(_forward_request()))
    assert ledger_main(["sign", str(doc), "--key", str(store), "--yes"]) == 0
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "wrong")
    assert ledger_main(["sign", str(doc), "--key", str(store), "--yes"]) == 2
    loose = tmp_path / "loose.key"
    loose.write_text("0x" + bytes(Account.create().key).hex())
    loose.chmod(0o644)
    assert ledger_main(["sign", str(doc), "--key", str(loose), "--yes"]) == 2
    assert "chmod 600" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    loose.chmod(0o600)
    assert ledger_main(["sign", str(tmp_path / "junk.json"), "--key", str(loose), "--yes"]) == 2
    # Without --yes and no terminal to ask on: not signed.
    assert ledger_main(["sign", str(doc), "--key", str(loose)]) == 1
