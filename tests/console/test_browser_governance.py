"""Governance in the browser against a real `ledger up --demo`: a roles proposal about `payments`
(proposed by the operator, not approved, so nothing changes) is shown with its approvals count and
delay to the operator and to `payments`, and not to the retailer (neither its subject nor a
governor's member): the API's own visibility rule."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import api, screenshot


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
    screenshot(operator, "governance")
    subject = open_as("payments")
    subject.goto(f"{demo.api}/console/governance")
    expect(subject.locator(f'section.proposal[data-proposal="{proposal_id}"]')).to_have_count(1)
    bystander = open_as("retailer")
    bystander.goto(f"{demo.api}/console/governance")
    expect(bystander.locator("h1")).to_contain_text("Governance")
    expect(bystander.locator(f'section.proposal[data-proposal="{proposal_id}"]')).to_have_count(0)
