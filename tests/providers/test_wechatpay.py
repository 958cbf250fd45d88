"""WeChat Pay API v3 notifications: signature over headers+raw body, AES-256-GCM resource, replies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from settlement.core.errors import (
    CallbackAccountMismatchError,
    CallbackDecryptionError,
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    CallbackStaleError,
    CallbackUnknownEventError,
    CallbackUnknownKeyError,
    ConfigurationError,
)
from settlement.core.money import Money
from settlement.providers import NotificationKind, WeChatPayAccount, adapter_for
from settlement.providers.testing import (
    PlatformCertificate,
    WeChatPaySimulator,
    wechatpay_apiv3_key,
    wechatpay_platform_certificate,
)

ADAPTER = adapter_for("wechatpay")
NOW = datetime(2026, 3, 1, 6, 30, tzinfo=timezone.utc)


def test_payment_parses_exactly(wechat, wechat_account):
    """amount.total is already fen: 8880 CNY; out_trade_no and transaction_id come through."""
    sent = wechat.payment("SETTLE-0001", Money(8880, "CNY"), transaction_id="4200000985202603011234567890", at=NOW)
    got = ADAPTER.verify_and_parse(wechat_account, sent.as_request())
    assert got.kind is NotificationKind.PAYMENT and got.succeeded and got.status == "SUCCESS"
    assert got.amount == Money(8880, "CNY")
    assert got.merchant_reference == "SETTLE-0001"
    assert got.provider_txn_id == "4200000985202603011234567890"
    assert got.occurred_at == NOW
    assert got.notification_id.startswith("EV-")
    assert got.fields["event_type"] == "TRANSACTION.SUCCESS"
    assert got.fields["resource"]["amount"]["payer_total"] == 8880
    assert ADAPTER.ack(got) == (204, None, b"")


def test_cross_border_currency(wechat, wechat_account):
    got = ADAPTER.verify_and_parse(wechat_account, wechat.payment("S-2", Money(1999, "HKD"), at=NOW).as_request())
    assert got.amount == Money(1999, "HKD")


def test_refund_parses_exactly(wechat, wechat_account):
    sent = wechat.refund("SETTLE-0001", "4200000985202603011234567890", Money(8880, "CNY"), Money(1000, "CNY"),
                         "REFUND-1", refund_id="50300000000000000000000000001", at=NOW)
    got = ADAPTER.verify_and_parse(wechat_account, sent.as_request())
    assert got.kind is NotificationKind.REFUND and got.succeeded and got.status == "SUCCESS"
    assert got.amount == Money(1000, "CNY") and not got.amount_is_cumulative
    assert (got.refund_reference, got.provider_refund_id) == ("REFUND-1", "50300000000000000000000000001")
    assert got.provider_txn_id == "4200000985202603011234567890" and got.merchant_reference == "SETTLE-0001"


def test_refund_abnormal_then_success_are_different_facts(wechat, wechat_account):
    args = ("S", "4200", Money(100, "CNY"), Money(100, "CNY"), "R-1")
    abnormal = ADAPTER.verify_and_parse(wechat_account, wechat.refund(
        *args, refund_id="503", refund_status="ABNORMAL", at=NOW).as_request())
    success = ADAPTER.verify_and_parse(wechat_account, wechat.refund(*args, refund_id="503", at=NOW).as_request())
    assert not abnormal.succeeded and abnormal.fields["event_type"] == "REFUND.ABNORMAL"
    assert abnormal.evidence_hash != success.evidence_hash


def test_tampered_body_fails(wechat, wechat_account):
    sent = wechat.payment("S-3", Money(100, "CNY"), at=NOW)
    forged = sent.with_body(sent.body.replace(b'"summary":"', b'"summary":"X'))
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(wechat_account, forged.as_request())


@pytest.mark.parametrize("header", ["Wechatpay-Timestamp", "Wechatpay-Nonce"])
def test_tampered_signed_header_fails(wechat, wechat_account, header):
    sent = wechat.payment("S-4", Money(100, "CNY"), at=NOW)
    value = sent.headers[header]
    changed = str(int(value) + 1) if header.endswith("Timestamp") else value[:-1] + ("A" if value[-1] != "A" else "B")
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(wechat_account, sent.with_headers(**{header: changed}).as_request())


def test_wrong_platform_key_fails(wechat_account, apiv3_key, platform, other_rsa_keys):
    """Signed by another key but naming the configured serial: the signature does not verify."""
    impostor = WeChatPaySimulator(wechat_account.mchid, apiv3_key,
                                  PlatformCertificate(platform.serial, other_rsa_keys[0], ""))
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(wechat_account, impostor.payment("S-5", Money(1, "CNY"), at=NOW).as_request())


def test_unknown_serial_refused(wechat, wechat_account):
    sent = wechat.payment("S-6", Money(1, "CNY"), at=NOW).with_headers(Wechatpay_Serial="5157F09EFDC096DE15EBE81A47057A72")
    with pytest.raises(CallbackUnknownKeyError):
        ADAPTER.verify_and_parse(wechat_account, sent.as_request())


def test_rotation_two_platform_keys(wechat, wechat_account, apiv3_key, platform, other_rsa_keys):
    """During a platform rotation both certificates are configured; each verifies its own serial."""
    new = wechatpay_platform_certificate(other_rsa_keys[0], not_before=NOW - timedelta(days=1))
    account = WeChatPayAccount(account="a", mchid=wechat.mchid, apiv3_key=apiv3_key,
                               platform_keys={platform.serial: platform.certificate_pem,
                                              new.serial: new.certificate_pem})
    for sim in (wechat, WeChatPaySimulator(wechat.mchid, apiv3_key, new)):
        ADAPTER.verify_and_parse(account, sim.payment("S-7", Money(1, "CNY"), at=NOW).as_request())


def test_public_key_mode(wechat, apiv3_key, platform):
    """WeChat Pay "public key" mode: a PUB_KEY_ID_ serial with a bare public key PEM."""
    from cryptography.hazmat.primitives import serialization

    public_pem = serialization.load_pem_private_key(platform.private_key_pem.encode(), None).public_key() \
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key_id = "PUB_KEY_ID_0114232134912410000000000000"
    account = WeChatPayAccount(account="a", mchid=wechat.mchid, apiv3_key=apiv3_key, platform_keys={key_id: public_pem})
    sim = WeChatPaySimulator(wechat.mchid, apiv3_key, PlatformCertificate(key_id, platform.private_key_pem, ""))
    ADAPTER.verify_and_parse(account, sim.payment("S-8", Money(1, "CNY"), at=NOW).as_request())


@pytest.mark.parametrize("delta", [timedelta(seconds=301), timedelta(seconds=-301), timedelta(hours=3)])
def test_stale_or_replayed_timestamp(wechat, wechat_account, delta):
    """A genuine notification replayed more than 5 minutes after (or before) its timestamp is refused."""
    sent = wechat.payment("S-9", Money(1, "CNY"), at=NOW)
    with pytest.raises(CallbackStaleError):
        ADAPTER.verify_and_parse(wechat_account, sent.as_request(received_at=NOW + delta))


def test_timestamp_inside_window_accepted(wechat, wechat_account):
    sent = wechat.payment("S-10", Money(1, "CNY"), at=NOW)
    ADAPTER.verify_and_parse(wechat_account, sent.as_request(received_at=NOW + timedelta(seconds=299)))


@pytest.mark.parametrize("header", ["Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Timestamp",
                                    "Wechatpay-Nonce"])
def test_missing_signing_header(wechat, wechat_account, header):
    sent = wechat.payment("S-11", Money(1, "CNY"), at=NOW).with_headers(**{header: None})
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(wechat_account, sent.as_request())


def test_duplicate_signature_header_refused(wechat, wechat_account):
    from settlement.providers import InboundRequest

    sent = wechat.payment("S-12", Money(1, "CNY"), at=NOW)
    pairs = list(sent.headers.items()) + [("wechatpay-signature", "AAAA")]
    with pytest.raises(CallbackMalformedError):
        ADAPTER.verify_and_parse(wechat_account, InboundRequest.build(sent.body, pairs, received_at=NOW))


def test_wrong_apiv3_key_fails_gcm_tag(wechat, wechat_account, platform):
    """Correctly signed, but encrypted under another APIv3 key: the GCM tag fails."""
    other = WeChatPaySimulator(wechat.mchid, wechatpay_apiv3_key(), platform)
    with pytest.raises(CallbackDecryptionError):
        ADAPTER.verify_and_parse(wechat_account, other.payment("S-13", Money(1, "CNY"), at=NOW).as_request())


def test_tampered_associated_data_fails_gcm_tag(wechat, wechat_account):
    sent = wechat.payment("S-14", Money(1, "CNY"), at=NOW)
    envelope = json.loads(sent.body)
    envelope["resource"]["associated_data"] = "refund"
    with pytest.raises(CallbackDecryptionError):
        ADAPTER.verify_and_parse(wechat_account, wechat.sign(json.dumps(envelope).encode(), at=NOW).as_request())


def test_other_mchid_refused(wechat_account, apiv3_key, platform):
    other = WeChatPaySimulator("1900009999", apiv3_key, platform)
    with pytest.raises(CallbackAccountMismatchError):
        ADAPTER.verify_and_parse(wechat_account, other.payment("S-15", Money(1, "CNY"), at=NOW).as_request())


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"a":1,"a":2}', b"\xff\xfe", b'{"event_type":"X"}',
                                  b'{"event_type":"TRANSACTION.SUCCESS","resource_type":"encrypt-resource",'
                                  b'"resource":{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM",'
                                  b'"nonce":"short","ciphertext":"AAAA"}}'])
def test_signed_malformed_bodies(wechat, wechat_account, body):
    with pytest.raises(CallbackMalformedError):
        ADAPTER.verify_and_parse(wechat_account, wechat.sign(body, at=NOW).as_request())


def test_unknown_event_type(wechat, wechat_account):
    sent = wechat.notify("SECURITY_ECHO.SUCCESS", "security", {"mchid": wechat.mchid}, summary="x", at=NOW)
    with pytest.raises(CallbackUnknownEventError):
        ADAPTER.verify_and_parse(wechat_account, sent.as_request())


def test_truncated_body_fails(wechat, wechat_account):
    sent = wechat.payment("S-16", Money(1, "CNY"), at=NOW)
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(wechat_account, sent.with_body(sent.body[:-1]).as_request())


def test_expired_certificate_refused(wechat, apiv3_key, other_rsa_keys):
    old = wechatpay_platform_certificate(other_rsa_keys[0], not_before=NOW - timedelta(days=400), valid_days=365)
    account = WeChatPayAccount(account="a", mchid=wechat.mchid, apiv3_key=apiv3_key,
                               platform_keys={old.serial: old.certificate_pem})
    sim = WeChatPaySimulator(wechat.mchid, apiv3_key, old)
    with pytest.raises(CallbackUnknownKeyError):
        ADAPTER.verify_and_parse(account, sim.payment("S-17", Money(1, "CNY"), at=NOW).as_request())


def test_misconfigured_accounts(platform, apiv3_key):
    with pytest.raises(ConfigurationError):  # serial does not match the certificate
        WeChatPayAccount(account="a", mchid="1", apiv3_key=apiv3_key, platform_keys={"ABC": platform.certificate_pem})
    with pytest.raises(ConfigurationError):  # APIv3 key must be 32 bytes
        WeChatPayAccount(account="a", mchid="1", apiv3_key="short",
                         platform_keys={platform.serial: platform.certificate_pem})


def test_nack_is_fail_json():
    status, content_type, body = ADAPTER.nack(CallbackSignatureInvalidError("detail with key material"))
    assert status == 401 and content_type.startswith("application/json")
    assert json.loads(body) == {"code": "FAIL", "message": CallbackSignatureInvalidError.title}
    assert ADAPTER.nack(ValueError("x"))[0] == 500
