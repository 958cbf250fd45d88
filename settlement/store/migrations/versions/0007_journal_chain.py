"""journal chain: each record version names its predecessor's digest; leaves are computed when
a version is batched (value and leaf_hash nullable until then)

Existing versions get their predecessor's digest (zero for version 1), in (kind, record_id,
version) order, so versions not yet batched anchor under the chained leaf (schema 0x8002);
versions already anchored under leaf schema 0x8001 keep their stored leaves.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ZERO_DIGEST = "0x" + "00" * 32
# Rows read and updated per statement while filling prev_digest.
FILL_PAGE_ROWS = 5_000


def upgrade() -> None:
    with op.batch_alter_table("record_digests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_digest", sa.String(length=66), nullable=True))
        batch_op.alter_column("value", existing_type=sa.JSON(), nullable=True)
        batch_op.alter_column("leaf_hash", existing_type=sa.String(length=66), nullable=True)
    table = sa.table("record_digests", sa.column("id", sa.Integer()), sa.column("kind", sa.String()),
                     sa.column("record_id", sa.String()), sa.column("version", sa.Integer()),
                     sa.column("digest", sa.String()), sa.column("prev_digest", sa.String()))
    conn = op.get_bind()
    last_key: tuple[str, str, int] | None = None
    previous: tuple[str, str, str] | None = None  # (kind, record_id, digest) of the row before
    while True:
        q = sa.select(table.c.id, table.c.kind, table.c.record_id, table.c.version, table.c.digest).order_by(
            table.c.kind, table.c.record_id, table.c.version).limit(FILL_PAGE_ROWS)
        if last_key is not None:
            q = q.where(sa.tuple_(table.c.kind, table.c.record_id, table.c.version) > sa.tuple_(*last_key))
        rows = conn.execute(q).all()
        if not rows:
            break
        updates = []
        for row_id, kind, record_id, version, digest in rows:
            same = previous is not None and previous[:2] == (kind, record_id)
            updates.append({"row_id": row_id, "prev": previous[2] if same else ZERO_DIGEST})
            previous = (kind, record_id, digest)
        conn.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                     .values(prev_digest=sa.bindparam("prev")), updates)
        last_key = (rows[-1][1], rows[-1][2], rows[-1][3])


def downgrade() -> None:
    with op.batch_alter_table("record_digests", schema=None) as batch_op:
        batch_op.drop_column("prev_digest")
