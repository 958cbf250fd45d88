"""Payment-provider callback adapters: verify a provider's signed notification, interpret it.

``adapter_for(name)`` returns the stateless adapter; ``account_from_config(name, account, config)``
builds the account's verification material from configuration (e.g. a ``demo.json`` entry), using
only the public halves. See :mod:`settlement.providers.base` for the interface and the order of
checks, and :mod:`settlement.providers.testing` for a simulator that plays the providers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from settlement.core.errors import ConfigurationError, UnknownProviderError
from settlement.providers.alipay import AlipayAccount, AlipayAdapter
from settlement.providers.base import (
    BODY_BYTES_MAX,
    Headers,
    InboundRequest,
    NotificationKind,
    ProviderAccount,
    ProviderAdapter,
    ProviderResponse,
    VerifiedNotification,
    evidence_hash,
)
from settlement.providers.stripe import StripeAccount, StripeAdapter
from settlement.providers.wechatpay import WeChatPayAccount, WeChatPayAdapter

PROVIDERS = ("alipay", "wechatpay", "stripe")

_ADAPTERS: dict[str, ProviderAdapter] = {
    "alipay": AlipayAdapter(),
    "wechatpay": WeChatPayAdapter(),
    "stripe": StripeAdapter(),
}


def adapter_for(provider: str) -> ProviderAdapter:
    """The adapter for ``provider`` (one of :data:`PROVIDERS`); UnknownProviderError (404) else."""
    try:
        return _ADAPTERS[provider]
    except (KeyError, TypeError):
        raise UnknownProviderError(f"unknown provider {str(provider)[:32]!r}") from None


def account_from_config(provider: str, account: str, config: Mapping[str, Any]) -> ProviderAccount:
    """Build verification material from a config mapping shaped like ``demo.json``'s
    ``providers`` entries. Reads only public material (and the symmetric secrets the protocol needs):
    ``alipay``: ``app_id``, ``alipay_public_key_pem`` or ``platform_public_key_pem``, optional
    ``seller_id``; ``wechatpay``: ``mchid``, ``apiv3_key``, and ``platform_keys`` ``{serial: pem}``
    or ``platform_serial`` + ``platform_certificate_pem``, optional ``appid``; ``stripe``:
    ``webhook_secrets`` (list) or ``webhook_secret``."""
    adapter_for(provider)
    try:
        if provider == "alipay":
            return AlipayAccount(
                account=account, app_id=config["app_id"],
                alipay_public_key_pem=config.get("alipay_public_key_pem") or config["platform_public_key_pem"],
                seller_id=config.get("seller_id"))
        if provider == "wechatpay":
            keys = config.get("platform_keys") or {config["platform_serial"]: config["platform_certificate_pem"]}
            return WeChatPayAccount(account=account, mchid=config["mchid"], apiv3_key=config["apiv3_key"],
                                    platform_keys=dict(keys), appid=config.get("appid"))
        secrets = config.get("webhook_secrets") or [config["webhook_secret"]]
        return StripeAccount(account=account, webhook_secrets=tuple(secrets))
    except KeyError as missing:
        raise ConfigurationError(f"{provider} account {account!r}: missing {missing}") from None


__all__ = [
    "BODY_BYTES_MAX", "PROVIDERS", "AlipayAccount", "AlipayAdapter", "Headers", "InboundRequest",
    "NotificationKind", "ProviderAccount", "ProviderAdapter", "ProviderResponse", "StripeAccount",
    "StripeAdapter", "UnknownProviderError", "VerifiedNotification", "WeChatPayAccount", "WeChatPayAdapter",
    "account_from_config", "adapter_for", "evidence_hash",
]
