"""Alembic environment: migrations run programmatically by `ledger up` (settlement.store.migrate)."""

from alembic import context
from sqlalchemy import pool

import settlement.store.models.anchoring  # noqa
import settlement.store.models.events  # noqa
import settlement.store.models.governance  # noqa
import settlement.store.models.payments  # noqa
import settlement.store.models.receivables  # noqa
import settlement.store.models.settlements  # noqa: F401  (registers the settlement tables on Base)
from settlement.store.db import make_engine
from settlement.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url) if url.startswith("sqlite") else __import__("sqlalchemy").create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
