"""The other families from real flows: anchor.anchored to the members whose provenance events a
batch holds; reconciliation.run_completed, exception_opened and exception_resolved to the member
whose run it is; member.* to the member itself."""

from __future__ import annotations

from pathlib import Path

from ledger_api.routes.webhooks import _delivery_model

from .conftest import CWorld
from .support import all_events

SAMPLE_BILL = Path(__file__).resolve().parents[2] / "docs" / "samples" / "alipay-bill.csv"
T0 = 1_795_300_000


def test_anchor_and_reconciliation_events(cworld: CWorld) -> None:
    w = cworld.w
    r = w.http.post("/v1/provenance/events", headers=w.h("retailer"), json={"events": [
        {"event_id": "evt-ev-1", "lot_id": "LOT-EV", "product": "gtin:4006381333931", "event_type": "received",
         "location": "gln:0614141000005", "occurred_at_s": T0}]})
    assert r.status_code == 201, r.text
    assert w.http.post("/v1/anchors/flush", headers=w.h("operator")).status_code == 200
    w.sync()
    anchored = [e for e in all_events(w.http, w.h("retailer")) if e["type"] == "anchor.anchored"]
    assert len(anchored) == 1 and anchored[0]["data"]["tx_hash"].startswith("0x")
    assert anchored[0]["data"]["object"]["leaf_count"] == 1
    assert [e for e in all_events(w.http, w.h("bank")) if e["type"] == "anchor.anchored"] == []

    cworld.settlement(payee="bank")
    stmt = w.http.post("/v1/reconciliation/statements", params={"kind": "alipay"}, content=SAMPLE_BILL.read_bytes(),
                       headers=w.h("retailer"))
    assert stmt.status_code == 201, stmt.text
    run = w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt.json()["id"]}, headers=w.h("retailer"))
    assert run.status_code == 201, run.text
    mine = all_events(w.http, w.h("retailer"), types="reconciliation.*")
    done = [e for e in mine if e["type"] == "reconciliation.run_completed"]
    assert len(done) == 1 and done[0]["data"]["object_id"] == run.json()["id"]
    opened = [e for e in mine if e["type"] == "reconciliation.exception_opened"]
    assert len(opened) == run.json()["exception_count"] > 0
    exception_id = opened[0]["data"]["object_id"]
    resolved = w.http.post(f"/v1/reconciliation/exceptions/{exception_id}/resolve", headers=w.h("retailer"),
                           json={"action": "written_off", "note": "test"})
    assert resolved.status_code == 200, resolved.text
    closing = [e for e in all_events(w.http, w.h("retailer"), types="reconciliation.exception_resolved")]
    assert [e["data"]["object_id"] for e in closing] == [exception_id]
    assert closing[0]["data"]["object"]["resolution_action"] == "written_off"
    assert all_events(w.http, w.h("bank"), types="reconciliation.*") == []
    for e in anchored + mine + closing:
        _delivery_model(e["type"]).model_validate(e)


def test_member_events_reach_the_member_only(cworld: CWorld) -> None:
    """An API key issued to a member, and its revocation, are told to that member only."""
    w = cworld.w
    r = w.http.post("/v1/members/psp/api-keys", headers=w.h("operator"), json={"label": "erp"})
    assert r.status_code == 201, r.text
    issued = r.json()
    assert w.http.delete(f"/v1/api-keys/{issued['prefix']}", headers=w.h("psp")).status_code == 200
    psp = all_events(w.http, w.h("psp"), types="member.*")
    types = [e["type"] for e in psp if e["data"]["object"].get("api_key", {}).get("prefix") == issued["prefix"]]
    assert types == ["member.api_key_created", "member.api_key_revoked"]
    assert all(e["data"]["object_id"] == "psp" for e in psp)
    for member in ("bank", "retailer", "operator"):
        assert [e for e in all_events(w.http, w.h(member), types="member.*") if e["data"]["object_id"] == "psp"] == []
    for e in psp:
        _delivery_model(e["type"]).model_validate(e)
