"""receivables: supply-chain finance (receivables, parts, operations, events, parties, payments, evidence)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "receivables",
        sa.Column("id", sa.String(66), primary_key=True),
        sa.Column("supplier_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("buyer_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("invoice_number", sa.String(200), nullable=False),
        sa.Column("invoice_number_normalized", sa.String(200), nullable=False),
        sa.Column("uniqueness_key", sa.String(400), nullable=True),
        sa.Column("invoice_hash", sa.String(66), nullable=False),
        sa.Column("face_value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("confirmation", sa.String(16), nullable=True),
        sa.Column("confirmed_by", sa.String(42), nullable=True),
        sa.Column("rejection", sa.String(100), nullable=True),
        sa.Column("part_count", sa.Integer(), nullable=False),
        sa.Column("busy_operation_id", _ID, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("uniqueness_key", name="uq_receivables_uniqueness_key"),
        sa.UniqueConstraint("invoice_hash", name="uq_receivables_invoice_hash"),
    )
    op.create_index("ix_receivables_supplier_id", "receivables", ["supplier_id"])
    op.create_index("ix_receivables_buyer_id", "receivables", ["buyer_id"])
    op.create_index("ix_receivables_status", "receivables", ["status"])

    op.create_table(
        "receivable_parts",
        sa.Column("id", sa.String(66), primary_key=True),
        sa.Column("receivable_id", sa.String(66), sa.ForeignKey("receivables.id"), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.String(64), nullable=True),
        sa.Column("holder_onchain_id", sa.String(66), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("financed", sa.Boolean(), nullable=False),
        sa.Column("request_open", sa.Boolean(), nullable=False),
        sa.Column("financier_id", sa.String(64), nullable=True),
        sa.Column("offer_id", sa.BigInteger(), nullable=True),
        sa.Column("advance_minor", sa.BigInteger(), nullable=True),
        sa.Column("fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("discount_rate_ppm", sa.Integer(), nullable=True),
        sa.Column("day_count_basis", sa.Integer(), nullable=True),
        sa.Column("offer_valid_until", sa.BigInteger(), nullable=True),
        sa.Column("seller_id", sa.String(64), nullable=True),
        sa.Column("repaid_minor", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("receivable_id", "index", name="uq_receivable_parts_index"),
    )
    op.create_index("ix_receivable_parts_receivable_id", "receivable_parts", ["receivable_id"])
    op.create_index("ix_receivable_parts_holder_id", "receivable_parts", ["holder_id"])
    op.create_index("ix_receivable_parts_financier_id", "receivable_parts", ["financier_id"])

    op.create_table(
        "receivable_operations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("receivable_id", sa.String(66), sa.ForeignKey("receivables.id"), nullable=False),
        sa.Column("part_id", sa.String(66), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("outbox_id", _ID, nullable=False),
        sa.Column("nonce_member_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_name", sa.String(100), nullable=True),
        sa.Column("error_args", sa.JSON(), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_receivable_operations_receivable_id", "receivable_operations", ["receivable_id"])
    op.create_index("ix_receivable_operations_outbox_id", "receivable_operations", ["outbox_id"])
    op.create_index("ix_receivable_operations_nonce_member_id", "receivable_operations", ["nonce_member_id"])

    op.create_table(
        "receivable_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("receivable_id", sa.String(66), sa.ForeignKey("receivables.id"), nullable=False),
        sa.Column("part_id", sa.String(66), nullable=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("operation_id", _ID, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_receivable_events_log"),
    )
    op.create_index("ix_receivable_events_receivable_block", "receivable_events",
                    ["receivable_id", "block_number", "log_index"])

    op.create_table(
        "receivable_parties",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("receivable_id", sa.String(66), sa.ForeignKey("receivables.id"), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.UniqueConstraint("receivable_id", "member_id", "role", name="uq_receivable_parties"),
    )
    op.create_index("ix_receivable_parties_member_role", "receivable_parties", ["member_id", "role", "receivable_id"])

    op.create_table(
        "receivable_payments",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("receivable_id", sa.String(66), sa.ForeignKey("receivables.id"), nullable=False),
        sa.Column("part_id", sa.String(66), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payer_id", sa.String(64), nullable=True),
        sa.Column("payee_id", sa.String(64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settlement_id", sa.String(66), nullable=True),
        sa.Column("settlement_error", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("kind", "part_id", name="uq_receivable_payments_part"),
    )
    op.create_index("ix_receivable_payments_receivable_id", "receivable_payments", ["receivable_id"])

    op.create_table(
        "receivable_evidence",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("receivable_id", sa.String(66), sa.ForeignKey("receivables.id"), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("leaf_hash", sa.String(66), nullable=False),
        sa.Column("root", sa.String(66), nullable=False),
        sa.Column("anchor_tx_hash", sa.String(66), nullable=True),
        sa.Column("anchor_block_number", sa.BigInteger(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("receivable_id", "leaf_hash", name="uq_receivable_evidence_leaf"),
    )
    op.create_index("ix_receivable_evidence_receivable_id", "receivable_evidence", ["receivable_id"])


def downgrade() -> None:
    for table in ("receivable_evidence", "receivable_payments", "receivable_parties", "receivable_events",
                  "receivable_operations", "receivable_parts", "receivables"):
        op.drop_table(table)
