"""Verified notifications of all three providers, posted over HTTP, pay the settlement once: in
the API, in the journal, in the outbox and on chain; duplicates and concurrent deliveries have
exactly one effect; out-of-order and early deliveries wait and are applied later."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from settlement.core.money import Money
from tests.settlements.conftest import PAID, REFUNDED

from .conftest import PROVIDERS, CWorld

USD = "USD"


def _acked(provider: str, r: httpx.Response) -> bool:
    if provider == "alipay":
        return r.status_code == 200 and r.text == "success"
    return r.status_code in (200, 204)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_verified_payment_pays_the_settlement_in_the_api_and_on_chain(cworld: CWorld, provider: str) -> None:
    """A real signed notification (RSA / AES-GCM+RSA / HMAC) moves the settlement to PAID through
    the outbox with the provider's evidence; the chain agrees after the dispatcher and follower."""
    s = cworld.settlement()
    note = cworld.payment(provider, s["payment_reference"], Money(s["target"]["value"], USD))
    r = cworld.post(provider, note)
    assert _acked(provider, r), r.text
    got = cworld.w.get(s["id"])
    assert got["state"] == "paid" and got["provider"] == provider and got["chain"]["status"] == "pending"
    [row] = cworld.callbacks()
    assert row.outcome == "applied" and row.settlement_id == s["id"] and row.raw_body == note.body
    cworld.w.sync()
    assert cworld.w.get(s["id"])["chain"]["status"] == "confirmed"
    assert cworld.w.onchain(s["id"])[0] == PAID
    assert cworld.pay_rows(s["id"]) == 1 and cworld.paid_postings(s["id"]) == 1


def test_the_same_notification_delivered_concurrently_has_one_effect(cworld: CWorld) -> None:
    """Twenty threads deliver the same Alipay notification at once: every one is acknowledged,
    one callback row (counting 20 deliveries), one markPaid outbox row, one journal posting."""
    s = cworld.settlement()
    note = cworld.payment("alipay", s["payment_reference"], Money(s["target"]["value"], USD))
    url = f"{cworld.w.http.base_url}/v1/callbacks/alipay/{cworld.creds['alipay']['account']}"

    def deliver(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as c:
            return c.post(url, content=note.body, headers=note.headers)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(deliver, range(20)))
    assert all(_acked("alipay", r) for r in answers), [r.text for r in answers]
    [row] = cworld.callbacks()
    assert row.delivery_count == 20 and row.outcome == "applied"
    assert cworld.pay_rows(s["id"]) == 1 and cworld.paid_postings(s["id"]) == 1
    cworld.w.sync()
    assert cworld.w.onchain(s["id"])[0] == PAID


def test_concurrent_deliveries_of_every_provider_have_one_effect_each(cworld: CWorld) -> None:
    """Three settlements, one per provider, each notified 8 times concurrently (interleaved)."""
    notes = []
    for provider in PROVIDERS:
        s = cworld.settlement()
        notes.append((provider, s, cworld.payment(provider, s["payment_reference"], Money(s["target"]["value"], USD))))
    base = str(cworld.w.http.base_url)

    def deliver(i: int) -> httpx.Response:
        provider, _s, note = notes[i % 3]
        with httpx.Client(timeout=60) as c:
            return c.post(f"{base}/v1/callbacks/{provider}/{cworld.creds[provider]['account']}", content=note.body,
                          headers=note.headers)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(deliver, range(24)))
    assert all(r.status_code in (200, 204) for r in answers)
    for _provider, s, _note in notes:
        assert cworld.pay_rows(s["id"]) == 1 and cworld.paid_postings(s["id"]) == 1
    assert sorted(r.delivery_count for r in cworld.callbacks()) == [8, 8, 8]


def test_a_payment_before_the_recording_is_confirmed_waits_then_applies(sworld: CWorld) -> None:
    """Out of order with the chain: the notification arrives while the settlement's recording is
    still in the outbox; it is acknowledged, kept deferred, and applied when the follower sees
    the recording, without a second delivery."""
    s = sworld.w.create()  # not synced: recording pending
    r = sworld.post("stripe", sworld.payment("stripe", s["payment_reference"], Money(s["target"]["value"], USD)))
    assert r.status_code == 200
    [row] = sworld.callbacks()
    assert row.outcome == "deferred" and row.outcome_reason == "awaiting_chain"
    sworld.w.sync()  # recording confirmed -> deferred payment enqueued in the follower's transaction
    assert sworld.callbacks()[0].outcome == "applied"
    sworld.w.sync()
    assert sworld.w.onchain(s["id"])[0] == PAID
    assert sworld.pay_rows(s["id"]) == 1


def test_a_refund_before_its_payment_is_applied_after_it(sworld: CWorld) -> None:
    """Out-of-order provider events: WeChat's full refund arrives before the payment. The refund
    waits; the payment applies; once the chain confirms the payment the refund applies; the
    settlement ends REFUNDED on chain, each effect once."""
    s = sworld.settlement()
    amount = Money(s["target"]["value"], USD)
    sim = sworld.sim("wechatpay")
    txn = "4200" + "1" * 24
    refund = sim.refund(s["payment_reference"], txn, amount, amount, "RF-1")
    pay = sim.payment(s["payment_reference"], amount, transaction_id=txn)
    assert sworld.post("wechatpay", refund).status_code in (200, 204)
    assert sworld.callbacks()[0].outcome == "deferred"
    assert sworld.post("wechatpay", pay).status_code in (200, 204)
    sworld.w.sync()
    sworld.w.sync()
    assert [c.outcome for c in sworld.callbacks()] == ["applied", "applied"]
    assert sworld.post("wechatpay", refund).status_code in (200, 204)  # a retry: no second refund
    sworld.w.sync()
    assert sworld.w.onchain(s["id"]) == (REFUNDED, amount.value)
    assert sworld.w.get(s["id"])["state"] == "refunded"


def test_alipay_cumulative_partial_refunds_book_the_increments(sworld: CWorld) -> None:
    """Alipay reports the running refunded total: 30 then 50 books 30 + 20; a stale 30 arriving
    after 50 books nothing."""
    s = sworld.settlement()
    total = Money(s["target"]["value"], USD)
    sim = sworld.sim("alipay")
    trade = "2024" + "7" * 24
    assert sworld.post("alipay", sim.payment(s["payment_reference"], total, trade_no=trade)).text == "success"
    sworld.w.sync()
    first = sim.refund(s["payment_reference"], trade, total, Money(30_000, USD), "RB-1")
    second = sim.refund(s["payment_reference"], trade, total, Money(50_000, USD), "RB-2")
    assert sworld.post("alipay", first).text == "success"
    sworld.w.sync()
    assert sworld.post("alipay", second).text == "success"
    sworld.w.sync()
    got = sworld.w.get(s["id"])
    assert got["refunded"]["value"] == 50_000 and got["state"] == "paid"
    assert sworld.w.onchain(s["id"])[1] == 50_000


def test_unknown_reference_and_amount_mismatch_become_exceptions_not_effects(sworld: CWorld) -> None:
    """Authentic but unmatched: acknowledged (the provider must stop retrying), recorded, queued as
    reconciliation exceptions visible over HTTP, and no payment effect."""
    s = sworld.settlement()
    r1 = sworld.post("alipay", sworld.payment("alipay", "NO-SUCH-ORDER", Money(100_000, USD)))
    r2 = sworld.post("stripe", sworld.payment("stripe", s["payment_reference"], Money(99_999, USD)))
    r3 = sworld.post("wechatpay", sworld.payment("wechatpay", s["payment_reference"], Money(100_000, "EUR")))
    assert r1.text == "success" and r2.status_code == 200 and r3.status_code in (200, 204)
    assert [(c.outcome, c.outcome_reason) for c in sworld.callbacks()] == [
        ("exception", "unknown_reference"), ("exception", "amount_mismatch"), ("exception", "currency_mismatch")]
    assert sworld.w.get(s["id"])["state"] == "instructed" and sworld.pay_rows(s["id"]) == 0
    # The test accounts are the operator's (the default owner): the items are in its queue, and a
    # member that owns none of the accounts sees none of them (tests/callbacks/test_tenancy.py).
    q = sworld.w.http.get("/v1/reconciliation/exceptions", params={"origin": "callback"},
                          headers=sworld.w.h("operator"))
    assert q.status_code == 200
    items = q.json()["data"]
    assert {i["owner"] for i in items} == {"operator"}
    assert sworld.w.http.get("/v1/reconciliation/exceptions", params={"origin": "callback"},
                             headers=sworld.w.h("retailer")).json()["data"] == []
    assert {i["reason"] for i in items} == {"unknown_reference", "amount_mismatch", "currency_mismatch"}
    mismatch = next(i for i in items if i["reason"] == "amount_mismatch")
    assert mismatch["statement_amount"] == {"value": 99_999, "currency": USD}
    assert mismatch["difference"] == {"value": -1, "currency": USD}


def test_a_second_payment_of_a_paid_settlement_is_an_exception(sworld: CWorld) -> None:
    """Another provider transaction for an already paid order (a double payment) is never applied."""
    s = sworld.settlement()
    amount = Money(s["target"]["value"], USD)
    assert sworld.post("alipay", sworld.payment("alipay", s["payment_reference"], amount)).text == "success"
    sworld.w.sync()
    assert sworld.post("stripe", sworld.payment("stripe", s["payment_reference"], amount)).status_code == 200
    outcomes = [(c.provider, c.outcome, c.outcome_reason) for c in sworld.callbacks()]
    assert outcomes == [("alipay", "applied", "paid"), ("stripe", "exception", "settlement_not_payable")]
    assert sworld.pay_rows(s["id"]) == 1
