"""financing offer ids: a bytes32 the service assigns before sending (0x-hex), was the registry's
uint64 counter (issue 15 item 4)

Revision ID: 0015o
Revises: 0014p

The registry now keys offers by an id its caller chooses (ReceivableRegistry.offerFinancing), so a
part's current offer id is text. An integer id from the former registry is kept as its decimal
text; no deployment of that registry exists.
"""
import sqlalchemy as sa
from alembic import op

revision = "0015o"
down_revision = "0014p"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receivable_parts", schema=None) as batch_op:
        batch_op.alter_column("offer_id", existing_type=sa.BigInteger(), type_=sa.String(66),
                              existing_nullable=True, postgresql_using="offer_id::text")


def downgrade() -> None:
    with op.batch_alter_table("receivable_parts", schema=None) as batch_op:
        batch_op.alter_column("offer_id", existing_type=sa.String(66), type_=sa.BigInteger(),
                              existing_nullable=True, postgresql_using="NULL")
