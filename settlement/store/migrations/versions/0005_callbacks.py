"""callbacks: provider accounts, recorded provider callbacks, statement imports, reconciliation
runs, the exceptions queue and its resolutions

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
AMOUNT = sa.String(length=61).with_variant(sa.Numeric(60, 0), "postgresql")


def upgrade() -> None:
    op.create_table(
        "provider_accounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("public_config", sa.JSON(), nullable=False),
        sa.Column("encrypted_secrets", sa.LargeBinary(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("provider", "account", name="uq_provider_accounts_name"),
    )

    op.create_table(
        "provider_callbacks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("evidence_hash", sa.String(66), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider_status", sa.String(64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("provider_txn_id", sa.String(128), nullable=False),
        sa.Column("merchant_reference", sa.String(128), nullable=True),
        sa.Column("refund_reference", sa.String(128), nullable=True),
        sa.Column("provider_refund_id", sa.String(128), nullable=True),
        sa.Column("amount_minor", AMOUNT, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("amount_is_cumulative", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("notification_id", sa.String(128), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("parsed", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_reason", sa.String(64), nullable=True),
        sa.Column("outcome_detail", sa.String(500), nullable=True),
        sa.Column("settlement_id", sa.String(66), nullable=True),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("applied_amount_minor", AMOUNT, nullable=True),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("last_delivered_at", _TS, nullable=False),
        sa.Column("processed_at", _TS, nullable=True),
        sa.UniqueConstraint("provider", "account", "evidence_hash", name="uq_provider_callbacks_evidence"),
    )
    op.create_index("ix_provider_callbacks_outcome", "provider_callbacks", ["outcome", "settlement_id"])
    op.create_index("ix_provider_callbacks_settlement", "provider_callbacks", ["settlement_id", "id"])
    op.create_index("ix_provider_callbacks_txn", "provider_callbacks", ["provider", "provider_txn_id"])

    op.create_table(
        "recon_statements",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("account", sa.String(128), nullable=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("encoding", sa.String(32), nullable=True),
        sa.Column("line_count", sa.BigInteger(), nullable=False),
        sa.Column("row_error_count", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", _TS, nullable=False),
    )
    op.create_index("ix_recon_statements_sha256", "recon_statements", ["sha256"])

    op.create_table(
        "recon_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("statement_id", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("account", sa.String(128), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("row_errors", sa.JSON(), nullable=False),
        sa.Column("ledger_entries", sa.BigInteger(), nullable=False),
        sa.Column("exception_count", sa.BigInteger(), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
    )
    op.create_index("ix_recon_runs_statement_id", "recon_runs", ["statement_id"])
    op.create_index("ix_recon_runs_started", "recon_runs", ["started_at"])

    op.create_table(
        "recon_exceptions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("exception_id", sa.String(40), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("last_run_id", sa.String(32), nullable=True),
        sa.Column("callback_id", sa.BigInteger(), nullable=True),
        sa.Column("bucket", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(140), nullable=True),
        sa.Column("provider_txn_id", sa.String(128), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("statement_amount_minor", AMOUNT, nullable=True),
        sa.Column("ledger_amount_minor", AMOUNT, nullable=True),
        sa.Column("difference_minor", AMOUNT, nullable=True),
        sa.Column("statement_source", sa.String(64), nullable=True),
        sa.Column("statement_line_nos", sa.JSON(), nullable=False),
        sa.Column("statement_status", sa.String(16), nullable=True),
        sa.Column("ledger_entry_id", sa.String(80), nullable=True),
        sa.Column("ledger_status", sa.String(16), nullable=True),
        sa.Column("chain_state", sa.String(16), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("booked_at", sa.String(40), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolution_action", sa.String(32), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("exception_id", name="uq_recon_exceptions_id"),
    )
    op.create_index("ix_recon_exceptions_state", "recon_exceptions", ["state", "id"])
    op.create_index("ix_recon_exceptions_run", "recon_exceptions", ["run_id", "id"])

    op.create_table(
        "recon_resolutions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("exception_id", sa.String(40), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("resolved_by", sa.String(64), nullable=False),
        sa.Column("resolved_at", _TS, nullable=False),
        sa.Column("adjustment_entry_id", sa.String(80), nullable=True),
    )
    op.create_index("ix_recon_resolutions_exception", "recon_resolutions", ["exception_id", "id"])


def downgrade() -> None:
    op.drop_table("recon_resolutions")
    op.drop_table("recon_exceptions")
    op.drop_table("recon_runs")
    op.drop_table("recon_statements")
    op.drop_table("provider_callbacks")
    op.drop_table("provider_accounts")
