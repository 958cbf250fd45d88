"""Request and response bodies of statements, reconciliation runs and exceptions
(every string bounded). Money is ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictInt

from ledger_api.schemas.common import In, Out

ProviderName = Literal["alipay", "wechatpay", "stripe"]
StatementKind = Literal["alipay", "wechatpay", "normalized", "camt053"]
ResolutionActionName = Literal["accepted", "ledger_adjusted", "provider_claimed", "written_off", "reopened"]


# -- reconciliation ------------------------------------------------------------------------------------


class ReconciliationStatementPublic(Out):
    id: str = Field(max_length=32)
    owner: str = Field(max_length=64, description="the member the statement belongs to (who uploaded it)")
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


class StatementsPublic(Out):
    """A page of statements, newest first, in the one list envelope (docs/api.md)."""

    data: list[ReconciliationStatementPublic]
    next_cursor: str | None = Field(default=None, max_length=100,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")


class RunCreate(In):
    statement_id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9a-f]{1,32}$")
    amount_tolerance_minor: StrictInt = Field(default=0, ge=0, le=10**12)
    date_window_days: StrictInt = Field(default=3, ge=0, le=366)


class RunPublic(Out):
    id: str = Field(max_length=32)
    owner: str = Field(max_length=64, description="the member the run belongs to; it reconciled only its own "
                                                  "ledger entries")
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


class RunsPublic(Out):
    """A page of runs, newest first, in the one list envelope (docs/api.md)."""

    data: list[RunPublic]
    next_cursor: str | None = Field(default=None, max_length=100,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")


class ResolutionCreate(In):
    action: ResolutionActionName
    note: str = Field(min_length=1, max_length=4000)
    adjustment_entry_id: str | None = Field(default=None, max_length=80)


class ResolutionPublic(Out):
    action: str = Field(max_length=32)
    note: str = Field(max_length=4000)
    resolved_by: str = Field(max_length=64)
    resolved_at: datetime
    adjustment_entry_id: str | None = Field(default=None, max_length=80)


class ExceptionPublic(Out):
    model_config = ConfigDict(extra="allow")

    exception_id: str = Field(max_length=40)
    origin: str = Field(max_length=16)
    bucket: str = Field(max_length=32)
    reason: str = Field(max_length=64)
    state: str = Field(max_length=16)
    history: list[ResolutionPublic] = Field(default_factory=list)


class ExceptionsPublic(Out):
    """A page of the exceptions queue, in the one list envelope (docs/api.md)."""

    data: list[dict[str, Any]]
    next_cursor: str | None = Field(default=None, max_length=32,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")
