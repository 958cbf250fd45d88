"""governance: proposals and approvals, onboardings waiting for governance, own-key intents

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "governance_proposals",
        sa.Column("id", sa.String(66), primary_key=True),
        sa.Column("safe", sa.String(16), nullable=False),
        sa.Column("safe_address", sa.String(42), nullable=False),
        sa.Column("safe_nonce", sa.BigInteger(), nullable=False),
        sa.Column("to", sa.String(42), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=True),
        sa.Column("member_onchain_id", sa.String(66), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("calls", sa.JSON(), nullable=False),
        sa.Column("salt", sa.String(66), nullable=True),
        sa.Column("op_id", sa.String(66), nullable=True),
        sa.Column("delay_s", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("proposer", sa.String(42), nullable=True),
        sa.Column("published_tx_hash", sa.String(66), nullable=True),
        sa.Column("eta_s", sa.BigInteger(), nullable=True),
        sa.Column("schedule_outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("execute_outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_tx_hash", sa.String(66), nullable=True),
        sa.Column("executed_tx_hash", sa.String(66), nullable=True),
        sa.Column("executed_block", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_governance_proposals_member_id", "governance_proposals", ["member_id"])
    op.create_index("ix_governance_proposals_member_onchain_id", "governance_proposals", ["member_onchain_id"])
    op.create_index("ix_governance_proposals_op_id", "governance_proposals", ["op_id"])
    op.create_index("ix_governance_proposals_status_created", "governance_proposals", ["status", "created_at"])
    op.create_index("ix_governance_proposals_safe_nonce", "governance_proposals", ["safe_address", "safe_nonce"])
    op.create_table(
        "governance_approvals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("proposal_id", sa.String(66), sa.ForeignKey("governance_proposals.id"), nullable=False),
        sa.Column("governor", sa.String(42), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("proposal_id", "governor", name="uq_governance_approval"),
    )
    op.create_index("ix_governance_approvals_proposal_id", "governance_approvals", ["proposal_id"])
    op.create_table(
        "member_onboardings",
        sa.Column("onchain_id", sa.String(66), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("accounts", sa.JSON(), nullable=False),
        sa.Column("proposal_id", sa.String(66), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_member_onboardings_proposal_id", "member_onboardings", ["proposal_id"])
    op.create_table(
        "intents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("aggregate_id", sa.String(128), nullable=False),
        sa.Column("contract", sa.String(64), nullable=False),
        sa.Column("to", sa.String(42), nullable=False),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("relayed_at", _TS, nullable=True),
    )
    op.create_index("ix_intents_member_id", "intents", ["member_id"])
    op.create_index("ix_intents_account_nonce", "intents", ["account", "nonce"])
    op.create_index("ix_intents_status_deadline", "intents", ["status", "deadline"])


def downgrade() -> None:
    op.drop_table("intents")
    op.drop_table("member_onboardings")
    op.drop_table("governance_approvals")
    op.drop_table("governance_proposals")
