"""tenancy: an owner (member id) on provider accounts, statement imports, reconciliation runs and
the exceptions queue

Existing rows: provider accounts belong to the operator (the service's own member) until the
operator gives them to a member; statements and runs to the member that uploaded or ran them
(rows the CLI made before it named a member say ``cli`` and are seen only by the roles that read
across); run exceptions to the owner of their run, callback exceptions to the owner of the
account the callback arrived on.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OWNER = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("provider_accounts") as t:
        t.add_column(sa.Column("owner", OWNER, nullable=False, server_default="operator"))
        t.create_index("ix_provider_accounts_owner", ["owner", "provider", "account"])
    with op.batch_alter_table("recon_statements") as t:
        t.add_column(sa.Column("owner", OWNER, nullable=False, server_default=""))
        t.create_index("ix_recon_statements_owner", ["owner", "uploaded_at"])
    with op.batch_alter_table("recon_runs") as t:
        t.add_column(sa.Column("owner", OWNER, nullable=False, server_default=""))
        t.create_index("ix_recon_runs_owner", ["owner", "started_at"])
    with op.batch_alter_table("recon_exceptions") as t:
        t.add_column(sa.Column("owner", OWNER, nullable=False, server_default=""))
        t.create_index("ix_recon_exceptions_owner", ["owner", "id"])
    op.execute("UPDATE recon_statements SET owner = uploaded_by")
    op.execute("UPDATE recon_runs SET owner = started_by")
    op.execute("UPDATE recon_exceptions SET owner = COALESCE((SELECT r.owner FROM recon_runs r "
               "WHERE r.id = recon_exceptions.run_id), '') WHERE origin = 'run'")
    op.execute("UPDATE recon_exceptions SET owner = COALESCE((SELECT a.owner FROM provider_callbacks c "
               "JOIN provider_accounts a ON a.provider = c.provider AND a.account = c.account "
               "WHERE c.id = recon_exceptions.callback_id), 'operator') WHERE origin = 'callback'")


def downgrade() -> None:
    for table, index in (("recon_exceptions", "ix_recon_exceptions_owner"), ("recon_runs", "ix_recon_runs_owner"),
                         ("recon_statements", "ix_recon_statements_owner"),
                         ("provider_accounts", "ix_provider_accounts_owner")):
        with op.batch_alter_table(table) as t:
            t.drop_index(index)
            t.drop_column("owner")
