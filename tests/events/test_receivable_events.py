"""Receivable and financing events from a real lifecycle on anvil (the receivables world): each
step's event reaches the parties of the receivable or part, and nobody else."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ledger_api.routes.webhooks import _delivery_model
from settlement.wiring import build_registry
from tests.receivables.conftest import world  # noqa: F401  (fixture)
from tests.receivables.support import World, invoice

from .support import all_events


def _ok(resp, code: int = 202) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == code, resp.text
    return resp.json()


def _overdue_job(w: World) -> int:
    job = next(j for j in build_registry().jobs() if j.name == "events.overdue")
    return job.run(w.runtime)


def test_receivable_lifecycle_events_reach_its_parties_only(world: World) -> None:  # noqa: F811
    """registered, confirmed, split, transferred, financing requested/offered/accepted, overdue
    (by the chain's clock and grace period, once), defaulted, repaid: in order, for the supplier,
    buyer, holders and financier; a member party to none of it reads none of it."""
    http = world.http
    assert http is not None
    today = world.today()
    rid = _ok(http.post("/v1/receivables", json=invoice(number="INV-EV-1", today=today, due=today + timedelta(days=30)),
                        headers=world.h("acme")), 201)["id"]
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    part0 = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["parts"][0]["id"]
    done = _ok(http.post(f"/v1/receivables/{rid}/parts/{part0}/transfer", headers=world.h("acme"),
                         json={"to_member_id": "tier2", "amount": {"value": 30_000_000, "currency": "CNY"}}), 201)
    tier2_part = next(o for o in done["pending_operations"] if o["kind"] == "transfer")["part_id"]
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/financing-request", headers=world.h("tier2"),
                  json={"financier_id": "bank"}))
    world.step()
    valid_until = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    created = _ok(http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/offers", headers=world.h("bank"),
                            json={"discount_rate": "0.06", "day_count": "ACT/365",
                                  "fee": {"value": 500, "currency": "CNY"}, "valid_until": valid_until}), 201)
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/parts/{tier2_part}/acceptances", headers=world.h("tier2"),
                  json={"offer_id": created["id"]}))  # the id the offer's create answered
    world.step()
    assert _overdue_job(world) == 0  # not yet
    world.advance_days(30 + 30 + 1)  # due date + 30 days' grace + 1
    assert _overdue_job(world) == 1
    assert _overdue_job(world) == 0  # once
    _ok(http.post(f"/v1/receivables/{rid}/default", headers=world.h("bank")))
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/repayment", headers=world.h("bigbuy")))
    world.step()
    # The buyer's report repays nothing by itself: each holder confirms receipt of its part, the
    # last one settles the receivable (receivable.repaid).
    for part in _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("bigbuy")), 200)["parts"]:
        _ok(http.post(f"/v1/receivables/{rid}/parts/{part['id']}/repayment-receipt", headers=world.h(part["holder_id"])))
        world.step()

    def types(member: str) -> list[str]:
        return [e["type"] for e in all_events(http, world.h(member), types="receivable.*")
                + all_events(http, world.h(member), types="financing.*")]

    flow = ["receivable.registered", "receivable.confirmed", "receivable.split", "receivable.transferred",
            "financing.requested", "financing.offered", "financing.accepted", "receivable.overdue",
            "receivable.defaulted", "receivable.repayment_reported", "receivable.part_repaid", "receivable.repaid"]
    acme = all_events(http, world.h("acme"))
    got = [e["type"] for e in acme if e["data"]["object_id"] == rid]
    assert list(dict.fromkeys(t for t in got if t in flow)) == [t for t in flow if t in got]  # in order
    assert got.count("receivable.part_repaid") == 2  # the supplier hears of each part's repayment
    assert set(flow) - {"financing.requested", "financing.offered", "financing.accepted"} <= set(got)
    tier2 = [e["type"] for e in all_events(http, world.h("tier2")) if e["data"]["object_id"] == rid]
    assert {"receivable.transferred", "financing.requested", "financing.offered", "financing.accepted"} <= set(tier2)
    [offered] = [e for e in all_events(http, world.h("bank"), types="financing.offered")
                 if e["data"]["object_id"] == rid]
    assert offered["data"]["object"]["part"]["offer_id"] == created["id"]  # the create answer's id
    bank = [e["type"] for e in all_events(http, world.h("bank")) if e["data"]["object_id"] == rid]
    assert {"financing.offered", "financing.accepted", "receivable.defaulted", "receivable.repayment_reported",
            "receivable.part_repaid", "receivable.repaid"} <= set(bank)
    assert bank.count("receivable.part_repaid") == 1  # its own part only
    assert "receivable.registered" not in bank  # not a party before it financed a part
    buyer = [e["type"] for e in all_events(http, world.h("bigbuy")) if e["data"]["object_id"] == rid]
    assert {"receivable.registered", "receivable.confirmed", "receivable.transferred", "financing.accepted",
            "receivable.repayment_reported", "receivable.part_repaid", "receivable.repaid"} <= set(buyer)
    assert "financing.requested" not in buyer and "financing.offered" not in buyer
    assert [e for e in all_events(http, world.h("otherbuy")) if e["data"]["object_type"] == "receivable"] == []
    assert [e for e in all_events(http, world.h("factor")) if e["data"]["object_type"] == "receivable"] == []
    confirmed = next(e for e in acme if e["type"] == "receivable.confirmed")
    assert confirmed["data"]["tx_hash"].startswith("0x") and confirmed["data"]["object"]["buyer"] == "bigbuy"
    for e in acme:
        _delivery_model(e["type"]).model_validate(e)
