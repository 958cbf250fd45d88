"""Bad input and attacks over HTTP: each is refused with a problem+json of a stable type, and
nothing is written (no operation, no outbox row). Also: own-key signatures by the wrong key,
suspended members, and evidence that must verify offline and against this consortium's anchor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eth_account import Account
from sqlalchemy import func, select

from anchors import LEAF_ENCODING_V1, AnchorRef, ProvenanceEvent, StandardMerkleTree, build_proof_document
from settlement.pipeline.outbox import enqueue
from settlement.store.models import OutboxRow
from settlement.store.models.receivables import ReceivableOperation

from .support import World, invoice, sign_typed, suspend

P = "urn:ledger:problem:"


def _ok(resp, code: int = 202) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == code, resp.text
    return resp.json()


def _writes(world: World) -> tuple[int, int]:
    with world.runtime.db.read() as s:
        return (s.scalar(select(func.count()).select_from(OutboxRow)),
                s.scalar(select(func.count()).select_from(ReceivableOperation)))


def refused(world: World, resp, code: int, slug: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == code, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["type"] == P + slug, resp.json()


def test_bad_input_and_attacks_are_refused_without_writing(world: World) -> None:
    """Same invoice again (case, whitespace, full-width digits), financing an unconfirmed part,
    splitting or transferring more than held, confirmation by others, bad signatures, suspended
    members: each a stable problem type, and the store and outbox are unchanged."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _ok(http.post("/v1/receivables", json=invoice(number="INV-2024-007", today=today),
                        headers=world.h("acme")), 201)["id"]
    world.step()
    part = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["id"]
    before = _writes(world)

    def check(resp, code: int, slug: str) -> None:  # type: ignore[no-untyped-def]
        refused(world, resp, code, slug)
        assert _writes(world) == before, f"{slug}: something was written"

    for variant in ("inv-2024-007", "  INV-2024-007 ", "Inv-2024-007\u00a0",
                    "ＩＮＶ－２０２４－００７", "INV-2024-007\t"):
        check(http.post("/v1/receivables", json=invoice(number=variant, today=today), headers=world.h("acme")),
              409, "invoice-already-registered")
    # The same number with other amounts or dates is the same invoice for the store.
    check(http.post("/v1/receivables", json=invoice(number="inv-2024-007", value=5_000, today=today),
                    headers=world.h("acme")), 409, "invoice-already-registered")
    # Bad invoices.
    check(http.post("/v1/receivables", json=invoice(number="INV-X", today=today, issue=today,
                                                   due=today - timedelta(days=1)), headers=world.h("acme")),
          422, "invalid-invoice")
    check(http.post("/v1/receivables", json=invoice(number="INV-Y", value=99, today=today), headers=world.h("acme")),
          422, "invalid-amount")
    check(http.post("/v1/receivables", json=invoice(number="   ", today=today), headers=world.h("acme")),
          422, "invalid-invoice")
    check(http.post("/v1/receivables", json=invoice(buyer="bank", number="INV-Z", today=today),
                    headers=world.h("acme")), 422, "invalid-counterparty")
    check(http.post("/v1/receivables", json=invoice(number="INV-Z", today=today), headers=world.h("bigbuy")),
          403, "forbidden")

    # Not confirmed yet: no financing, no split.
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                    json={"financier_id": "bank"}), 409, "receivable-wrong-status")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/split", headers=world.h("acme"),
                    json={"amounts": [{"value": 50_000_000, "currency": "CNY"},
                                      {"value": 50_000_000, "currency": "CNY"}]}), 409, "receivable-wrong-status")

    # Confirmation by anyone but the buyer.
    check(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("acme")), 403, "forbidden")
    check(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("otherbuy")), 404, "receivable-not-found")
    typed = _ok(http.get(f"/v1/receivables/{rid}/confirmation-typed-data", headers=world.h("bigbuy")), 200)
    stranger = Account.create()
    check(http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                    json={"signature": sign_typed(stranger, typed), "deadline": typed["message"]["deadline"]}),
          422, "signature-invalid")
    check(http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                    json={"signature": "0x" + "00" * 65, "deadline": typed["message"]["deadline"]}),
          422, "signature-invalid")
    own = world.add_own_key("bigbuy")
    before = _writes(world)
    expired = dict(typed, message=dict(typed["message"], deadline=typed["message"]["deadline"] - 7200))
    check(http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                    json={"signature": sign_typed(own, expired), "deadline": expired["message"]["deadline"]}),
          422, "signature-expired")

    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    # One operation at a time per receivable.
    refused(world, http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")), 409,
            "receivable-operation-pending")
    world.step()
    before = _writes(world)
    check(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")), 409, "receivable-wrong-status")

    # More than held.
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/split", headers=world.h("acme"),
                    json={"amounts": [{"value": 60_000_000, "currency": "CNY"},
                                      {"value": 50_000_000, "currency": "CNY"}]}), 422, "amount-exceeds-holding")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/split", headers=world.h("acme"),
                    json={"amounts": [{"value": 60_000_000, "currency": "CNY"},
                                      {"value": 30_000_000, "currency": "CNY"}]}), 422, "invalid-split")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/split", headers=world.h("acme"),
                    json={"amounts": [{"value": 99_999_950, "currency": "CNY"},
                                      {"value": 50, "currency": "CNY"}]}), 422, "part-too-small")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/split", headers=world.h("acme"),
                    json={"amounts": [{"value": 50_000_000, "currency": "USD"},
                                      {"value": 50_000_000, "currency": "USD"}]}), 422, "unsupported-currency")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("acme"),
                    json={"to_member_id": "tier2", "amount": {"value": 100_000_001, "currency": "CNY"}}),
          422, "amount-exceeds-holding")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("tier2"),
                    json={"to_member_id": "bank"}), 404, "receivable-not-found")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("bigbuy"),
                    json={"to_member_id": "bank"}), 403, "not-part-holder")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("acme"),
                    json={"to_member_id": "acme"}), 422, "invalid-counterparty")
    check(http.post(f"/v1/receivables/{rid}/parts/0x{'ab' * 32}/transfer", headers=world.h("acme"),
                    json={"to_member_id": "tier2"}), 404, "receivable-part-not-found")
    # Financing from a non-financier, offers by the wrong financier, accepting without an offer.
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                    json={"financier_id": "tier2"}), 422, "invalid-counterparty")
    valid_until = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    offer_body = {"discount_rate": "0.05", "day_count": "ACT/360", "fee": {"value": 0, "currency": "CNY"},
                  "valid_until": valid_until}
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"), json=offer_body),
          404, "receivable-not-found")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/acceptances", headers=world.h("acme"),
                    json={"offer_id": "0x" + "11" * 32}), 409, "offer-not-current")
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                  json={"financier_id": "bank"}))
    world.step()
    before = _writes(world)
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("factor"), json=offer_body),
          404, "receivable-not-found")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"),
                    json=dict(offer_body, discount_rate="0.0000001")), 422, "invalid-offer")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"),
                    json=dict(offer_body, fee={"value": 100_000_000, "currency": "CNY"})), 422, "invalid-offer")
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("acme"),
                    json={"to_member_id": "tier2"}), 409, "part-locked")

    # Suspended members: as caller, and as counterparty.
    suspend(world, "tier2")
    before = _writes(world)
    check(http.get("/v1/receivables", headers=world.h("tier2")), 403, "member-suspended")
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request/withdraw", headers=world.h("acme")))
    world.step()
    before = _writes(world)
    check(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", headers=world.h("acme"),
                    json={"to_member_id": "tier2"}), 422, "invalid-counterparty")


def test_chain_refusal_marks_operation_rejected_and_frees_the_invoice(world: World) -> None:
    """An invoice hash registered on chain around the service is refused before writing; one the
    chain refuses after acceptance (here: the buyer suspended on chain meanwhile) is marked
    rejected with the decoded custom error, and the supplier may register it again."""
    http, rt = world.http, world.runtime
    assert http is not None
    today = world.today()
    suspend(world, "otherbuy")
    # The mirror says active again, but the chain still has it suspended: the contract refuses.
    with rt.db.transaction() as s:
        from settlement.store.models import Member
        s.get(Member, "otherbuy").status = "active"
    body = invoice(buyer="otherbuy", number="INV-R-1", today=today)
    rid = _ok(http.post("/v1/receivables", json=body, headers=world.h("acme")), 201)["id"]
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)
    assert rec["status"] == "rejected" and rec["rejection"] == "ReceivableInvalidBuyer", rec
    ops = _ok(http.get(f"/v1/receivables/{rid}/history", headers=world.h("acme")), 200)["operations"]
    assert ops[0]["status"] == "rejected" and ops[0]["error_name"] == "ReceivableInvalidBuyer"
    # Reactivated on chain: the same invoice registers now.
    with rt.db.transaction() as s:
        s.get(Member, "otherbuy").status = "suspended"  # the mirror back in line with the chain
    from tests.governance.support import reactivate
    reactivate(rt, "otherbuy")  # governance: M approvals, the delay (the clock moved), executed
    world.step()
    _ok(http.post("/v1/receivables", json=body, headers=world.h("acme")), 201)
    world.step()
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["status"] == "registered"

    # Registered around the service, straight on chain: the follower mirrors it (with its
    # history), and the service refuses the invoice up front, in whatever spelling.
    from settlement.domains.receivables.terms import day_number
    from settlement.domains.members.service import onchain_id
    direct = invoice(number="INV-DIRECT", today=today)
    with rt.db.transaction() as s:
        from settlement.domains.members import custodial_signer
        enqueue(s, kind="test.direct", contract="ReceivableRegistry", function="register",
                args=[onchain_id("bigbuy"), "INV-DIRECT", 100_000_000, "0x" + b"CNY".hex(),
                      day_number(datetime.fromisoformat(direct["issue_date"]).date()),
                      day_number(datetime.fromisoformat(direct["due_date"]).date())],
                signer=custodial_signer(s, "acme"), gas_limit=400_000)
    world.step()
    mine = _ok(http.get("/v1/receivables?role=buyer", headers=world.h("bigbuy")), 200)["data"]
    mirrored = [r for r in mine if r["invoice_number"] == "INV-DIRECT"]
    assert len(mirrored) == 1 and mirrored[0]["status"] == "registered" and mirrored[0]["supplier_id"] == "acme"
    history = _ok(http.get(f"/v1/receivables/{mirrored[0]['id']}/history", headers=world.h("acme")), 200)
    assert [e["event"] for e in history["events"]] == ["ReceivableRegistered"]
    before = _writes(world)
    for spelling in ("INV-DIRECT", " inv direct ", "INV/DIRECT"):
        refused(world, http.post("/v1/receivables", json=dict(direct, invoice_number=spelling),
                                 headers=world.h("tier2")), 409, "invoice-already-registered")
    assert _writes(world) == before


def _proof(world: World, *, anchored: bool, member: str) -> dict:
    """A provenance batch of delivery events, anchored (or not) in the consortium's TraceAnchor by
    the operator, and the proof document of one event."""
    rt = world.runtime
    from settlement.domains.members.service import onchain_id
    events = [ProvenanceEvent(event_id=f"dlv-{i}-{anchored}", lot_id="LOT-7", product="gtin:9506000134352",
                              event_type="shipped", location="gln:9506000000001", member_id=onchain_id(member),
                              occurred_at_s=1_700_000_000 + i, document_hash="0x" + "cd" * 32,
                              attributes={"qty": i + 1}) for i in range(5)]
    tree = StandardMerkleTree.of([e.leaf_value() for e in events], LEAF_ENCODING_V1)
    address = rt.address("TraceAnchor")
    anchor = AnchorRef(31337, address, "0x" + "bb" * 32, 1, 1, 1)
    if anchored:
        (last,) = rt.chain.call("TraceAnchor", address, "lastSequence")
        seq = int(last) + 1
        from settlement.domains.members import custodial_signer
        with rt.db.transaction() as s:  # the "ops" member (OPERATOR role) anchors, through the outbox
            row_id = enqueue(s, kind="test.anchor", contract="TraceAnchor", function="anchor",
                             args=[tree.root, seq, len(events), 1, 1_700_000_000, 1_700_000_004],
                             signer=custodial_signer(s, "ops"), gas_limit=300_000).id
        world.step()
        with rt.db.read() as s:
            row = s.get(OutboxRow, row_id)
            assert row.status == "confirmed", row.error_name
            tx_hash, block_number = row.tx_hash, row.block_number
        block = rt.chain.get_block(block_number)
        anchor = AnchorRef(31337, address, tx_hash, block_number, block["timestamp"], seq)
    return build_proof_document(tree, 2, anchor=anchor, event=events[2], schema_version=1).to_json()


def test_evidence_verifies_offline_and_against_the_anchor(world: World) -> None:
    """A cited delivery proof verifies offline and on chain; a proof of an unanchored root is
    shown as not verified; a tampered one is refused; financiers see the outcome."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _ok(http.post("/v1/receivables", json=invoice(number="INV-EV-1", today=today),
                        headers=world.h("acme")), 201)["id"]
    world.step()
    good = _proof(world, anchored=True, member="acme")
    added = _ok(http.post(f"/v1/receivables/{rid}/evidence", headers=world.h("acme"),
                          json={"label": "delivery", "document": good}), 201)
    assert added["verified"] and added["offline_verified"] and added["anchored"] and added["by_party"]
    unanchored = _proof(world, anchored=False, member="tier2")
    added = _ok(http.post(f"/v1/receivables/{rid}/evidence", headers=world.h("acme"),
                          json={"label": "claimed", "document": unanchored}), 201)
    assert added["offline_verified"] and not added["anchored"] and not added["verified"] and not added["by_party"]
    before = _writes(world)
    tampered = dict(good, value=list(good["value"]))
    tampered["value"][7] = "1700000999"
    refused(world, http.post(f"/v1/receivables/{rid}/evidence", headers=world.h("acme"),
                             json={"document": tampered}), 422, "evidence-invalid")
    refused(world, http.post(f"/v1/receivables/{rid}/evidence", headers=world.h("acme"),
                             json={"document": {"format": "nope"}}), 422, "evidence-invalid")
    refused(world, http.post(f"/v1/receivables/{rid}/evidence", headers=world.h("acme"),
                             json={"document": good}), 422, "evidence-invalid")  # cited already
    assert _writes(world) == before

    # A financier asked to finance sees whether each cited proof verifies.
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    part = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["id"]
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                  json={"financier_id": "bank"}))
    world.step()
    listed = _ok(http.get(f"/v1/receivables/{rid}/evidence", headers=world.h("bank")), 200)
    assert [e["verified"] for e in listed["data"]] == [True, False] and not listed["all_verified"]
    steps = {s["name"]: s["ok"] for s in listed["data"][0]["steps"]}
    assert steps["contract-verify"] and steps["anchor-record"] and steps["proof-to-root"]
    refused(world, http.get(f"/v1/receivables/{rid}/evidence", headers=world.h("factor")), 404,
            "receivable-not-found")
