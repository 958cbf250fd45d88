"""Tables of cross-border settlements: settlements, their chain operations and refunds, netting
cycles, and the double-entry journal with its running balances.

Amounts reach 2**96 - 1 (the contract's ``AMOUNT_MINOR_MAX``) and balances may exceed it, beyond
SQLite's 64-bit integers: :class:`MinorAmount` keeps them exact on both databases (NUMERIC on
PostgreSQL, a decimal string on SQLite). Sums are therefore made in Python, never in SQL.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from settlement.store.models import Base, utcnow

AMOUNT_DIGITS_MAX = 60  # far beyond 2**96 * any bounded count of postings


class MinorAmount(TypeDecorator):
    """An exact, possibly negative integer of any size up to 60 digits."""

    impl = String(AMOUNT_DIGITS_MAX + 1)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(AMOUNT_DIGITS_MAX, 0))
        return dialect.type_descriptor(String(AMOUNT_DIGITS_MAX + 1))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if type(value) is not int:
            raise TypeError(f"MinorAmount takes an int, got {type(value).__name__}")
        return Decimal(value) if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


_SEQ = BigInteger().with_variant(Integer, "sqlite")

SYSTEM_OWNER = "@consortium"  # owner of the consortium's own accounts (clearing, fees)


class Settlement(Base):
    """One settlement instruction as the service knows it, with its current on-chain state.

    ``state`` is the business state (the contract's, plus ``rejected`` when the chain refused the
    recording); ``chain_status`` is that of its latest operation (``chain_op``): pending until the
    follower sees the event, then confirmed, or rejected with the decoded custom error.
    """

    __tablename__ = "settlements"
    __table_args__ = (
        UniqueConstraint("payer_id", "client_reference", name="uq_settlements_payer_reference"),
        Index("ix_settlements_payer_seq", "payer_id", "seq"),
        Index("ix_settlements_payee_seq", "payee_id", "seq"),
        Index("ix_settlements_netting", "target_currency", "state", "cycle_id", "seq"),
        Index("ix_settlements_provider_tx", "provider_tx_hash"),
    )

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(66), unique=True)  # on-chain id, bytes32 hex
    payer_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    payee_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    payer_onchain_id: Mapped[str] = mapped_column(String(66))
    payee_onchain_id: Mapped[str] = mapped_column(String(66))
    client_reference: Mapped[str] = mapped_column(String(64))
    client_reference_hash: Mapped[str] = mapped_column(String(66))
    source_amount_minor: Mapped[int] = mapped_column(MinorAmount())
    source_currency: Mapped[str] = mapped_column(String(3))
    target_amount_minor: Mapped[int] = mapped_column(MinorAmount())
    target_currency: Mapped[str] = mapped_column(String(3))
    fx_rate_scaled: Mapped[int] = mapped_column(MinorAmount())  # contract's uint64, 1e12 = 1
    fees_minor: Mapped[int] = mapped_column(MinorAmount())
    value_date: Mapped[date] = mapped_column(Date)
    purpose_code: Mapped[str] = mapped_column(String(4))
    payment_reference: Mapped[str] = mapped_column(String(140))  # raw: stays in the store
    payment_ref_hash: Mapped[str] = mapped_column(String(66), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="instructed")
    paid_minor: Mapped[int] = mapped_column(MinorAmount(), default=0)
    refunded_minor: Mapped[int] = mapped_column(MinorAmount(), default=0)
    provider: Mapped[str | None] = mapped_column(String(16), nullable=True)
    provider_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    cycle_id: Mapped[str | None] = mapped_column(String(66), ForeignKey("netting_cycles.id"), nullable=True)
    batch_outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_op: Mapped[str] = mapped_column(String(16), default="record")
    chain_status: Mapped[str] = mapped_column(String(16), default="pending")
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    recorded_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    recorded_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SettlementOperation(Base):
    """One chain operation on a settlement (record, pay, cancel, refund, net, settle): its outbox
    row, the state to return to if the chain refuses it, and its on-chain outcome."""

    __tablename__ = "settlement_operations"
    __table_args__ = (Index("ix_settlement_ops_settlement", "settlement_id", "id"),)

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    settlement_id: Mapped[str] = mapped_column(String(66))
    kind: Mapped[str] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)  # None: made around the API
    prev_state: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int | None] = mapped_column(MinorAmount(), nullable=True)
    refund_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cycle_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    journal_txn_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | rejected
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SettlementRefund(Base):
    """A refund of (part of) a paid settlement, in its target currency."""

    __tablename__ = "settlement_refunds"
    __table_args__ = (UniqueConstraint("settlement_id", "reference_hash", name="uq_refunds_reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    settlement_id: Mapped[str] = mapped_column(String(66), index=True)
    amount_minor: Mapped[int] = mapped_column(MinorAmount())
    reference: Mapped[str] = mapped_column(String(140))
    reference_hash: Mapped[str] = mapped_column(String(66))
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | rejected
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NettingCycle(Base):
    """A netting cycle in one currency: its settlements (in submission order), members (sorted by
    on-chain id) and their nets, and the on-chain state of its submission and settlement."""

    __tablename__ = "netting_cycles"

    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # bytes32 hex
    currency: Mapped[str] = mapped_column(String(3), index=True)
    state: Mapped[str] = mapped_column(String(16), default="submitted")  # submitted|settled|cancelled|rejected
    settlement_ids: Mapped[list] = mapped_column(JSON)
    members: Mapped[list] = mapped_column(JSON)  # [[member_id, onchain_id], ...] ascending by onchain id
    nets: Mapped[list] = mapped_column(JSON)  # decimal strings, in the order of members
    gross_count: Mapped[int] = mapped_column(Integer)
    gross_value_minor: Mapped[int] = mapped_column(MinorAmount())
    net_count: Mapped[int] = mapped_column(Integer)
    net_value_minor: Mapped[int] = mapped_column(MinorAmount())
    closed_by: Mapped[str] = mapped_column(String(64))
    chain_op: Mapped[str] = mapped_column(String(16), default="submit")
    chain_status: Mapped[str] = mapped_column(String(16), default="pending")
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    submit_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    submit_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settle_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    settle_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settle_journal_txn_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    chain_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class NetPayment(Base):
    """A net payer's payment into a netting cycle: the provider's evidence, attested on chain by the
    operator (``attestNetPayment``). A cycle settles only when each net payer has a confirmed one."""

    __tablename__ = "netting_net_payments"
    __table_args__ = (Index("ix_net_payments_cycle", "cycle_id", "member_id"),
                      Index("ix_net_payments_provider_tx", "provider_tx_hash"))

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(66), ForeignKey("netting_cycles.id"))
    member_id: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(MinorAmount())
    provider: Mapped[str] = mapped_column(String(16))
    provider_tx_hash: Mapped[str] = mapped_column(String(66))
    attested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | rejected
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JournalTransaction(Base):
    """A balanced set of journal entries: per currency, debits equal credits."""

    __tablename__ = "journal_transactions"
    __table_args__ = (Index("ix_journal_txn_settlement", "settlement_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    kind: Mapped[str] = mapped_column(String(32))
    settlement_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    cycle_id: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reverses: Mapped[str | None] = mapped_column(String(32), nullable=True)
    memo: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JournalEntry(Base):
    """One side of a posting: ``owner``'s ``account`` in ``currency``, debit (D) or credit (C)."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        Index("ix_journal_entries_owner", "owner", "currency", "id"),
        Index("ix_journal_entries_txn", "txn_id"),
    )

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(32), ForeignKey("journal_transactions.id"))
    owner: Mapped[str] = mapped_column(String(64))  # member id, or SYSTEM_OWNER
    account: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    side: Mapped[str] = mapped_column(String(1))  # D | C
    amount_minor: Mapped[int] = mapped_column(MinorAmount())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JournalBalance(Base):
    """Running totals of one account, kept in step with every posting (same transaction)."""

    __tablename__ = "journal_balances"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    debit_minor: Mapped[int] = mapped_column(MinorAmount(), default=0)
    credit_minor: Mapped[int] = mapped_column(MinorAmount(), default=0)
    entry_count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


__all__ = ["MinorAmount", "SYSTEM_OWNER", "Settlement", "SettlementOperation", "SettlementRefund", "NettingCycle",
           "JournalTransaction", "JournalEntry", "JournalBalance"]
