"""What every adapter shares: envelope bounds, the factory, evidence hashes, secrets kept out of repr,
and the tamper property: no single-byte change to a signed body gets through."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.core.errors import (
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    ConfigurationError,
    LedgerError,
    PayloadTooLargeError,
    UnknownProviderError,
    UnsupportedMediaTypeError,
)
from settlement.core.money import Money
from settlement.providers import (
    BODY_BYTES_MAX,
    PROVIDERS,
    Headers,
    InboundRequest,
    NotificationKind,
    account_from_config,
    adapter_for,
    evidence_hash,
)
from settlement.providers.base import keccak256
from settlement.providers.testing import demo_credentials, simulated_payment

NOW = datetime(2026, 3, 1, 6, 30, tzinfo=timezone.utc)


@pytest.fixture
def signed(request, alipay, wechat, stripe, alipay_account, wechat_account, stripe_account):
    """(adapter, account, notification) for the parametrized provider."""
    provider = request.param
    if provider == "alipay":
        return adapter_for(provider), alipay_account, alipay.payment("S-1", Money(8880, "CNY"), at=NOW)
    if provider == "wechatpay":
        return adapter_for(provider), wechat_account, wechat.payment("S-1", Money(8880, "CNY"), at=NOW)
    return adapter_for(provider), stripe_account, stripe.payment_intent_succeeded("S-1", Money(8880, "CNY"), at=NOW)


all_providers = pytest.mark.parametrize("signed", PROVIDERS, indirect=True)


def test_factory():
    assert PROVIDERS == ("alipay", "wechatpay", "stripe")
    assert {adapter_for(p).provider for p in PROVIDERS} == set(PROVIDERS)
    with pytest.raises(UnknownProviderError):
        adapter_for("paypal")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_demo_credentials_round_trip(provider):
    """demo.json-shaped credentials: the service side built from them verifies the simulator's payment."""
    creds = demo_credentials(provider, f"demo-{provider}")
    account = account_from_config(provider, creds["account"], creds)
    sent = simulated_payment(provider, creds, "ORDER-42", Money(12345, "CNY"))  # real clock: fresh cert
    got = adapter_for(provider).verify_and_parse(account, sent.as_request())
    assert (got.kind, got.amount, got.merchant_reference) == (NotificationKind.PAYMENT, Money(12345, "CNY"), "ORDER-42")
    for secret_key in ("apiv3_key", "webhook_secret", "platform_private_key_pem"):
        if secret_key in creds:
            assert creds[secret_key] not in repr(account)


@all_providers
def test_oversized_body_refused_before_anything(signed):
    adapter, account, sent = signed
    huge = sent.with_body(sent.body + b" " * (BODY_BYTES_MAX + 1 - len(sent.body)))
    with pytest.raises(PayloadTooLargeError):
        adapter.verify_and_parse(account, huge.as_request())
    at_limit = sent.with_body(sent.body[:1] * BODY_BYTES_MAX)
    with pytest.raises(LedgerError) as caught:
        adapter.verify_and_parse(account, at_limit.as_request())
    assert not isinstance(caught.value, PayloadTooLargeError)


@all_providers
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "multipart/form-data"])
def test_wrong_content_type(signed, content_type):
    adapter, account, sent = signed
    with pytest.raises(UnsupportedMediaTypeError):
        adapter.verify_and_parse(account, sent.with_headers(Content_Type=content_type).as_request())
    assert adapter.nack(UnsupportedMediaTypeError())[0] == 415


@all_providers
def test_content_type_parameters_and_case_ignored(signed):
    adapter, account, sent = signed
    media = sent.content_type.split(";")[0].upper()
    adapter.verify_and_parse(account, sent.with_headers(Content_Type=media).as_request())


@all_providers
def test_empty_body_and_wrong_account_type(signed, stripe_account, alipay_account):
    adapter, account, sent = signed
    with pytest.raises(CallbackMalformedError):
        adapter.verify_and_parse(account, sent.with_body(b"").as_request())
    other = alipay_account if adapter.provider != "alipay" else stripe_account
    with pytest.raises(ConfigurationError):
        adapter.verify_and_parse(other, sent.as_request())


@all_providers
def test_retries_share_evidence_hash(signed):
    """The same notification delivered twice names the same fact."""
    adapter, account, sent = signed
    first = adapter.verify_and_parse(account, sent.as_request())
    again = adapter.verify_and_parse(account, sent.as_request())
    assert first.evidence_hash == again.evidence_hash and first.body_sha256 == again.body_sha256


def test_evidence_hash_is_keccak256_of_the_documented_string():
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    expected = "0x" + keccak256(b"ledger-callback-evidence-v1|stripe|payment|pi_1|succeeded").hex()
    assert evidence_hash("stripe", NotificationKind.PAYMENT, "pi_1", None, "succeeded") == expected
    refund = evidence_hash("stripe", NotificationKind.REFUND, "pi_1", "re_1", "succeeded")
    assert refund == "0x" + keccak256(b"ledger-callback-evidence-v1|stripe|refund|pi_1|re_1|succeeded").hex()
    with pytest.raises(CallbackMalformedError):
        evidence_hash("stripe", NotificationKind.PAYMENT, "pi|1", None, "succeeded")


def test_headers_case_insensitive_and_duplicates_refused():
    headers = Headers([("Stripe-Signature", "t=1"), ("X-A", "1"), ("x-a", "2")])
    assert headers["stripe-signature"] == headers["STRIPE-SIGNATURE"] == "t=1"
    with pytest.raises(CallbackMalformedError):
        headers.get("X-A")
    assert "t=1" not in repr(headers)
    with pytest.raises(ValueError):
        InboundRequest(b"x", Headers(), datetime(2026, 1, 1))  # naive clock refused


# --- tamper property ---------------------------------------------------------------------------

TAMPER = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("signed", ["wechatpay", "stripe"], indirect=True)
@TAMPER
@given(data=st.data())
def test_any_single_byte_change_fails_signature(signed, data):
    """WeChat Pay and Stripe sign the raw bytes: every single-byte change is a signature failure."""
    adapter, account, sent = signed
    position = data.draw(st.integers(0, len(sent.body) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != sent.body[position]))
    body = sent.body[:position] + bytes([replacement]) + sent.body[position + 1:]
    with pytest.raises(CallbackSignatureInvalidError):
        adapter.verify_and_parse(account, sent.with_body(body).as_request())


@pytest.mark.parametrize("signed", ["alipay"], indirect=True)
@TAMPER
@given(data=st.data())
def test_alipay_single_byte_change_never_alters_the_result(signed, data):
    """Alipay signs the DECODED parameters, so a byte change that decodes identically (``%2B`` vs
    ``%2b``) is the same message; every other change is refused. Either way no altered notification
    is ever accepted."""
    adapter, account, sent = signed
    original = adapter.verify_and_parse(account, sent.as_request())
    position = data.draw(st.integers(0, len(sent.body) - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != sent.body[position]))
    body = sent.body[:position] + bytes([replacement]) + sent.body[position + 1:]
    try:
        got = adapter.verify_and_parse(account, sent.with_body(body).as_request())
    except LedgerError:
        return
    assert got.fields == original.fields and got.amount == original.amount
    assert got.evidence_hash == original.evidence_hash
