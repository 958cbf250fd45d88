"""An own-key buyer confirms a receivable in the browser with a wallet: the buyer adds an account
of its own (proof of possession by the new key, consent by its custodial key: the API's key-change
flow), a test wallet (an EIP-1193 ``window.ethereum`` whose ``eth_signTypedData_v4`` signs with that
key in Python) signs the typed data the page shows through wallet.js, and the API relays the
approval: the receivable is confirmed by the buyer's own key, not the service's."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from playwright.sync_api import expect

from tests.console.conftest import CHAIN_WAIT_S, api, screenshot, wait_until
from tests.console.wallet import add_own_key, give_wallet

def test_a_buyer_confirms_with_its_own_key_through_a_browser_wallet(open_as, demo):
    key = add_own_key(demo, "buyer")
    with api(demo, "supplier") as http:
        registered = http.post("/v1/receivables", json={
            "buyer_id": "buyer", "invoice_number": f"OWN-{uuid.uuid4().hex[:8].upper()}",
            "face_value": {"value": 8_800_00, "currency": "CNY"}, "issue_date": date.today().isoformat(),
            "due_date": (date.today() + timedelta(days=60)).isoformat()})
        assert registered.status_code == 201, registered.text
        receivable_id = registered.json()["id"]
        wait_until(lambda: http.get(f"/v1/receivables/{receivable_id}").json()["status"] == "registered"
              and http.get(f"/v1/receivables/{receivable_id}").json()["pending_operation_id"] is None, "registered")

    page = open_as("buyer")
    signed = give_wallet(page, key)
    page.goto(f"{demo.api}/console/receivables/{receivable_id}")
    button = page.get_by_role("button", name="Sign with browser wallet")
    expect(button).to_be_visible()
    button.click()
    expect(page.locator("#wallet-status")).to_have_text(key.address)
    assert signed and signed[0]["primaryType"] == "ConfirmReceivable" and "summary" not in signed[0]
    assert page.get_by_label("Signature").input_value().startswith("0x")
    screenshot(page, "receivable-wallet")
    page.get_by_role("button", name="Submit signed confirmation").click()
    expect(page.locator(".notice")).to_contain_text("Confirmation sent")
    expect(page.locator("#rstatus")).to_have_attribute("data-pending", "no", timeout=CHAIN_WAIT_S * 1000)
    with api(demo, "buyer") as http:
        body = http.get(f"/v1/receivables/{receivable_id}").json()
    assert body["status"] == "confirmed"
    assert (body["confirmed_by"] or "").lower() == key.address.lower()
