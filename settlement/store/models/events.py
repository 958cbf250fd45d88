"""Tables of events out: the event log, who may see each event, webhook endpoints and deliveries.

- ``events``: one row per catalogued event (docs/events.md), written in the transaction of the
  change it describes. ``seq`` is the global order and the stream's cursor; ``id`` is the stable
  public id (``evt_...``, the ``webhook-id`` of every delivery of it).
- ``event_recipients``: the members an event concerns (the parties of its object), one row each:
  a member reads, streams and is delivered only events it is a recipient of.
- ``webhook_endpoints``: a member's receiving URLs with their filters, their signing secrets
  (encrypted under the KEK; a previous secret kept until its overlap ends) and the fan-out cursor.
- ``webhook_deliveries``: one row per (endpoint, event) to send, with its attempts, the next
  attempt's time and the outcome; failed rows are kept (replayable).

Changing a table means a new Alembic revision under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from settlement.store.models import Base, utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_object", "object_type", "object_id", "seq"),
                      Index("ix_events_type_seq", "type", "seq"))

    seq: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data: Mapped[dict] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRecipient(Base):
    __tablename__ = "event_recipients"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_seq: Mapped[int] = mapped_column(_ID, primary_key=True)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_member", "member_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ep_...
    member_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list] = mapped_column(JSON)  # [] = every type
    status: Mapped[str] = mapped_column(String(16), default="enabled")  # enabled | disabled
    disabled_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted under the KEK
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cursor_seq: Mapped[int] = mapped_column(_ID, default=0)  # events up to here are fanned out
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_seq", "round", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_object", "endpoint_id", "object_key", "event_seq"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(String(40))
    event_seq: Mapped[int] = mapped_column(_ID)
    event_id: Mapped[str] = mapped_column(String(40))
    object_key: Mapped[str] = mapped_column(String(170))  # object_type:object_id (ordering key)
    round: Mapped[int] = mapped_column(Integer, default=0)  # 0: the first; 1, 2...: replays
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
