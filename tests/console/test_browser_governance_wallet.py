"""A governor's member approves a proposal with the governor's own key through a browser wallet: the
signing page shows the proposal's Safe transaction in human terms, a test EIP-1193 wallet holding
the governor's key (the demo's published test key) signs it through wallet.js
(``eth_signTypedData_v4``), and the approval reaches the chain as a signature, not as the service's
custodial ``approveHash``. A signature by another key is refused next to the signature field and
records nothing; a member that is not the governor's has no signing page for it."""

from __future__ import annotations

import json
import uuid

from eth_account import Account
from playwright.sync_api import expect

from tests.console.conftest import api, screenshot, wait_until
from tests.console.wallet import give_wallet, hex_signature


def _approvals(demo, proposal_id: str) -> list[dict]:
    with api(demo, "operator") as http:
        return http.get(f"/v1/governance/proposals/{proposal_id}").json()["approvals"]


def test_a_governor_approves_with_its_own_key_through_a_browser_wallet(open_as, demo):
    governor = next(g for g in demo.demo["governance"]["governors"] if g["member_id"] == "bank")
    key = Account.from_key(governor["private_key"])
    assert key.address.lower() == governor["address"].lower()
    description = f"wallet approval {uuid.uuid4().hex[:8]}"
    with api(demo, "operator") as http:
        proposed = http.post("/v1/governance/proposals", headers={"Idempotency-Key": description}, json={
            "action": "grant_role", "member_id": "retailer", "role": "auditor", "description": description})
        assert proposed.status_code == 201, proposed.text  # a create: 201 with the proposal
        proposal_id = proposed.json()["id"]

    bank = open_as("bank")
    signed = give_wallet(bank, key)
    bank.goto(f"{demo.api}/console/governance")
    bank.locator(f"#p-{proposal_id}").get_by_role("link", name="Sign with my own key…").click()
    expect(bank.locator("h1")).to_have_text("Approve with your governor's own key")
    human = bank.locator("#typed-human")
    expect(human).to_contain_text(f"Governor bank ({governor['address']})")
    expect(human).to_contain_text("grant a role · retailer")
    expect(human).to_contain_text(description)

    typed = json.loads(bank.locator("#typed-data").text_content())
    bank.get_by_label("Signature").fill(hex_signature(Account.create(), typed))
    bank.get_by_role("button", name="Submit signed approval").click()
    expect(bank.locator("#err-signature")).to_contain_text("not to governor")
    expect(bank.get_by_label("Signature")).to_have_attribute("aria-invalid", "true")
    assert _approvals(demo, proposal_id) == []

    bank.get_by_role("button", name="Sign with browser wallet").click()
    expect(bank.locator("#wallet-status")).to_have_text(key.address)
    assert signed and signed[-1]["primaryType"] == "SafeTx"
    screenshot(bank, "governance-wallet")
    bank.get_by_role("button", name="Submit signed approval").click()
    expect(bank.locator("#gov-done")).to_contain_text("Approval sent")
    wait_until(lambda: [(a["governor"].lower(), a["method"], a["status"]) for a in _approvals(demo, proposal_id)]
               == [(key.address.lower(), "signature", "approved")], "the signed approval on chain")

    # Not the governor's member: no signing page for that governor.
    retailer = open_as("retailer")
    page = retailer.goto(f"{demo.api}/console/governance/proposals/{proposal_id}/sign?governor={key.address}")
    assert page is not None and page.status in (403, 404, 422)
