"""The journal audit in the browser against a real `ledger up --demo`: an auditor runs the same
audit as `ledger anchors audit` (the store read-only, the roots on chain) and sees it verified,
with its records and batches counted; a settlement row changed behind the service's back (by SQL
on the demo's SQLite file, put back afterwards) is then named as a CHANGED finding with its
kind/id and the anchored batch that proves it; a finance member may not run it."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing

from playwright.sync_api import expect

from tests.console.conftest import api, screenshot, wait_until


def _anchored_settlement(demo) -> str:
    tag = uuid.uuid4().hex[:6]
    with api(demo, "retailer") as http:
        created = http.post("/v1/settlements", headers={"Idempotency-Key": f"aud-{tag}"}, json={
            "client_reference": f"AUD-{tag}", "payee": "supplier", "source": {"value": 7_700, "currency": "CNY"},
            "target": {"currency": "CNY"}, "fx_rate": "1", "purpose_code": "GDDS", "payment_reference": f"AUD-{tag}"})
        assert created.status_code == 201, created.text
        settlement_id = created.json()["id"]
        wait_until(lambda: http.get(f"/v1/settlements/{settlement_id}").json()["chain"]["status"] == "confirmed",
                   "settlement confirmed")
    with api(demo, "operator") as http:
        assert http.post("/v1/anchors/flush").status_code == 200
    with api(demo, "auditor") as http:
        def anchored() -> bool:
            doc = http.get(f"/v1/anchors/records/settlement/{settlement_id}/proof")
            return doc.status_code == 200 and doc.json()["anchor"] is not None
        wait_until(anchored, "the settlement's journal record anchored")
    return settlement_id


def _set_reference(demo, settlement_id: str, value: str | None) -> str:
    with closing(sqlite3.connect(demo.home / "ledger.db", timeout=30)) as db, db:
        before = db.execute("SELECT payment_reference FROM settlements WHERE id = ?", (settlement_id,)).fetchone()[0]
        if value is not None:
            db.execute("UPDATE settlements SET payment_reference = ? WHERE id = ?", (value, settlement_id))
    return before


def test_an_auditor_runs_the_journal_audit_and_sees_a_changed_record_named(open_as, demo):
    settlement_id = _anchored_settlement(demo)
    page = open_as("auditor")
    page.goto(f"{demo.api}/console/audit")
    page.locator("#journal-audit-link").click()
    page.get_by_role("button", name="Run the audit").click()
    result = page.locator("#audit-result")
    expect(result).to_have_attribute("data-ok", "yes", timeout=60_000)
    assert int(page.locator("#audit-records").inner_text()) >= 1
    assert int(page.locator("#audit-batches").inner_text().split()[0]) >= 1
    screenshot(page, "audit-journal")

    original = _set_reference(demo, settlement_id, "TAMPERED-BY-SQL")
    try:
        page.get_by_role("button", name="Run the audit").click()
        expect(result).to_have_attribute("data-ok", "no", timeout=60_000)
        finding = page.locator(f'#audit-findings tr[data-subject="settlement/{settlement_id}"]')
        expect(finding).to_have_attribute("data-verdict", "CHANGED")
        expect(finding).to_contain_text("payment_reference")
        expect(finding).to_contain_text("batch")
    finally:
        _set_reference(demo, settlement_id, original)
    page.get_by_role("button", name="Run the audit").click()
    expect(result).to_have_attribute("data-ok", "yes", timeout=60_000)


def test_a_finance_member_may_not_run_the_journal_audit(open_as, demo):
    page = open_as("retailer")
    assert page.goto(f"{demo.api}/console/audit/journal").status == 403
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert page.request.post(f"{demo.api}/console/audit/journal", form={"csrf": csrf}).status == 403
