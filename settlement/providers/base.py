"""The payment-provider adapter interface and its value objects.

An adapter is pure: it takes the account's verification material (:class:`ProviderAccount`) and one
HTTP request exactly as received (:class:`InboundRequest`: raw body bytes, headers, arrival time),
and returns a :class:`VerifiedNotification` or raises a typed ``Callback*Error`` from
:mod:`settlement.core.errors`. It never does I/O, never touches the store and never logs.

How the web layer uses it (one route, ``POST /v1/callbacks/{provider}/{account}``)::

    adapter = adapter_for(provider)                  # settlement.providers
    request = InboundRequest.build(await req.body(), req.headers.items())
    try:
        notification = adapter.verify_and_parse(account, request)
    except Exception as error:                       # every refusal, in the provider's own words
        return adapter.nack(error)
    store.record(notification, raw_body=request.body)   # in one DB transaction, dedup on evidence
    return adapter.ack(notification)

Order of checks, the same for every provider: body size (before anything is read), content type,
signature over the raw bytes (and the signed timestamp's window), and only then the body is
interpreted. Alipay signs decoded form parameters rather than bytes, so its body is split into
parameters first, but nothing in them is interpreted before the signature verifies.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, ClassVar, NamedTuple

from anchors.keccak import keccak256

from settlement.core.errors import (
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    ConfigurationError,
    LedgerError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from settlement.core.money import Money

# Every provider's notification is a few KiB; anything larger is refused before it is parsed.
BODY_BYTES_MAX = 64 * 1024
# Bounds on the request's headers (count, and the size of any one value the adapters read).
HEADERS_COUNT_MAX = 128
HEADER_VALUE_BYTES_MAX = 8 * 1024
# Bounds on identifiers and free text copied from a notification into VerifiedNotification.
IDENTIFIER_CHARS_MAX = 128
STATUS_CHARS_MAX = 64

EVIDENCE_DOMAIN = "ledger-callback-evidence-v1"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class NotificationKind(str, Enum):
    PAYMENT = "payment"  # money received from the payer
    REFUND = "refund"  # money returned (or a refund's outcome: see VerifiedNotification.succeeded)
    CLOSED = "closed"  # the order closed without (further) payment
    OTHER = "other"  # authentic, but moves no money the ledger books (e.g. awaiting payment)


# --- request -------------------------------------------------------------------------------------


class Headers(Mapping[str, str]):
    """Immutable, case-insensitive HTTP headers. A header sent twice cannot be read: ambiguity in
    a signing header is refused rather than resolved."""

    __slots__ = ("_values",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        values: dict[str, list[str]] = {}
        for count, (name, value) in enumerate(pairs, start=1):
            if count > HEADERS_COUNT_MAX:
                raise CallbackMalformedError(f"more than {HEADERS_COUNT_MAX} headers")
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if not isinstance(name, str) or not isinstance(value, str):
                raise CallbackMalformedError("header names and values must be text")
            values.setdefault(name.strip().lower(), []).append(value.strip())
        self._values = values

    def __getitem__(self, name: str) -> str:
        found = self._values[name.lower()]
        if len(found) != 1:
            raise CallbackMalformedError(f"header {name!r} sent {len(found)} times")
        if len(found[0].encode("utf-8")) > HEADER_VALUE_BYTES_MAX:
            raise CallbackMalformedError(f"header {name!r} longer than {HEADER_VALUE_BYTES_MAX} bytes")
        return found[0]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __repr__(self) -> str:  # names only: values may carry signatures
        return f"Headers({sorted(self._values)})"


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """One callback request exactly as received. ``received_at`` is the clock reading used for every
    timestamp-window check, so tests and replays of stored requests control time explicitly."""

    body: bytes
    headers: Headers
    received_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.body, bytes):
            raise TypeError("InboundRequest.body must be the raw bytes")
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))
        if self.received_at.tzinfo is None:
            raise ValueError("InboundRequest.received_at must be timezone-aware")

    @classmethod
    def build(
        cls,
        body: bytes,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        received_at: datetime | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> "InboundRequest":
        return cls(body=body, headers=Headers(headers), received_at=received_at or clock())

    @property
    def media_type(self) -> str:
        """``"application/json"`` from ``"Application/JSON; charset=utf-8"``; ``""`` when absent."""
        raw = self.headers.get("content-type") or ""
        return raw.split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        raw = self.headers.get("content-type") or ""
        for param in raw.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"').lower() or None
        return None

    def __repr__(self) -> str:
        return f"InboundRequest(body=<{len(self.body)} bytes>, headers={self.headers!r}, received_at={self.received_at})"


# --- accounts ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    """One merchant account at one provider, with only what is needed to VERIFY its callbacks.

    Subclasses (:class:`~settlement.providers.alipay.AlipayAccount`, ...) add the provider's
    material. Symmetric secrets (WeChat's APIv3 key, Stripe's webhook secrets) are excluded from
    ``repr`` so an account can be logged safely.
    """

    provider: ClassVar[str] = ""
    account: str

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not 0 < len(self.account) <= IDENTIFIER_CHARS_MAX:
            raise ConfigurationError("account name must be 1..128 characters")


# --- result --------------------------------------------------------------------------------------




def evidence_hash(provider: str, kind: NotificationKind, provider_txn_id: str, refund_key: str | None,
                  outcome: str) -> str:
    """``0x`` + keccak256 (UTF-8) of
    ``"ledger-callback-evidence-v1|{provider}|{kind}|{provider_txn_id}[|{refund_key}]|{outcome}"``.

    It names the provider-side FACT a notification reports, so every retry and duplicate delivery
    of it hashes the same (the idempotency key for recording it), while a refund never collides
    with its payment and a later, different outcome (a refund going from ABNORMAL to SUCCESS) is a
    new fact. ``refund_key`` is present for refunds only; ``outcome`` is ``"succeeded"`` when money
    moved, else the provider's status. keccak256 so a contract can store it as ``bytes32``; ``|``
    cannot occur in the parts (checked).
    """
    parts = [EVIDENCE_DOMAIN, provider, kind.value, provider_txn_id]
    if kind is NotificationKind.REFUND:
        if not refund_key:
            raise CallbackMalformedError("a refund notification needs a refund identifier")
        parts.append(refund_key)
    parts.append(outcome)
    for part in parts[1:]:
        if "|" in part:
            raise CallbackMalformedError("identifier contains '|'")
    return "0x" + keccak256("|".join(parts).encode("utf-8")).hex()


def outcome_of(succeeded: bool, status: str) -> str:
    return "succeeded" if succeeded else status


@dataclass(frozen=True, slots=True)
class VerifiedNotification:
    """A notification whose signature verified, interpreted into ledger terms.

    - ``provider_txn_id``: the provider's id of the PAYMENT (Alipay ``trade_no``, WeChat
      ``transaction_id``, Stripe PaymentIntent ``pi_...`` or, without one, the charge ``ch_...``);
      the same on the payment and on its refunds.
    - ``merchant_reference``: our order reference (``out_trade_no``; Stripe ``metadata.reference``);
      None only when the provider's object does not carry it (Stripe refund objects).
    - ``refund_reference`` / ``provider_refund_id``: our and the provider's refund ids, refunds only.
    - ``amount``: for PAYMENT the amount paid, CLOSED the order amount, REFUND the refunded amount;
      ``amount_is_cumulative`` is True when the provider reports the running total refunded on the
      payment (Alipay ``refund_fee``, Stripe ``charge.refunded``) rather than this one refund.
    - ``succeeded``: True when the notification reports money actually moved (paid / refunded).
    - ``notification_id``: the provider's id of this delivery (``notify_id``, WeChat ``id``, Stripe
      ``evt_...``); ``body_sha256``: hex sha256 of the raw body, to link to the stored raw bytes.
    - ``evidence_hash``: see :func:`evidence_hash`; the idempotency key for recording the fact.
    """

    provider: str
    account: str
    kind: NotificationKind
    status: str
    succeeded: bool
    provider_txn_id: str
    merchant_reference: str | None
    amount: Money | None
    occurred_at: datetime
    notification_id: str
    body_sha256: str
    evidence_hash: str
    refund_reference: str | None = None
    provider_refund_id: str | None = None
    amount_is_cumulative: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Invariants every adapter must uphold; checks that `python -O` cannot strip.
        if self.occurred_at.tzinfo is None:
            raise LedgerError("occurred_at must be timezone-aware")
        if self.kind in (NotificationKind.PAYMENT, NotificationKind.REFUND) and self.amount is None:
            raise LedgerError(f"a {self.kind.value} notification needs an amount")
        if self.amount is not None and self.amount.value < 0:
            raise LedgerError("notification amounts are never negative")
        if self.kind is NotificationKind.REFUND and not (self.refund_reference or self.provider_refund_id
                                                         or self.amount_is_cumulative):
            raise LedgerError("a refund notification needs a refund identifier")

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider, "account": self.account, "kind": self.kind.value,
            "status": self.status, "succeeded": self.succeeded, "provider_txn_id": self.provider_txn_id,
            "merchant_reference": self.merchant_reference, "refund_reference": self.refund_reference,
            "provider_refund_id": self.provider_refund_id,
            "amount": self.amount.as_json() if self.amount else None,
            "amount_is_cumulative": self.amount_is_cumulative,
            "occurred_at": self.occurred_at.isoformat(), "notification_id": self.notification_id,
            "body_sha256": self.body_sha256, "evidence_hash": self.evidence_hash, "fields": dict(self.fields),
        }


class ProviderResponse(NamedTuple):
    """What to answer the provider: unpacks as ``status_code, content_type, body``."""

    status_code: int
    content_type: str | None
    body: bytes


# --- adapter -------------------------------------------------------------------------------------


class ProviderAdapter(ABC):
    """One provider's callback protocol. Stateless: one instance serves every account."""

    provider: ClassVar[str]
    account_type: ClassVar[type[ProviderAccount]]
    media_types: ClassVar[frozenset[str]]

    def verify_and_parse(self, account: ProviderAccount, request: InboundRequest) -> VerifiedNotification:
        """Verify ``request`` with ``account``'s material and interpret it.

        Raises PayloadTooLargeError, UnsupportedMediaTypeError, CallbackSignatureInvalidError (and
        its subclasses CallbackStaleError, CallbackUnknownKeyError, CallbackDecryptionError),
        CallbackMalformedError, CallbackUnknownEventError, CallbackAccountMismatchError, or a money
        error (UnsupportedCurrencyError, InvalidAmountError) for an amount the ledger cannot hold.
        """
        if not isinstance(account, self.account_type):
            raise ConfigurationError(f"{self.provider} adapter given a {type(account).__name__}")
        if len(request.body) > BODY_BYTES_MAX:
            raise PayloadTooLargeError(f"body of {len(request.body)} bytes exceeds {BODY_BYTES_MAX}")
        if request.media_type not in self.media_types:
            raise UnsupportedMediaTypeError(
                f"{self.provider} callbacks are {', '.join(sorted(self.media_types))}, "
                f"got {request.media_type or 'none'!r}")
        if not request.body:
            raise CallbackMalformedError("empty body")
        try:
            return self._verify_and_parse(account, request)
        except LedgerError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            # Structural surprises in an authentic-looking body are the sender's fault, reported
            # without echoing the body.
            raise CallbackMalformedError(f"{self.provider} notification malformed ({type(error).__name__})") from None

    @abstractmethod
    def _verify_and_parse(self, account: Any, request: InboundRequest) -> VerifiedNotification:
        """Provider-specific part; the envelope checks above have passed."""

    @abstractmethod
    def ack(self, notification: VerifiedNotification) -> ProviderResponse:
        """The provider's "received, stop retrying" answer."""

    @abstractmethod
    def nack(self, error: BaseException) -> ProviderResponse:
        """The provider's refusal for ``error``; carries only the error's static title, never the
        request, the detail or any key material."""


# --- helpers shared by the adapters --------------------------------------------------------------


def error_status(error: BaseException) -> int:
    status = getattr(error, "status", 500) if isinstance(error, LedgerError) else 500
    return status if 400 <= status <= 599 else 500


def error_title(error: BaseException) -> str:
    return error.title if isinstance(error, LedgerError) else LedgerError.title


def is_signature_failure(error: BaseException) -> bool:
    return isinstance(error, CallbackSignatureInvalidError)


def require_str(mapping: Mapping[str, Any], key: str, *, chars_max: int = IDENTIFIER_CHARS_MAX,
                where: str = "notification") -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value or len(value) > chars_max:
        raise CallbackMalformedError(f"{where}: {key!r} missing or not a string of 1..{chars_max} chars")
    return value


def optional_str(mapping: Mapping[str, Any], key: str, *, chars_max: int = IDENTIFIER_CHARS_MAX,
                 where: str = "notification") -> str | None:
    if mapping.get(key) in (None, ""):
        return None
    return require_str(mapping, key, chars_max=chars_max, where=where)


def require_int(mapping: Mapping[str, Any], key: str, *, where: str = "notification") -> int:
    value = mapping.get(key)
    if type(value) is not int or value < 0:  # bool and float refused
        raise CallbackMalformedError(f"{where}: {key!r} must be a non-negative integer")
    return value


def require_object(mapping: Mapping[str, Any], key: str, *, where: str = "notification") -> dict[str, Any]:
    value = mapping.get(key)
    if not isinstance(value, dict):
        raise CallbackMalformedError(f"{where}: {key!r} must be an object")
    return value


def load_json_object(raw: bytes, *, where: str) -> dict[str, Any]:
    """Strict JSON: UTF-8, an object at the top, no duplicate keys, no NaN/Infinity."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise CallbackMalformedError(f"{where}: duplicate key {key!r}")
            result[key] = value
        return result

    def no_constants(name: str) -> Any:
        raise CallbackMalformedError(f"{where}: {name} is not JSON")

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CallbackMalformedError(f"{where}: not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise CallbackMalformedError(f"{where}: a JSON object was expected")
    return value


def json_response(status: int, payload: Mapping[str, Any]) -> ProviderResponse:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return ProviderResponse(status, "application/json; charset=utf-8", body)


RSA_KEY_BITS_MIN = 2048


def load_rsa_public_key(material: str | bytes, *, what: str) -> Any:
    """An RSA public key from a PEM public key, a PEM X.509 certificate, or the bare base64 DER
    public key that Alipay's console shows. Refuses non-RSA keys and keys under 2048 bits."""
    import base64
    import binascii

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    raw = material.encode("ascii") if isinstance(material, str) else material
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            key = x509.load_pem_x509_certificate(raw).public_key()
        elif b"-----BEGIN" in raw:
            key = load_pem_public_key(raw)
        else:
            key = load_der_public_key(base64.b64decode(b"".join(raw.split()), validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as error:
        raise ConfigurationError(f"{what}: not an RSA public key or certificate ({type(error).__name__})") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < RSA_KEY_BITS_MIN:
        raise ConfigurationError(f"{what}: an RSA key of at least {RSA_KEY_BITS_MIN} bits is required")
    return key


def rsa_sha256_verifies(public_key: Any, signature: bytes, message: bytes) -> bool:
    """SHA256withRSA (PKCS#1 v1.5), the scheme of Alipay RSA2 and WeChat Pay APIv3."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def b64decode_strict(text: str, *, what: str,
                     error: type[LedgerError] = CallbackSignatureInvalidError) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not base64") from None
