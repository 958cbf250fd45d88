"""Read sessions: never behind the writer, never writing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from settlement.store.db import Database, ReadOnlySessionError, migrate
from settlement.store.models import Member


def test_a_read_is_not_queued_behind_an_open_write_transaction(sqlite_url: str) -> None:
    """SQLite: writers take the write lock at BEGIN (BEGIN IMMEDIATE); a read must not, or every
    poll of the dispatcher, the follower and the API would wait for whoever is writing."""
    migrate(sqlite_url)
    db = Database(sqlite_url)
    writing, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def writer() -> None:
        with db.transaction() as s:
            s.add(Member(id="m1", onchain_id="0x" + "11" * 32, name="m1", country="SG", roles=["finance"],
                         status="active"))
            s.flush()
            writing.set()
            release.wait(30)

    def reader() -> None:
        with db.read() as s:
            seen.append(s.scalar(select(func.count()).select_from(Member)) or 0)

    w = threading.Thread(target=writer)
    w.start()
    assert writing.wait(10)
    r = threading.Thread(target=reader)
    r.start()
    r.join(10)  # the busy timeout is 30 s: a reader waiting for the lock would still be blocked here
    finished_while_writing = not r.is_alive()
    release.set()
    w.join(10)
    r.join(10)
    db.dispose()
    assert finished_while_writing
    assert seen == [0]  # a snapshot: the uncommitted row is not visible


def test_a_read_session_refuses_to_write(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    with pytest.raises(ReadOnlySessionError), db.read() as s:
        s.add(Member(id="m2", onchain_id="0x" + "22" * 32, name="m2", country="SG", roles=["finance"],
                     status="active"))
        s.flush()
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 0
    db.dispose()


def test_writers_of_one_process_queue_on_the_process_lock(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With SQLite's busy timeout at zero, a second writer would fail at once with 'database is
    locked'; queued on the process's writer lock it waits for the first and succeeds."""
    import settlement.store.db as dbmod

    migrate(sqlite_url)
    monkeypatch.setattr(dbmod, "SQLITE_BUSY_TIMEOUT_MS", 0)
    db = Database(sqlite_url)
    writing, errors = threading.Event(), []

    def write(member_id: str, hold: threading.Event | None) -> None:
        try:
            with db.transaction() as s:
                s.add(Member(id=member_id, onchain_id="0x" + member_id[-1] * 64, name=member_id, country="SG",
                             roles=["finance"], status="active"))
                s.flush()
                if hold is not None:
                    writing.set()
                    hold.wait(5)
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            errors.append(exc)

    release = threading.Event()
    first = threading.Thread(target=write, args=("m3", release))
    first.start()
    assert writing.wait(10)
    second = threading.Thread(target=write, args=("m4", None))
    second.start()
    second.join(0.5)
    waiting = second.is_alive()
    release.set()
    first.join(10)
    second.join(10)
    with db.read() as s:
        count = s.scalar(select(func.count()).select_from(Member))
    db.dispose()
    assert errors == []
    assert waiting  # it queued behind the first writer ...
    assert count == 2  # ... and then wrote


def _member(member_id: str) -> Member:
    return Member(id=member_id, onchain_id="0x" + member_id[-1] * 64, name=member_id, country="SG",
                  roles=["finance"], status="active")


def _on_thread(fn) -> object:  # type: ignore[no-untyped-def]
    """Run fn on a new thread (as FastAPI runs a dependency's enter and exit) and return its result
    or raise what it raised."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the call did not return"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


@pytest.mark.parametrize("fails", [False, True], ids=["commits", "raises"])
def test_a_transaction_entered_on_one_thread_and_left_on_another_frees_the_writer(sqlite_url: str,
                                                                                   fails: bool) -> None:
    """Issue 11: FastAPI enters a session dependency on one worker thread and leaves it on another.
    The writer slot must be freed whichever thread leaves, on commit and on an error (a 4xx), so
    the next writer (on a third thread) gets it instead of waiting forever."""
    migrate(sqlite_url)
    db = Database(sqlite_url)
    assert db.writer_gate is not None
    cm = db.transaction()
    session = _on_thread(cm.__enter__)
    assert not db.writer_gate.held  # nothing written yet: nobody queued behind this request
    _on_thread(lambda: (session.add(_member("m5")), session.flush()))  # type: ignore[attr-defined]
    assert db.writer_gate.held
    error = ValueError("a 4xx raised by the handler") if fails else None
    _on_thread(lambda: cm.__exit__(type(error) if error else None, error, None))
    assert not db.writer_gate.held
    with db.transaction() as s:  # this thread, the next writer: it gets the slot
        s.add(_member("m6"))
    with db.read() as s:
        ids = set(s.scalars(select(Member.id)))
    db.dispose()
    assert ids == ({"m6"} if fails else {"m5", "m6"})


def test_a_writer_never_waits_forever_for_the_slot(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer slot held past the bound fails the waiting writer like a busy SQLite does
    (OperationalError, answered 503 store-unavailable by the API), instead of hanging it; the
    holder still commits."""
    import settlement.store.db as dbmod
    from sqlalchemy.exc import OperationalError

    migrate(sqlite_url)
    monkeypatch.setattr(dbmod, "WRITER_WAIT_S_MAX", 0.2)
    db = Database(sqlite_url)
    with db.transaction() as holder:
        holder.add(_member("m7"))
        holder.flush()

        def second() -> None:
            with db.transaction() as s:
                s.add(_member("m8"))

        with pytest.raises(OperationalError, match="database is locked"):
            _on_thread(second)
    assert not db.writer_gate.held
    with db.read() as s:
        assert set(s.scalars(select(Member.id))) == {"m7"}
    db.dispose()
