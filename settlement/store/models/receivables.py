"""Tables of supply-chain finance: receivables, their parts, operations, events, payments, evidence.

The chain (``ReceivableRegistry``) is authoritative. These tables are the service's mirror of it,
moved forward only by the follower's event handlers, plus what never goes on chain (the invoice
number, the evidence documents) and the service's own bookkeeping (operations in flight,
disbursement and repayment intents linked to settlements).

- ``receivables``: one row per receivable registered through the service. ``status`` is the
  stored on-chain status (``pending`` until the registration is mined, ``rejected`` when the
  chain refused it); OVERDUE is never stored, it is derived from the due date and grace period.
  ``uniqueness_key`` (buyer, the invoice number's letters and digits: the invoice's identity,
  whoever the supplier) is unique while the registration is live, and null once the chain refused
  it or its supplier cancelled or its buyer rejected it, so that the invoice may be registered again.
  ``busy_operation_id`` is the one operation in flight on the receivable (null: none).
- ``receivable_parts``: the holdings, keyed by the contract's part id; amounts always sum to the
  face value once the registration is confirmed.
- ``receivable_operations``: each request the service accepted and sent through the outbox, with
  its fate (pending, confirmed by the follower, or rejected with the decoded custom error).
- ``receivable_events``: the contract's events per receivable, with tx hash, block and log index.
- ``receivable_parties``: who is involved, per role, for "my receivables" and visibility.
- ``receivable_payments``: a disbursement (financier -> seller, on acceptance) or a repayment
  (buyer -> holder, on settlement), with the settlement that carries it.
- ``receivable_evidence``: provenance anchor proof documents the receivable cites.

Amounts are integers of minor units below 2**63 (``AMOUNT_MINOR_MAX_STORE``), exact on both
SQLite and PostgreSQL. Changing a table means a new Alembic revision under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.store.models import Base, utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")

AMOUNT_MINOR_MAX_STORE = 2**63 - 1


class Receivable(Base):
    __tablename__ = "receivables"

    # keccak256(abi.encode(buyerId, invoiceNumberHash, registration index))
    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    supplier_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    invoice_number: Mapped[str] = mapped_column(String(200))  # as given (trimmed)
    invoice_number_normalized: Mapped[str] = mapped_column(String(200))
    uniqueness_key: Mapped[str | None] = mapped_column(String(400), unique=True, nullable=True)
    # the contract's invoiceNumberHash: keccak256 of the number's letters and digits (with the buyer,
    # the invoice's identity; registered again after a cancellation or rejection)
    invoice_hash: Mapped[str] = mapped_column(String(66), index=True)
    face_value_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    # pending | registered | confirmed | settled | defaulted | cancelled | rejected
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    confirmation: Mapped[str | None] = mapped_column(String(16), nullable=True)  # custodial | signature
    confirmed_by: Mapped[str | None] = mapped_column(String(42), nullable=True)  # the approving account
    rejection: Mapped[str | None] = mapped_column(String(100), nullable=True)  # custom error that refused it
    part_count: Mapped[int] = mapped_column(Integer, default=0)
    busy_operation_id: Mapped[int | None] = mapped_column(_ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ReceivablePart(Base):
    __tablename__ = "receivable_parts"
    __table_args__ = (UniqueConstraint("receivable_id", "index", name="uq_receivable_parts_index"),)

    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # keccak256(abi.encode(receivableId, index))
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    holder_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)  # member id
    holder_onchain_id: Mapped[str] = mapped_column(String(66))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    financed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The financing request and current offer, as the chain recorded them.
    request_open: Mapped[bool] = mapped_column(Boolean, default=False)
    financier_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    offer_id: Mapped[str | None] = mapped_column(String(66), nullable=True)  # 0x-hex bytes32, assigned by the service
    advance_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fee_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    discount_rate_ppm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    day_count_basis: Mapped[int | None] = mapped_column(Integer, nullable=True)
    offer_valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # unix seconds
    seller_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who sold it to the financier
    repaid_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ReceivableOperation(Base):
    __tablename__ = "receivable_operations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"), index=True)
    part_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    outbox_id: Mapped[int] = mapped_column(_ID, index=True)
    # Own-key approvals: whose EIP-712 nonce this operation consumes when mined.
    nonce_member_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | rejected
    error_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_args: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ReceivableEvent(Base):
    __tablename__ = "receivable_events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_receivable_events_log"),
        Index("ix_receivable_events_receivable_block", "receivable_id", "block_number", "log_index"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"))
    part_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    event: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict] = mapped_column(JSON)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    operation_id: Mapped[int | None] = mapped_column(_ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReceivableParty(Base):
    __tablename__ = "receivable_parties"
    __table_args__ = (UniqueConstraint("receivable_id", "member_id", "role", name="uq_receivable_parties"),
                      Index("ix_receivable_parties_member_role", "member_id", "role", "receivable_id"))

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"))
    member_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # supplier | buyer | holder | financier


class ReceivablePayment(Base):
    __tablename__ = "receivable_payments"
    __table_args__ = (UniqueConstraint("kind", "part_id", name="uq_receivable_payments_part"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"), index=True)
    part_id: Mapped[str] = mapped_column(String(66))
    kind: Mapped[str] = mapped_column(String(16))  # disbursement | repayment
    payer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # instructed: a settlement carries it (settlement_id); recorded: owed, no settlement could be
    # instructed (reason in settlement_error), to be paid outside the settlement ledger.
    status: Mapped[str] = mapped_column(String(16))
    settlement_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    settlement_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReceivableEvidence(Base):
    __tablename__ = "receivable_evidence"
    __table_args__ = (UniqueConstraint("receivable_id", "leaf_hash", name="uq_receivable_evidence_leaf"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    receivable_id: Mapped[str] = mapped_column(ForeignKey("receivables.id"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    leaf_hash: Mapped[str] = mapped_column(String(66))
    root: Mapped[str] = mapped_column(String(66))
    anchor_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    anchor_block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    document: Mapped[dict] = mapped_column(JSON)
    added_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
