"""`ledger sign` on a buyer's confirmation and a financier's offer (the typed data as the API's
typed-data endpoints answer it, `summary` included): it shows, computed from the typed data
alone, the supplier, the amounts with their currency, the dates and the deadline, and writes a
signature that recovers to the key file's address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from ledger_api.cli import main as ledger_main
from settlement.chain.signing import recover_typed_data
from settlement.domains.receivables import typed_data as td

SUPPLIER = "0x" + "5a" * 32
CONTRACT = "0x" + "56" * 20


def test_sign_shows_what_the_buyer_owes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "own.key"
    assert ledger_main(["keygen", str(key)]) == 0
    address = Account.from_key(key.read_text().strip()).address
    typed = td.confirm_typed_data(31337, CONTRACT, receivable_id="0x" + "01" * 32, supplier_onchain_id=SUPPLIER,
                                  invoice_number_hash="0x" + "02" * 32, face_value_minor=500_000_000, currency="CNY",
                                  issue_day=20_454, due_day=20_544, nonce=(1 << 64) | 0, deadline=1_900_000_000)
    doc = tmp_path / "confirmation.json"
    doc.write_text(json.dumps({**typed, "summary": ["the service's words"]}))
    capsys.readouterr()
    assert ledger_main(["sign", str(doc), "--key", str(key), "--out", str(tmp_path / "sig"), "--yes"]) == 0
    out = capsys.readouterr().out
    for expected in ("ConfirmReceivable for ReceivableRegistry", f"supplierId: {SUPPLIER}",
                     "faceValueMinor: 5,000,000.00 CNY", "currency: 'CNY'", "issueDay: 2026-01-01",
                     "dueDay: 2026-04-01", "deadline: 2030-03-17T17:46:40Z"):
        assert expected in out, (expected, out)
    assert "the service's words" not in out
    signature = bytes.fromhex((tmp_path / "sig").read_text().strip()[2:])
    assert recover_typed_data(typed, signature) == address


def test_offer_terms_render_with_their_currency() -> None:
    from settlement.chain.describe import describe_typed_data

    typed = td.offer_typed_data(31337, CONTRACT, part_id="0x" + "03" * 32, offer_id="0x" + "05" * 32,
                                financier_onchain_id="0x" + "04" * 32,
                                amount_minor=1_000_000, currency="JPY", due_day=20_544, advance_minor=980_000,
                                fee_minor=1_000, discount_rate_ppm=50_000, day_count_basis=1, valid_until=1_900_000_000,
                                nonce=0, deadline=1_900_000_000)
    lines = "\n".join(describe_typed_data(typed))
    for expected in ("amountMinor: 1,000,000 JPY", "advanceMinor: 980,000 JPY", "feeMinor: 1,000 JPY",
                     "dueDay: 2026-04-01", "validUntil: 2030-03-17T17:46:40Z"):
        assert expected in lines, (expected, lines)
