"""Events are produced with the change they describe, in its transaction, and each member reads
only its own: a real flow over HTTP on anvil produces the catalogued types of settlements,
payments, cycles and reconciliation; a rolled-back change leaves no event."""

from __future__ import annotations

from sqlalchemy import func, select

from ledger_api.routes.webhooks import _delivery_model
from settlement.core.money import Money
from settlement.domains.events import EVENT_TYPES
from settlement.domains.anchoring import digest_changed
from settlement.store.models.events import EventRecipient, EventRow
from settlement.store.models.payments import ProviderAccountRow, ReconciliationException
from settlement.store.models.settlements import NettingCycle, Settlement

from .conftest import CWorld
from .support import all_events

USD = "USD"


def _types(events: list[dict], object_id: str | None = None) -> list[str]:
    return [e["type"] for e in events if object_id is None or e["data"]["object_id"] == object_id]


def _flow(cw: CWorld) -> dict[str, str]:
    """retailer -> bank: recorded, confirmed, paid by an Alipay notification, netted, settled;
    bank -> retailer, cancelled; retailer -> bank paid then refunded in two steps; an unknown
    payment reference (an exception in the account owner's queue)."""
    w = cw.w
    s1 = cw.settlement(payee="bank")
    s2 = cw.settlement(payee="bank")
    s3 = cw.settlement(payee="psp")
    s4 = w.create("bank", payee="retailer")
    w.sync()
    assert cw.post("alipay", cw.payment("alipay", s1["payment_reference"], Money(s1["target"]["value"], USD))).text \
        == "success"
    assert cw.post("stripe", cw.payment("stripe", s2["payment_reference"], Money(s2["target"]["value"], USD))) \
        .status_code == 200
    assert cw.post("wechatpay", cw.payment("wechatpay", s3["payment_reference"],
                                           Money(s3["target"]["value"], USD))).status_code in (200, 204)
    cw.post("alipay", cw.payment("alipay", "NO-SUCH-ORDER", Money(100, USD)))
    w.sync()
    r = w.http.post(f"/v1/settlements/{s1['id']}/acknowledgement", headers=w.h("bank"))  # the payee
    assert r.status_code == 202, r.text
    r = w.http.post(f"/v1/settlements/{s4['id']}/cancel", headers=w.h("bank"))
    assert r.status_code == 202, r.text
    r = w.http.post(f"/v1/settlements/{s2['id']}/refunds", headers=w.h("bank"),
                    json={"amount": {"value": 300, "currency": USD}, "reference": "R-1"})
    assert r.status_code == 202, r.text
    w.sync()
    r = w.http.post(f"/v1/settlements/{s2['id']}/refunds", headers=w.h("bank"),
                    json={"amount": {"value": s2["target"]["value"] - 300, "currency": USD}, "reference": "R-2"})
    assert r.status_code == 202, r.text
    w.sync()
    r = w.http.post("/v1/netting-cycles", json={"currency": USD}, headers=w.h("operator"))
    assert r.status_code == 201, r.text
    cycle = r.json()
    w.sync()
    for n, net in enumerate(m for m in cycle["members"] if m["net"]["value"] < 0):  # each net payer pays in
        r = w.http.post(f"/v1/netting-cycles/{cycle['id']}/payments", headers=w.h("operator"), json={
            "member": net["member_id"], "provider": "alipay", "provider_transaction_id": f"net-in-{n}",
            "amount": {"value": -net["net"]["value"], "currency": USD}})
        assert r.status_code == 202, r.text
    w.sync()
    r = w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator"))
    assert r.status_code == 202, r.text
    w.sync()
    return {"s1": s1["id"], "s2": s2["id"], "s3": s3["id"], "s4": s4["id"], "cycle": cycle["id"]}


def test_a_real_flow_produces_the_catalogued_events_for_the_parties_only(cworld: CWorld) -> None:
    """Each settlement's parties get its events in order with its chain transaction where there is
    one; a member party to none of an object's changes never sees it (checked over every type)."""
    ids = _flow(cworld)
    w = cworld.w
    seen = {m: all_events(w.http, w.h(m)) for m in ("retailer", "bank", "psp", "auditor")}
    retailer, bank = seen["retailer"], seen["bank"]
    assert _types(retailer, ids["s1"]) == ["settlement.recorded", "settlement.confirmed", "settlement.paid",
                                           "settlement.acknowledged", "settlement.in_cycle", "settlement.settled"]
    assert _types(bank, ids["s1"]) == _types(retailer, ids["s1"])
    assert _types(retailer, ids["s4"]) == ["settlement.recorded", "settlement.confirmed", "settlement.cancelled"]
    assert _types(bank, ids["s2"]) == ["settlement.recorded", "settlement.confirmed", "settlement.paid",
                                       "settlement.refunded", "settlement.refunded"]
    confirmed = next(e for e in retailer if e["type"] == "settlement.confirmed" and e["data"]["object_id"] == ids["s1"])
    assert confirmed["data"]["tx_hash"].startswith("0x") and confirmed["data"]["block_number"] > 0
    assert confirmed["data"]["object"]["payer"] == "retailer" and confirmed["data"]["state"] == "instructed"
    payments = [e for e in retailer if e["type"] == "payment.received"]
    assert {p["data"]["object"]["settlement_id"] for p in payments} == {ids["s1"], ids["s2"], ids["s3"]}
    assert {p["data"]["object"]["provider"] for p in payments} == {"alipay", "stripe", "wechatpay"}
    assert _types(retailer, ids["cycle"]) == ["netting_cycle.submitted", "netting_cycle.payment_attested",
                                              "netting_cycle.settled"]
    attested = next(e for e in retailer if e["type"] == "netting_cycle.payment_attested")
    assert attested["data"]["object"]["net_payment"]["member"] == "retailer"  # the net payer's own
    assert _types(seen["psp"], ids["cycle"]) == ["netting_cycle.submitted", "netting_cycle.settled"]
    assert _types(bank, ids["cycle"]) == ["netting_cycle.submitted", "netting_cycle.settled"]
    assert _types(seen["psp"], ids["s2"]) == []  # not a party
    # ids are stable and unique, the cursor strictly increasing
    every = [e for events in seen.values() for e in events]
    assert all(e["id"].startswith("evt_") for e in every)
    for events in seen.values():
        cursors = [int(e["cursor"]) for e in events]
        assert cursors == sorted(set(cursors))

    # Tenancy over every type produced: each event a member reads names it as a party, and every
    # stored event reaches exactly its object's parties.
    with w.runtime.db.read() as s:
        rows = {e.id: e for e in s.scalars(select(EventRow))}
        recipients: dict[int, set[str]] = {}
        for r in s.scalars(select(EventRecipient)):
            recipients.setdefault(r.event_seq, set()).add(r.member_id)
    produced = {e.type for e in rows.values()}
    assert {"settlement.recorded", "settlement.confirmed", "settlement.paid", "settlement.in_cycle",
            "settlement.settled", "settlement.cancelled", "settlement.refunded", "payment.received",
            "netting_cycle.submitted", "netting_cycle.settled", "reconciliation.exception_opened",
            "settlement.acknowledged", "netting_cycle.payment_attested"} <= produced
    for member, events in seen.items():
        for e in events:
            assert member in recipients[rows[e["id"]].seq], (member, e["type"])
            assert member in _parties(w, e), (member, e)
        ids_read = {e["id"] for e in events}
        missing = [e.type for e in rows.values() if member in recipients[e.seq] and e.id not in ids_read]
        assert missing == []
    assert [e for e in seen["auditor"] if e["data"]["object_type"] != "member"] == []

    # Every payload is what the OpenAPI `webhooks` section documents for its type (strict models).
    doc = w.http.get("/openapi.json").json()
    assert set(doc["webhooks"]) == set(EVENT_TYPES)
    for e in every:
        _delivery_model(e["type"]).model_validate(e)


def _parties(w, e: dict) -> set[str]:  # type: ignore[no-untyped-def]
    """The parties of the event's object, read from the store (independently of the producer)."""
    obj, kind = e["data"]["object"], e["data"]["object_type"]
    with w.runtime.db.read() as s:
        if kind in ("settlement", "payment"):
            sid = obj["id"] if kind == "settlement" else obj["settlement_id"]
            row = s.scalar(select(Settlement).where(Settlement.id == sid))
            parties = {row.payer_id, row.payee_id}
            if kind == "payment":
                parties.add(s.scalar(select(ProviderAccountRow.owner).where(
                    ProviderAccountRow.provider == obj["provider"], ProviderAccountRow.account == obj["account"])))
            return parties
        if kind == "netting_cycle":
            cycle = s.get(NettingCycle, obj["id"])
            if e["type"] == "netting_cycle.payment_attested":  # a member's own net payment
                return {obj["net_payment"]["member"], cycle.closed_by}
            return {m[0] for m in cycle.members} | {cycle.closed_by}
        if kind == "reconciliation_exception":
            return {s.scalar(select(ReconciliationException.owner).where(
                ReconciliationException.exception_id == obj["id"]))}
        if kind == "member":
            return {obj["id"]}
    raise AssertionError(kind)


def test_events_roll_back_with_their_change(cworld: CWorld) -> None:
    """A change that is rolled back leaves no event; committed, it leaves exactly its events."""
    w = cworld.w
    s = w.create()
    with w.runtime.db.read() as session:
        before = session.scalar(select(func.count()).select_from(EventRow))
    try:
        with w.runtime.db.transaction() as session:
            row = session.scalar(select(Settlement).where(Settlement.id == s["id"]))
            row.state = "cancelled"
            digest_changed(session, "settlement", row)
            session.flush()
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    with w.runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(EventRow)) == before
    with w.runtime.db.transaction() as session:
        row = session.scalar(select(Settlement).where(Settlement.id == s["id"]))
        row.state = "cancelled"
        digest_changed(session, "settlement", row)
    with w.runtime.db.read() as session:
        types = list(session.scalars(select(EventRow.type).where(EventRow.object_id == s["id"]).order_by(EventRow.seq)))
    assert types == ["settlement.recorded", "settlement.cancelled"]
