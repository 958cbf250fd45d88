"""The console in a real Chromium against a real `ledger up --demo`: sign-in for every demo role,
a settlement created in the browser and seen confirmed on chain, a CSV batch with a bad row that
writes nothing, form errors tied to their fields, the language switch, tenancy (another member's
settlement is 404 in the console too) and no request to any other host."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.console.conftest import api, screenshot

NAV_BY_ROLE = {"finance": "Settlements", "supplier": "Receivables", "buyer": "Receivables",
               "financier": "Receivables", "auditor": "Provenance", "operator": "Settlements"}


def test_every_demo_member_signs_in_sees_its_own_pages_and_signs_out(open_as, demo):
    """Each demo member signs in with its key, sees its name and the pages of its roles (and not
    the others'), and after signing out its old page sends it back to the sign-in form."""
    for member in demo.demo["members"]:
        page = open_as(member["id"])
        expect(page.locator(".who")).to_contain_text(member["name"])
        nav = page.locator("nav.nav")
        for role in member["roles"]:
            expect(nav.get_by_role("link", name=NAV_BY_ROLE[role], exact=True)).to_be_visible()
        if not {"auditor", "operator"} & set(member["roles"]):
            expect(nav.get_by_role("link", name="Provenance")).to_have_count(0)
        if not {"finance", "operator"} & set(member["roles"]):
            expect(nav.get_by_role("link", name="Settlements")).to_have_count(0)
        if member["id"] == "retailer":
            screenshot(page, "overview")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key")).to_be_visible()
        page.goto(f"{demo.api}/console/balances")
        expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))


def test_a_wrong_key_is_refused_next_to_the_field(open_as):
    page = open_as(None)
    page.get_by_label("API key").fill("lk_abcdefgh_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    field = page.get_by_label("API key")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + field.get_attribute("aria-describedby"))).to_contain_text("malformed, unknown or revoked")


def _fill_settlement(page, reference: str, amount: str, payee: str = "supplier") -> None:
    page.get_by_label("Your reference").fill(reference)
    page.get_by_label("Payee").fill(payee)
    page.get_by_label("Source amount").fill(amount)
    page.get_by_label("Source currency").fill("CNY")
    page.get_by_label("Target currency").fill("USD")
    page.get_by_label("FX rate").fill("0.14")
    page.get_by_label("Purpose code").fill("GDDS")
    page.get_by_label("Payment reference").fill(f"PAY-{reference}")


def test_a_settlement_created_in_the_console_is_seen_confirmed_on_chain(open_as, demo):
    """The form turns major units into minor units exactly (1,000.50 CNY -> 100050), the detail
    page polls the chain status (htmx) until the follower confirms it, with its tx and block."""
    page = open_as("retailer")
    page.goto(f"{demo.api}/console/settlements/new")
    reference = f"CON-{uuid.uuid4().hex[:8]}"
    _fill_settlement(page, reference, "1,000.50")
    screenshot(page, "settlement-new")
    page.get_by_role("button", name="Record settlement").click()
    expect(page.locator("h1")).to_contain_text(reference)
    status = page.locator(".status [data-chain-status]")
    expect(status).to_have_attribute("data-chain-status", "confirmed", timeout=60_000)
    expect(page.locator(".status")).to_contain_text(re.compile(r"tx 0x[0-9a-f]{8}.*block \d+"))
    expect(page.locator("dd", has_text="CNY 1,000.50")).to_have_count(1)
    settlement_id = page.locator("#settlement-id").inner_text()
    with api(demo, "retailer") as http:
        body = http.get(f"/v1/settlements/{settlement_id}").json()
    assert body["source"] == {"value": 100050, "currency": "CNY"}
    assert body["chain"]["status"] == "confirmed" and body["chain"]["tx_hash"]
    screenshot(page, "settlement-detail")
    page.goto(f"{demo.api}/console/settlements?currency=CNY")
    expect(page.locator(f'tr[data-id="{settlement_id}"]')).to_contain_text("CNY 1,000.50")
    screenshot(page, "settlements")


def test_form_errors_are_shown_next_to_their_fields_and_nothing_is_written(open_as, demo):
    page = open_as("retailer")
    page.goto(f"{demo.api}/console/settlements/new")
    reference = f"BAD-{uuid.uuid4().hex[:6]}"
    _fill_settlement(page, reference, "10.001")  # CNY has 2 decimals
    page.get_by_label("Purpose code").fill("GD")
    page.get_by_role("button", name="Record settlement").click()
    for label, text in (("Source amount", "more decimals than CNY allows"), ("Purpose code", "at least 4")):
        field = page.get_by_label(label)
        expect(field).to_have_attribute("aria-invalid", "true")
        described = field.get_attribute("aria-describedby")
        expect(page.locator(f"#{described}")).to_contain_text(text)
    with api(demo, "retailer") as http:
        refs = [s["client_reference"] for s in http.get("/v1/settlements", params={"limit": 200}).json()["data"]]
    assert reference not in refs


CSV_HEADER = ("client_reference,payee,source_amount,source_currency,target_currency,target_amount,fx_rate,fees,"
              "value_date,purpose_code,payment_reference\n")


def test_a_csv_batch_with_a_bad_row_shows_the_row_and_writes_nothing(open_as, demo, tmp_path):
    page = open_as("retailer")
    tag = uuid.uuid4().hex[:6]
    good = f"CSV-{tag}-1,supplier,250.00,CNY,USD,,0.14,,,GDDS,P-{tag}-1\n"
    bad = f"CSV-{tag}-2,no-such-member,10.00,CNY,USD,,0.14,,,GDDS,P-{tag}-2\n"
    path = tmp_path / "batch.csv"
    path.write_text(CSV_HEADER + good + bad)
    page.goto(f"{demo.api}/console/settlements/batch")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Check and record").click()
    expect(page.locator("#batch-error")).to_contain_text("Nothing was written")
    expect(page.locator('tr[data-line="3"]')).to_contain_text("no-such-member")
    expect(page.locator('tr[data-line="2"]')).to_contain_text("ok")
    screenshot(page, "settlement-batch")
    with api(demo, "retailer") as http:
        refs = [s["client_reference"] for s in http.get("/v1/settlements", params={"limit": 200}).json()["data"]]
    assert f"CSV-{tag}-1" not in refs  # all or none: the good row was not written either
    path.write_text(CSV_HEADER + good + bad.replace("no-such-member", "bank"))
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Check and record").click()
    expect(page.locator("#batch-result")).to_contain_text("2 settlements recorded")
    with api(demo, "retailer") as http:
        refs = [s["client_reference"] for s in http.get("/v1/settlements", params={"limit": 200}).json()["data"]]
    assert {f"CSV-{tag}-1", f"CSV-{tag}-2"} <= set(refs)


def test_the_language_switches_and_amounts_and_dates_follow(open_as, demo):
    """The switch sets the language for the session's browser; Accept-Language picks it when no
    choice was made. Amounts keep their digits, placed per locale; dates are written per locale."""
    page = open_as("retailer")
    page.goto(f"{demo.api}/console/settlements")
    page.locator('a[data-lang="zh"]').click()
    expect(page.locator("nav.nav")).to_contain_text("结算")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#settlements")).to_contain_text(re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"))
    expect(page.locator("#settlements")).to_contain_text(re.compile(r"[\d,]+\.\d{2} CNY"))
    screenshot(page, "settlements-zh")
    page.locator('a[data-lang="en"]').click()
    expect(page.locator("nav.nav")).to_contain_text("Settlements")
    zh_page = open_as("supplier", locale="zh-CN")
    expect(zh_page.locator("nav.nav")).to_contain_text("应收账款")


def test_a_member_never_sees_another_members_settlement(open_as, demo):
    """The bank is neither payer nor payee of the retailer's settlement to the supplier: its id
    answers 404 in the console exactly as in the API, and the bank's list does not hold it."""
    tag = uuid.uuid4().hex[:6]
    with api(demo, "retailer") as http:
        created = http.post("/v1/settlements", headers={"Idempotency-Key": tag}, json={
            "client_reference": f"PRIV-{tag}", "payee": "supplier", "source": {"value": 5000, "currency": "CNY"},
            "target": {"currency": "USD"}, "fx_rate": "0.14", "purpose_code": "GDDS",
            "payment_reference": f"PRIV-{tag}"})
        assert created.status_code == 201, created.text
        settlement_id = created.json()["id"]
    page = open_as("bank")
    response = page.goto(f"{demo.api}/console/settlements/{settlement_id}")
    assert response.status == 404
    expect(page.locator(".problem")).to_have_attribute("data-type", "urn:ledger:problem:settlement-not-found")
    page.goto(f"{demo.api}/console/settlements?role=any")
    expect(page.locator(f'tr[data-id="{settlement_id}"]')).to_have_count(0)
    supplier = open_as("supplier")
    assert supplier.goto(f"{demo.api}/console/settlements/{settlement_id}").status == 200


def test_the_console_works_at_phone_width(open_as, demo):
    page = open_as("retailer", viewport=(390, 844))
    menu = page.get_by_text("Menu", exact=True)
    expect(menu).to_be_visible()
    expect(page.locator("nav.nav")).to_be_hidden()
    menu.click()
    expect(page.locator("nav.nav")).to_be_visible()
    page.goto(f"{demo.api}/console/settlements/new")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the form overflows a phone screen: {width}px"
    screenshot(page, "phone-settlement-new")
