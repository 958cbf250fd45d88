"""Governance in the browser against a real `ledger up --demo` (2-of-3 demo governors: bank,
payments, buyer): a roles proposal about `payments` (proposed by the operator, not approved, so
nothing changes) is shown with its approvals count and delay to the operator and to `payments`,
and not to the retailer (neither its subject nor a governor's member): the API's own visibility
rule. A governor's member proposes in the console and approves as its governor, a second governor
approves, and both approvals reach the chain (2 / 2, not executed); the retailer has no proposal
form and its forged proposal is refused (403) like the API's."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.console.conftest import api, screenshot, wait_until


def test_a_proposal_is_shown_to_whom_the_api_shows_it(open_as, demo):
    with api(demo, "operator") as http:
        answer = http.post("/v1/members/payments/roles", json={"action": "grant", "role": "auditor"})
        assert answer.status_code == 202, answer.text
        proposal_id = answer.json()["proposal"]["id"]
    operator = open_as("operator")
    operator.goto(f"{demo.api}/console/governance")
    card = operator.locator(f'section.proposal[data-proposal="{proposal_id}"]')
    expect(card).to_contain_text("payments")
    expect(card).to_contain_text("Approvals")
    expect(card).to_contain_text("/ 2")  # the demo's 2-of-3 governors
    subject = open_as("payments")
    subject.goto(f"{demo.api}/console/governance")
    expect(subject.locator(f'section.proposal[data-proposal="{proposal_id}"]')).to_have_count(1)
    bystander = open_as("retailer")
    bystander.goto(f"{demo.api}/console/governance")
    expect(bystander.locator("h1")).to_contain_text("Governance")
    expect(bystander.locator(f'section.proposal[data-proposal="{proposal_id}"]')).to_have_count(0)


def _approved(demo, proposal_id: str) -> int:
    with api(demo, "operator") as http:
        p = http.get(f"/v1/governance/proposals/{proposal_id}").json()
    return sum(1 for a in p["approvals"] if a["status"] == "approved")


def test_governors_propose_and_approve_in_the_console(open_as, demo):
    description = f"console proposal {uuid.uuid4().hex[:8]}"
    bank = open_as("bank")
    bank.goto(f"{demo.api}/console/governance")
    bank.get_by_label("Action").select_option("grant_role")
    bank.get_by_label("Member id").fill("supplier")
    bank.get_by_label("Role", exact=True).fill("financier")
    bank.get_by_label("Description").fill(description)
    bank.get_by_role("button", name="Propose", exact=True).click()
    expect(bank.locator("#gov-done")).to_contain_text("Proposed")
    proposal_id = re.search(r"#p-(0x[0-9a-f]{64})$", bank.url).group(1)
    card = bank.locator(f"#p-{proposal_id}")
    expect(card).to_contain_text(description)
    card.get_by_role("button", name=re.compile("Approve as governor")).click()
    expect(bank.locator("#gov-done")).to_contain_text("Approval sent")
    expect(bank.locator(f"#p-{proposal_id} .approvals small")).to_contain_text("bank")
    expect(bank.locator(f"#p-{proposal_id}").get_by_role("button", name=re.compile("Approve as"))).to_have_count(0)

    buyer = open_as("buyer", locale="zh-CN")
    buyer.goto(f"{demo.api}/console/governance")
    buyer.locator(f"#p-{proposal_id}").get_by_role("button", name=re.compile("以治理人")).click()
    expect(buyer.locator("#gov-done")).to_contain_text("批准已提交")
    wait_until(lambda: _approved(demo, proposal_id) == 2, "both approvals on chain")
    bank.goto(f"{demo.api}/console/governance")
    expect(bank.locator(f"#p-{proposal_id} .approvals")).to_have_attribute("data-approved", "2")
    expect(bank.locator(f"#p-{proposal_id} .approvals")).to_contain_text("2 / 2")
    screenshot(bank, "governance")

    retailer = open_as("retailer")
    retailer.goto(f"{demo.api}/console/governance")
    expect(retailer.locator("#propose")).to_have_count(0)
    csrf = retailer.locator('input[name="csrf"]').first.get_attribute("value")
    forged = retailer.request.post(f"{demo.api}/console/governance/proposals",
                                   form={"csrf": csrf, "action": "suspend", "member_id": "supplier"})
    assert forged.status == 403
    approve = retailer.request.post(f"{demo.api}/console/governance/proposals/{proposal_id}/approve",
                                    form={"csrf": csrf, "governor": "0x" + "11" * 20})
    assert approve.status in (403, 404)
