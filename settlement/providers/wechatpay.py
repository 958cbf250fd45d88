"""WeChat Pay API v3 notifications (payments and refunds): ``POST notify_url``, JSON.

Wire format, as WeChat Pay documents it:

- headers ``Wechatpay-Timestamp`` (unix seconds), ``Wechatpay-Nonce``, ``Wechatpay-Signature``
  (base64 SHA256withRSA by the platform key) and ``Wechatpay-Serial`` (which platform certificate
  serial, or ``PUB_KEY_ID_...`` public-key id, signed). The signed message is
  ``"{timestamp}\\n{nonce}\\n{body}\\n"`` over the raw body bytes;
- the body: ``{"id", "create_time", "event_type", "resource_type": "encrypt-resource", "summary",
  "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext", "associated_data", "nonce",
  "original_type"}}``; ``ciphertext`` is base64 of AES-256-GCM ciphertext+tag under the merchant's
  32-byte APIv3 key, with the 12-byte ``nonce`` and ``associated_data`` (possibly empty);
- decrypted ``transaction``: ``mchid, appid, out_trade_no, transaction_id, trade_state,
  success_time, amount{total, payer_total, currency, payer_currency}``; decrypted ``refund``:
  ``mchid, out_trade_no, transaction_id, out_refund_no, refund_id, refund_status, success_time,
  amount{total, refund, payer_total, payer_refund[, currency]}``. Amounts are integers of minor
  units (fen);
- answer 200 or 204 with no body on success; 4xx/5xx with ``{"code": "FAIL", "message": ...}``
  makes WeChat Pay retry.

Ledger rules: the signature is checked first, then the timestamp (more than
:data:`TIMESTAMP_SKEW_MAX` away from arrival is a replay or a broken clock), then the body is
decrypted and ``mchid`` (and ``appid`` when configured) must be the account's. A payment's amount is
``amount.total`` in ``amount.currency`` (what the order was priced at; the payer's side stays in
``fields``); a refund's is ``amount.refund`` in ``amount.currency``, CNY when absent (domestic).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
    error_title,
    evidence_hash,
    json_response,
    load_json_object,
    load_rsa_public_key,
    optional_str,
    outcome_of,
    require_int,
    require_object,
    require_str,
    rsa_sha256_verifies,
)

PROVIDER = "wechatpay"
MEDIA_TYPE = "application/json"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TIMESTAMP_SKEW_MAX = timedelta(minutes=5)
APIV3_KEY_BYTES = 32
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16
PLATFORM_KEYS_MAX = 8
NONCE_CHARS_MAX = 64
ERROR_MESSAGE_CHARS_MAX = 64  # WeChat's limit on the answer's "message"
DEFAULT_REFUND_CURRENCY = "CNY"

RESOURCE_TYPE = "encrypt-resource"
ALGORITHM = "AEAD_AES_256_GCM"

# trade_state of a decrypted transaction -> what it means for the ledger.
TRADE_STATES: dict[str, NotificationKind] = {
    "SUCCESS": NotificationKind.PAYMENT,
    "CLOSED": NotificationKind.CLOSED,
    "REVOKED": NotificationKind.CLOSED,
    "NOTPAY": NotificationKind.OTHER,
    "USERPAYING": NotificationKind.OTHER,
    "PAYERROR": NotificationKind.OTHER,
    "REFUND": NotificationKind.OTHER,  # "moved to refund": the refund notification carries the money
}
REFUND_STATUSES = frozenset({"SUCCESS", "CLOSED", "ABNORMAL", "PROCESSING"})

_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_NONCE_RE = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True, slots=True)
class PlatformKey:
    """One WeChat Pay platform verification key; ``not_before``/``not_after`` from its certificate,
    None for a bare public key (WeChat Pay "public key" mode)."""

    serial: str
    public_key: Any = field(repr=False)
    not_before: datetime | None = None
    not_after: datetime | None = None


def load_platform_key(serial: str, material: str) -> PlatformKey:
    if "-----BEGIN CERTIFICATE-----" in material:
        try:
            cert = x509.load_pem_x509_certificate(material.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ConfigurationError(f"wechatpay platform certificate {serial!r} unreadable") from None
        if format(cert.serial_number, "X") != serial.upper():
            raise ConfigurationError(f"certificate serial is {cert.serial_number:X}, configured as {serial!r}")
        return PlatformKey(serial.upper(), load_rsa_public_key(material, what=f"platform certificate {serial}"),
                           cert.not_valid_before_utc, cert.not_valid_after_utc)
    return PlatformKey(serial.upper(), load_rsa_public_key(material, what=f"platform public key {serial}"))


@dataclass(frozen=True, slots=True)
class WeChatPayAccount(ProviderAccount):
    """A WeChat Pay merchant: ``mchid``, the APIv3 key (symmetric: needed to decrypt resources; never
    in repr), and the platform's verification keys as ``{serial: certificate or public key PEM}``
    (several during a platform key rotation). ``appid``, when set, must also match."""

    provider: ClassVar[str] = PROVIDER
    mchid: str = ""
    apiv3_key: str = field(default="", repr=False)
    platform_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    appid: str | None = None
    _keys: dict[str, PlatformKey] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ProviderAccount.__post_init__(self)
        if not self.mchid:
            raise ConfigurationError("wechatpay account needs mchid")
        if len(self.apiv3_key.encode("utf-8")) != APIV3_KEY_BYTES:
            raise ConfigurationError(f"wechatpay APIv3 key must be {APIV3_KEY_BYTES} bytes")
        if not 0 < len(self.platform_keys) <= PLATFORM_KEYS_MAX:
            raise ConfigurationError(f"wechatpay account needs 1..{PLATFORM_KEYS_MAX} platform keys")
        keys = {serial.upper(): load_platform_key(serial, pem) for serial, pem in self.platform_keys.items()}
        object.__setattr__(self, "_keys", keys)

    def platform_key(self, serial: str, at: datetime) -> PlatformKey:
        key = self._keys.get(serial.upper())
        if key is None:
            raise CallbackUnknownKeyError("Wechatpay-Serial names no configured platform key")
        if (key.not_before and at < key.not_before) or (key.not_after and at > key.not_after):
            raise CallbackUnknownKeyError("platform certificate not valid at arrival time")
        return key


def parse_rfc3339(text: str, *, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CallbackMalformedError(f"{what} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise CallbackMalformedError(f"{what} has no UTC offset")
    return value.astimezone(timezone.utc)


def decrypt_resource(apiv3_key: str, resource: Mapping[str, Any]) -> bytes:
    """AEAD_AES_256_GCM decryption of a notification's ``resource``; a failing tag (wrong APIv3 key,
    tampered ciphertext, nonce or associated_data) raises CallbackDecryptionError."""
    where = "wechatpay resource"
    if resource.get("algorithm") != ALGORITHM:
        raise CallbackMalformedError(f"{where}: algorithm must be {ALGORITHM}")
    nonce = require_str(resource, "nonce", chars_max=GCM_NONCE_BYTES, where=where).encode("utf-8")
    if len(nonce) != GCM_NONCE_BYTES:
        raise CallbackMalformedError(f"{where}: nonce must be {GCM_NONCE_BYTES} bytes")
    associated = resource.get("associated_data") or ""
    if not isinstance(associated, str):
        raise CallbackMalformedError(f"{where}: associated_data must be a string")
    sealed = b64decode_strict(require_str(resource, "ciphertext", chars_max=2 * 64 * 1024, where=where),
                              what="ciphertext", error=CallbackMalformedError)
    if len(sealed) <= GCM_TAG_BYTES:
        raise CallbackMalformedError(f"{where}: ciphertext shorter than its tag")
    try:
        return AESGCM(apiv3_key.encode("utf-8")).decrypt(nonce, sealed, associated.encode("utf-8"))
    except InvalidTag:
        raise CallbackDecryptionError("resource does not decrypt under the APIv3 key") from None


class WeChatPayAdapter(ProviderAdapter):
    provider = PROVIDER
    account_type = WeChatPayAccount
    media_types = frozenset({MEDIA_TYPE})

    def _verify_and_parse(self, account: WeChatPayAccount, request: InboundRequest) -> VerifiedNotification:
        self._verify_signature(account, request)
        envelope = load_json_object(request.body, where="wechatpay notification")
        event_type = require_str(envelope, "event_type", chars_max=STATUS_CHARS_MAX, where="wechatpay notification")
        if envelope.get("resource_type") != RESOURCE_TYPE:
            raise CallbackMalformedError(f"resource_type must be {RESOURCE_TYPE}")
        resource = require_object(envelope, "resource", where="wechatpay notification")
        family = event_type.split(".", 1)[0]
        if family not in ("TRANSACTION", "REFUND"):
            raise CallbackUnknownEventError(f"unknown event_type {event_type!r}")
        expected_type = "transaction" if family == "TRANSACTION" else "refund"
        if resource.get("original_type") != expected_type:
            raise CallbackMalformedError(f"{event_type} must carry a {expected_type} resource")
        plain = load_json_object(decrypt_resource(account.apiv3_key, resource), where="decrypted resource")
        if require_str(plain, "mchid", where="decrypted resource") != account.mchid:
            raise CallbackAccountMismatchError("notification is for another mchid")
        if account.appid is not None and plain.get("appid", account.appid) != account.appid:
            raise CallbackAccountMismatchError("notification is for another appid")
        created = parse_rfc3339(require_str(envelope, "create_time", where="wechatpay notification"),
                                what="create_time")
        common = {
            "notification_id": require_str(envelope, "id", where="wechatpay notification"),
            "body_sha256": hashlib.sha256(request.body).hexdigest(),
            "fields": {"event_type": event_type, "summary": envelope.get("summary"),
                       "create_time": envelope["create_time"], "resource": plain},
        }
        if family == "TRANSACTION":
            return self._transaction(account, plain, created, common)
        return self._refund(account, plain, created, common)

    @staticmethod
    def _verify_signature(account: WeChatPayAccount, request: InboundRequest) -> None:
        headers = request.headers
        timestamp = headers.get("wechatpay-timestamp")
        nonce = headers.get("wechatpay-nonce")
        signature = headers.get("wechatpay-signature")
        serial = headers.get("wechatpay-serial")
        if not (timestamp and nonce and signature and serial):
            raise CallbackSignatureInvalidError("Wechatpay-Timestamp/Nonce/Signature/Serial headers required")
        signature_type = headers.get("wechatpay-signature-type")
        if signature_type is not None and signature_type != SIGNATURE_TYPE:
            raise CallbackSignatureInvalidError(f"Wechatpay-Signature-Type must be {SIGNATURE_TYPE}")
        if not _TIMESTAMP_RE.match(timestamp) or not _NONCE_RE.match(nonce) or len(nonce) > NONCE_CHARS_MAX:
            raise CallbackSignatureInvalidError("Wechatpay-Timestamp or Wechatpay-Nonce malformed")
        key = account.platform_key(serial, request.received_at)
        message = f"{timestamp}\n{nonce}\n".encode("ascii") + request.body + b"\n"
        if not rsa_sha256_verifies(key.public_key, b64decode_strict(signature, what="Wechatpay-Signature"), message):
            raise CallbackSignatureInvalidError("wechatpay signature does not verify")
        signed_at = datetime.fromtimestamp(int(timestamp), timezone.utc)
        if abs(request.received_at - signed_at) > TIMESTAMP_SKEW_MAX:
            raise CallbackStaleError("Wechatpay-Timestamp more than 5 minutes from arrival")

    @staticmethod
    def _transaction(account: WeChatPayAccount, plain: dict[str, Any], created: datetime,
                     common: dict[str, Any]) -> VerifiedNotification:
        where = "wechatpay transaction"
        state = require_str(plain, "trade_state", chars_max=STATUS_CHARS_MAX, where=where)
        kind = TRADE_STATES.get(state)
        if kind is None:
            raise CallbackUnknownEventError(f"unknown trade_state {state!r}")
        amount_obj = require_object(plain, "amount", where=where)
        amount = Money(require_int(amount_obj, "total", where=where),
                       require_str(amount_obj, "currency", chars_max=3, where=where))
        txn_id = require_str(plain, "transaction_id", where=where) if kind is NotificationKind.PAYMENT else (
            optional_str(plain, "transaction_id", where=where) or require_str(plain, "out_trade_no", where=where))
        succeeded = kind is NotificationKind.PAYMENT
        success_time = optional_str(plain, "success_time", where=where)
        return VerifiedNotification(
            provider=PROVIDER, account=account.account, kind=kind, status=state, succeeded=succeeded,
            provider_txn_id=txn_id, merchant_reference=require_str(plain, "out_trade_no", where=where),
            amount=amount, occurred_at=parse_rfc3339(success_time, what="success_time") if success_time else created,
            evidence_hash=evidence_hash(PROVIDER, kind, txn_id, None, outcome_of(succeeded, state)), **common,
        )

    @staticmethod
    def _refund(account: WeChatPayAccount, plain: dict[str, Any], created: datetime,
                common: dict[str, Any]) -> VerifiedNotification:
        where = "wechatpay refund"
        status = require_str(plain, "refund_status", chars_max=STATUS_CHARS_MAX, where=where)
        if status not in REFUND_STATUSES:
            raise CallbackUnknownEventError(f"unknown refund_status {status!r}")
        amount_obj = require_object(plain, "amount", where=where)
        currency = optional_str(amount_obj, "currency", chars_max=3, where=where) or DEFAULT_REFUND_CURRENCY
        amount = Money(require_int(amount_obj, "refund", where=where), currency)
        txn_id = require_str(plain, "transaction_id", where=where)
        refund_id = require_str(plain, "refund_id", where=where)
        succeeded = status == "SUCCESS"
        success_time = optional_str(plain, "success_time", where=where)
        return VerifiedNotification(
            provider=PROVIDER, account=account.account, kind=NotificationKind.REFUND, status=status,
            succeeded=succeeded, provider_txn_id=txn_id,
            merchant_reference=require_str(plain, "out_trade_no", where=where), amount=amount,
            occurred_at=parse_rfc3339(success_time, what="success_time") if success_time else created,
            refund_reference=require_str(plain, "out_refund_no", where=where), provider_refund_id=refund_id,
            evidence_hash=evidence_hash(PROVIDER, NotificationKind.REFUND, txn_id, refund_id,
                                        outcome_of(succeeded, status)),
            **common,
        )

    def ack(self, notification: VerifiedNotification) -> ProviderResponse:
        return ProviderResponse(204, None, b"")

    def nack(self, error: BaseException) -> ProviderResponse:
        return json_response(error_status(error), {"code": "FAIL", "message": error_title(error)[:ERROR_MESSAGE_CHARS_MAX]})
