"""Stripe webhooks (and Stripe-style card/wallet processors): ``POST`` endpoint, JSON event.

Wire format, as Stripe documents it:

- header ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` (other schemes such as
  ``v0`` are ignored); each ``v1`` is HMAC-SHA256, keyed with the endpoint's whole ``whsec_...``
  secret, over ``"{t}.{raw body}"``. Several ``v1`` values appear while a secret is rolled; one
  matching is enough. The official libraries refuse a ``t`` more than 300 s old;
- the body is an ``event``: ``{"id": "evt_...", "object": "event", "type", "created",
  "data": {"object": {...}}}``; amounts are integers in the currency's smallest unit with a
  lowercase ISO code (JPY and the other zero-decimal currencies are whole units);
- any 2xx acknowledges; Stripe retries otherwise. A bad signature is answered 400.

Ledger rules: ``payment_intent.succeeded`` is a PAYMENT of ``amount_received``;
``payment_intent.canceled`` CLOSED; ``refund.created`` / ``refund.updated`` / ``refund.failed`` /
``charge.refund.updated`` a REFUND of that refund's ``amount`` (succeeded when its status is
``succeeded``); ``charge.refunded`` a REFUND of ``amount_refunded``, the charge's running total
(``amount_is_cumulative``). Every other event type verifies and comes back as OTHER (to be
acknowledged, as Stripe recommends for events an endpoint does not handle). Our order reference is
``metadata["reference"]``. Stripe writes ISK with two decimals (100 = 1 krona) although ISO 4217 has
none: such amounts must be whole kronur and are divided by 100.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from settlement.core.errors import (
    CallbackMalformedError,
    CallbackSignatureInvalidError,
    CallbackStaleError,
    ConfigurationError,
    InvalidAmountError,
)
from settlement.core.money import Money, exponent
from settlement.providers.base import (
    STATUS_CHARS_MAX,
    InboundRequest,
    NotificationKind,
    ProviderAccount,
    ProviderAdapter,
    ProviderResponse,
    VerifiedNotification,
    error_status,
    evidence_hash,
    is_signature_failure,
    json_response,
    load_json_object,
    optional_str,
    outcome_of,
    require_int,
    require_object,
    require_str,
)

PROVIDER = "stripe"
MEDIA_TYPE = "application/json"
SIGNATURE_HEADER = "stripe-signature"
SCHEME = "v1"
TOLERANCE = timedelta(seconds=300)
SECRET_PREFIX = "whsec_"
WEBHOOK_SECRETS_MAX = 4  # the current secret plus those still rolling off
SIGNATURES_MAX = 8
HEADER_ITEMS_MAX = 16
REFERENCE_METADATA_KEY = "reference"
# Currencies where Stripe's "smallest unit" differs from ISO 4217's: Stripe exponent.
STRIPE_EXPONENT_OVERRIDES = {"ISK": 2}

PAYMENT_EVENTS = frozenset({"payment_intent.succeeded"})
CLOSED_EVENTS = frozenset({"payment_intent.canceled"})
REFUND_OBJECT_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
CUMULATIVE_REFUND_EVENTS = frozenset({"charge.refunded"})

_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_CURRENCY_RE = re.compile(r"^[a-z]{3}$")


@dataclass(frozen=True, slots=True)
class StripeAccount(ProviderAccount):
    """A Stripe webhook endpoint: its signing secrets (``whsec_...``; more than one while rolling).
    Secrets are symmetric and never appear in repr."""

    provider: ClassVar[str] = PROVIDER
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        ProviderAccount.__post_init__(self)
        secrets = (self.webhook_secrets,) if isinstance(self.webhook_secrets, str) else tuple(self.webhook_secrets)
        if not 0 < len(secrets) <= WEBHOOK_SECRETS_MAX:
            raise ConfigurationError(f"stripe account needs 1..{WEBHOOK_SECRETS_MAX} webhook secrets")
        if any(not isinstance(s, str) or not s.startswith(SECRET_PREFIX) or len(s) <= len(SECRET_PREFIX)
               for s in secrets):
            raise ConfigurationError(f"stripe webhook secrets start with {SECRET_PREFIX!r}")
        object.__setattr__(self, "webhook_secrets", secrets)


def parse_signature_header(header: str) -> tuple[str, list[str]]:
    """``(t, [v1 signatures])``; refuses a header without exactly one ``t`` or without any ``v1``."""
    items = header.split(",")
    if len(items) > HEADER_ITEMS_MAX:
        raise CallbackSignatureInvalidError("Stripe-Signature has too many items")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in items:
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise CallbackSignatureInvalidError("Stripe-Signature item without '='")
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP_RE.match(timestamps[0]):
        raise CallbackSignatureInvalidError("Stripe-Signature needs exactly one numeric t")
    if not signatures or len(signatures) > SIGNATURES_MAX:
        raise CallbackSignatureInvalidError(f"Stripe-Signature needs 1..{SIGNATURES_MAX} {SCHEME} signatures")
    return timestamps[0], signatures


def compute_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def any_signature_matches(secrets: Iterable[str], timestamp: str, body: bytes, signatures: list[str]) -> bool:
    matched = False
    for secret in secrets:
        expected = compute_signature(secret, timestamp, body)
        for candidate in signatures:
            # No early exit: time does not depend on which secret or signature matched.
            matched |= hmac.compare_digest(expected, candidate.lower()) and bool(_HEX64_RE.match(candidate.lower()))
    return matched


def stripe_money(amount: int, currency: str) -> Money:
    if not _CURRENCY_RE.match(currency):
        raise CallbackMalformedError("stripe currency must be a lowercase ISO 4217 code")
    code = currency.upper()
    if code in STRIPE_EXPONENT_OVERRIDES:
        scale = 10 ** (STRIPE_EXPONENT_OVERRIDES[code] - exponent(code))
        if amount % scale:
            raise InvalidAmountError(f"stripe {code} amount {amount} is not a whole number of minor units")
        amount //= scale
    return Money(amount, code)


class StripeAdapter(ProviderAdapter):
    provider = PROVIDER
    account_type = StripeAccount
    media_types = frozenset({MEDIA_TYPE})

    def _verify_and_parse(self, account: StripeAccount, request: InboundRequest) -> VerifiedNotification:
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            raise CallbackSignatureInvalidError("Stripe-Signature header missing")
        timestamp, signatures = parse_signature_header(header)
        if not any_signature_matches(account.webhook_secrets, timestamp, request.body, signatures):
            raise CallbackSignatureInvalidError("no Stripe-Signature v1 matches the body")
        signed_at = datetime.fromtimestamp(int(timestamp), timezone.utc)
        if abs(request.received_at - signed_at) > TOLERANCE:
            raise CallbackStaleError("Stripe-Signature timestamp outside the 300 s tolerance")
        return self._interpret(account, request, load_json_object(request.body, where="stripe event"))

    def _interpret(self, account: StripeAccount, request: InboundRequest, event: dict[str, Any]) -> VerifiedNotification:
        where = "stripe event"
        if event.get("object") != "event":
            raise CallbackMalformedError("stripe body is not an event")
        event_type = require_str(event, "type", chars_max=STATUS_CHARS_MAX, where=where)
        obj = require_object(require_object(event, "data", where=where), "object", where=where)
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        reference = optional_str(metadata, REFERENCE_METADATA_KEY, where="stripe metadata")
        where = f"stripe {event_type}"
        object_id = require_str(obj, "id", where=where)
        refund_reference: str | None = None
        provider_refund_id: str | None = None
        cumulative = False

        if event_type in PAYMENT_EVENTS or event_type in CLOSED_EVENTS:
            paid = event_type in PAYMENT_EVENTS
            kind = NotificationKind.PAYMENT if paid else NotificationKind.CLOSED
            status = require_str(obj, "status", chars_max=STATUS_CHARS_MAX, where=where)
            value = require_int(obj, "amount_received" if paid and "amount_received" in obj else "amount", where=where)
            amount: Money | None = stripe_money(value, require_str(obj, "currency", where=where))
            succeeded = paid and status == "succeeded"
            txn_id, merchant_reference = object_id, reference
        elif event_type in REFUND_OBJECT_EVENTS:
            kind = NotificationKind.REFUND
            status = require_str(obj, "status", chars_max=STATUS_CHARS_MAX, where=where)
            amount = stripe_money(require_int(obj, "amount", where=where), require_str(obj, "currency", where=where))
            succeeded = status == "succeeded"
            txn_id = optional_str(obj, "payment_intent", where=where) or require_str(obj, "charge", where=where)
            merchant_reference, refund_reference, provider_refund_id = None, reference, object_id
        elif event_type in CUMULATIVE_REFUND_EVENTS:
            kind, cumulative, succeeded = NotificationKind.REFUND, True, True
            status = "refunded" if obj.get("refunded") is True else "partially_refunded"
            amount = stripe_money(require_int(obj, "amount_refunded", where=where),
                                  require_str(obj, "currency", where=where))
            txn_id = optional_str(obj, "payment_intent", where=where) or object_id
            merchant_reference = reference
        else:
            kind, status, succeeded, amount = NotificationKind.OTHER, event_type, False, None
            txn_id, merchant_reference = object_id, reference

        refund_key = provider_refund_id or (f"cumulative:{amount.value}" if cumulative and amount else None)
        return VerifiedNotification(
            provider=PROVIDER, account=account.account, kind=kind, status=status, succeeded=succeeded,
            provider_txn_id=txn_id, merchant_reference=merchant_reference, amount=amount,
            occurred_at=datetime.fromtimestamp(require_int(event, "created", where="stripe event"), timezone.utc),
            notification_id=require_str(event, "id", where="stripe event"),
            body_sha256=hashlib.sha256(request.body).hexdigest(),
            evidence_hash=evidence_hash(PROVIDER, kind, txn_id, refund_key, outcome_of(succeeded, status)),
            refund_reference=refund_reference, provider_refund_id=provider_refund_id,
            amount_is_cumulative=cumulative,
            fields={"type": event_type, "livemode": event.get("livemode"), "api_version": event.get("api_version"),
                    "object": obj},
        )

    def ack(self, notification: VerifiedNotification) -> ProviderResponse:
        return json_response(200, {"received": True})

    def nack(self, error: BaseException) -> ProviderResponse:
        status = 400 if is_signature_failure(error) else error_status(error)
        slug = getattr(error, "type_slug", "internal-error")
        return json_response(status, {"received": False, "error": slug})
