"""Stripe webhooks: HMAC over "{t}.{raw body}", 300 s tolerance, secret rotation, minor units."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from settlement.core.errors import (
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    CallbackStaleError,
    ConfigurationError,
    InvalidAmountError,
)
from settlement.core.money import Money
from settlement.providers import NotificationKind, StripeAccount, adapter_for
from settlement.providers.stripe import compute_signature
from settlement.providers.testing import StripeSimulator, stripe_webhook_secret

ADAPTER = adapter_for("stripe")
NOW = datetime(2026, 3, 1, 6, 30, tzinfo=timezone.utc)


def test_payment_intent_succeeded_parses_exactly(stripe, stripe_account):
    sent = stripe.payment_intent_succeeded("SETTLE-0001", Money(8880, "EUR"), payment_intent_id="pi_3Mtw", at=NOW)
    got = ADAPTER.verify_and_parse(stripe_account, sent.as_request())
    assert got.kind is NotificationKind.PAYMENT and got.succeeded and got.status == "succeeded"
    assert got.amount == Money(8880, "EUR")
    assert (got.merchant_reference, got.provider_txn_id) == ("SETTLE-0001", "pi_3Mtw")
    assert got.occurred_at == NOW and got.notification_id.startswith("evt_")
    assert ADAPTER.ack(got) == (200, "application/json; charset=utf-8", b'{"received":true}')


@pytest.mark.parametrize(("amount", "stripe_value"), [(Money(5000, "JPY"), 5000), (Money(500, "ISK"), 50000),
                                                     (Money(1234, "KWD"), 1234)])
def test_currency_units(stripe, stripe_account, amount, stripe_value):
    """JPY is zero-decimal for Stripe as for ISO; Stripe writes ISK with two decimals (100 = 1 kr)."""
    sent = stripe.payment_intent_succeeded("S", amount, at=NOW)
    assert json.loads(sent.body)["data"]["object"]["amount"] == stripe_value
    assert ADAPTER.verify_and_parse(stripe_account, sent.as_request()).amount == amount


def test_fractional_isk_refused(stripe, stripe_account):
    obj = {"id": "pi_1", "amount": 50050, "amount_received": 50050, "currency": "isk", "status": "succeeded"}
    with pytest.raises(InvalidAmountError):
        ADAPTER.verify_and_parse(stripe_account, stripe.event("payment_intent.succeeded", obj, at=NOW).as_request())


def test_refund_created(stripe, stripe_account):
    sent = stripe.refund_created("pi_3Mtw", Money(1000, "EUR"), refund_id="re_1", reference="REF-1", at=NOW)
    got = ADAPTER.verify_and_parse(stripe_account, sent.as_request())
    assert got.kind is NotificationKind.REFUND and got.succeeded and not got.amount_is_cumulative
    assert (got.provider_txn_id, got.provider_refund_id, got.refund_reference) == ("pi_3Mtw", "re_1", "REF-1")
    assert got.amount == Money(1000, "EUR")
    pending = ADAPTER.verify_and_parse(stripe_account, stripe.refund_created(
        "pi_3Mtw", Money(1000, "EUR"), refund_id="re_1", status="pending", at=NOW).as_request())
    assert not pending.succeeded and pending.evidence_hash != got.evidence_hash


def test_charge_refunded_is_cumulative(stripe, stripe_account):
    sent = stripe.charge_refunded("pi_9", Money(8880, "USD"), Money(3000, "USD"), reference="S-9", at=NOW)
    got = ADAPTER.verify_and_parse(stripe_account, sent.as_request())
    assert got.kind is NotificationKind.REFUND and got.amount_is_cumulative and got.amount == Money(3000, "USD")
    assert got.status == "partially_refunded" and got.provider_txn_id == "pi_9"


def test_canceled_and_unhandled_events(stripe, stripe_account):
    canceled = stripe.event("payment_intent.canceled", {"id": "pi_c", "amount": 100, "currency": "usd",
                                                         "status": "canceled"}, at=NOW)
    assert ADAPTER.verify_and_parse(stripe_account, canceled.as_request()).kind is NotificationKind.CLOSED
    other = ADAPTER.verify_and_parse(stripe_account, stripe.event("customer.created", {"id": "cus_1"},
                                                                  at=NOW).as_request())
    assert other.kind is NotificationKind.OTHER and other.amount is None
    assert ADAPTER.ack(other)[0] == 200  # unhandled types are acknowledged, as Stripe recommends


def test_tampered_body_fails_with_400(stripe, stripe_account):
    sent = stripe.payment_intent_succeeded("S", Money(100, "USD"), at=NOW)
    forged = sent.with_body(sent.body.replace(b'"amount": 100', b'"amount": 900'))
    with pytest.raises(CallbackSignatureInvalidError) as caught:
        ADAPTER.verify_and_parse(stripe_account, forged.as_request())
    assert ADAPTER.nack(caught.value)[0] == 400


def test_wrong_secret_fails(stripe_account):
    sent = StripeSimulator(stripe_webhook_secret()).payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(stripe_account, sent.as_request())


def test_secret_rotation(stripe_secret):
    """While a secret rolls, Stripe sends one v1 per secret; one valid v1 is enough, either way round."""
    old = stripe_webhook_secret()
    sent = StripeSimulator(old, stripe_secret).payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    assert sent.headers["Stripe-Signature"].count("v1=") == 2
    ADAPTER.verify_and_parse(StripeAccount(account="a", webhook_secrets=(stripe_secret,)), sent.as_request())
    only_new = StripeSimulator(stripe_secret).payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    ADAPTER.verify_and_parse(StripeAccount(account="a", webhook_secrets=(old, stripe_secret)), only_new.as_request())


def test_other_schemes_ignored_and_v0_not_accepted(stripe, stripe_account, stripe_secret):
    sent = stripe.payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    t = str(int(NOW.timestamp()))
    good = compute_signature(stripe_secret, t, sent.body)
    ADAPTER.verify_and_parse(stripe_account, sent.with_headers(Stripe_Signature=f"t={t},v1={good},v0=abc").as_request())
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(stripe_account, sent.with_headers(Stripe_Signature=f"t={t},v0={good}").as_request())


@pytest.mark.parametrize("delta", [timedelta(seconds=301), timedelta(hours=2), timedelta(seconds=-301)])
def test_stale_or_replayed(stripe, stripe_account, delta):
    sent = stripe.payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    with pytest.raises(CallbackStaleError) as caught:
        ADAPTER.verify_and_parse(stripe_account, sent.as_request(received_at=NOW + delta))
    assert ADAPTER.nack(caught.value)[0] == 400


def test_inside_tolerance_accepted(stripe, stripe_account):
    sent = stripe.payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    ADAPTER.verify_and_parse(stripe_account, sent.as_request(received_at=NOW + timedelta(seconds=299)))


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=1,t=2,v1=abc", "t=abc,v1=abc", "garbage",
                                    "t=1," + ",".join(["v1=a"] * 9)])
def test_bad_signature_headers(stripe, stripe_account, header):
    sent = stripe.payment_intent_succeeded("S", Money(1, "USD"), at=NOW).with_headers(Stripe_Signature=header)
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(stripe_account, sent.as_request())


@pytest.mark.parametrize("body", [b"{oops", b"[1]", b'{"object":"event"}', b'{"id":"evt_1","object":"charge"}',
                                  b'{"object":"event","type":"payment_intent.succeeded","id":"evt","created":1,'
                                  b'"data":{"object":{"id":"pi","amount":1,"amount_received":1,"currency":"USD",'
                                  b'"status":"succeeded"}}}',
                                  b'{"object":"event","type":"payment_intent.succeeded","id":"evt","created":1,'
                                  b'"data":{"object":{"id":"pi","amount":1.5,"amount_received":1.5,"currency":"usd",'
                                  b'"status":"succeeded"}}}'])
def test_signed_malformed_bodies(stripe, stripe_account, body):
    with pytest.raises(CallbackMalformedError):
        ADAPTER.verify_and_parse(stripe_account, stripe.sign(body, at=NOW).as_request())


def test_truncated_body_fails(stripe, stripe_account):
    sent = stripe.payment_intent_succeeded("S", Money(1, "USD"), at=NOW)
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(stripe_account, sent.with_body(sent.body[:-2]).as_request())


def test_account_config_validated():
    with pytest.raises(ConfigurationError):
        StripeAccount(account="a", webhook_secrets=())
    with pytest.raises(ConfigurationError):
        StripeAccount(account="a", webhook_secrets=("sk_live_notawebhooksecret",))
