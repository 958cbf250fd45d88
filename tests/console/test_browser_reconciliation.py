"""Reconciliation in the browser against a real `ledger up --demo`: the retailer uploads the shipped
sample Alipay bill, sees the run's buckets (its lines are not in the ledger: exceptions), resolves
one exception with a note (kept in its history through the API); another finance member does not
see the retailer's exceptions."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.console.conftest import ROOT, api, screenshot

SAMPLE = ROOT / "docs" / "samples" / "alipay-bill.csv"


def test_upload_a_statement_see_the_buckets_and_resolve_an_exception(open_as, demo):
    assert SAMPLE.is_file()
    page = open_as("retailer")
    page.goto(f"{demo.api}/console/reconciliation")
    page.get_by_label("Format").select_option("alipay")
    page.get_by_label("Statement file").set_input_files(str(Path(SAMPLE)))
    page.get_by_role("button", name="Import and reconcile").click()
    expect(page.locator("h1")).to_contain_text("Reconciliation run")
    expect(page.locator('#buckets tr[data-bucket="missing_in_ledger"]')).to_be_visible()
    row = page.locator("table.exceptions tbody tr[data-state=open]").first
    exception_id = row.get_attribute("data-exception")
    screenshot(page, "reconciliation-run")
    row.get_by_label("Note").fill("not ours: a test payment on the provider's side")
    row.get_by_label("Resolution").select_option("written_off")
    row.get_by_role("button", name="Resolve").click()
    resolved = page.locator(f'tr[data-exception="{exception_id}"]')
    expect(resolved).to_have_attribute("data-state", "resolved")
    expect(resolved).to_contain_text("not ours: a test payment")
    with api(demo, "retailer") as http:
        doc = http.get(f"/v1/reconciliation/exceptions/{exception_id}").json()
    assert doc["state"] == "resolved" and doc["history"][-1]["note"].startswith("not ours")
    other = open_as("payments")
    other.goto(f"{demo.api}/console/reconciliation")
    expect(other.locator(f'tr[data-exception="{exception_id}"]')).to_have_count(0)
