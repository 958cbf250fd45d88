"""Engine, sessions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from settlement.core.private_files import PRIVATE_FILE_MODE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The longest a writer of this process waits for SQLite's single writer slot (WriterGate) before
# failing like a busy SQLite does; nothing in the service holds it for long (no chain calls inside
# a write transaction), so reaching it means the store is stuck or overloaded.
WRITER_WAIT_S_MAX = 30.0
POOL_SIZE = 10
READ_ONLY_OPTION = "ledger_read_only"


WRITER_GATE_KEY = "ledger_writer_gate"


class ReadOnlySessionError(RuntimeError):
    """Something tried to write through a Database.read() session (use transaction())."""


class WriterGate:
    """SQLite's single writer, queued inside this process.

    A writer that finds SQLite's lock taken sleeps in SQLite's busy handler (1, 2, 5, 10 ... 100 ms
    steps) however soon the lock is free; writers of this process queue here instead and start
    the moment it is free (other processes still meet SQLite's own lock).

    The gate belongs to a *connection*, not to a thread: it is taken when the connection begins a
    write transaction (BEGIN IMMEDIATE) and given back when the connection returns to the pool
    (after its commit or rollback) or is invalidated, whichever threads do that. FastAPI enters
    and exits a request's session dependency on different worker threads, so a thread-owned lock
    (an RLock) could not be released there and stayed held for good (issue 11). A plain Lock has
    no owner; every wait is bounded by ``timeout_s``, after which the writer fails the way a busy
    SQLite does (``OperationalError: database is locked``), never waits forever.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._lock.locked()

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=self.timeout_s):
            raise sa.exc.OperationalError(
                "BEGIN IMMEDIATE", None,
                sqlite3.OperationalError(f"database is locked (no writer slot within {self.timeout_s:g} s)"))

    def release(self) -> None:
        self._lock.release()


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


def make_engine(url: str, writer_gate: WriterGate | None = None) -> Engine:
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
                return
            # The gate is taken lazily, at the first statement of a write transaction (a session
            # that never touches the store never queues), once per checkout of the connection.
            taken = writer_gate is not None and not conn.info.get(WRITER_GATE_KEY, False)
            if taken:
                writer_gate.acquire()
                conn.info[WRITER_GATE_KEY] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if taken:
                    conn.info.pop(WRITER_GATE_KEY, None)
                    writer_gate.release()
                raise

        if writer_gate is not None:
            def _give_back(_dbapi_conn, record, *_args) -> None:  # type: ignore[no-untyped-def]
                # Back in the pool (its transaction committed or rolled back by the pool's reset),
                # or invalidated (closed): the connection no longer holds SQLite's write lock.
                if record is not None and record.info.pop(WRITER_GATE_KEY, False):
                    writer_gate.release()

            event.listen(engine, "checkin", _give_back)
            event.listen(engine, "invalidate", _give_back)

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


# What a process knows about a store beyond its rows, per engine (``Database.info``): filled by
# whoever composes the process (the Runtime), read by code that holds only a connection (a journal
# observer reads the governors' members there: settlement.domains.events).
_ENGINE_INFO: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


def engine_info(engine: Engine) -> dict[str, Any]:
    """The ``info`` of the Database that made ``engine`` (empty for an engine made elsewhere)."""
    return _ENGINE_INFO.get(engine, {})


class Database:
    """An engine plus a session factory; `transaction()` is the unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.info: dict[str, Any] = {}
        # SQLite has one writer at a time (see WriterGate); PostgreSQL needs no gate.
        self.writer_gate = WriterGate(WRITER_WAIT_S_MAX) if url.startswith("sqlite") else None
        self.engine = make_engine(url, self.writer_gate)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(**{READ_ONLY_OPTION: True}),
                                           expire_on_commit=False)
        event.listen(self._read_sessions, "before_flush", _refuse_flush)
        _ENGINE_INFO[self.engine] = self.info

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One database transaction: committed on success, rolled back on any exception.

        Safe to enter on one thread and leave on another (FastAPI does that with a request's
        session): on SQLite the writer gate is held by the session's connection, taken at its
        first statement and given back when the connection returns to the pool."""
        with self.sessions() as session, session.begin():
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
