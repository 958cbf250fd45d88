"""Receivables in the browser against a real `ledger up --demo`: the supplier registers an
invoice, the buyer sees the own-key confirmation in human terms (a forged pasted signature is
refused next to its field and changes nothing) and confirms it custodially, the supplier splits
it, asks the bank for financing, the bank offers and the supplier accepts: each step seen on the
page once the chain has it."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

from playwright.sync_api import expect
import pytest

from tests.console.conftest import CHAIN_WAIT_S, api, screenshot


def _wait_settled(page) -> None:
    """Wait until the receivable has no operation on its way (htmx polls the status fragment),
    then reload for the page's actions."""
    expect(page.locator("#rstatus")).to_have_attribute("data-pending", "no", timeout=CHAIN_WAIT_S * 1000)
    page.reload()


@pytest.mark.slow(seconds=150)
def test_register_confirm_split_and_finance_a_receivable(open_as, demo):
    invoice = f"INV-{uuid.uuid4().hex[:8].upper()}"
    supplier = open_as("supplier")
    supplier.goto(f"{demo.api}/console/receivables/new")
    supplier.get_by_label("Buyer").fill("buyer")
    supplier.get_by_label("Invoice number").fill(invoice)
    supplier.get_by_label("Face value").fill("12,000.00")
    supplier.get_by_label("Currency").fill("CNY")
    supplier.get_by_label("Issue date").fill(date.today().isoformat())
    supplier.get_by_label("Due date").fill((date.today() + timedelta(days=90)).isoformat())
    screenshot(supplier, "receivable-new")
    supplier.get_by_role("button", name="Register").click()
    expect(supplier.locator("h1")).to_contain_text(invoice)
    receivable_id = supplier.locator("#receivable-id").inner_text()
    _wait_settled(supplier)
    expect(supplier.locator("#rstatus")).to_have_attribute("data-status", "registered")

    buyer = open_as("buyer")
    buyer.goto(f"{demo.api}/console/receivables")
    buyer.locator(f'tr[data-id="{receivable_id}"] a').click()
    human = buyer.locator("#typed-human")
    expect(human).to_contain_text("buyer confirms it owes supplier this invoice")
    expect(human).to_contain_text("CNY 12,000.00")
    expect(human).to_contain_text(invoice)
    screenshot(buyer, "receivable-sign")
    buyer.get_by_label("Signature").fill("0x" + "11" * 65)  # not the buyer's signature
    buyer.get_by_role("button", name="Submit signed confirmation").click()
    expect(buyer.locator(".field-error, #action-error").first).to_be_visible()
    with api(demo, "buyer") as http:
        assert http.get(f"/v1/receivables/{receivable_id}").json()["status"] == "registered"
    buyer.goto(f"{demo.api}/console/receivables/{receivable_id}")
    buyer.get_by_role("button", name="Confirm (custodial key)").click()
    expect(buyer.locator(".notice")).to_contain_text("Confirmation sent")
    _wait_settled(buyer)
    expect(buyer.locator("#rstatus")).to_have_attribute("data-status", "confirmed")

    supplier.reload()
    part = supplier.locator("section.part").first
    part.get_by_text("Split", exact=True).first.click()
    part.get_by_label(re.compile("Amounts")).fill("7,000.00; 5,000.00")
    part.get_by_role("button", name="Split").click()
    expect(supplier.locator(".notice")).to_contain_text("Split sent")
    _wait_settled(supplier)
    expect(supplier.locator("section.part")).to_have_count(2)
    expect(supplier.locator('section.part[data-index="1"] h3')).to_contain_text("CNY 5,000.00")

    second = supplier.locator('section.part[data-index="1"]')
    second.get_by_text("Request financing", exact=True).first.click()
    second.get_by_label("Financier").fill("bank")
    second.get_by_role("button", name="Request financing").click()
    expect(supplier.locator(".notice")).to_contain_text("Financing requested")
    _wait_settled(supplier)

    bank = open_as("bank")
    bank.goto(f"{demo.api}/console/receivables/{receivable_id}")
    offer = bank.locator('section.part[data-index="1"]')
    valid_until = (date.today() + timedelta(days=7)).isoformat() + "T12:00"
    offer.get_by_label("Valid until (UTC)").fill(valid_until)
    offer.get_by_role("button", name="Make an offer").click()
    expect(bank.locator(".notice")).to_contain_text("Offer sent")
    # the offer's id is known at once (assigned before the transaction), and is the one the part shows
    offer_id = bank.locator(".notice code.offer-id").inner_text()
    assert re.fullmatch(r"0x[0-9a-f]{64}", offer_id), offer_id
    _wait_settled(bank)

    supplier.reload()
    expect(supplier.locator('section.part[data-index="1"] code.offer-id')).to_have_text(offer_id)
    supplier.locator('section.part[data-index="1"]').get_by_role("button", name="Accept offer").click()
    expect(supplier.locator(".notice")).to_contain_text("Offer accepted")
    _wait_settled(supplier)
    expect(supplier.locator('section.part[data-index="1"]')).to_contain_text(re.compile(r"Financed\s*yes"))
    screenshot(supplier, "receivable-detail")
    with api(demo, "supplier") as http:
        body = http.get(f"/v1/receivables/{receivable_id}").json()
    assert [p["amount"]["value"] for p in body["parts"]] == [700000, 500000]
    assert body["parts"][1]["financed"] is True


def test_a_receivable_of_others_is_404_in_the_console(open_as, demo):
    with api(demo, "supplier") as http:
        mine = http.get("/v1/receivables").json()["data"]
    if not mine:
        return
    auditor_free = open_as("payments")  # neither supplier, buyer nor financier of it
    response = auditor_free.goto(f"{demo.api}/console/receivables/{mine[0]['id']}")
    assert response.status == 404
