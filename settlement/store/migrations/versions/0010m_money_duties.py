"""money duties: net payments into netting cycles (attested provider evidence per net payer), and
an index to find a provider transaction already used as payment evidence

Revision ID: 0010m
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0010m"
down_revision = "0008"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")
# As in 0002: exact integers of minor units (see settlement.store.models.settlements.MinorAmount).
AMOUNT = sa.String(length=61).with_variant(sa.Numeric(60, 0), "postgresql")


def upgrade() -> None:
    op.create_table(
        "netting_net_payments",
        sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("cycle_id", sa.String(66), sa.ForeignKey("netting_cycles.id"), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("amount_minor", AMOUNT, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_tx_hash", sa.String(66), nullable=False),
        sa.Column("attested_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_net_payments_cycle", "netting_net_payments", ["cycle_id", "member_id"])
    op.create_index("ix_net_payments_provider_tx", "netting_net_payments", ["provider_tx_hash"])
    op.create_index("ix_netting_net_payments_outbox_id", "netting_net_payments", ["outbox_id"])
    op.create_index("ix_settlements_provider_tx", "settlements", ["provider_tx_hash"])


def downgrade() -> None:
    op.drop_index("ix_settlements_provider_tx", "settlements")
    op.drop_table("netting_net_payments")
