"""Request and response bodies of provider accounts and recorded callbacks
(every string bounded). Money is ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from ledger_api.schemas.common import In, Money, Out

ProviderName = Literal["alipay", "wechatpay", "stripe"]
StatementKind = Literal["alipay", "wechatpay", "normalized", "camt053"]
ResolutionActionName = Literal["accepted", "ledger_adjusted", "provider_claimed", "written_off", "reopened"]


# -- provider accounts --------------------------------------------------------------------------------


class ProviderAccountCreate(In):
    provider: ProviderName
    account: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                         examples=["alipay-hk-main"])
    config: dict[str, Any] = Field(
        description="alipay: app_id, alipay_public_key_pem, seller_id?; wechatpay: mchid, apiv3_key, "
                    "platform_keys {serial: certificate or public key PEM} (or platform_serial + "
                    "platform_certificate_pem), appid?; stripe: webhook_secrets [..] (or webhook_secret). "
                    "Public keys only: a private key is refused.", max_length=16)
    owner: str = Field(default="operator", min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                       description="the member the account belongs to (its callbacks' exceptions and the "
                                   "payments received on it are that member's)", examples=["payments"])


class ProviderAccountUpdate(In):
    config: dict[str, Any] = Field(max_length=16)
    owner: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                              description="give the account to another member (unset: unchanged)")


class ProviderAccountPublic(Out):
    provider: str = Field(max_length=16)
    account: str = Field(max_length=128)
    owner: str = Field(max_length=64)
    status: str = Field(max_length=16)
    public_config: dict[str, Any]
    secrets: list[str] = Field(description="names of the secrets held (encrypted), never their values")
    version: int
    created_by: str = Field(max_length=64)
    created_at: datetime
    updated_at: datetime


class ProviderAccountsPublic(Out):
    """Every account the caller may see, in the one list envelope (one page: accounts are few)."""

    data: list[ProviderAccountPublic]
    next_cursor: str | None = Field(default=None, max_length=32,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")


# -- callbacks -----------------------------------------------------------------------------------------


class CallbackPublic(Out):
    id: int
    provider: str = Field(max_length=16)
    account: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    provider_status: str = Field(max_length=64)
    succeeded: bool
    provider_txn_id: str = Field(max_length=128)
    merchant_reference: str | None = Field(default=None, max_length=128)
    refund_reference: str | None = Field(default=None, max_length=128)
    provider_refund_id: str | None = Field(default=None, max_length=128)
    amount: Money | None = None
    amount_is_cumulative: bool
    evidence_hash: str = Field(max_length=66)
    body_sha256: str = Field(max_length=64)
    notification_id: str = Field(max_length=128)
    outcome: str = Field(max_length=16)
    outcome_reason: str | None = Field(default=None, max_length=64)
    outcome_detail: str | None = Field(default=None, max_length=500)
    settlement_id: str | None = Field(default=None, max_length=66)
    outbox_id: int | None = None
    refund_id: int | None = None
    delivery_count: int
    occurred_at: datetime
    received_at: datetime
    last_delivered_at: datetime
    processed_at: datetime | None = None


class CallbacksPublic(Out):
    """A page of recorded callbacks, in the one list envelope (docs/api.md)."""

    data: list[CallbackPublic]
    next_cursor: str | None = Field(default=None, max_length=32,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")
