"""Tables of anchoring: provenance events, Merkle batches (anchors), the record-digest journal.

- ``provenance_events``: every accepted event with its leaf value and leaf hash; ``batch_id`` is
  null while the event waits for the batcher, then points at its batch with ``batch_index`` (the
  event's position in the batch's values, so the tree is rebuilt byte for byte).
- ``record_digests``: an append-only journal of the store's own records (settlements, callbacks,
  receivables, resolutions, ...). Each row is one version of one record: its canonical JSON, the
  keccak256 digest of it and the digest of the version before it, written in the transaction
  that changed the record; its leaf is computed when it is batched.
- ``anchor_batches``: one Merkle tree per row (kind ``events`` or ``journal``) with its root,
  global sequence, and the chain's confirmation (tx hash, block number and time).
- ``anchor_sequences``: the last sequence handed out, one row per contract, locked while a batch
  takes the next one (TraceAnchor sequences are global and consecutive: lastSequence + 1).

Changing a table means a new Alembic revision under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
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


class AnchorBatch(Base):
    """A Merkle tree over events or journal digests, and where its root was anchored.

    Lifecycle: ``pending`` (root stored, ``TraceAnchor.anchor`` enqueued in the same transaction)
    -> ``anchored`` (the follower saw ``RootAnchored``); or ``failed`` (the call reverted for a
    reason a new sequence cannot fix; ``last_error`` says which). A failed batch hands its
    sequence on and holds none: ``sequence`` is then the negative of its id (unique, never a
    chain sequence) until ``retry_failed`` gives it the next one.
    """

    __tablename__ = "anchor_batches"
    __table_args__ = (Index("ix_anchor_batches_kind_sequence", "kind", "sequence"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # events | journal
    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    root: Mapped[str] = mapped_column(String(66), unique=True)
    leaf_count: Mapped[int] = mapped_column(Integer)
    schema_version: Mapped[int] = mapped_column(Integer)
    leaf_encoding: Mapped[list] = mapped_column(JSON)
    first_time_s: Mapped[int] = mapped_column(BigInteger)
    last_time_s: Mapped[int] = mapped_column(BigInteger)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ProvenanceEventRow(Base):
    """One provenance event: the normalised event, its leaf value and hash, and its batch."""

    __tablename__ = "provenance_events"
    __table_args__ = (
        Index("ix_provenance_events_lot", "lot_id", "occurred_at_s", "id"),
        Index("ix_provenance_events_batch", "batch_id", "id"),
        Index("ix_provenance_events_product", "product", "lot_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    lot_id: Mapped[str] = mapped_column(String(128))
    # The normalised product (gtin:<14 digits> | sku:<code>), for the search by product (0014p).
    product: Mapped[str | None] = mapped_column(String(160), nullable=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)  # the acting member's slug
    occurred_at_s: Mapped[int] = mapped_column(BigInteger)
    schema_version: Mapped[int] = mapped_column(Integer)
    event: Mapped[dict] = mapped_column(JSON)  # ProvenanceEvent.to_json()
    event_bytes: Mapped[int] = mapped_column(Integer)  # size of its canonical JSON (batch bytes bound)
    value: Mapped[list] = mapped_column(JSON)  # leaf value, JSON form (as a standard-v1 dump)
    leaf_hash: Mapped[str] = mapped_column(String(66))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_batches.id"), nullable=True)
    batch_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordDigest(Base):
    """One version of one store record, digested for the journal anchor (append-only)."""

    __tablename__ = "record_digests"
    __table_args__ = (
        UniqueConstraint("kind", "record_id", "version", name="uq_record_digests_version"),
        Index("ix_record_digests_batch", "batch_id", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    canonical_json: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(66))  # keccak256(utf8(canonical_json))
    # The digest of version - 1 of the same record (zero for version 1): the record's chain.
    prev_digest: Mapped[str | None] = mapped_column(String(66), nullable=True)
    recorded_at_s: Mapped[int] = mapped_column(BigInteger)
    # The journal leaf's hash, set when the batcher takes the version into a batch; its value is the
    # row's own columns (stored only by the first journal leaf schema, 0x8001).
    value: Mapped[list | None] = mapped_column(JSON, nullable=True)
    leaf_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_batches.id"), nullable=True)
    batch_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnchorSequence(Base):
    """The last TraceAnchor sequence handed out (one row per contract)."""

    __tablename__ = "anchor_sequences"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


__all__ = ["AnchorBatch", "AnchorSequence", "ProvenanceEventRow", "RecordDigest"]
