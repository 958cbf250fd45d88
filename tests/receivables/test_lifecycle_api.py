"""The whole receivable lifecycle over real HTTP on anvil, with the real dispatcher and follower:
register, own-key confirmation, split, transfer to a tier-2 supplier who finances its part with
an own-key acceptance, custodial financing of the rest, disbursements and repayments as
settlements, maturity, history with on-chain references; then overdue and default."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from settlement.domains.receivables.terms import DayCountBasis, financing_terms
from settlement.store.models.settlements import Settlement

from tests.http import NO_IDEMPOTENCY_KEY

from .support import World, invoice, sign_typed

P = "urn:ledger:problem:"


def _ok(resp, code: int = 202) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == code, resp.text
    return resp.json()


def _problem(resp, code: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == code, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"] == P + slug, body
    return body


def test_lifecycle_with_tier2_financing_repayment_and_history(world: World) -> None:
    """Every step is accepted, lands on chain and is mirrored; amounts always add up; the tier-2
    supplier finances the part it received; repayments go to each holder for exactly what it holds."""
    http, rt = world.http, world.runtime
    assert http is not None
    tier2_key = world.add_own_key("tier2")
    buyer_key = world.add_own_key("bigbuy")
    today = world.today()
    face = 100_000_000
    done = _ok(http.post("/v1/receivables", json=invoice(value=face, today=today, due=today + timedelta(days=90)),
                         headers=world.h("acme")), 201)
    rid = done["id"]
    assert done["status"] == "pending" and done["parts"] == []  # 201 with the receivable, its registration pending
    [pending] = done["pending_operations"]
    assert pending["kind"] == "register" and pending["status"] == "pending" and pending["outbox_id"] > 0
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["pending_operations"] == [pending]
    world.step()
    registered = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)
    assert registered["pending_operations"] == [] and registered["status"] == "registered"
    part0 = registered["parts"][0]["id"]

    # Own-key confirmation by the buyer: typed data from the service, signed outside it.
    typed = _ok(http.get(f"/v1/receivables/{rid}/confirmation-typed-data", headers=world.h("bigbuy")), 200)
    assert typed["domain"]["name"] == "ReceivableRegistry" and typed["domain"]["version"] == "1"
    _ok(http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                  json={"signature": sign_typed(buyer_key, typed), "deadline": typed["message"]["deadline"]}))
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)
    assert rec["status"] == "confirmed" and rec["confirmation"] == "signature"
    assert rec["confirmed_by"] == buyer_key.address

    # Split 60/40, then pass 30 of the 40 on to tier2 (split + transfer in one request). Each is a
    # create: 201 with the receivable at its Location, the operation (with the new part ids) inside.
    split = http.post(f"/v1/receivables/{rid}/parts/{part0}/split", headers=world.h("acme"),
                      json={"amounts": [{"value": 60_000_000, "currency": "CNY"},
                                        {"value": 40_000_000, "currency": "CNY"}]})
    done = _ok(split, 201)
    assert split.headers["Location"] == f"/v1/receivables/{rid}" and done["id"] == rid
    (op,) = done["pending_operations"]
    assert op["kind"] == "split" and op["part_id"] == part0 and op["status"] == "pending"
    (part1,) = op["new_part_ids"]
    assert [p["id"] for p in done["parts"]] == [part0]  # the new part appears once the chain confirms it
    world.step()
    done = _ok(http.post(f"/v1/receivables/{rid}/parts/{part1}/transfer", headers=world.h("acme"),
                         json={"to_member_id": "tier2", "amount": {"value": 30_000_000, "currency": "CNY"}}), 201)
    assert [o["kind"] for o in done["pending_operations"]] == ["split", "transfer"]
    split_op, transfer_op = done["pending_operations"]
    (tier2_part,) = split_op["new_part_ids"]
    assert transfer_op["part_id"] == tier2_part and transfer_op["to_member_id"] == "tier2"
    assert done["pending_operation_id"] == transfer_op["id"]
    world.step()
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["pending_operations"] == []
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("tier2")), 200)
    holdings = {p["id"]: (p["holder_id"], p["amount"]["value"]) for p in rec["parts"]}
    assert holdings == {part0: ("acme", 60_000_000), part1: ("acme", 10_000_000), tier2_part: ("tier2", 30_000_000)}
    assert sum(v for _, v in holdings.values()) == face

    # Tier 2 finances the part it received: request, bank offers, tier2 accepts with its own key.
    _ok(http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/financing-request", headers=world.h("tier2"),
                  json={"financier_id": "bank"}))
    world.step()
    valid_until = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0).isoformat()
    offer_request = {"discount_rate": "0.05", "day_count": "ACT/360", "fee": {"value": 10_000, "currency": "CNY"},
                     "valid_until": valid_until}
    keyed = {**world.h("bank"), "Idempotency-Key": "offer-tier2-part"}
    created = http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/offers", headers=keyed, json=offer_request)
    done = _ok(created, 201)
    # 201 with the offer: its id assigned before the transaction, its pending `offer` operation inside
    assert len(done["id"]) == 66 and done["id"].startswith("0x") and done["status"] == "pending"
    assert (done["part_id"], done["financier_id"], done["receivable_id"]) == (tier2_part, "bank", rid)
    assert done["valid_until"] == valid_until.replace("+00:00", "Z")
    [offer_op] = done["pending_operations"]
    assert offer_op["kind"] == "offer" and offer_op["status"] == "pending" and offer_op["offer_id"] == done["id"]
    pending = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)["pending_operations"]
    assert [o["offer_id"] for o in pending] == [done["id"]]
    # the same key and request: the same offer again (not a second one)
    replay = http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/offers", headers=keyed, json=offer_request)
    assert replay.status_code == 201 and replay.json() == done
    assert replay.headers["Idempotent-Replayed"] == "true"
    expected = financing_terms(30_000_000, "CNY", 50_000, world.today(), today + timedelta(days=90),
                               DayCountBasis.ACT_360, 10_000)
    assert done["terms"]["advance"]["value"] == expected.advance_minor
    assert done["terms"]["discount"]["value"] == expected.discount_minor == 375_000  # 30M x 5% x 90/360
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("tier2")), 200)
    offer = next(p for p in rec["parts"] if p["id"] == tier2_part)["offer"]
    assert offer["advance"]["value"] == expected.advance_minor
    # ids are strings; valid_until comes back as it went in, RFC 3339 UTC with Z
    assert offer["offer_id"] == done["id"]  # the create answer's id, confirmed on chain
    assert offer["valid_until"] == valid_until.replace("+00:00", "Z")
    typed = _ok(http.get(f"/v1/receivables/{rid}/parts/{tier2_part}/acceptance-typed-data",
                         headers=world.h("tier2")), 200)
    assert typed["message"]["offerId"] == done["id"]
    _ok(http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/acceptances", headers=world.h("tier2"),
                  json={"offer_id": done["id"], "signature": sign_typed(tier2_key, typed),
                        "deadline": typed["message"]["deadline"]}))
    world.step()

    # The supplier finances its 60M part custodially with the factor.
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part0}/financing-request", headers=world.h("acme"),
                  json={"financier_id": "factor"}))
    world.step()
    offer0 = _ok(http.post(f"/v1/receivables/{rid}/parts/{part0}/offers", headers=world.h("factor"),
                           json={"discount_rate": "0.04", "day_count": "ACT/365",
                                 "fee": {"value": 0, "currency": "CNY"}, "valid_until": valid_until}), 201)
    assert offer0["id"] != done["id"]
    world.step()
    # accepted by the id its create answered, with no read in between
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part0}/acceptances", headers=world.h("acme"),
                  json={"offer_id": offer0["id"]}))
    world.step()

    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)
    parts = {p["id"]: p for p in rec["parts"]}
    assert parts[tier2_part]["holder_id"] == "bank" and parts[tier2_part]["financed"]
    assert parts[tier2_part]["sold_by"] == "tier2"
    assert parts[part0]["holder_id"] == "factor" and parts[part0]["financed"]
    assert rec["financed"]["value"] == 90_000_000

    # No part is financed twice: the factor (also a supplier) cannot re-finance what it bought.
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part0}/financing-request", headers=world.h("factor"),
                       json={"financier_id": "bank"}), 409, "part-already-financed")

    # Disbursements: financier -> seller for the advance, carried by settlements.
    pays = _ok(http.get(f"/v1/receivables/{rid}/payments", headers=world.h("tier2")), 200)
    disb = {p["part_id"]: p for p in pays["data"] if p["kind"] == "disbursement"}
    assert disb[tier2_part]["payer_id"] == "bank" and disb[tier2_part]["payee_id"] == "tier2"
    assert disb[tier2_part]["amount"]["value"] == expected.advance_minor
    assert all(p["status"] == "instructed" and p["settlement_id"] for p in disb.values()), [p["settlement_error"] for p in disb.values()]
    with rt.db.read() as s:
        settlement = s.scalar(select(Settlement).where(Settlement.id == disb[tier2_part]["settlement_id"]))
        assert (settlement.payer_id, settlement.payee_id, settlement.source_amount_minor) == \
            ("bank", "tier2", expected.advance_minor)

    # Not due yet: the buyer cannot repay.
    _problem(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("bigbuy")), 409, "receivable-not-matured")
    world.advance_days(91)
    # Issue 13: the buyer's report repays nothing by itself; each holder confirms receipt of its
    # part; the operator cannot close the receivable; a holder cannot confirm another's part.
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part0}/repayment-receipt", headers=world.h("factor")), 409,
             "repayment-not-reported")
    _problem(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("ops")), 403, "forbidden")
    _ok(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("bigbuy")))
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bigbuy")), 200)
    assert rec["status"] == "repaying" and all(p["repaid"] is None for p in rec["parts"])
    _problem(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("bigbuy")), 409, "receivable-wrong-status")
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part0}/repayment-receipt", headers=world.h("acme")), 403,
             "not-part-holder")
    for holder, part in (("factor", part0), ("acme", part1)):
        _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/repayment-receipt", headers=world.h(holder)))
        world.step()
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part0}/repayment-receipt", headers=world.h("factor")), 409,
             "part-already-repaid")
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bigbuy")), 200)["status"] == "repaying"
    _ok(http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/repayment-receipt", headers=world.h("bank")))
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bigbuy")), 200)
    assert rec["status"] == "settled"
    assert {p["id"]: p["repaid"]["value"] for p in rec["parts"]} == \
        {part0: 60_000_000, part1: 10_000_000, tier2_part: 30_000_000}
    pays = _ok(http.get(f"/v1/receivables/{rid}/payments", headers=world.h("bigbuy")), 200)
    repaid = {p["part_id"]: (p["payee_id"], p["amount"]["value"]) for p in pays["data"] if p["kind"] == "repayment"}
    assert repaid == {part0: ("factor", 60_000_000), part1: ("acme", 10_000_000), tier2_part: ("bank", 30_000_000)}
    assert pays["repaid_total"]["value"] == face
    assert all(p["payer_id"] == "bigbuy" and p["status"] == "instructed"
               for p in pays["data"] if p["kind"] == "repayment")

    # Settled: no more financing.
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part1}/financing-request", headers=world.h("acme"),
                       json={"financier_id": "bank"}), 409, "receivable-wrong-status")

    # History: every event with its transaction and block, in chain order, linked to operations.
    hist = _ok(http.get(f"/v1/receivables/{rid}/history", headers=world.h("bank")), 200)
    names = [e["event"] for e in hist["events"]]
    assert names[:2] == ["ReceivableRegistered", "ReceivableConfirmed"]
    assert names.count("PartSplit") == 2 and names.count("FinancingAccepted") == 2
    assert names.count("PartRepaid") == 3 and "ReceivableSettled" in names
    assert all(e["tx_hash"].startswith("0x") and e["block_number"] > 0 for e in hist["events"])
    blocks = [(e["block_number"], e["log_index"]) for e in hist["events"]]
    assert blocks == sorted(blocks)
    assert all(o["status"] == "confirmed" for o in hist["operations"])
    receipt = rt.chain.receipts([hist["events"][0]["tx_hash"]])[hist["events"][0]["tx_hash"]]
    assert receipt is not None and receipt.block_number == hist["events"][0]["block_number"]

    # My receivables by role.
    def ids(member: str, role: str | None = None) -> set[str]:
        q = {"role": role} if role else {}
        return {r["id"] for r in _ok(http.get("/v1/receivables", params=q, headers=world.h(member)), 200)["data"]}

    assert rid in ids("acme", "supplier") and rid in ids("bigbuy", "buyer") and rid in ids("bank", "holder")
    assert rid in ids("factor", "financier") and rid in ids("tier2") and rid not in ids("tier2", "holder")
    assert rid not in ids("otherbuy")
    _problem(http.get(f"/v1/receivables/{rid}", headers=world.h("otherbuy")), 404, "receivable-not-found")


def test_overdue_then_default_by_financier(world: World) -> None:
    """Past due date plus the grace period a financed receivable shows OVERDUE; the financier
    holding a financed part declares it DEFAULTED; it can no longer be financed, but the buyer
    may still repay late."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _ok(http.post("/v1/receivables", json=invoice(number="INV-D-1", today=today,
                                                         due=today + timedelta(days=30)),
                        headers=world.h("acme")), 201)["id"]
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)
    part = rec["parts"][0]["id"]
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                  json={"financier_id": "bank"}))
    world.step()
    _problem(http.post(f"/v1/receivables/{rid}/default", headers=world.h("bank")), 403, "not-part-financier")
    valid_until = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"),
                  json={"discount_rate": "0.06", "day_count": "ACT/365", "fee": {"value": 500, "currency": "CNY"},
                        "valid_until": valid_until}), 201)
    world.step()
    offer = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["offer"]
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/acceptances", headers=world.h("acme"),
                  json={"offer_id": offer["offer_id"]}))
    world.step()
    _problem(http.post(f"/v1/receivables/{rid}/default", headers=world.h("bank")), 409, "receivable-not-overdue")
    world.advance_days(30 + 30 + 1)  # due date + 30 days' grace + 1
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)
    assert rec["status"] == "overdue" and rec["stored_status"] == "confirmed"
    _ok(http.post(f"/v1/receivables/{rid}/default", headers=world.h("bank")))
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)
    assert rec["status"] == "defaulted"
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("bank"),
                       json={"financier_id": "factor"}), 403, "forbidden")  # bank is no supplier
    _ok(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("bigbuy")))
    world.step()
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)["status"] == "defaulted"
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/repayment-receipt", headers=world.h("bank")))
    world.step()
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)["status"] == "settled"


def test_a_reported_repayment_leaves_the_financier_its_default_remedy(world: World) -> None:
    """Issue 13: the buyer reports a repayment the financier never received: once overdue, the
    financier still declares the default (main let the buyer close the receivable on its word)."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _ok(http.post("/v1/receivables", json=invoice(number="INV-D-2", today=today,
                                                         due=today + timedelta(days=10)),
                        headers=world.h("acme")), 201)["id"]
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    part = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["id"]
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                  json={"financier_id": "bank"}))
    world.step()
    valid_until = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"),
                  json={"discount_rate": "0.06", "day_count": "ACT/365", "fee": {"value": 0, "currency": "CNY"},
                        "valid_until": valid_until}), 201)
    world.step()
    offer = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["offer"]
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/acceptances", headers=world.h("acme"),
                  json={"offer_id": offer["offer_id"]}))
    world.step()
    world.advance_days(10)
    _ok(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("bigbuy")))
    world.step()
    world.advance_days(31)
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)
    assert rec["stored_status"] == "repaying" and rec["status"] == "overdue"
    _ok(http.post(f"/v1/receivables/{rid}/default", headers=world.h("bank")))
    world.step()
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bank")), 200)["status"] == "defaulted"


def test_list_is_the_one_envelope_and_a_registration_shows_its_pending_operation(world: World) -> None:
    """GET /v1/receivables pages by id with next_cursor and an exact has_more; the former ?after=
    still works; a cursor that is no receivable id is 422 invalid-cursor. Each listed receivable
    shows its chain operations still pending."""
    http = world.http
    assert http is not None
    today = world.today()
    made = sorted(_ok(http.post("/v1/receivables", json=invoice(number=f"INV-PAGE-{i}", today=today),
                                headers=world.h("acme")), 201)["id"] for i in range(3))
    listed = _ok(http.get("/v1/receivables", headers=world.h("acme")), 200)
    assert [r["id"] for r in listed["data"]] == made and listed["has_more"] is False and listed["next_cursor"] is None
    assert all([o["kind"] for o in r["pending_operations"]] == ["register"] for r in listed["data"])
    first = _ok(http.get("/v1/receivables", params={"limit": 2}, headers=world.h("acme")), 200)
    assert [r["id"] for r in first["data"]] == made[:2] and first["has_more"] is True
    assert first["next_cursor"] == made[1] and first["count"] == 2
    for name in ("cursor", "after"):
        last = _ok(http.get("/v1/receivables", params={"limit": 2, name: first["next_cursor"]},
                            headers=world.h("acme")), 200)
        assert [r["id"] for r in last["data"]] == made[2:] and last["has_more"] is False
    _problem(http.get("/v1/receivables", params={"cursor": "nope"}, headers=world.h("acme")), 422, "invalid-cursor")
    world.step()
    assert all(r["pending_operations"] == [] for r in _ok(http.get("/v1/receivables", headers=world.h("acme")),
                                                          200)["data"])


def test_registration_and_part_commands_are_idempotent(world: World) -> None:
    """Idempotency-Key with the settlements' semantics on a receivable's creating POSTs: the same
    key and body answer the first answer again (Idempotent-Replayed: true) and write nothing; the
    same key with another body is 409; no key is 400."""
    http = world.http
    assert http is not None
    today = world.today()
    body = invoice(number="INV-ONCE-1", today=today)
    key = {**world.h("acme"), "Idempotency-Key": "once-1"}
    first = http.post("/v1/receivables", json=body, headers=key)
    assert first.status_code == 201 and first.headers["Idempotent-Replayed"] == "false"
    again = http.post("/v1/receivables", json=body, headers=key)
    assert again.status_code == 201 and again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.headers["Location"] == again.headers["Location"] == f"/v1/receivables/{first.json()['id']}"
    assert len(_ok(http.get("/v1/receivables", headers=world.h("acme")), 200)["data"]) == 1
    _problem(http.post("/v1/receivables", json=invoice(number="INV-ONCE-2", today=today), headers=key), 409,
             "idempotency-key-reused")
    _problem(http.post("/v1/receivables", json=invoice(number="INV-ONCE-3", today=today), headers=world.h("acme"),
                       extensions={NO_IDEMPOTENCY_KEY: True}), 400, "idempotency-key-required")
    world.step()
    rid = first.json()["id"]
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    part = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["id"]
    split = {"amounts": [{"value": 60_000_000, "currency": "CNY"}, {"value": 40_000_000, "currency": "CNY"}]}
    key = {**world.h("acme"), "Idempotency-Key": "once-split"}
    done = http.post(f"/v1/receivables/{rid}/parts/{part}/split", json=split, headers=key)
    assert done.status_code == 201 and done.headers["Idempotent-Replayed"] == "false"
    assert done.headers["Location"] == f"/v1/receivables/{rid}"
    replayed = http.post(f"/v1/receivables/{rid}/parts/{part}/split", json=split, headers=key)
    assert replayed.status_code == 201 and replayed.json() == done.json()
    assert replayed.headers["Location"] == f"/v1/receivables/{rid}"
    assert replayed.headers["Idempotent-Replayed"] == "true"  # not refused as busy: nothing ran again
    _problem(http.post(f"/v1/receivables/{rid}/parts/{part}/transfer", json={"to_member_id": "tier2"}, headers=key),
             409, "idempotency-key-reused")  # the key belongs to the split
