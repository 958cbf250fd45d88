"""Alipay (open platform) asynchronous notifications: ``POST notify_url``, form-encoded.

Wire format, as Alipay documents it:

- the body is ``application/x-www-form-urlencoded``, in the charset named by its own ``charset``
  parameter (``utf-8`` by default; ``gbk`` also occurs);
- ``sign`` is base64 SHA256withRSA (``sign_type=RSA2``) by Alipay's platform key over every OTHER
  parameter except ``sign`` and ``sign_type``, URL-decoded, with empty values left out, sorted by
  name and joined as ``k=v&k=v``;
- Alipay retries (2m, 10m, 10m, 1h, 2h, 6h, 15h: about 25 h) until the body of the answer is the
  bare text ``success``.

Interpretation (the ledger's rules):

- ``trade_status`` TRADE_SUCCESS / TRADE_FINISHED: PAYMENT of ``total_amount`` (the order amount;
  ``receipt_amount`` and ``buyer_pay_amount`` stay in ``fields``); TRADE_CLOSED: CLOSED;
  WAIT_BUYER_PAY: OTHER. Any status with ``out_biz_no`` and a non-zero ``refund_fee`` is a REFUND
  (Alipay notifies partial refunds as TRADE_SUCCESS and full ones as TRADE_CLOSED); its amount is
  ``refund_fee``, which Alipay reports as the running TOTAL refunded (``amount_is_cumulative``).
- Currency: ``trans_currency`` (the pricing currency of ``total_amount`` in cross-border trades),
  else ``currency``, else CNY. Amounts convert exactly (``"88.80"`` -> 8880); excess precision is
  refused, never rounded.
- ``notify_time`` (Beijing time) older than :data:`NOTIFY_AGE_MAX` (Alipay's retry window plus
  margin) or more than :data:`CLOCK_SKEW_MAX` ahead is refused as stale.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import unquote_plus

from settlement.core.errors import (
    CallbackAccountMismatchError,
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    CallbackStaleError,
    CallbackUnknownEventError,
    ConfigurationError,
)
from settlement.core.money import Money
from settlement.providers.base import (
    STATUS_CHARS_MAX,
    InboundRequest,
    NotificationKind,
    ProviderAccount,
    ProviderAdapter,
    ProviderResponse,
    VerifiedNotification,
    b64decode_strict,
    error_status,
    evidence_hash,
    load_rsa_public_key,
    optional_str,
    outcome_of,
    require_str,
    rsa_sha256_verifies,
)

PROVIDER = "alipay"
MEDIA_TYPE = "application/x-www-form-urlencoded"
SIGN_TYPE = "RSA2"
UNSIGNED_PARAMS = frozenset({"sign", "sign_type"})
FIELDS_COUNT_MAX = 128
FIELD_VALUE_CHARS_MAX = 4096
DEFAULT_CURRENCY = "CNY"
BEIJING = timezone(timedelta(hours=8))
NOTIFY_AGE_MAX = timedelta(hours=26)
CLOCK_SKEW_MAX = timedelta(minutes=5)
# Charsets Alipay uses, mapped to Python codec names.
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk"}

PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
CLOSED_STATUS = "TRADE_CLOSED"
WAITING_STATUS = "WAIT_BUYER_PAY"

# Printable ASCII without space: what a form-encoded body may contain; '%' must start an escape.
_RAW_FORM_RE = re.compile(rb"^[\x21-\x7e]+$")
_BAD_ESCAPE_RE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?$")


@dataclass(frozen=True, slots=True)
class AlipayAccount(ProviderAccount):
    """An Alipay app: its ``app_id`` and ALIPAY's public key (PEM, certificate or bare base64).
    ``seller_id``, when set, must also match (the PID the money goes to)."""

    provider: ClassVar[str] = PROVIDER
    app_id: str = ""
    alipay_public_key_pem: str = field(default="", repr=False)
    seller_id: str | None = None
    _public_key: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ProviderAccount.__post_init__(self)
        if not self.app_id:
            raise ConfigurationError("alipay account needs app_id")
        object.__setattr__(self, "_public_key",
                           load_rsa_public_key(self.alipay_public_key_pem, what="alipay public key"))

    @property
    def public_key(self) -> Any:
        return self._public_key


def _unquote(text: str, codec: str) -> str:
    """``unquote_plus(text, codec, errors="strict")``; most names and values hold neither ``%`` nor
    ``+``, and are then returned as they are (what unquote_plus returns for them) without the call."""
    if "%" not in text and "+" not in text:
        return text
    return unquote_plus(text, encoding=codec, errors="strict")


def parse_form(body: bytes, header_charset: str | None) -> tuple[dict[str, str], str]:
    """Split a form body into decoded parameters; refuses anything ambiguous (duplicate names,
    bare spaces, broken escapes, undecodable bytes). Returns (params, codec)."""
    if not _RAW_FORM_RE.match(body) or _BAD_ESCAPE_RE.search(body):
        raise CallbackMalformedError("not a form-encoded body")
    pieces = body.split(b"&")
    if len(pieces) > FIELDS_COUNT_MAX:
        raise CallbackMalformedError(f"more than {FIELDS_COUNT_MAX} parameters")
    raw_pairs: list[tuple[str, str]] = []
    for piece in pieces:
        name, sep, value = piece.decode("ascii").partition("=")
        if not sep or not name:
            raise CallbackMalformedError("form parameter without a name or '='")
        raw_pairs.append((name, value))
    declared = None
    for n, v in raw_pairs:  # the last one, as a dict of the pairs would keep (a repeat is refused below)
        if _unquote(n, "ascii") == "charset":
            declared = v
    charset_name = (_unquote(declared, "ascii") if declared else header_charset or "utf-8").lower()
    codec = CHARSETS.get(charset_name)
    if codec is None:
        raise CallbackMalformedError(f"unsupported charset {charset_name[:16]!r}")
    if header_charset and CHARSETS.get(header_charset) != codec:
        raise CallbackMalformedError("Content-Type charset disagrees with the charset parameter")
    params: dict[str, str] = {}
    try:
        for name, value in raw_pairs:
            key = _unquote(name, codec)
            if key in params:
                raise CallbackMalformedError(f"parameter {key[:32]!r} sent twice")
            decoded = _unquote(value, codec)
            if len(decoded) > FIELD_VALUE_CHARS_MAX:
                raise CallbackMalformedError(f"parameter {key[:32]!r} too long")
            params[key] = decoded
    except UnicodeDecodeError:
        raise CallbackMalformedError(f"parameters are not valid {codec}") from None
    return params, codec


def signing_content(params: dict[str, str]) -> str:
    """``k=v&...`` over every parameter but sign/sign_type, empty values left out, sorted by name."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in UNSIGNED_PARAMS and params[k] != "")


def parse_beijing_time(text: str, *, what: str) -> datetime:
    if not _TIME_RE.match(text):
        raise CallbackMalformedError(f"{what} is not 'YYYY-MM-DD HH:MM:SS'")
    try:
        # The pattern above is checked first; for it, fromisoformat (Python >= 3.11) reads what
        # strptime("%Y-%m-%d %H:%M:%S[.%f]") does, at a tenth of its cost.
        return datetime.fromisoformat(text).replace(tzinfo=BEIJING)
    except ValueError:
        raise CallbackMalformedError(f"{what} is not a valid time") from None


class AlipayAdapter(ProviderAdapter):
    provider = PROVIDER
    account_type = AlipayAccount
    media_types = frozenset({MEDIA_TYPE})

    def _verify_and_parse(self, account: AlipayAccount, request: InboundRequest) -> VerifiedNotification:
        params, codec = parse_form(request.body, request.charset)
        self._verify_signature(account, params, codec)
        return self._interpret(account, request, params)

    @staticmethod
    def _verify_signature(account: AlipayAccount, params: dict[str, str], codec: str) -> None:
        sign = params.get("sign")
        if not sign:
            raise CallbackSignatureInvalidError("sign missing")
        if params.get("sign_type") != SIGN_TYPE:
            raise CallbackSignatureInvalidError(f"sign_type must be {SIGN_TYPE}")
        signature = b64decode_strict(sign, what="sign")
        if not rsa_sha256_verifies(account.public_key, signature, signing_content(params).encode(codec)):
            raise CallbackSignatureInvalidError("alipay signature does not verify")

    def _interpret(self, account: AlipayAccount, request: InboundRequest,
                   params: dict[str, str]) -> VerifiedNotification:
        where = "alipay notification"
        if require_str(params, "app_id", where=where) != account.app_id:
            raise CallbackAccountMismatchError("notification is for another app_id")
        if account.seller_id is not None and params.get("seller_id") != account.seller_id:
            raise CallbackAccountMismatchError("notification is for another seller_id")
        notify_time = parse_beijing_time(require_str(params, "notify_time", where=where), what="notify_time")
        if request.received_at - notify_time > NOTIFY_AGE_MAX or notify_time - request.received_at > CLOCK_SKEW_MAX:
            raise CallbackStaleError("notify_time outside the accepted window")

        trade_no = require_str(params, "trade_no", where=where)
        out_trade_no = require_str(params, "out_trade_no", where=where)
        status = require_str(params, "trade_status", chars_max=STATUS_CHARS_MAX, where=where)
        currency = params.get("trans_currency") or params.get("currency") or DEFAULT_CURRENCY
        total = Money.from_decimal_str(require_str(params, "total_amount", where=where), currency)
        out_biz_no = optional_str(params, "out_biz_no", where=where)
        refund_fee = params.get("refund_fee")
        refunded = Money.from_decimal_str(refund_fee, currency) if refund_fee else None

        def when(key: str) -> datetime:
            value = params.get(key)
            return parse_beijing_time(value, what=key) if value else notify_time

        if out_biz_no and refunded is not None and refunded.value > 0:
            if status not in PAID_STATUSES and status != CLOSED_STATUS:
                raise CallbackUnknownEventError(f"unknown trade_status {status!r} on a refund")
            kind, amount, succeeded, occurred_at = NotificationKind.REFUND, refunded, True, when("gmt_refund")
        elif status in PAID_STATUSES:
            kind, amount, succeeded, occurred_at = NotificationKind.PAYMENT, total, True, when("gmt_payment")
        elif status == CLOSED_STATUS:
            kind, amount, succeeded, occurred_at = NotificationKind.CLOSED, total, False, when("gmt_close")
        elif status == WAITING_STATUS:
            kind, amount, succeeded, occurred_at = NotificationKind.OTHER, total, False, when("gmt_create")
        else:
            raise CallbackUnknownEventError(f"unknown trade_status {status!r}")

        refund_reference = out_biz_no if kind is NotificationKind.REFUND else None
        return VerifiedNotification(
            provider=PROVIDER, account=account.account, kind=kind, status=status, succeeded=succeeded,
            provider_txn_id=trade_no, merchant_reference=out_trade_no, amount=amount,
            occurred_at=occurred_at.astimezone(timezone.utc),
            notification_id=require_str(params, "notify_id", where=where),
            body_sha256=hashlib.sha256(request.body).hexdigest(),
            evidence_hash=evidence_hash(PROVIDER, kind, trade_no, refund_reference, outcome_of(succeeded, status)),
            refund_reference=refund_reference, provider_refund_id=None,
            amount_is_cumulative=kind is NotificationKind.REFUND,
            fields={k: v for k, v in params.items() if k not in UNSIGNED_PARAMS},
        )

    def ack(self, notification: VerifiedNotification) -> ProviderResponse:
        return ProviderResponse(200, "text/plain; charset=utf-8", b"success")

    def nack(self, error: BaseException) -> ProviderResponse:
        # Alipay only reads the body: anything but "success" makes it retry.
        return ProviderResponse(error_status(error), "text/plain; charset=utf-8", b"fail")
