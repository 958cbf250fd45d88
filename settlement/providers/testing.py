"""A payment-provider simulator: real key material and correctly signed notifications.

For tests, the demo consortium and ``ledger simulate-payment``. It plays the PROVIDER side, so it
holds the providers' private keys: nothing here belongs in a production code path (the service
verifies with :func:`settlement.providers.account_from_config`, which reads public halves only).

Each simulator builds the notification exactly as the provider sends it: raw body bytes plus the
headers, ready to ``POST`` over HTTP (``SimulatedNotification.body`` / ``.headers``) or to hand to
an adapter directly (``.as_request()``).
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from settlement.core.errors import ConfigurationError
from settlement.core.money import Money, exponent
from settlement.providers import alipay as _alipay
from settlement.providers import stripe as _stripe
from settlement.providers import wechatpay as _wechatpay
from settlement.providers.base import InboundRequest, utc_now

RSA_KEY_BITS = 2048
PRIVATE_KEYS_CACHED_MAX = 16
_ALNUM = string.ascii_letters + string.digits


# --- key material --------------------------------------------------------------------------------


def rsa_keypair_pem(bits: int = RSA_KEY_BITS) -> tuple[str, str]:
    """A fresh RSA keypair: (PKCS#8 private key PEM, SubjectPublicKeyInfo public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return private_pem, public_pem


@dataclass(frozen=True)
class PlatformCertificate:
    """A WeChat Pay-style platform certificate: ``serial`` is what ``Wechatpay-Serial`` carries."""

    serial: str
    private_key_pem: str = field(repr=False)
    certificate_pem: str


def wechatpay_platform_certificate(private_key_pem: str | None = None, *, not_before: datetime | None = None,
                                   valid_days: int = 5 * 365) -> PlatformCertificate:
    """A self-signed X.509 certificate over a (fresh or given) RSA key, with a random serial
    (uppercase hex, as WeChat Pay writes it)."""
    if private_key_pem is None:
        private_key_pem, _ = rsa_keypair_pem()
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("platform key must be RSA")
    start = (not_before or utc_now()) - timedelta(minutes=1)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated WeChat Pay platform"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (simulated)"),
    ])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=valid_days)).sign(key, hashes.SHA256()))
    return PlatformCertificate(format(cert.serial_number, "X"), private_key_pem,
                               cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def wechatpay_apiv3_key() -> str:
    """A random 32-character APIv3 key (WeChat's are 32 ASCII characters = 32 bytes)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(_wechatpay.APIV3_KEY_BYTES))


def stripe_webhook_secret() -> str:
    return _stripe.SECRET_PREFIX + "".join(secrets.choice(_ALNUM) for _ in range(32))


def _digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


@functools.lru_cache(maxsize=PRIVATE_KEYS_CACHED_MAX)
def _private_key(private_key_pem: str) -> Any:
    # Loading a PEM private key checks the key (about 60 ms for RSA 2048): once per key, not per
    # notification, so a test or a bench can sign thousands.
    return serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)


def _rsa_sha256_sign(private_key_pem: str, message: bytes) -> str:
    key = _private_key(private_key_pem)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")  # type: ignore[union-attr]


# --- notifications -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedNotification:
    body: bytes
    headers: dict[str, str]
    signed_at: datetime

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]

    def as_request(self, received_at: datetime | None = None) -> InboundRequest:
        """The request as the service would receive it; by default arriving 2 s after signing."""
        return InboundRequest.build(self.body, self.headers,
                                    received_at=received_at or self.signed_at + timedelta(seconds=2))

    def with_body(self, body: bytes) -> "SimulatedNotification":
        return SimulatedNotification(body, dict(self.headers), self.signed_at)

    def with_headers(self, **changes: str | None) -> "SimulatedNotification":
        """Copy with headers replaced (``Wechatpay_Serial="X"``: underscores become dashes) or
        removed (None)."""
        headers = dict(self.headers)
        for name, value in changes.items():
            name = name.replace("_", "-")
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            if value is not None:
                headers[name] = value
        return SimulatedNotification(self.body, headers, self.signed_at)


class AlipaySimulator:
    """Plays Alipay: form-encoded, RSA2-signed asynchronous notifications for one app."""

    def __init__(self, app_id: str, private_key_pem: str, *, seller_id: str = "2088102119685838",
                 charset: str = "utf-8") -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.charset = charset
        self._private_key_pem = private_key_pem

    def notify(self, params: Mapping[str, str], *, at: datetime | None = None) -> SimulatedNotification:
        """Sign ``params`` (adding app_id, charset, version, notify_* defaults) and form-encode them."""
        at = at or utc_now()
        full = {"notify_time": at.astimezone(_alipay.BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(17),
                "app_id": self.app_id, "charset": self.charset, "version": "1.0",
                "seller_id": self.seller_id, **params}
        full = {k: v for k, v in full.items() if v is not None}
        content = _alipay.signing_content(full).encode(self.charset)
        full["sign_type"] = _alipay.SIGN_TYPE
        full["sign"] = _rsa_sha256_sign(self._private_key_pem, content)
        body = urlencode(full, encoding=self.charset).encode("ascii")
        headers = {"Content-Type": f"{_alipay.MEDIA_TYPE}; charset={self.charset}"}
        return SimulatedNotification(body, headers, at)

    def payment(self, out_trade_no: str, amount: Money, *, trade_no: str | None = None,
                trade_status: str = "TRADE_SUCCESS", at: datetime | None = None,
                extra: Mapping[str, str] | None = None) -> SimulatedNotification:
        at = at or utc_now()
        stamp = at.astimezone(_alipay.BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        params: dict[str, str] = {
            "trade_no": trade_no or ("2024" + _digits(24)), "out_trade_no": out_trade_no,
            "trade_status": trade_status, "total_amount": amount.to_decimal_str(),
            "receipt_amount": amount.to_decimal_str(), "buyer_pay_amount": amount.to_decimal_str(),
            "subject": f"Order {out_trade_no}", "buyer_id": "2088" + _digits(12),
            "gmt_create": stamp, "gmt_payment": stamp, "refund_fee": "0.00",
        }
        if amount.currency != _alipay.DEFAULT_CURRENCY:
            params["trans_currency"] = amount.currency
        return self.notify({**params, **(extra or {})}, at=at)

    def refund(self, out_trade_no: str, trade_no: str, total: Money, refunded_total: Money, out_biz_no: str,
               *, at: datetime | None = None) -> SimulatedNotification:
        """A refund notification; ``refunded_total`` is the running total, as Alipay reports it.
        A full refund arrives as TRADE_CLOSED, a partial one as TRADE_SUCCESS."""
        at = at or utc_now()
        stamp = at.astimezone(_alipay.BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        status = "TRADE_CLOSED" if refunded_total.value >= total.value else "TRADE_SUCCESS"
        params = {"trade_no": trade_no, "out_trade_no": out_trade_no, "trade_status": status,
                  "total_amount": total.to_decimal_str(), "refund_fee": refunded_total.to_decimal_str(),
                  "out_biz_no": out_biz_no, "gmt_refund": stamp + ".123"}
        if total.currency != _alipay.DEFAULT_CURRENCY:
            params["trans_currency"] = total.currency
        return self.notify(params, at=at)


class WeChatPaySimulator:
    """Plays WeChat Pay API v3: JSON envelope, AEAD_AES_256_GCM resource, SHA256withRSA headers."""

    def __init__(self, mchid: str, apiv3_key: str, platform: PlatformCertificate, *,
                 appid: str = "wxd678efh567hg6787") -> None:
        self.mchid = mchid
        self.appid = appid
        self.platform = platform
        self._apiv3_key = apiv3_key

    def encrypt(self, resource: Mapping[str, Any], original_type: str, *,
                associated_data: str | None = None) -> dict[str, str]:
        nonce = "".join(secrets.choice(_ALNUM) for _ in range(_wechatpay.GCM_NONCE_BYTES))
        associated = original_type if associated_data is None else associated_data
        plain = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        sealed = AESGCM(self._apiv3_key.encode("utf-8")).encrypt(nonce.encode("ascii"), plain,
                                                                associated.encode("utf-8"))
        return {"original_type": original_type, "algorithm": _wechatpay.ALGORITHM,
                "ciphertext": base64.b64encode(sealed).decode("ascii"), "associated_data": associated,
                "nonce": nonce}

    def sign(self, body: bytes, *, at: datetime | None = None, nonce: str | None = None) -> SimulatedNotification:
        at = at or utc_now()
        timestamp = str(int(at.timestamp()))
        nonce = nonce or "".join(secrets.choice(_ALNUM) for _ in range(32))
        message = f"{timestamp}\n{nonce}\n".encode("ascii") + body + b"\n"
        headers = {
            "Content-Type": _wechatpay.MEDIA_TYPE,
            "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": _rsa_sha256_sign(self.platform.private_key_pem, message),
            "Wechatpay-Serial": self.platform.serial,
            "Wechatpay-Signature-Type": _wechatpay.SIGNATURE_TYPE,
        }
        return SimulatedNotification(body, headers, at)

    def notify(self, event_type: str, original_type: str, resource: Mapping[str, Any], *, summary: str,
               at: datetime | None = None) -> SimulatedNotification:
        at = at or utc_now()
        envelope = {
            "id": "EV-" + _digits(19),
            "create_time": at.astimezone(_alipay.BEIJING).isoformat(timespec="seconds"),
            "resource_type": _wechatpay.RESOURCE_TYPE, "event_type": event_type, "summary": summary,
            "resource": self.encrypt(resource, original_type),
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self.sign(body, at=at)

    def payment(self, out_trade_no: str, amount: Money, *, transaction_id: str | None = None,
                trade_state: str = "SUCCESS", at: datetime | None = None) -> SimulatedNotification:
        at = at or utc_now()
        resource = {
            "mchid": self.mchid, "appid": self.appid, "out_trade_no": out_trade_no,
            "transaction_id": transaction_id or ("4200" + _digits(24)), "trade_type": "JSAPI",
            "trade_state": trade_state, "trade_state_desc": "支付成功", "bank_type": "CMC",
            "attach": "", "success_time": at.astimezone(_alipay.BEIJING).isoformat(timespec="seconds"),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": amount.value, "payer_total": amount.value, "currency": amount.currency,
                       "payer_currency": amount.currency},
        }
        return self.notify("TRANSACTION.SUCCESS", "transaction", resource, summary="支付成功", at=at)

    def refund(self, out_trade_no: str, transaction_id: str, total: Money, refund: Money, out_refund_no: str,
               *, refund_id: str | None = None, refund_status: str = "SUCCESS",
               at: datetime | None = None) -> SimulatedNotification:
        at = at or utc_now()
        resource = {
            "mchid": self.mchid, "out_trade_no": out_trade_no, "transaction_id": transaction_id,
            "out_refund_no": out_refund_no, "refund_id": refund_id or ("5030" + _digits(25)),
            "refund_status": refund_status, "user_received_account": "招商银行信用卡0403",
            "amount": {"total": total.value, "refund": refund.value, "payer_total": total.value,
                       "payer_refund": refund.value},
        }
        if refund_status == "SUCCESS":
            resource["success_time"] = at.astimezone(_alipay.BEIJING).isoformat(timespec="seconds")
        if refund.currency != _wechatpay.DEFAULT_REFUND_CURRENCY:
            resource["amount"]["currency"] = refund.currency  # type: ignore[index]
        event = {"SUCCESS": "REFUND.SUCCESS", "CLOSED": "REFUND.CLOSED"}.get(refund_status, "REFUND.ABNORMAL")
        return self.notify(event, "refund", resource, summary="退款成功", at=at)


def stripe_amount(amount: Money) -> int:
    """Money -> Stripe's integer amount (ISK is written with two decimals by Stripe)."""
    override = _stripe.STRIPE_EXPONENT_OVERRIDES.get(amount.currency)
    return amount.value * 10 ** (override - exponent(amount.currency)) if override is not None else amount.value


class StripeSimulator:
    """Plays Stripe: JSON events signed ``t=...,v1=...`` with one or more ``whsec_`` secrets (several
    while a secret is rolled, as Stripe does)."""

    def __init__(self, *webhook_secrets: str) -> None:
        if not webhook_secrets:
            raise ConfigurationError("StripeSimulator needs at least one webhook secret")
        self._secrets = webhook_secrets

    def sign(self, body: bytes, *, at: datetime | None = None) -> SimulatedNotification:
        at = at or utc_now()
        timestamp = str(int(at.timestamp()))
        parts = [f"t={timestamp}"] + [f"v1={_stripe.compute_signature(s, timestamp, body)}" for s in self._secrets]
        headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": ",".join(parts)}
        return SimulatedNotification(body, headers, at)

    def event(self, event_type: str, obj: Mapping[str, Any], *, at: datetime | None = None) -> SimulatedNotification:
        at = at or utc_now()
        event = {
            "id": "evt_" + secrets.token_hex(12), "object": "event", "api_version": "2024-06-20",
            "created": int(at.timestamp()), "data": {"object": dict(obj)}, "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type,
        }
        return self.sign(json.dumps(event, indent=2).encode("utf-8"), at=at)

    def payment_intent_succeeded(self, reference: str, amount: Money, *, payment_intent_id: str | None = None,
                                 at: datetime | None = None) -> SimulatedNotification:
        value = stripe_amount(amount)
        obj = {"id": payment_intent_id or "pi_" + secrets.token_hex(12), "object": "payment_intent",
               "amount": value, "amount_received": value, "currency": amount.currency.lower(),
               "status": "succeeded", "metadata": {_stripe.REFERENCE_METADATA_KEY: reference},
               "latest_charge": "ch_" + secrets.token_hex(12)}
        return self.event("payment_intent.succeeded", obj, at=at)

    def refund_created(self, payment_intent_id: str, amount: Money, *, refund_id: str | None = None,
                       reference: str | None = None, status: str = "succeeded",
                       at: datetime | None = None) -> SimulatedNotification:
        obj = {"id": refund_id or "re_" + secrets.token_hex(12), "object": "refund",
               "amount": stripe_amount(amount), "currency": amount.currency.lower(),
               "payment_intent": payment_intent_id, "charge": "ch_" + secrets.token_hex(12), "status": status,
               "metadata": {_stripe.REFERENCE_METADATA_KEY: reference} if reference else {}}
        return self.event("refund.created", obj, at=at)

    def charge_refunded(self, payment_intent_id: str, total: Money, refunded_total: Money, *,
                        reference: str | None = None, at: datetime | None = None) -> SimulatedNotification:
        obj = {"id": "ch_" + secrets.token_hex(12), "object": "charge", "amount": stripe_amount(total),
               "amount_refunded": stripe_amount(refunded_total), "currency": total.currency.lower(),
               "payment_intent": payment_intent_id, "refunded": refunded_total.value >= total.value,
               "metadata": {_stripe.REFERENCE_METADATA_KEY: reference} if reference else {}}
        return self.event("charge.refunded", obj, at=at)


# --- demo credentials ----------------------------------------------------------------------------


def demo_credentials(provider: str, account: str) -> dict[str, str]:
    """Fresh credentials shaped like a ``demo.json`` ``providers`` entry: the public halves the
    service needs plus the ``platform_*`` private halves a test client needs to play the provider."""
    if provider == "alipay":
        private_pem, public_pem = rsa_keypair_pem()
        return {"account": account, "app_id": "2021" + _digits(12), "platform_private_key_pem": private_pem,
                "platform_public_key_pem": public_pem}
    if provider == "wechatpay":
        platform = wechatpay_platform_certificate()
        return {"account": account, "mchid": "19" + _digits(8), "appid": "wx" + secrets.token_hex(8),
                "apiv3_key": wechatpay_apiv3_key(), "platform_serial": platform.serial,
                "platform_private_key_pem": platform.private_key_pem,
                "platform_certificate_pem": platform.certificate_pem}
    if provider == "stripe":
        return {"account": account, "webhook_secret": stripe_webhook_secret()}
    raise ConfigurationError(f"unknown provider {provider!r}")


Simulator = AlipaySimulator | WeChatPaySimulator | StripeSimulator


def simulator_from_credentials(provider: str, credentials: Mapping[str, str]) -> Simulator:
    """The simulator that signs as the provider of ``credentials`` (a ``demo.json`` entry)."""
    if provider == "alipay":
        return AlipaySimulator(credentials["app_id"], credentials["platform_private_key_pem"])
    if provider == "wechatpay":
        platform = PlatformCertificate(credentials["platform_serial"], credentials["platform_private_key_pem"],
                                       credentials["platform_certificate_pem"])
        return WeChatPaySimulator(credentials["mchid"], credentials["apiv3_key"], platform,
                                  appid=credentials.get("appid", "wxd678efh567hg6787"))
    if provider == "stripe":
        return StripeSimulator(credentials["webhook_secret"])
    raise ConfigurationError(f"unknown provider {provider!r}")


def simulated_payment(provider: str, credentials: Mapping[str, str], reference: str, amount: Money, *,
                      at: datetime | None = None, provider_txn_id: str | None = None) -> SimulatedNotification:
    """A correctly signed "paid" notification for order ``reference`` (what ``ledger
    simulate-payment`` posts to ``/v1/callbacks/{provider}/{account}``), with the provider's
    transaction id ``provider_txn_id`` (Alipay ``trade_no``, WeChat Pay ``transaction_id``,
    Stripe payment intent id) or a random one."""
    simulator = simulator_from_credentials(provider, credentials)
    if isinstance(simulator, AlipaySimulator):
        return simulator.payment(reference, amount, at=at, trade_no=provider_txn_id)
    if isinstance(simulator, WeChatPaySimulator):
        return simulator.payment(reference, amount, at=at, transaction_id=provider_txn_id)
    return simulator.payment_intent_succeeded(reference, amount, at=at, payment_intent_id=provider_txn_id)


__all__ = [
    "AlipaySimulator", "PlatformCertificate", "SimulatedNotification", "StripeSimulator", "WeChatPaySimulator",
    "demo_credentials", "rsa_keypair_pem", "simulated_payment", "simulator_from_credentials", "stripe_amount",
    "stripe_webhook_secret", "wechatpay_apiv3_key", "wechatpay_platform_certificate",
]
