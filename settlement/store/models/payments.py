"""Tables of payment-provider callbacks and reconciliation: provider accounts (secrets encrypted
at rest), recorded notifications, statement imports, runs, and the exceptions queue with its
append-only resolutions.

Amounts are :class:`~settlement.store.models.settlements.MinorAmount` (exact on both databases).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.store.models import Base, utcnow
from settlement.store.models.settlements import MinorAmount

_SEQ = BigInteger().with_variant(Integer, "sqlite")


class ProviderAccountRow(Base):
    """One merchant account at one payment provider. ``public_config`` holds only public material
    (app id, platform public keys or certificates, merchant id); ``encrypted_secrets`` the
    symmetric secrets (WeChat APIv3 key, Stripe webhook secrets) as a KeyVault blob whose
    associated data is ``provider:{provider}:{account}``, so a blob cannot be moved to another row."""

    __tablename__ = "provider_accounts"
    __table_args__ = (UniqueConstraint("provider", "account", name="uq_provider_accounts_name"),
                      Index("ix_provider_accounts_owner", "owner", "provider", "account"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(128))
    # The member the account belongs to: its callbacks' exceptions are this member's, and its
    # reconciliation runs see the payments received on it (docs/api.md, Tenancy).
    owner: Mapped[str] = mapped_column(String(64), default="operator", server_default="operator")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    public_config: Mapped[dict] = mapped_column(JSON)
    encrypted_secrets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64), default="operator")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ProviderCallback(Base):
    """One verified provider FACT (a payment, a refund, a closure), recorded with the raw body of
    its first delivery, the parsed fields and what the ledger did with it.

    Unique per (provider, account, evidence_hash): every retry or concurrent duplicate of the same
    fact collides here, which is what makes its effect happen once. ``outcome``: ``applied`` (the
    settlement transition was enqueued), ``deferred`` (waiting for the settlement's previous chain
    operation or for the payment a refund needs), ``exception`` (kept for a person: unknown
    reference, amount or currency mismatch, a state that does not admit it) or ``noted`` (authentic,
    moves no money)."""

    __tablename__ = "provider_callbacks"
    __table_args__ = (
        UniqueConstraint("provider", "account", "evidence_hash", name="uq_provider_callbacks_evidence"),
        Index("ix_provider_callbacks_outcome", "outcome", "settlement_id"),
        Index("ix_provider_callbacks_settlement", "settlement_id", "id"),
        Index("ix_provider_callbacks_txn", "provider", "provider_txn_id"),
    )

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(128))
    evidence_hash: Mapped[str] = mapped_column(String(66))
    kind: Mapped[str] = mapped_column(String(16))
    provider_status: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    provider_txn_id: Mapped[str] = mapped_column(String(128))
    merchant_reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
    refund_reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
    provider_refund_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    amount_minor: Mapped[int | None] = mapped_column(MinorAmount(), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    amount_is_cumulative: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notification_id: Mapped[str] = mapped_column(String(128))
    body_sha256: Mapped[str] = mapped_column(String(64))
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(200), default="")
    parsed: Mapped[dict] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome_detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    settlement_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refund_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    applied_amount_minor: Mapped[int | None] = mapped_column(MinorAmount(), nullable=True)
    delivery_count: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StatementImport(Base):
    """An imported provider or bank statement. The file itself is kept content-addressed under
    ``$LEDGER_HOME/statements/<sha256>``; ``sha256`` lets a run prove it read the same bytes."""

    __tablename__ = "recon_statements"
    __table_args__ = (Index("ix_recon_statements_owner", "owner", "uploaded_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    owner: Mapped[str] = mapped_column(String(64), server_default="")  # the member that uploaded it
    format: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(16), nullable=True)
    account: Mapped[str | None] = mapped_column(String(128), nullable=True)
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    encoding: Mapped[str | None] = mapped_column(String(32), nullable=True)
    line_count: Mapped[int] = mapped_column(BigInteger, default=0)
    row_error_count: Mapped[int] = mapped_column(BigInteger, default=0)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReconciliationRun(Base):
    """One three-way run: the statement, the ledger snapshot it was compared with, the matching
    rules, and the report's summary (buckets, counts, totals per currency) and row errors."""

    __tablename__ = "recon_runs"
    __table_args__ = (Index("ix_recon_runs_started", "started_at"),
                      Index("ix_recon_runs_owner", "owner", "started_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the report's run_id
    owner: Mapped[str] = mapped_column(String(64), server_default="")  # the member that ran it
    statement_id: Mapped[str] = mapped_column(String(32), index=True)
    provider: Mapped[str | None] = mapped_column(String(16), nullable=True)
    account: Mapped[str | None] = mapped_column(String(128), nullable=True)
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="completed")
    summary: Mapped[dict] = mapped_column(JSON)
    row_errors: Mapped[list] = mapped_column(JSON)  # bounded sample; the count is in summary
    ledger_entries: Mapped[int] = mapped_column(BigInteger, default=0)
    exception_count: Mapped[int] = mapped_column(BigInteger, default=0)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReconciliationException(Base):
    """One item of the exceptions queue: a non-matched reconciliation item, or a verified callback
    the ledger could not apply. ``exception_id`` is stable (the engine's id across re-runs of the
    same files; ``cb-`` + the callback's evidence for callbacks), so a re-run never duplicates an
    item and never re-opens one a person resolved."""

    __tablename__ = "recon_exceptions"
    __table_args__ = (
        UniqueConstraint("exception_id", name="uq_recon_exceptions_id"),
        Index("ix_recon_exceptions_state", "state", "id"),
        Index("ix_recon_exceptions_run", "run_id", "id"),
        Index("ix_recon_exceptions_owner", "owner", "id"),
    )

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    exception_id: Mapped[str] = mapped_column(String(40))
    # The member whose queue it is in: the run's owner, or the owner of the provider account the
    # callback arrived on.
    owner: Mapped[str] = mapped_column(String(64), server_default="")
    origin: Mapped[str] = mapped_column(String(16))  # run | callback
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    callback_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bucket: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(140), nullable=True)
    provider_txn_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    statement_amount_minor: Mapped[int | None] = mapped_column(MinorAmount(), nullable=True)
    ledger_amount_minor: Mapped[int | None] = mapped_column(MinorAmount(), nullable=True)
    difference_minor: Mapped[int | None] = mapped_column(MinorAmount(), nullable=True)
    statement_source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    statement_line_nos: Mapped[list] = mapped_column(JSON)
    statement_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ledger_entry_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    ledger_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    chain_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    booked_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    resolution_action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExceptionResolutionRow(Base):
    """A person's decision on an exception; append-only (who, when, what, why)."""

    __tablename__ = "recon_resolutions"
    __table_args__ = (Index("ix_recon_resolutions_exception", "exception_id", "id"),)

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    exception_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text)
    resolved_by: Mapped[str] = mapped_column(String(64))
    resolved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    adjustment_entry_id: Mapped[str | None] = mapped_column(String(80), nullable=True)


__all__ = ["ProviderAccountRow", "ProviderCallback", "StatementImport", "ReconciliationRun",
           "ReconciliationException", "ExceptionResolutionRow"]
