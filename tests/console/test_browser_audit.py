"""The auditor's console against a real `ledger up --demo` and its chain: a provenance event found
by its lot, its proof page showing leaf, path and anchoring transaction, verified in the browser
against the chain's JSON-RPC (leaf and path hashed in the page, the TraceAnchor contract asked by
eth_call, the anchoring receipt read); a tampered document fails the same check; a journal
record's proof, the trial balance and the anchor batches; and a finance member is refused."""

from __future__ import annotations

import json
import time
import uuid

from playwright.sync_api import expect

from tests.console.conftest import api, screenshot, wait_until


def _anchored_event(demo) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    lot, event_id = f"LOT-{tag}", f"evt-{tag}"
    with api(demo, "supplier") as http:
        answer = http.post("/v1/provenance/events", json={"events": [{
            "event_id": event_id, "lot_id": lot, "product": "sku:PRC-100-A", "event_type": "shipped",
            "location": "gln:0614141000005", "occurred_at_s": int(time.time()) - 60}]})
        assert answer.status_code == 201, answer.text
    # No flush: the events batch closes by itself (its delay) and goes alone to the chain.
    with api(demo, "auditor") as http:
        wait_until(lambda: _anchored(http.get(f"/v1/provenance/events/{event_id}/proof")), "event anchored")
    return lot, event_id


def _anchored(doc) -> bool:
    return doc.status_code == 200 and doc.json()["anchor"] is not None


def test_an_auditor_verifies_an_event_proof_in_the_browser(open_as, demo):
    lot, event_id = _anchored_event(demo)
    page = open_as("auditor")
    page.goto(f"{demo.api}/console/provenance")
    page.get_by_label("Lot, product or event id").fill(lot)
    page.get_by_role("button", name="Search").click()
    row = page.locator(f'tr[data-event="{event_id}"]')
    expect(row).to_contain_text("anchored on chain")
    row.get_by_role("link", name="Open proof").click()
    expect(page.locator("#anchor-tx")).to_contain_text("0x")
    expect(page.locator("#leaf")).to_contain_text("eventIdHash")
    page.get_by_role("button", name="Verify").click()
    result = page.locator("#verify-result")
    expect(result).to_have_attribute("data-verdict", "verified", timeout=30_000)
    for name in ("leaf", "path", "contract", "tx"):
        expect(page.locator(f'[data-step="{name}"]')).to_have_attribute("data-ok", "yes")
    screenshot(page, "proof")
    # The same page with one leaf value changed: every check that depends on it fails.
    page.route(f"{demo.api}/console/proofs/**", lambda route: _tampered(route))
    page.reload()
    page.get_by_role("button", name="Verify").click()
    expect(result).to_have_attribute("data-verdict", "failed", timeout=30_000)
    expect(page.locator('[data-step="leaf"]')).to_have_attribute("data-ok", "no")
    expect(page.locator('[data-step="contract"]')).to_have_attribute("data-ok", "no")
    page.unroute(f"{demo.api}/console/proofs/**")


def _tampered(route) -> None:
    """Serve the proof page with the event's occurredAt leaf value moved by one second."""
    response = route.fetch()
    body = response.text()
    start = body.index('<script type="application/json" id="proof-doc">') + len(
        '<script type="application/json" id="proof-doc">')
    end = body.index("</script>", start)
    doc = json.loads(body[start:end])
    doc["value"][7] = str(int(doc["value"][7]) + 1)
    route.fulfill(response=response, body=body[:start] + json.dumps(doc) + body[end:])


def test_an_auditor_sees_batches_the_trial_balance_and_a_record_proof(open_as, demo):
    with api(demo, "retailer") as http:
        settlements = http.get("/v1/settlements", params={"limit": 1}).json()["data"]
    with api(demo, "operator") as http:
        assert http.post("/v1/anchors/flush").status_code == 200
    page = open_as("auditor")
    page.goto(f"{demo.api}/console/audit")
    expect(page.locator("#batches tbody tr").first).to_contain_text("anchored on chain", timeout=30_000)
    if settlements:
        record_id = settlements[0]["id"]
        with api(demo, "auditor") as http:
            wait_until(lambda: _anchored(http.get(f"/v1/anchors/records/settlement/{record_id}/proof")),
                       "record anchored")
        page.goto(f"{demo.api}/console/audit")
        page.get_by_label("Record id").fill(record_id)
        page.get_by_role("button", name="Open proof").click()
        expect(page.locator("#leaf")).to_contain_text("recordIdHash")
        page.get_by_role("button", name="Verify").click()
        expect(page.locator("#verify-result")).to_have_attribute("data-verdict", "verified", timeout=30_000)
    page.goto(f"{demo.api}/console/audit")
    expect(page.locator("#trial-verdict")).to_have_attribute("data-balanced", "yes")
    screenshot(page, "audit")


def test_a_finance_member_cannot_open_the_auditor_pages(open_as, demo):
    page = open_as("retailer")
    for path in ("/console/provenance", "/console/audit", "/console/proofs/events/evt-x"):
        response = page.goto(f"{demo.api}{path}")
        assert response.status == 403, path
        expect(page.locator(".problem")).to_have_attribute("data-type", "urn:ledger:problem:forbidden")


def test_an_auditor_finds_the_lots_of_a_product(open_as, demo):
    """Two lots of one product (its GTIN given without padding: the search normalises it as the
    events are) and a lot of another: the product search lists exactly the two, and opens a lot's
    trace; a malformed product is refused next to the field."""
    tag = uuid.uuid4().hex[:8]
    gtin = "9506000134352"  # GTIN-13; stored as gtin:09506000134352
    events = [{"event_id": f"pe-{tag}-{i}", "lot_id": f"PLOT-{tag}-{lot}", "product": product,
               "event_type": "shipped", "location": "gln:0614141000005", "occurred_at_s": int(time.time()) - 100 + i}
              for i, (lot, product) in enumerate([("A", f"gtin:{gtin}"), ("A", f"gtin:{gtin}"),
                                                   ("B", f"gtin:0{gtin}"), ("C", "sku:OTHER-1")])]
    with api(demo, "supplier") as http:
        answer = http.post("/v1/provenance/events", json={"events": events})
        assert answer.status_code == 201, answer.text
    page = open_as("auditor")
    page.goto(f"{demo.api}/console/provenance")
    page.get_by_label("Search by").select_option("product")
    page.get_by_label("Lot, product or event id").fill(f"gtin:{gtin}")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#product")).to_have_text(f"gtin:0{gtin}")
    rows = page.locator("#product-lots tbody tr")
    expect(page.locator(f'#product-lots tr[data-lot="PLOT-{tag}-A"]')).to_contain_text("2")
    expect(page.locator(f'#product-lots tr[data-lot="PLOT-{tag}-B"]')).to_have_count(1)
    expect(page.locator(f'#product-lots tr[data-lot="PLOT-{tag}-C"]')).to_have_count(0)
    assert rows.count() >= 2
    page.get_by_role("link", name=f"PLOT-{tag}-B").click()
    expect(page.locator(f'tr[data-event="pe-{tag}-2"]')).to_be_visible()
    page.goto(f"{demo.api}/console/provenance?by=product&q=gtin:123")
    expect(page.locator("#q-error")).to_contain_text("GTIN")
