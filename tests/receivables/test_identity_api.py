"""Issue 13 over HTTP, receivable side: one invoice identity (the buyer and the invoice number's
letters and digits) whoever registers it and whatever its amounts, dates or spelling; the buyer's
rejection frees a squatted identity, the supplier's cancellation its own; parts stop moving after
the due date; parts pass only to suppliers and financiers, never to the buyer. Each refusal is a
problem+json of a stable type and writes nothing. Each of these was accepted by main before
(a second supplier's registration of the same buyer invoice got 202 and went on chain)."""

from __future__ import annotations

from datetime import timedelta

from .support import World, invoice
from .test_attacks_api import _ok, _writes, refused


def _registered(world: World, member: str, body: dict) -> str:
    assert world.http is not None
    rid = _ok(world.http.post("/v1/receivables", json=body, headers=world.h(member)), 201)["id"]
    world.step()
    return rid


def test_one_identity_per_buyer_invoice_whoever_the_supplier_and_whatever_the_terms(world: World) -> None:
    """The same buyer invoice from a second supplier, at another amount, with other dates, or
    spelled with other separators is refused 409; the same number of another buyer is another
    invoice; what cannot be put in canonical form is 422 invalid-invoice."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _registered(world, "acme", invoice(number="inv 2024/001", value=500_000, today=today))
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)
    assert rec["invoice_number_normalized"] == "INV-2024/001" and rec["status"] == "registered"
    before = _writes(world)
    for member, number, value, due in (("tier2", "INV-2024-001", 500_000, None),
                                       ("acme", "INV-2024-001", 500_001, None),
                                       ("factor", "INV2024001", 5_000_000_000, today + timedelta(days=5)),
                                       ("tier2", " inv_2024.001 ", 500_000, None)):
        refused(world, http.post("/v1/receivables", json=invoice(number=number, value=value, due=due, today=today),
                                 headers=world.h(member)), 409, "invoice-already-registered")
    for impossible in ("发票 123", "INV;1", "INV-1é", "x" * 65, " -/. "):
        refused(world, http.post("/v1/receivables", json=invoice(number=impossible, today=today),
                                 headers=world.h("acme")), 422, "invalid-invoice")
    assert _writes(world) == before
    # Another buyer's invoice 2024/001 is another invoice.
    other = _registered(world, "acme", invoice(buyer="otherbuy", number="INV-2024-001", today=today))
    assert _ok(http.get(f"/v1/receivables/{other}", headers=world.h("acme")), 200)["status"] == "registered"


def test_buyer_rejection_frees_a_squatted_invoice_and_supplier_cancellation_its_own(world: World) -> None:
    """A supplier registers another supplier's invoice first (squatting): the genuine supplier is
    refused until the buyer rejects the squatter's registration; then it registers (a new id).
    The supplier may cancel its own registration before confirmation; a confirmed one cannot be
    cancelled nor rejected. Only the supplier cancels, only the buyer rejects."""
    http = world.http
    assert http is not None
    today = world.today()
    body = invoice(number="PO-7781", today=today)
    squat = _registered(world, "tier2", body)
    refused(world, http.post("/v1/receivables", json=body, headers=world.h("acme")), 409,
            "invoice-already-registered")
    before = _writes(world)
    refused(world, http.post(f"/v1/receivables/{squat}/rejection", headers=world.h("otherbuy")), 404,
            "receivable-not-found")
    refused(world, http.post(f"/v1/receivables/{squat}/cancellation", headers=world.h("bigbuy")), 403,
            "not-receivable-supplier")
    assert _writes(world) == before
    _ok(http.post(f"/v1/receivables/{squat}/rejection", headers=world.h("bigbuy")))
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{squat}", headers=world.h("tier2")), 200)
    assert rec["status"] == "rejected" and rec["rejection"] == "rejected by the buyer"
    history = _ok(http.get(f"/v1/receivables/{squat}/history", headers=world.h("bigbuy")), 200)
    assert [e["event"] for e in history["events"]] == ["ReceivableRegistered", "ReceivableRejected"]

    genuine = _registered(world, "acme", body)
    assert genuine != squat
    refused(world, http.post("/v1/receivables", json=body, headers=world.h("tier2")), 409,
            "invoice-already-registered")
    _ok(http.post(f"/v1/receivables/{genuine}/cancellation", headers=world.h("acme")))
    world.step()
    assert _ok(http.get(f"/v1/receivables/{genuine}", headers=world.h("acme")), 200)["status"] == "cancelled"
    third = _registered(world, "acme", body)
    assert third not in (squat, genuine)
    _ok(http.post(f"/v1/receivables/{third}/confirm", headers=world.h("bigbuy")))
    world.step()
    before = _writes(world)
    refused(world, http.post(f"/v1/receivables/{third}/cancellation", headers=world.h("acme")), 409,
            "receivable-wrong-status")
    refused(world, http.post(f"/v1/receivables/{third}/rejection", headers=world.h("bigbuy")), 409,
            "receivable-wrong-status")
    assert _writes(world) == before


def test_parts_pass_only_to_suppliers_and_financiers_and_stop_moving_after_the_due_date(world: World) -> None:
    """Transfers to the buyer, to a member without the supplier or financier role, or to an
    unknown member are 422 invalid-counterparty; after the due date split, transfer and financing
    are 409 receivable-due (on the due date itself they are still allowed)."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _registered(world, "acme", invoice(number="INV-DUE-1", value=1_000_000, today=today,
                                             issue=today - timedelta(days=30), due=today + timedelta(days=1)))
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    part = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["id"]
    before = _writes(world)
    for to in ("bigbuy", "ops", "otherbuy", "nobody", "acme"):
        refused(world, http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("acme"),
                                 json={"to_member_id": to}), 422, "invalid-counterparty")
    assert _writes(world) == before
    half = {"value": 500_000, "currency": "CNY"}
    split = _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/split", headers=world.h("acme"),
                          json={"amounts": [half, half]}), 201)
    (new_part,) = split["pending_operations"][-1]["new_part_ids"]
    world.step()
    world.advance_days(1)  # the due date: still movable
    _ok(http.post(f"/v1/receivables/{rid}/parts/{new_part}/transfer", headers=world.h("acme"),
                  json={"to_member_id": "factor"}), 201)
    world.step()
    world.advance_days(1)  # past due
    before = _writes(world)
    for path, body in ((f"parts/{part}/split", {"amounts": [{"value": 250_000, "currency": "CNY"}] * 2}),
                       (f"parts/{part}/transfer", {"to_member_id": "tier2"}),
                       (f"parts/{part}/financing-request", {"financier_id": "bank"})):
        refused(world, http.post(f"/v1/receivables/{rid}/{path}", headers=world.h("acme"), json=body), 409,
                "receivable-due")
    assert _writes(world) == before
