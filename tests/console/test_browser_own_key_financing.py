"""A financier and a supplier with keys of their own make and accept a financing offer in the
browser: the offer form's "Sign with my own key" shows the FinancingOffer the service built over the
typed-in terms in human terms (who, the part's amount, advance, fee, rate, due date, validity), a
test EIP-1193 wallet (``window.ethereum``, signing in Python with the member's own key) signs it
through wallet.js, and the offer route relays it: the offer on chain is the one signed, by the
financier's own account. The holder then accepts on its own signing page the same way. Before
each, a signature by another key is refused next to the signature field and writes nothing."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

from eth_account import Account
from playwright.sync_api import expect

from tests.console.conftest import api, screenshot, wait_until
from tests.console.wallet import add_own_key, give_wallet, hex_signature


def _forged(page) -> str:
    """A well-formed signature over the page's own typed data, by a key that is no member's."""
    typed = json.loads(page.locator("#typed-data").text_content())
    typed.pop("summary", None)
    return hex_signature(Account.create(), typed)


def _receivable(http, receivable_id: str) -> dict:
    return http.get(f"/v1/receivables/{receivable_id}").json()


def _idle(http, receivable_id: str) -> bool:
    return _receivable(http, receivable_id)["pending_operation_id"] is None


def _op_confirmed(http, receivable_id: str, kind: str) -> bool:
    ops = http.get(f"/v1/receivables/{receivable_id}/history").json()["operations"]
    return any(op["kind"] == kind and op["status"] == "confirmed" for op in ops)


def test_an_offer_and_its_acceptance_signed_with_own_keys_through_a_browser_wallet(open_as, demo):
    bank_key = add_own_key(demo, "bank")
    supplier_key = add_own_key(demo, "supplier")
    invoice = f"OWNFIN-{uuid.uuid4().hex[:8].upper()}"
    with api(demo, "supplier") as http:
        registered = http.post("/v1/receivables", json={
            "buyer_id": "buyer", "invoice_number": invoice, "face_value": {"value": 10_000_00, "currency": "CNY"},
            "issue_date": date.today().isoformat(), "due_date": (date.today() + timedelta(days=90)).isoformat()})
        assert registered.status_code == 201, registered.text
        receivable_id = registered.json()["id"]
        wait_until(lambda: _receivable(http, receivable_id)["status"] == "registered" and _idle(http, receivable_id),
                   "registered")
    with api(demo, "buyer") as http:
        confirmed = http.post(f"/v1/receivables/{receivable_id}/confirm")
        assert confirmed.status_code == 202, confirmed.text
    with api(demo, "supplier") as http:
        wait_until(lambda: _receivable(http, receivable_id)["status"] == "confirmed" and _idle(http, receivable_id),
                   "confirmed")
        part_id = _receivable(http, receivable_id)["parts"][0]["id"]
        asked = http.post(f"/v1/receivables/{receivable_id}/parts/{part_id}/financing-request",
                          json={"financier_id": "bank"})
        assert asked.status_code in (201, 202), asked.text
        wait_until(lambda: _idle(http, receivable_id), "financing requested")

    # The financier: terms typed in, then signed with its own key.
    bank = open_as("bank")
    bank_signed = give_wallet(bank, bank_key)
    bank.goto(f"{demo.api}/console/receivables/{receivable_id}")
    part = bank.locator('section.part[data-index="0"]')
    part.get_by_label("Yearly discount rate").fill("0.045")
    part.get_by_label("Valid until (UTC)").fill((date.today() + timedelta(days=7)).isoformat() + "T12:00")
    part.get_by_role("button", name="Sign with my own key…").click()
    expect(bank.locator("h1")).to_have_text("Sign the financing offer with your own key")
    human = bank.locator("#typed-human")
    expect(human).to_contain_text(f"bank offers to finance part 0 of invoice {invoice}, held by supplier")
    expect(human).to_contain_text("CNY 10,000.00")
    expect(human).to_contain_text("4.5 % · ACT/360")
    offer_id = bank.locator("#typed-human .offer-id").inner_text()

    bank.get_by_label("Signature").fill(_forged(bank))
    bank.get_by_role("button", name="Submit signed offer").click()
    expect(bank.locator("#err-signature")).to_contain_text("is not an account of bank")
    expect(bank.get_by_label("Signature")).to_have_attribute("aria-invalid", "true")
    with api(demo, "bank") as http:
        assert _receivable(http, receivable_id)["parts"][0]["offer"] is None  # nothing written

    bank.get_by_role("button", name="Sign with browser wallet").click()
    expect(bank.locator("#wallet-status")).to_have_text(bank_key.address)
    assert bank_signed[-1]["primaryType"] == "FinancingOffer" and bank_signed[-1]["message"]["offerId"] == offer_id
    screenshot(bank, "receivable-offer-wallet")
    bank.get_by_role("button", name="Submit signed offer").click()
    expect(bank.locator(".notice")).to_contain_text("Offer sent")
    expect(bank.locator(".notice code.offer-id")).to_have_text(offer_id)  # the id signed is the id sent
    with api(demo, "bank") as http:
        wait_until(lambda: _op_confirmed(http, receivable_id, "offer_signed"), "signed offer on chain")
        offer = _receivable(http, receivable_id)["parts"][0]["offer"]
        assert offer is not None and offer["offer_id"] == offer_id and offer["discount_rate_ppm"] == 45_000

    # The holder accepts with its own key.
    supplier = open_as("supplier", locale="zh-CN")
    supplier_signed = give_wallet(supplier, supplier_key)
    supplier.goto(f"{demo.api}/console/receivables/{receivable_id}")
    supplier.locator('section.part[data-index="0"]').get_by_role("link", name="用自有密钥接受…").click()
    expect(supplier.locator("h1")).to_have_text("用自有密钥接受融资报价")
    expect(supplier.locator("#typed-human")).to_contain_text("supplier 接受 bank 对发票")
    expect(supplier.locator("#typed-human .offer-id")).to_have_text(offer_id)
    supplier.get_by_label("签名", exact=True).fill(_forged(supplier))
    supplier.get_by_role("button", name="提交已签名的接受").click()
    expect(supplier.locator("#err-signature")).to_be_visible()
    with api(demo, "supplier") as http:
        assert _receivable(http, receivable_id)["parts"][0]["financed"] is False
    supplier.get_by_role("button", name="用浏览器钱包签名").click()
    expect(supplier.locator("#wallet-status")).to_have_text(supplier_key.address)
    assert supplier_signed[-1]["primaryType"] == "AcceptFinancingOffer"
    supplier.get_by_role("button", name="提交已签名的接受").click()
    expect(supplier.locator(".notice")).to_be_visible()
    with api(demo, "supplier") as http:
        wait_until(lambda: _op_confirmed(http, receivable_id, "accept_signed"), "signed acceptance on chain")
        wait_until(lambda: _receivable(http, receivable_id)["parts"][0]["financed"], "part financed")
