"""Request and response bodies of provider accounts, recorded callbacks and reconciliation
(every string bounded). Money is ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

ProviderName = Literal["alipay", "wechatpay", "stripe"]
StatementKind = Literal["alipay", "wechatpay", "normalized", "camt053"]
ResolutionActionName = Literal["accepted", "ledger_adjusted", "provider_claimed", "written_off", "reopened"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoneyOut(_Out):
    value: int
    currency: str = Field(max_length=3)


# -- provider accounts --------------------------------------------------------------------------------


class ProviderAccountCreate(_In):
    provider: ProviderName
    account: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                         examples=["alipay-hk-main"])
    config: dict[str, Any] = Field(
        description="alipay: app_id, alipay_public_key_pem, seller_id?; wechatpay: mchid, apiv3_key, "
                    "platform_keys {serial: certificate or public key PEM} (or platform_serial + "
                    "platform_certificate_pem), appid?; stripe: webhook_secrets [..] (or webhook_secret). "
                    "Public keys only: a private key is refused.", max_length=16)


class ProviderAccountUpdate(_In):
    config: dict[str, Any] = Field(max_length=16)


class ProviderAccountPublic(_Out):
    provider: str = Field(max_length=16)
    account: str = Field(max_length=128)
    status: str = Field(max_length=16)
    public_config: dict[str, Any]
    secrets: list[str] = Field(description="names of the secrets held (encrypted), never their values")
    version: int
    created_by: str = Field(max_length=64)
    created_at: datetime
    updated_at: datetime


class ProviderAccountsPublic(_Out):
    items: list[ProviderAccountPublic]


# -- callbacks -----------------------------------------------------------------------------------------


class CallbackPublic(_Out):
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
    amount: MoneyOut | None = None
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


class CallbacksPublic(_Out):
    items: list[CallbackPublic]
    next_cursor: int | None = None


# -- reconciliation ------------------------------------------------------------------------------------


class StatementPublic(_Out):
    id: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    format: str = Field(max_length=32)
    account: str | None = Field(default=None, max_length=128)
    filename: str = Field(max_length=255)
    size_bytes: int
    sha256: str = Field(max_length=64)
    encoding: str | None = Field(default=None, max_length=32)
    line_count: int
    row_error_count: int
    row_errors: list[dict[str, Any]] = Field(default_factory=list, description="the first per-row errors")
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime


class StatementsPublic(_Out):
    items: list[StatementPublic]


class RunCreate(_In):
    statement_id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9a-f]{1,32}$")
    amount_tolerance_minor: StrictInt = Field(default=0, ge=0, le=10**12)
    date_window_days: StrictInt = Field(default=3, ge=0, le=366)


class RunPublic(_Out):
    id: str = Field(max_length=32)
    statement_id: str = Field(max_length=32)
    status: str = Field(max_length=16)
    config: dict[str, Any]
    summary: dict[str, Any]
    ledger_entries: int
    exception_count: int
    row_error_count: int
    started_by: str = Field(max_length=64)
    started_at: datetime
    finished_at: datetime | None = None


class RunsPublic(_Out):
    items: list[RunPublic]


class ResolutionCreate(_In):
    action: ResolutionActionName
    note: str = Field(min_length=1, max_length=4000)
    adjustment_entry_id: str | None = Field(default=None, max_length=80)


class ResolutionPublic(_Out):
    action: str = Field(max_length=32)
    note: str = Field(max_length=4000)
    resolved_by: str = Field(max_length=64)
    resolved_at: datetime
    adjustment_entry_id: str | None = Field(default=None, max_length=80)


class ExceptionPublic(_Out):
    model_config = ConfigDict(extra="allow")

    exception_id: str = Field(max_length=40)
    origin: str = Field(max_length=16)
    bucket: str = Field(max_length=32)
    reason: str = Field(max_length=64)
    state: str = Field(max_length=16)
    history: list[ResolutionPublic] = Field(default_factory=list)


class ExceptionsPublic(_Out):
    items: list[dict[str, Any]]
    next_cursor: int | None = None
