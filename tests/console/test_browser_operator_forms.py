"""The operator's forms, in the browser against a real `ledger up --demo`: it attests a net payer's
payment into a netting cycle (a wrong amount is refused next to the field and nothing is
attested; the right one reaches the chain) and settles the cycle; it adds a Stripe provider
account for a member (its webhook secret typed once, never shown again, and verifying a signed
notification at once), rotates the secret and disables the account. A non-operator has neither form, and its forged POSTs
(with its own valid CSRF token) are refused by the API's own role rule (403)."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import expect

from settlement.core.money import Money
from settlement.providers.testing import simulated_payment, stripe_webhook_secret
from tests.console.conftest import api, screenshot, wait_until
from tests.console.test_browser_charts import _paid_settlement


def _cycle(demo, cycle_id: str) -> dict:
    with api(demo, "operator") as http:
        return http.get(f"/v1/netting-cycles/{cycle_id}").json()


def test_the_operator_attests_a_net_payment_and_settles_the_cycle(open_as, demo):
    tag = uuid.uuid4().hex[:6]
    _paid_settlement(demo, "retailer", "payments", 90_000, tag)
    _paid_settlement(demo, "payments", "retailer", 20_000, tag)
    with api(demo, "operator") as http:
        closed = http.post("/v1/netting-cycles", json={"currency": "USD"}, headers={"Idempotency-Key": f"c-{tag}"})
        assert closed.status_code == 201, closed.text
        cycle_id = closed.json()["id"]
    wait_until(lambda: _cycle(demo, cycle_id)["chain"]["status"] == "confirmed", "cycle submitted on chain")
    payers = [(m["member_id"], -m["net"]["value"]) for m in _cycle(demo, cycle_id)["members"] if m["net"]["value"] < 0]
    assert payers, "the cycle has a net payer"
    payer, owed = payers[0]

    operator = open_as("operator")
    operator.goto(f"{demo.api}/console/netting-cycles/{cycle_id}")
    form = operator.locator("#attest-net")
    form.get_by_label("Net payer").select_option(payer)
    form.get_by_label("Provider", exact=True).select_option("alipay")
    form.get_by_label("Provider transaction id").fill(f"net-{tag}")
    wrong = f"{owed // 100 + 1}.{owed % 100:02d}"  # one major unit more than owed
    form.get_by_label("Amount (USD)").fill(wrong)
    form.get_by_role("button", name="Attest net payment").click()
    expect(operator.locator("#err-amount")).to_contain_text("the net owed is")
    expect(operator.get_by_label("Amount (USD)")).to_have_attribute("aria-invalid", "true")
    assert _cycle(demo, cycle_id)["net_payments"] == []  # nothing attested

    operator.get_by_label("Amount (USD)").fill(f"{owed // 100}.{owed % 100:02d}")
    operator.get_by_role("button", name="Attest net payment").click()
    expect(operator.locator("#cycle-done")).to_contain_text("Net payment attested")
    expect(operator.locator(f'#net-payments tr[data-member="{payer}"]')).to_have_count(1)
    screenshot(operator, "cycle-net-payment")
    wait_until(lambda: [p["status"] for p in _cycle(demo, cycle_id)["net_payments"] if p["member_id"] == payer]
               == ["confirmed"], "net payment on chain")
    with api(demo, "operator") as http:  # any other net payer (another test's paid settlements), as the API
        for other, amount in payers[1:]:
            paid = http.post(f"/v1/netting-cycles/{cycle_id}/payments", json={
                "member": other, "provider": "alipay", "provider_transaction_id": f"net-{tag}-{other}",
                "amount": {"value": amount, "currency": "USD"}})
            assert paid.status_code == 202, paid.text
    wait_until(lambda: all(p["status"] == "confirmed" for p in _cycle(demo, cycle_id)["net_payments"]),
               "every net payment on chain")

    # The payer, a party of the cycle, sees its own net payment but has no form; its forged POST is refused.
    party = open_as(payer)
    party.goto(f"{demo.api}/console/netting-cycles/{cycle_id}")
    expect(party.locator(f'#net-payments tr[data-member="{payer}"]')).to_have_count(1)
    expect(party.locator("#attest-net")).to_have_count(0)
    csrf = party.locator('input[name="csrf"]').first.get_attribute("value")
    forged = party.request.post(f"{demo.api}/console/netting-cycles/{cycle_id}/payments", form={
        "csrf": csrf, "member": payer, "provider": "alipay", "provider_transaction_id": f"forged-{tag}",
        "amount": "1.00"})
    assert forged.status == 403

    operator.reload()
    expect(operator.locator("#attest-net")).to_have_count(0)  # no net payer left unattested
    operator.get_by_role("button", name="Settle cycle").click()
    expect(operator.locator("#cycle-done")).to_contain_text("Settlement of the cycle sent")
    wait_until(lambda: _cycle(demo, cycle_id)["state"] == "settled", "cycle settled")


def _signed_notification(demo, account: str, secret: str) -> None:
    """A Stripe notification signed with ``secret`` is taken on ``account`` (2xx: verified)."""
    txn = f"pi_console_{uuid.uuid4().hex[:10]}"
    note = simulated_payment("stripe", {"account": account, "webhook_secret": secret}, f"NOBODY-{txn}",
                             Money(1_000, "USD"), provider_txn_id=txn)
    answer = httpx.post(f"{demo.api}/v1/callbacks/stripe/{account}", content=note.body, headers=note.headers,
                        timeout=30)
    assert answer.status_code < 300, answer.text


def test_the_operator_adds_rotates_and_disables_a_provider_account(open_as, demo):
    name = f"console-{uuid.uuid4().hex[:8]}"
    secret = stripe_webhook_secret()
    operator = open_as("operator")
    operator.goto(f"{demo.api}/console/callbacks")
    operator.get_by_role("link", name="Administer provider accounts").click()
    form = operator.locator("#add-account")
    form.get_by_label("Provider", exact=True).select_option("stripe")
    form.get_by_label("Account name").fill(name)
    form.get_by_label("Owner (member id)").fill("bank")  # owned no account (the charts test counts on another)
    form.get_by_role("button", name="Add account").click()  # no secret yet
    expect(operator.locator("#err-webhook_secrets")).to_contain_text("webhook_secrets")
    expect(operator.get_by_label("Webhook signing secrets")).to_have_attribute("aria-invalid", "true")
    operator.get_by_label("Webhook signing secrets").fill(secret)
    operator.get_by_role("button", name="Add account").click()
    expect(operator.locator("#pa-done")).to_contain_text("Account added")
    row = operator.locator(f'#provider-accounts tr[data-account="stripe/{name}"]')
    expect(row).to_contain_text("bank")
    expect(row).to_contain_text("webhook_secrets")
    assert secret not in operator.content()  # typed once, never shown again
    screenshot(operator, "provider-accounts")
    with api(demo, "operator") as http:
        account = http.get(f"/v1/provider-accounts/stripe/{name}").json()
    assert account["owner"] == "bank" and account["status"] == "active"
    _signed_notification(demo, name, secret)  # the secret typed in is the one the service verifies with

    # The owner reads its account (no forms); its forged administration is refused.
    owner = open_as("bank", locale="zh-CN")
    owner.goto(f"{demo.api}/console/provider-accounts")
    expect(owner.locator(f'#provider-accounts tr[data-account="stripe/{name}"]')).to_have_count(1)
    expect(owner.locator("#add-account")).to_have_count(0)
    expect(owner.get_by_role("button", name="停用")).to_have_count(0)
    csrf = owner.locator('input[name="csrf"]').first.get_attribute("value")
    forged = owner.request.post(f"{demo.api}/console/provider-accounts", form={
        "csrf": csrf, "provider": "stripe", "account": f"{name}-x", "owner": "bank",
        "webhook_secrets": stripe_webhook_secret()})
    assert forged.status == 403
    forged = owner.request.post(f"{demo.api}/console/provider-accounts/stripe/{name}/disable", form={"csrf": csrf})
    assert forged.status == 403

    assert owner.goto(f"{demo.api}/console/provider-accounts/stripe/{name}").status == 403  # the operator's page

    # Key rotation: the old and the new secret while Stripe rolls over (the material is replaced whole).
    rotated = stripe_webhook_secret()
    row.get_by_role("link", name=name).click()
    operator.get_by_label("Webhook signing secrets").fill(f"{secret}\n{rotated}")
    operator.get_by_role("button", name="Replace").click()
    expect(operator.locator("#pa-done")).to_contain_text("Account updated")
    expect(operator.locator("#account-facts")).to_have_attribute("data-version", "2")
    assert secret not in operator.content() and rotated not in operator.content()
    _signed_notification(demo, name, rotated)
    operator.goto(f"{demo.api}/console/provider-accounts")

    row.get_by_role("button", name="Disable").click()
    expect(operator.locator("#pa-done")).to_contain_text("Account disabled")
    expect(operator.locator(f'#provider-accounts tr[data-account="stripe/{name}"]')).to_have_attribute(
        "data-status", "disabled")
    with api(demo, "operator") as http:
        assert http.get(f"/v1/provider-accounts/stripe/{name}").json()["status"] == "disabled"
