"""provenance events by product: the event's normalised product (gtin:/sku:) as a column with an
index, for the auditors' search by product (issue 17); filled from each stored event

Revision ID: 0014p
Revises: 0013c
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0014p"
down_revision = "0013c"
branch_labels = None
depends_on = None

BACKFILL_PAGE_ROWS = 2_000


def upgrade() -> None:
    with op.batch_alter_table("provenance_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("product", sa.String(160), nullable=True))
    conn = op.get_bind()
    events = sa.table("provenance_events", sa.column("id", sa.BigInteger), sa.column("event", sa.JSON),
                      sa.column("product", sa.String))
    last = 0
    while True:  # page by page: bounded memory on a large store
        rows = conn.execute(sa.select(events.c.id, events.c.event).where(events.c.id > last)
                            .order_by(events.c.id).limit(BACKFILL_PAGE_ROWS)).all()
        if not rows:
            break
        for row_id, event in rows:
            doc = json.loads(event) if isinstance(event, str) else event
            conn.execute(events.update().where(events.c.id == row_id).values(product=doc["product"]))
        last = rows[-1][0]
    op.create_index("ix_provenance_events_product", "provenance_events", ["product", "lot_id"])


def downgrade() -> None:
    op.drop_index("ix_provenance_events_product", table_name="provenance_events")
    with op.batch_alter_table("provenance_events", schema=None) as batch_op:
        batch_op.drop_column("product")
