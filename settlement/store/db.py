"""Engine, sessions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from settlement.core.private_files import PRIVATE_FILE_MODE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_SIZE = 10
READ_ONLY_OPTION = "ledger_read_only"


class ReadOnlySessionError(RuntimeError):
    """Something tried to write through a Database.read() session (use transaction())."""


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file as 0600 before SQLite does (it would follow the umask); SQLite gives
    its -wal and -shm files the database file's mode."""
    path = sa.engine.make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    except OSError:
        return  # a folder that does not exist: SQLite reports it, with its own message
    os.fchmod(fd, PRIVATE_FILE_MODE)
    os.close(fd)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL: readers never block the writer; foreign keys on; a busy writer is waited for.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            # Writers take the write lock at BEGIN, so two writers queue instead of failing at
            # upgrade time. Read sessions (Database.read) begin a deferred transaction: in WAL
            # mode that is a consistent snapshot that neither waits for nor blocks the writer.
            if conn.get_execution_options().get(READ_ONLY_OPTION):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit transactions off).
        @event.listens_for(engine, "connect")
        def _sqlite_autocommit_off(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None

        return engine
    return sa.create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=True)


def migrate(url: str) -> None:
    """Apply every Alembic migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


def _refuse_flush(session: Session, _flush_context: object, _instances: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("a read session cannot write; use Database.transaction()")


class Database:
    """An engine plus a session factory; `transaction()` is the unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(**{READ_ONLY_OPTION: True}),
                                           expire_on_commit=False)
        event.listen(self._read_sessions, "before_flush", _refuse_flush)
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler (1, 2, 5, 10 ... 100 ms steps) however soon the lock is free.
        # Writers of this process queue on this lock instead and start the moment it is free;
        # other processes still meet SQLite's own lock. PostgreSQL: no such lock.
        self._writer = threading.RLock() if self.engine.dialect.name == "sqlite" else nullcontext()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One database transaction: committed on success, rolled back on any exception."""
        with self._writer, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: never takes SQLite's write lock; a flush raises ReadOnlySessionError."""
        with self._read_sessions() as session:
            yield session

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
