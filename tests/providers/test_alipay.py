"""Alipay asynchronous notifications: exact parsing, and every way a forged or broken one is refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.core.errors import (
    CallbackAccountMismatchError,
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    CallbackStaleError,
    CallbackUnknownEventError,
    InvalidAmountError,
    LedgerError,
)
from settlement.core.money import Money
from settlement.providers import AlipayAccount, InboundRequest, NotificationKind, adapter_for
from settlement.providers.alipay import signing_content
from settlement.providers.testing import AlipaySimulator

ADAPTER = adapter_for("alipay")
NOW = datetime(2026, 3, 1, 6, 30, tzinfo=timezone.utc)


def cny(text: str) -> Money:
    return Money.from_decimal_str(text, "CNY")


def test_payment_parses_exactly(alipay, alipay_account):
    """A TRADE_SUCCESS notification becomes a PAYMENT of exactly total_amount in fen."""
    sent = alipay.payment("SETTLE-0001", cny("88.80"), trade_no="2026030122001400000000000001", at=NOW)
    got = ADAPTER.verify_and_parse(alipay_account, sent.as_request())
    assert got.kind is NotificationKind.PAYMENT and got.succeeded and got.status == "TRADE_SUCCESS"
    assert got.amount == Money(8880, "CNY")
    assert got.merchant_reference == "SETTLE-0001"
    assert got.provider_txn_id == "2026030122001400000000000001"
    assert got.occurred_at == NOW.replace(microsecond=0)
    assert got.notification_id == got.fields["notify_id"]
    assert "sign" not in got.fields and got.fields["app_id"] == alipay.app_id
    assert got.evidence_hash.startswith("0x") and len(got.evidence_hash) == 66
    assert ADAPTER.ack(got) == (200, "text/plain; charset=utf-8", b"success")


def test_trade_finished_is_the_same_payment_fact(alipay, alipay_account):
    """TRADE_FINISHED after TRADE_SUCCESS reports the same payment: the evidence hash is equal."""
    a = alipay.payment("S-2", cny("1.00"), trade_no="T-2", at=NOW)
    b = alipay.payment("S-2", cny("1.00"), trade_no="T-2", trade_status="TRADE_FINISHED", at=NOW)
    first = ADAPTER.verify_and_parse(alipay_account, a.as_request())
    second = ADAPTER.verify_and_parse(alipay_account, b.as_request())
    assert first.evidence_hash == second.evidence_hash
    assert first.notification_id != second.notification_id


@pytest.mark.parametrize(("text", "currency", "minor"), [("12.34", "USD", 1234), ("1000", "JPY", 1000),
                                                        ("0.01", "CNY", 1), ("1.234", "KWD", 1234)])
def test_cross_border_currency_rule(alipay, alipay_account, text, currency, minor):
    """trans_currency names total_amount's currency; absent, it is CNY; conversion is exact."""
    sent = alipay.payment("S-3", Money.from_decimal_str(text, currency), at=NOW)
    assert ("trans_currency" in sent.body.decode()) == (currency != "CNY")
    assert ADAPTER.verify_and_parse(alipay_account, sent.as_request()).amount == Money(minor, currency)


def test_excess_precision_is_refused_not_rounded(alipay, alipay_account):
    sent = alipay.notify({"trade_no": "T", "out_trade_no": "S", "trade_status": "TRADE_SUCCESS",
                          "total_amount": "88.805"}, at=NOW)
    with pytest.raises(InvalidAmountError):
        ADAPTER.verify_and_parse(alipay_account, sent.as_request())


def test_partial_and_full_refunds(alipay, alipay_account):
    """Refunds carry out_biz_no and the running refund_fee total; full refunds arrive as TRADE_CLOSED."""
    partial = ADAPTER.verify_and_parse(alipay_account, alipay.refund(
        "S-4", "T-4", cny("100.00"), cny("30.00"), "R-4-1", at=NOW).as_request())
    assert partial.kind is NotificationKind.REFUND and partial.status == "TRADE_SUCCESS"
    assert partial.amount == Money(3000, "CNY") and partial.amount_is_cumulative
    assert partial.refund_reference == "R-4-1" and partial.provider_txn_id == "T-4"
    assert partial.occurred_at == NOW.replace(microsecond=123000)
    full = ADAPTER.verify_and_parse(alipay_account, alipay.refund(
        "S-4", "T-4", cny("100.00"), cny("100.00"), "R-4-2", at=NOW).as_request())
    assert full.kind is NotificationKind.REFUND and full.status == "TRADE_CLOSED" and full.amount == Money(10000, "CNY")
    payment = ADAPTER.verify_and_parse(alipay_account, alipay.payment("S-4", cny("100.00"), trade_no="T-4",
                                                                      at=NOW).as_request())
    assert len({payment.evidence_hash, partial.evidence_hash, full.evidence_hash}) == 3


@pytest.mark.parametrize(("status", "kind"), [("TRADE_CLOSED", NotificationKind.CLOSED),
                                              ("WAIT_BUYER_PAY", NotificationKind.OTHER)])
def test_unpaid_statuses(alipay, alipay_account, status, kind):
    got = ADAPTER.verify_and_parse(alipay_account, alipay.payment("S-5", cny("5.00"), trade_status=status,
                                                                  at=NOW).as_request())
    assert got.kind is kind and not got.succeeded


def test_unknown_trade_status(alipay, alipay_account):
    sent = alipay.payment("S-6", cny("5.00"), trade_status="TRADE_PENDING_MAGIC", at=NOW)
    with pytest.raises(CallbackUnknownEventError):
        ADAPTER.verify_and_parse(alipay_account, sent.as_request())


def test_tampered_field_fails(alipay, alipay_account):
    sent = alipay.payment("S-7", cny("88.80"), at=NOW)
    forged = sent.with_body(sent.body.replace(b"total_amount=88.80", b"total_amount=88.81"))
    assert forged.body != sent.body
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(alipay_account, forged.as_request())


def test_wrong_key_fails(alipay_account, other_rsa_keys):
    impostor = AlipaySimulator(alipay_account.app_id, other_rsa_keys[0])
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(alipay_account, impostor.payment("S-8", cny("1.00"), at=NOW).as_request())


def test_sign_type_downgrade_fails(alipay, alipay_account):
    sent = alipay.payment("S-9", cny("1.00"), at=NOW)
    forged = sent.with_body(sent.body.replace(b"sign_type=RSA2", b"sign_type=RSA"))
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(alipay_account, forged.as_request())


def test_empty_values_are_not_signed(alipay, alipay_account):
    """An empty parameter is outside the signed content, as Alipay signs: it neither breaks nor counts."""
    sent = alipay.payment("S-10", cny("1.00"), at=NOW, extra={"passback_params": ""})
    assert b"passback_params=&" in sent.body or sent.body.endswith(b"passback_params=")
    assert "passback_params" not in signing_content({"passback_params": "", "a": "1"})
    ADAPTER.verify_and_parse(alipay_account, sent.as_request())


def test_gbk_charset(alipay_keys, alipay_account):
    gbk = AlipaySimulator(alipay_account.app_id, alipay_keys[0], charset="gbk")
    sent = gbk.payment("S-11", cny("2.00"), at=NOW, extra={"subject": "大乐透2.1"})
    got = ADAPTER.verify_and_parse(alipay_account, sent.as_request())
    assert got.fields["subject"] == "大乐透2.1"


@pytest.mark.parametrize("delta", [timedelta(hours=27), timedelta(minutes=-6)])
def test_stale_or_future_notify_time(alipay, alipay_account, delta):
    """Older than Alipay's ~25 h retry window (plus margin), or from the future: refused as stale."""
    sent = alipay.payment("S-12", cny("1.00"), at=NOW)
    with pytest.raises(CallbackStaleError):
        ADAPTER.verify_and_parse(alipay_account, sent.as_request(received_at=NOW + delta))


def test_retry_within_window_accepted(alipay, alipay_account):
    sent = alipay.payment("S-13", cny("1.00"), at=NOW)
    ADAPTER.verify_and_parse(alipay_account, sent.as_request(received_at=NOW + timedelta(hours=24, minutes=30)))


def test_other_app_id_refused(alipay_keys, alipay_account):
    other_app = AlipaySimulator("2021999999999999", alipay_keys[0])
    with pytest.raises(CallbackAccountMismatchError):
        ADAPTER.verify_and_parse(alipay_account, other_app.payment("S-14", cny("1.00"), at=NOW).as_request())


def test_seller_id_checked_when_configured(alipay, alipay_keys):
    account = AlipayAccount(account="a", app_id=alipay.app_id, alipay_public_key_pem=alipay_keys[1],
                            seller_id="2088000000000000")
    with pytest.raises(CallbackAccountMismatchError):
        ADAPTER.verify_and_parse(account, alipay.payment("S-15", cny("1.00"), at=NOW).as_request())


def test_truncated_body_refused(alipay, alipay_account):
    sent = alipay.payment("S-16", cny("1.00"), at=NOW)
    for cut in (len(sent.body) // 2, len(sent.body) - 5):
        with pytest.raises((CallbackSignatureInvalidError, CallbackMalformedError)):
            ADAPTER.verify_and_parse(alipay_account, sent.with_body(sent.body[:cut]).as_request())


@pytest.mark.parametrize("body", [b"a=1&a=2", b"a=1 b=2", b"a=%zz", b"a=1&&b=2", b"=1", b"noequals",
                                  b"a=%ff%fe", "a=\u00e9".encode("utf-8"), b"charset=koi8-r&a=1"])
def test_malformed_forms(alipay, alipay_account, body):
    sent = alipay.payment("S-17", cny("1.00"), at=NOW)
    with pytest.raises(CallbackMalformedError):
        ADAPTER.verify_and_parse(alipay_account, sent.with_body(body).as_request())


def test_signed_but_incomplete_is_malformed(alipay, alipay_account):
    """A correctly signed body missing out_trade_no is malformed (not a crash, not accepted)."""
    sent = alipay.notify({"trade_no": "T", "trade_status": "TRADE_SUCCESS", "total_amount": "1.00"}, at=NOW)
    with pytest.raises(CallbackMalformedError):
        ADAPTER.verify_and_parse(alipay_account, sent.as_request())


def test_missing_sign_refused(alipay_account):
    body = urlencode({"app_id": alipay_account.app_id, "trade_status": "TRADE_SUCCESS"}).encode()
    request = InboundRequest.build(body, {"content-type": "application/x-www-form-urlencoded"}, received_at=NOW)
    with pytest.raises(CallbackSignatureInvalidError):
        ADAPTER.verify_and_parse(alipay_account, request)


def test_nack_is_bare_fail_without_detail():
    status, content_type, body = ADAPTER.nack(CallbackSignatureInvalidError("secret detail 123"))
    assert (status, body) == (401, b"fail") and content_type.startswith("text/plain")
    assert ADAPTER.nack(RuntimeError("boom"))[0] == 500
    assert isinstance(CallbackStaleError(), LedgerError)


# -- the parsing fast paths read exactly what the general functions read -----------------------------------

_FORM_TEXT = st.text(alphabet=st.sampled_from("abcXYZ019-_.~*+% &=中文"), max_size=24)


@settings(max_examples=500, deadline=None)
@given(_FORM_TEXT, st.sampled_from(["utf-8", "gbk", "ascii"]))
def test_unquote_fast_path_is_unquote_plus(text, codec):
    """Names and values without '%' or '+' skip unquote_plus; the result (or the error) is the same."""
    from urllib.parse import unquote_plus

    from settlement.providers.alipay import _unquote

    def outcome(fn):  # type: ignore[no-untyped-def]
        try:
            return fn()
        except UnicodeError as exc:
            return type(exc)

    assert outcome(lambda: _unquote(text, codec)) == outcome(
        lambda: unquote_plus(text, encoding=codec, errors="strict"))


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
       st.integers(min_value=0, max_value=6))
def test_beijing_time_reads_as_strptime_did(moment, digits):
    """notify_time and gmt_* values (with 0..6 fraction digits) read the same as with strptime."""
    from settlement.providers.alipay import BEIJING, parse_beijing_time

    text = f"{moment:%Y-%m-%d %H:%M:%S}" + (f".{moment.microsecond:06d}"[: digits + 1] if digits else "")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if digits else "%Y-%m-%d %H:%M:%S"
    assert parse_beijing_time(text, what="t") == datetime.strptime(text, fmt).replace(tzinfo=BEIJING)


@pytest.mark.parametrize("text", ["2026-02-30 10:00:00", "2026-01-01 24:00:00", "2026-01-01 10:61:00",
                                  "2026-1-01 10:00:00", "2026-01-01T10:00:00", "2026-01-01 10:00:00.1234567"])
def test_impossible_or_misshapen_times_are_malformed(text):
    from settlement.providers.alipay import parse_beijing_time

    with pytest.raises(CallbackMalformedError):
        parse_beijing_time(text, what="notify_time")
