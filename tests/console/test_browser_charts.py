"""Netting and the pictures, in the browser against a real `ledger up --demo`: two opposite paid
settlements netted in a cycle the operator closes in the console; the cycle page shows gross vs
net; the charts page draws settlement volume, gross vs net, receivables ageing and financing
outstanding as inline SVG (no script), in the member's language; and the exception rates of
payment callbacks and reconciliation runs."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from playwright.sync_api import expect

from tests.console.conftest import CHAIN_WAIT_S, ROOT, api, screenshot, wait_until
from tests.console.test_browser_callbacks import _unknown_order_callback


def _paid_settlement(demo, payer: str, payee: str, value: int, tag: str) -> str:
    with api(demo, payer) as http:
        created = http.post("/v1/settlements", headers={"Idempotency-Key": f"{tag}-{payer}"}, json={
            "client_reference": f"NET-{tag}-{payer}", "payee": payee, "source": {"value": value, "currency": "USD"},
            "target": {"currency": "USD"}, "fx_rate": "1", "purpose_code": "GDDS",
            "payment_reference": f"NET-{tag}-{payer}"})
        assert created.status_code == 201, created.text
        settlement_id = created.json()["id"]
        wait_until(lambda: http.get(f"/v1/settlements/{settlement_id}").json()["chain"]["status"] == "confirmed",
                   "recorded on chain")
    with api(demo, "operator") as http:
        paid = http.post(f"/v1/settlements/{settlement_id}/payments", json={
            "provider": "stripe", "provider_transaction_id": f"pi_{tag}_{payer}",
            "amount": {"value": value, "currency": "USD"}})
        assert paid.status_code == 202, paid.text

        def paid_and_confirmed() -> bool:
            s = http.get(f"/v1/settlements/{settlement_id}").json()
            return s["state"] == "paid" and s["chain"]["status"] == "confirmed"

        wait_until(paid_and_confirmed, "payment confirmed")
    return settlement_id


def test_the_operator_attests_a_payment_in_the_console(open_as, demo):
    tag = uuid.uuid4().hex[:6]
    with api(demo, "retailer") as http:
        created = http.post("/v1/settlements", headers={"Idempotency-Key": f"att-{tag}"}, json={
            "client_reference": f"ATT-{tag}", "payee": "payments", "source": {"value": 12_345, "currency": "EUR"},
            "target": {"currency": "EUR"}, "fx_rate": "1", "purpose_code": "GDDS", "payment_reference": f"ATT-{tag}"})
        settlement_id = created.json()["id"]
    operator = open_as("operator")
    operator.goto(f"{demo.api}/console/settlements/{settlement_id}")
    expect(operator.locator(".status [data-chain-status]")).to_have_attribute("data-chain-status", "confirmed",
                                                                              timeout=CHAIN_WAIT_S * 1000)
    operator.reload()
    operator.get_by_label("Provider transaction id").fill(f"pi_att_{tag}")
    operator.get_by_label("Amount (EUR)").fill("123.45")  # its own currency: not in the USD cycle below
    operator.get_by_role("button", name="Attest payment").click()
    expect(operator.locator("#settlement-state")).to_have_text("paid")
    retailer = open_as("retailer")
    retailer.goto(f"{demo.api}/console/settlements/{settlement_id}")
    expect(retailer.get_by_role("button", name="Attest payment")).to_have_count(0)  # never a party's


def test_the_operator_nets_a_cycle_and_everyone_sees_gross_vs_net(open_as, demo):
    tag = uuid.uuid4().hex[:6]
    _paid_settlement(demo, "retailer", "payments", 100_000, tag)
    _paid_settlement(demo, "payments", "retailer", 60_000, tag)
    operator = open_as("operator")
    operator.goto(f"{demo.api}/console/netting-cycles")
    operator.get_by_label("Currency").fill("USD")
    operator.get_by_role("button", name="Close a cycle now").click()
    facts = operator.locator("dl.facts")
    expect(facts).to_contain_text("USD 1,600.00")  # gross: 1,000.00 + 600.00
    expect(facts).to_contain_text("USD 400.00")  # net: one transfer of the difference
    screenshot(operator, "cycle")
    operator.goto(f"{demo.api}/console/charts")
    expect(operator.locator("#chart-gross-net svg rect").first).to_be_attached()
    expect(operator.locator("#chart-volume svg#volume-USD")).to_have_count(1)  # one chart per currency

    retailer = open_as("retailer")
    retailer.goto(f"{demo.api}/console/netting-cycles")
    row = retailer.locator("#cycles tbody tr").first
    expect(row).to_contain_text("USD 1,600.00")
    expect(row).to_contain_text("USD 400.00")
    retailer.goto(f"{demo.api}/console/charts")
    expect(retailer.locator("#chart-volume svg title").first).to_contain_text("Settlement volume")
    screenshot(retailer, "charts")


def test_ageing_and_financing_charts_for_suppliers_and_financiers(open_as, demo):
    with api(demo, "supplier") as http:
        registered = http.post("/v1/receivables", json={
            "buyer_id": "buyer", "invoice_number": f"AGE-{uuid.uuid4().hex[:8].upper()}",
            "face_value": {"value": 3_000_00, "currency": "CNY"}, "issue_date": date.today().isoformat(),
            "due_date": (date.today() + timedelta(days=30)).isoformat()})
        assert registered.status_code == 201, registered.text
    supplier = open_as("supplier", locale="zh-CN")
    supplier.goto(f"{demo.api}/console/charts")
    expect(supplier.locator("figure#chart-ageing figcaption")).to_contain_text("账龄")
    expect(supplier.locator("#chart-ageing")).to_have_attribute("data-empty", "no")
    expect(supplier.locator("#chart-ageing svg desc")).to_contain_text("CNY")
    expect(supplier.locator("#chart-ageing svg desc")).to_contain_text("未到期")
    assert supplier.locator("script:not([src])").count() == 0  # no inline script anywhere


def test_callback_and_reconciliation_exception_rates(open_as, demo):
    """A callback for an unknown order (an exception) on a demo provider account and the sample
    Alipay bill reconciled by that account's owner: its charts page draws both rates, with the
    counts behind them; another finance member, owning no provider account, has no callbacks to draw (the API gives it none)."""
    txn, owner = _unknown_order_callback(demo)
    page = open_as(owner)
    page.goto(f"{demo.api}/console/reconciliation")
    page.get_by_label("Format").select_option("alipay")
    page.get_by_label("Statement file").set_input_files(str(ROOT / "docs" / "samples" / "alipay-bill.csv"))
    page.get_by_role("button", name="Import and reconcile").click()
    expect(page.locator("h1")).to_contain_text("Reconciliation run")
    page.goto(f"{demo.api}/console/charts")
    callbacks = page.locator("#chart-callback-exceptions")
    expect(callbacks).to_have_attribute("data-empty", "no")
    expect(callbacks.locator("svg desc")).to_contain_text("%")
    expect(callbacks.locator("svg title").first).to_contain_text("Callback exception rate")
    recon = page.locator("#chart-recon-exceptions")
    expect(recon).to_have_attribute("data-empty", "no")
    expect(recon.locator("svg desc")).to_contain_text("exceptions")
    screenshot(page, "charts-exceptions")
    other = open_as(next(m for m in ("supplier", "retailer") if m != owner))  # finance, owns no account
    other.goto(f"{demo.api}/console/charts")
    expect(other.locator("#chart-callback-exceptions")).to_have_attribute("data-empty", "yes")
