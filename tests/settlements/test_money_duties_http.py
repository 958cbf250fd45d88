"""Separation of duties on money over the API (issue 12, "Money moves on one party's word" and
"Suspension"): each scenario below was accepted by the service on main and is now refused with a
stable problem type, while the contract refuses the same call made around the API
(tests/contracts/test_settlement_duties.py). Real HTTP, real anvil, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from settlement.pipeline.workers import build
from settlement.store.models import OutboxRow
from settlement.wiring import build_registry
from tests.governance import support as governance

from .conftest import CANCELLED, INSTRUCTED, PAID, REFUNDED, SETTLED, World

PROBLEM = "urn:ledger:problem:"


def _pay(w: World, s: dict, who: str = "operator", txn: str | None = None):  # type: ignore[no-untyped-def]
    return w.http.post(f"/v1/settlements/{s['id']}/payments", headers=w.h(who), json={
        "provider": "alipay", "provider_transaction_id": txn or f"2026112200{s['id'][2:12]}",
        "amount": {"value": s["target"]["value"], "currency": s["target"]["currency"]}})


def _govern(w: World, action: str, member_id: str) -> None:
    """Suspend (the guardians' fast path) or reinstate (M-of-N, after the delay) ``member_id``;
    governance drives its own dispatcher, so the world's restarts from the store's nonces."""
    getattr(governance, action)(w.runtime, member_id)
    w.dispatcher, w.follower = build(w.runtime, build_registry())
    w.sync()


def _outbox(w: World) -> int:
    with w.runtime.db.read() as session:
        return session.scalar(select(func.count()).select_from(OutboxRow)) or 0


def _problem(r, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert (r.status_code, r.json().get("type")) == (status, PROBLEM + slug), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def test_one_provider_transaction_pays_one_settlement(world: World) -> None:
    """Refused: one provider transaction hash marking a second settlement paid (409 payment-evidence-used)."""
    w = world
    s1, s2 = w.create(), w.create()
    w.sync()
    assert _pay(w, s1, txn="2026112200001").status_code == 202
    w.sync()
    before = _outbox(w)
    _problem(_pay(w, s2, txn="2026112200001"), 409, "payment-evidence-used")
    assert _outbox(w) == before
    assert w.onchain(s2["id"]) == (INSTRUCTED, 0) and w.onchain(s1["id"]) == (PAID, 0)


def test_payee_cannot_declare_itself_paid_and_its_acknowledgement_changes_nothing(world: World) -> None:
    """Refused: the payee marking its own incoming settlement paid (403 not-attestor). Its
    acknowledgement is recorded on chain, but the payer can still cancel and nothing is netted."""
    w = world
    s = w.create(payee="bank")
    w.sync()
    _problem(_pay(w, s, who="bank"), 403, "not-attestor")
    stranger = w.http.post(f"/v1/settlements/{s['id']}/acknowledgement", headers=w.h("psp"))
    assert stranger.status_code == 404
    payer = w.http.post(f"/v1/settlements/{s['id']}/acknowledgement", headers=w.h("retailer"))
    _problem(payer, 403, "not-settlement-party")
    ack = w.http.post(f"/v1/settlements/{s['id']}/acknowledgement", headers=w.h("bank"))
    assert ack.status_code == 202 and ack.json()["state"] == "instructed", ack.text
    w.sync()
    got = w.get(s["id"])
    assert got["acknowledged"] is True and got["state"] == "instructed"
    assert w.runtime.chain.call("SettlementLedger", w.runtime.address("SettlementLedger"), "isAcknowledged",
                                [s["id"]])[0] is True
    _problem(w.http.post(f"/v1/settlements/{s['id']}/acknowledgement", headers=w.h("bank")), 409,
             "invalid-state-transition")
    _problem(w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("operator")), 409,
             "nothing-to-net")
    r = w.http.post(f"/v1/settlements/{s['id']}/cancel", headers=w.h("retailer"))
    assert r.status_code == 202, r.text
    w.sync()
    assert w.onchain(s["id"]) == (CANCELLED, 0)


def test_operator_alone_cannot_refund(world: World) -> None:
    """Refused: the operator refunding a paid settlement on its own (403 refund-not-by-payee); the
    payee refunds, with a reference unique per settlement."""
    w = world
    s = w.create(payee="bank")
    w.sync()
    assert _pay(w, s).status_code == 202
    w.sync()
    before = _outbox(w)
    _problem(w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("operator"),
                         json={"amount": {"value": s["target"]["value"], "currency": "USD"}, "reference": "RF-op"}),
             403, "refund-not-by-payee")
    assert _outbox(w) == before
    r = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("bank"),
                    json={"amount": {"value": s["target"]["value"], "currency": "USD"}, "reference": "RF-1"})
    assert r.status_code == 202, r.text
    w.sync()
    assert w.onchain(s["id"]) == (REFUNDED, s["target"]["value"])


def _paid_cycle(w: World) -> tuple[dict, dict]:
    s1 = w.create("retailer", payee="bank", source={"value": 5_000, "currency": "USD"},
                  target={"value": 5_000, "currency": "USD"})
    s2 = w.create("bank", payee="retailer", source={"value": 2_000, "currency": "USD"},
                  target={"value": 2_000, "currency": "USD"})
    w.sync()
    assert _pay(w, s1).status_code == 202 and _pay(w, s2).status_code == 202
    w.sync()
    return s1, s2


def test_only_the_operator_closes_and_settles_and_only_with_attested_net_payments(world: World) -> None:
    """Refused: a finance member that is party to none of the settlements closing a cycle over them
    (403, and the body names no settlement nor net); the net payer settling its own debt (403); the
    operator settling before each net payer's payment in is attested (409 netting-payment-unattested)."""
    w = world
    s1, s2 = _paid_cycle(w)
    r = w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("psp"))
    body = _problem(r, 403, "forbidden")
    assert s1["id"] not in r.text and s2["id"] not in r.text and "net" not in body
    _problem(w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("retailer")), 403, "forbidden")
    cycle = w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("operator")).json()
    w.sync()
    nets = {m["member_id"]: m["net"]["value"] for m in cycle["members"]}
    assert nets == {"retailer": -3_000, "bank": 3_000}
    own = w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("retailer"))
    _problem(own, 403, "forbidden")
    _problem(w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator")), 409,
             "netting-payment-unattested")
    attest = f"/v1/netting-cycles/{cycle['id']}/payments"
    _problem(w.http.post(attest, headers=w.h("retailer"), json={
        "member": "retailer", "provider": "alipay", "provider_transaction_id": "net-1",
        "amount": {"value": 3_000, "currency": "USD"}}), 403, "forbidden")
    _problem(w.http.post(attest, headers=w.h("operator"), json={
        "member": "bank", "provider": "alipay", "provider_transaction_id": "net-1",
        "amount": {"value": 3_000, "currency": "USD"}}), 409, "net-payment-not-owed")
    _problem(w.http.post(attest, headers=w.h("operator"), json={
        "member": "retailer", "provider": "alipay", "provider_transaction_id": "net-1",
        "amount": {"value": 2_999, "currency": "USD"}}), 422, "paid-amount-mismatch")
    # The provider transaction that paid s1 cannot also be the net payment.
    _problem(w.http.post(attest, headers=w.h("operator"), json={
        "member": "retailer", "provider": "alipay", "provider_transaction_id": f"2026112200{s1['id'][2:12]}",
        "amount": {"value": 3_000, "currency": "USD"}}), 409, "payment-evidence-used")
    r = w.http.post(attest, headers=w.h("operator"), json={
        "member": "retailer", "provider": "alipay", "provider_transaction_id": "net-1",
        "amount": {"value": 3_000, "currency": "USD"}})
    assert r.status_code == 202, r.text
    w.sync()
    mine = w.http.get(f"/v1/netting-cycles/{cycle['id']}", headers=w.h("retailer")).json()
    assert [(p["member_id"], p["status"]) for p in mine["net_payments"]] == [("retailer", "confirmed")]
    assert w.http.get(f"/v1/netting-cycles/{cycle['id']}", headers=w.h("bank")).json()["net_payments"] == []
    assert w.http.get(f"/v1/netting-cycles/{cycle['id']}", headers=w.h("psp")).status_code == 404
    r = w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator"))
    assert r.status_code == 202, r.text
    w.sync()
    assert [w.onchain(s["id"])[0] for s in (s1, s2)] == [SETTLED, SETTLED]


def test_suspended_member_takes_part_in_no_payment_or_netting(world: World) -> None:
    """Refused, with a member suspended: the operator marking its settlement paid (409
    party-not-active), netting it (its settlements wait outside the cycle), settling a cycle it is
    in; and all goes through again once it is reinstated."""
    w = world
    s1, s2 = _paid_cycle(w)
    s3 = w.create("psp", payee="retailer", source={"value": 700, "currency": "USD"},
                  target={"value": 700, "currency": "USD"})
    w.sync()
    _govern(w, "suspend", "retailer")
    _problem(_pay(w, s3), 409, "party-not-active")
    _problem(w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("operator")), 409,
             "nothing-to-net")
    _govern(w, "reactivate", "retailer")
    cycle = w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("operator")).json()
    w.sync()
    assert cycle["settlement_ids"] == [s1["id"], s2["id"]]
    w.attest_nets(cycle)
    _govern(w, "suspend", "bank")
    _problem(w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator")), 409,
             "party-not-active")
    _govern(w, "reactivate", "bank")
    assert w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator")).status_code == 202
    w.sync()
    assert w.onchain(s1["id"])[0] == SETTLED


def test_no_payment_before_the_value_date(world: World) -> None:
    """Refused: paying a settlement dated tomorrow today (409 value-date-not-reached)."""
    w = world
    s = w.create(value_date=(w.today() + timedelta(days=1)).isoformat())
    w.sync()
    _problem(_pay(w, s), 409, "value-date-not-reached")
    assert w.onchain(s["id"]) == (INSTRUCTED, 0)
