"""receivable identity: the invoice number hash is no longer unique in the store

The contract now keys an invoice's identity on the buyer and the invoice number's letters and
digits, and frees it when the supplier cancels or the buyer rejects; ``receivables.invoice_hash``
holds that number hash, which another buyer may share and which is registered again after a
cancellation. Uniqueness stays on ``uniqueness_key`` (buyer, letters and digits) while live.

Revision ID: 0011r
Revises: 0008
"""
from alembic import op

revision = "0011r"
down_revision = "0010m"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receivables") as t:
        t.drop_constraint("uq_receivables_invoice_hash", type_="unique")
        t.create_index("ix_receivables_invoice_hash", ["invoice_hash"])


def downgrade() -> None:
    with op.batch_alter_table("receivables") as t:
        t.drop_index("ix_receivables_invoice_hash")
        t.create_unique_constraint("uq_receivables_invoice_hash", ["invoice_hash"])
