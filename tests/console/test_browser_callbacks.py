"""Callbacks in the browser against a real `ledger up --demo`: a correctly signed Stripe
notification for an order the ledger does not know arrives on a demo provider account; its owner
sees it on the callbacks page as an exception with its reason and opens it; an auditor sees it
too (auditors read across members) and can filter by owner; a finance member that does not own
the account sees neither it nor the account, and its id answers 404 (docs/api.md, Tenancy)."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import expect

from settlement.core.money import Money
from settlement.providers.testing import simulated_payment
from tests.console.conftest import api, screenshot


def _unknown_order_callback(demo) -> tuple[str, str]:
    """Post a signed Stripe payment for an order nobody recorded; (its txn id, the account's owner)."""
    creds = demo.demo["providers"]["stripe"]
    with api(demo, "operator") as http:
        owner = next(a["owner"] for a in http.get("/v1/provider-accounts").json()["data"]
                     if a["provider"] == "stripe" and a["account"] == creds["account"])
    txn = f"pi_console_{uuid.uuid4().hex[:10]}"
    note = simulated_payment("stripe", creds, f"NOBODY-{txn}", Money(4_200, "USD"), provider_txn_id=txn)
    answer = httpx.post(f"{demo.api}/v1/callbacks/stripe/{creds['account']}", content=note.body,
                        headers=note.headers, timeout=30)
    assert answer.status_code < 300, answer.text
    return txn, owner


def test_callbacks_are_shown_to_the_accounts_owner_and_auditors_only(open_as, demo):
    txn, owner = _unknown_order_callback(demo)
    page = open_as(owner)
    page.goto(f"{demo.api}/console/callbacks")
    row = page.locator("#callbacks tbody tr", has_text=txn)
    expect(row).to_have_attribute("data-outcome", "exception")
    expect(row).to_contain_text("USD 42.00")
    expect(page.locator("#provider-accounts")).to_contain_text(demo.demo["providers"]["stripe"]["account"])
    screenshot(page, "callbacks")
    callback_id = row.get_attribute("data-callback")
    page.get_by_label("Outcome").select_option("exception")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#callbacks tbody tr", has_text=txn)).to_have_count(1)
    page.locator("#callbacks tbody tr", has_text=txn).get_by_role("link").click()
    expect(page.locator("#callback")).to_have_attribute("data-outcome", "exception")

    auditor = open_as("auditor")
    auditor.goto(f"{demo.api}/console/callbacks?owner={owner}")
    expect(auditor.locator("#callbacks tbody tr", has_text=txn)).to_have_count(1)
    auditor.goto(f"{demo.api}/console/callbacks?owner=Not%20A%20Member")
    expect(auditor.get_by_label("Owner (member id)")).to_have_attribute("aria-invalid", "true")

    bystander = next(m for m in ("retailer", "supplier") if m != owner)
    other = open_as(bystander)
    other.goto(f"{demo.api}/console/callbacks?provider_txn_id={txn}")
    expect(other.locator("#callbacks tbody tr", has_text=txn)).to_have_count(0)
    expect(other.locator("#provider-accounts")).not_to_contain_text(demo.demo["providers"]["stripe"]["account"])
    assert other.goto(f"{demo.api}/console/callbacks/{callback_id}").status == 404
