"""Tables of the store. Amounts are integers of minor units; hashes and addresses are hex text.

Changing a table means a new Alembic revision under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Member(Base):
    """A consortium member as the service knows it; the on-chain registry is authoritative for
    roles and status, and this row mirrors it (kept in step by the follower)."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # slug, e.g. "retailer-cn"
    onchain_id: Mapped[str] = mapped_column(String(66), unique=True)  # bytes32 hex
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    roles: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MemberAccount(Base):
    """An on-chain account of a member. The service signs with it (custodial), the private key
    encrypted at rest under the key-encryption key, which never enters the store."""

    __tablename__ = "member_accounts"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)  # checksummed
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    encrypted_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # None: member signs itself
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key: shown once, stored as its SHA-256 (keys carry >= 128 random bits, so a slow
    hash adds nothing), looked up by a short public prefix."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ConsoleSession(Base):
    """A web console session: an API key presented once at sign-in, exchanged for a random token
    held in an HttpOnly cookie. Only the token's SHA-256 is stored; the key itself never is (its
    prefix names which key signed in, so revoking the key ends its sessions)."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    csrf_token: Mapped[str] = mapped_column(String(64))  # synchronizer token, sent back in every form
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OutboxRow(Base):
    """One contract call to make, written in the same transaction as the state change it carries.

    Lifecycle: pending -> signed (nonce and raw tx persisted before anything is sent) -> sent ->
    mined (receipt ok) -> confirmed (the follower saw its events); or failed (reverted, with the
    decoded custom error). A row whose transaction the chain lost goes back to pending.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_id", "status", "id"),
        UniqueConstraint("signer", "nonce", "generation", name="uq_outbox_signer_nonce"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    kind: Mapped[str] = mapped_column(String(64))  # domain operation, e.g. "member.onboard"
    aggregate_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    contract: Mapped[str] = mapped_column(String(64))  # artifact name
    function: Mapped[str] = mapped_column(String(64))
    args: Mapped[list] = mapped_column(JSON)  # JSON-safe arguments (hex strings for bytes)
    signer: Mapped[str] = mapped_column(String(42), index=True)
    gas_limit: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Bumped when a row is re-signed after the chain lost its transaction, so the (signer, nonce)
    # uniqueness holds per attempt.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True, index=True)
    # The ABI-encoded call, made once when the row is written (which also proves it encodes).
    calldata: Mapped[bytes] = mapped_column(LargeBinary)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    mined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ChainEvent(Base):
    """A contract event read by the follower; unique per (transaction hash, log index)."""

    __tablename__ = "chain_events"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_log"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    contract: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(42))
    event: Mapped[str] = mapped_column(String(64), index=True)
    args: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Checkpoint(Base):
    """Where a follower has read up to (inclusive), with that block's hash to notice rollbacks."""

    __tablename__ = "checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class IdempotencyRecord(Base):
    """A processed request under a client's Idempotency-Key: same key + body -> same answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("member_id", "key", name="uq_idempotency_member_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SecurityEvent(Base):
    """Rejected or suspicious input (bad signature, stale callback, bad key), kept for review.
    Never holds a secret: API keys are recorded by prefix only."""

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
