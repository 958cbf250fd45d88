"""events out: the event log and its recipients, webhook endpoints and deliveries (issue 16)

Revision ID: 0012e
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0012e"
down_revision = "0011r"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("block_number", sa.BigInteger, nullable=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
    )
    op.create_index("ix_events_object", "events", ["object_type", "object_id", "seq"])
    op.create_index("ix_events_type_seq", "events", ["type", "seq"])
    op.create_table(
        "event_recipients",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("event_seq", ID, primary_key=True),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("previous_secret", sa.LargeBinary, nullable=True),
        sa.Column("previous_secret_expires_at", TS, nullable=True),
        sa.Column("cursor_seq", ID, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_webhook_endpoints_member", "webhook_endpoints", ["member_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("event_seq", ID, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("object_key", sa.String(170), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.UniqueConstraint("endpoint_id", "event_seq", "round", name="uq_webhook_deliveries_event"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_object", "webhook_deliveries", ["endpoint_id", "object_key", "event_seq"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("event_recipients")
    op.drop_table("events")
