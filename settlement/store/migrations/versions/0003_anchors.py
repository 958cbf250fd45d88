"""anchors: provenance events, anchor batches, record-digest journal, anchor sequences

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "anchor_batches",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("leaf_encoding", sa.JSON(), nullable=False),
        sa.Column("first_time_s", sa.BigInteger(), nullable=False),
        sa.Column("last_time_s", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("root"),
        sa.UniqueConstraint("sequence"),
    )
    with op.batch_alter_table("anchor_batches", schema=None) as batch_op:
        batch_op.create_index("ix_anchor_batches_kind_sequence", ["kind", "sequence"], unique=False)
        batch_op.create_index(batch_op.f("ix_anchor_batches_status"), ["status"], unique=False)

    op.create_table(
        "anchor_sequences",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "provenance_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("lot_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at_s", sa.BigInteger(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("event_bytes", sa.Integer(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=66), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("batch_index", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["anchor_batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("provenance_events", schema=None) as batch_op:
        batch_op.create_index("ix_provenance_events_lot", ["lot_id", "occurred_at_s", "id"], unique=False)
        batch_op.create_index("ix_provenance_events_batch", ["batch_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_provenance_events_member_id"), ["member_id"], unique=False)

    op.create_table(
        "record_digests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("canonical_json", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("recorded_at_s", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=66), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("batch_index", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["anchor_batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "record_id", "version", name="uq_record_digests_version"),
    )
    with op.batch_alter_table("record_digests", schema=None) as batch_op:
        batch_op.create_index("ix_record_digests_batch", ["batch_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("record_digests", schema=None) as batch_op:
        batch_op.drop_index("ix_record_digests_batch")
    op.drop_table("record_digests")
    with op.batch_alter_table("provenance_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provenance_events_member_id"))
        batch_op.drop_index("ix_provenance_events_batch")
        batch_op.drop_index("ix_provenance_events_lot")
    op.drop_table("provenance_events")
    op.drop_table("anchor_sequences")
    with op.batch_alter_table("anchor_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anchor_batches_status"))
        batch_op.drop_index("ix_anchor_batches_kind_sequence")
    op.drop_table("anchor_batches")
