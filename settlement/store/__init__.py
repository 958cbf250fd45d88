"""The SQL store: the service's durable memory (SQLAlchemy 2 + Alembic).

Every accepted request is written here first, together with its outbox row, in one database
transaction. SQLite (a file in LEDGER_HOME) by default; PostgreSQL via LEDGER_DATABASE_URL.
"""

from settlement.store import models
from settlement.store.db import Database, make_engine, migrate

__all__ = ["Database", "migrate", "make_engine", "models"]
