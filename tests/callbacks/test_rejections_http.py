"""Every bad input is refused in the provider's own format, recorded as a security event, and has
no payment effect: tampered fields, a wrong key, stale or replayed messages, an unknown or
disabled account, truncated and oversized bodies, wrong content types, an unknown provider."""

from __future__ import annotations

from datetime import timedelta

import pytest

from settlement.core.money import Money
from settlement.providers.base import utc_now
from settlement.providers.testing import demo_credentials, simulator_from_credentials

from .conftest import CWorld

USD = "USD"


def _no_effect(cw: CWorld, settlement_id: str) -> None:
    assert cw.pay_rows(settlement_id) == 0 and cw.paid_postings(settlement_id) == 0
    assert cw.w.get(settlement_id)["state"] == "instructed"
    assert cw.callbacks() == []


def _case(cw: CWorld, provider: str, case: str, reference: str):  # type: ignore[no-untyped-def]
    amount = Money(100_000, USD)
    note = cw.payment(provider, reference, amount)
    if case == "tampered":
        if provider == "alipay":
            return note.with_body(note.body.replace(b"total_amount=1000.00", b"total_amount=1.00"))
        return note.with_body(note.body.replace(b'"id":', b'"id" :', 1) if provider == "wechatpay"
                              else note.body.replace(b'"amount": 100000', b'"amount": 100'))
    if case == "wrong_key":
        other = simulator_from_credentials(provider, demo_credentials(provider, "other"))
        if provider == "stripe":
            return other.payment_intent_succeeded(reference, amount)
        if provider == "wechatpay":  # same serial, signed by another key
            forged = other.payment(reference, amount)
            return forged.with_headers(Wechatpay_Serial=cw.creds["wechatpay"]["platform_serial"])
        other.app_id = cw.creds["alipay"]["app_id"]
        return other.payment(reference, amount)
    if case == "stale":
        age = timedelta(hours=27) if provider == "alipay" else timedelta(minutes=10)
        return cw.payment(provider, reference, amount, at=utc_now() - age)
    if case == "truncated":
        return note.with_body(note.body[: len(note.body) // 2])
    if case == "wrong_content_type":
        return note.with_headers(Content_Type="text/plain")
    if case == "oversized":
        return note.with_body(note.body + b" " * (70 * 1024))
    raise AssertionError(case)


# Stripe answers every signature failure 400 (as Stripe does); the others 401.
EXPECTED_STATUS = {"tampered": (400, 401), "wrong_key": (400, 401), "stale": (400, 401), "truncated": (400, 401),
                   "wrong_content_type": (415,), "oversized": (413,)}


@pytest.mark.parametrize("provider", ["alipay", "wechatpay", "stripe"])
def test_bad_notifications_are_refused_recorded_and_have_no_effect(sworld: CWorld, provider: str) -> None:
    s = sworld.settlement()
    for number, case in enumerate(EXPECTED_STATUS, start=1):
        r = sworld.post(provider, _case(sworld, provider, case, s["payment_reference"]))
        assert r.status_code in EXPECTED_STATUS[case], (case, r.status_code, r.text)
        if provider == "alipay":
            assert r.text == "fail"
        elif provider == "wechatpay":
            assert set(r.json()) == {"code", "message"}
        assert sworld.security_events() == number, case
    _no_effect(sworld, s["id"])


def test_unknown_and_disabled_accounts_and_unknown_providers_are_refused(sworld: CWorld) -> None:
    s = sworld.settlement()
    note = sworld.payment("stripe", s["payment_reference"], Money(100_000, USD))
    assert sworld.post("stripe", note, account="no-such-account").status_code == 404
    r = sworld.w.http.post("/v1/callbacks/paypal/x", content=note.body, headers=note.headers)
    assert r.status_code == 404 and r.json()["type"] == "urn:ledger:problem:unknown-provider"
    off = sworld.w.http.post("/v1/provider-accounts/stripe/stripe-test/disable", headers=sworld.w.h("operator"))
    assert off.status_code == 200 and off.json()["status"] == "disabled"
    assert sworld.post("stripe", note).status_code == 404
    assert sworld.security_events() == 3
    _no_effect(sworld, s["id"])
    on = sworld.w.http.post("/v1/provider-accounts/stripe/stripe-test/enable", headers=sworld.w.h("operator"))
    assert on.status_code == 200
    assert sworld.post("stripe", note).status_code == 200
    assert sworld.w.get(s["id"])["state"] == "paid"


def test_a_replayed_notification_is_a_duplicate_and_a_late_replay_is_stale(sworld: CWorld) -> None:
    """A replay inside the window is the same fact: acknowledged, no second effect. The same bytes
    replayed after the window are refused as stale (the signed timestamp is old)."""
    s = sworld.settlement()
    note = sworld.payment("stripe", s["payment_reference"], Money(100_000, USD), at=utc_now() - timedelta(seconds=200))
    assert sworld.post("stripe", note).status_code == 200
    assert sworld.post("stripe", note).status_code == 200
    assert sworld.pay_rows(s["id"]) == 1 and sworld.callbacks()[0].delivery_count == 2
    old = sworld.payment("stripe", s["payment_reference"], Money(100_000, USD), at=utc_now() - timedelta(seconds=400))
    assert sworld.post("stripe", old).status_code == 400
    assert sworld.pay_rows(s["id"]) == 1


def test_a_body_over_the_api_limit_is_refused_before_it_is_read(sworld: CWorld) -> None:
    r = sworld.w.http.post("/v1/callbacks/alipay/alipay-test", content=b"a=" + b"x" * (2 * 1024 * 1024),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_provider_accounts_hold_secrets_encrypted_and_refuse_private_keys(sworld: CWorld) -> None:
    """Secrets never appear in the store in clear nor in the API; a private key is refused."""
    from sqlalchemy import select

    from settlement.store.models.payments import ProviderAccountRow

    secret = sworld.creds["stripe"]["webhook_secret"]
    with sworld.w.runtime.db.read() as s:
        rows = list(s.scalars(select(ProviderAccountRow)))
    assert len(rows) == 3
    for row in rows:
        blob = (row.encrypted_secrets or b"") + repr(row.public_config).encode()
        assert secret.encode() not in blob and sworld.creds["wechatpay"]["apiv3_key"].encode() not in blob
        assert b"PRIVATE KEY" not in blob
    listed = sworld.w.http.get("/v1/provider-accounts", headers=sworld.w.h("operator"))
    assert listed.status_code == 200 and secret not in listed.text and "apiv3_key" in listed.text
    # A finance member reads its own accounts only (it owns none here); the auditor none at all.
    assert sworld.w.http.get("/v1/provider-accounts", headers=sworld.w.h("retailer")).json()["data"] == []
    assert sworld.w.http.get("/v1/provider-accounts", headers=sworld.w.h("auditor")).status_code == 403
    bad = dict(demo_credentials("alipay", "x"))
    r = sworld.w.http.post("/v1/provider-accounts", headers=sworld.w.h("operator"),
                           json={"provider": "alipay", "account": "alipay-2",
                                 "config": {"app_id": bad["app_id"],
                                            "alipay_public_key_pem": bad["platform_private_key_pem"]}})
    assert r.status_code == 422 and r.json()["type"] == "urn:ledger:problem:provider-account-invalid"
    ok = sworld.w.http.post("/v1/provider-accounts", headers=sworld.w.h("operator"),
                            json={"provider": "alipay", "account": "alipay-2",
                                  "config": {"app_id": bad["app_id"],
                                             "alipay_public_key_pem": bad["platform_public_key_pem"]}})
    assert ok.status_code == 201, ok.text
    again = sworld.w.http.post("/v1/provider-accounts", headers=sworld.w.h("operator"),
                               json={"provider": "alipay", "account": "alipay-2",
                                     "config": {"app_id": bad["app_id"],
                                                "alipay_public_key_pem": bad["platform_public_key_pem"]}})
    assert again.status_code == 409
    # a second Alipay account verifies its own callbacks
    s = sworld.settlement()
    note = simulator_from_credentials("alipay", bad).payment(s["payment_reference"], Money(100_000, USD))
    assert sworld.post("alipay", note, account="alipay-2").text == "success"
    assert sworld.post("alipay", note).text == "fail"  # not the first account's key
