"""Group commit for callbacks: one writer thread per database writes the deliveries that are
waiting in one transaction, and hands each its result only after that transaction committed.

Why: per delivery, the transaction (begin, commit, a session, a connection) and each statement's
fixed cost weighed more than the delivery's own rows, and on SQLite every writer queued for the
one write lock anyway. The writer takes what is queued when it is free, at most
:data:`~settlement.domains.payments.record.GROUP_ITEMS_MAX` deliveries, and writes them with
:func:`~settlement.domains.payments.record.record_group`. If the group fails, nothing of it was
committed; each of its deliveries is then written in its own transaction
(:func:`~settlement.domains.payments.record.record_one`), so a bad delivery fails alone and is the only
one refused (the provider retries it).

Under concurrent load (the previous group held more than one delivery) the writer, once it has
handed out a group's results, waits up to :data:`GROUP_LINGER_S` for :data:`GROUP_LINGER_ITEMS`
deliveries before it writes again, much as PostgreSQL's ``commit_delay`` does: fewer, larger groups
cost less per delivery (measured in ``bench/bench_callbacks.py``). A lone delivery is written at
once.

The queue is bounded (:data:`QUEUE_ITEMS_MAX`): when it is full, a delivery is refused with the
provider's retry answer rather than waiting without bound. The thread starts with the first
delivery and ends after :data:`IDLE_EXIT_S` without one (so a test's short-lived runtime leaves
nothing running); it holds no reference to a runtime between groups. Results go back to an event
loop with one wake-up per group and loop (``call_soon_threadsafe``), not one per delivery.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from settlement.core.errors import CallbackStoreUnavailableError
from settlement.domains.payments.record import GROUP_ITEMS_MAX, Recorded, record_group, record_one
from settlement.runtime import Runtime
from settlement.store.db import Database
from settlement.store.per_database import per_database

log = logging.getLogger("ledger.callbacks")

__all__ = ["GROUP_LINGER_ITEMS", "GROUP_LINGER_S", "IDLE_EXIT_S", "QUEUE_ITEMS_MAX", "GroupWriter", "writer_for"]

QUEUE_ITEMS_MAX = 4096
IDLE_EXIT_S = 2.0
GROUP_LINGER_S = 0.004
GROUP_LINGER_ITEMS = 8

_Outcome = tuple[Recorded | None, BaseException | None]


@dataclass(frozen=True)
class _Pending:
    runtime: Runtime
    values: Mapping[str, Any]
    # Either a concurrent Future (a caller in a thread), or an asyncio Future with its loop.
    future: Future[Recorded] | asyncio.Future[Recorded]
    loop: asyncio.AbstractEventLoop | None = None

    def abandoned(self) -> bool:
        """The caller gave up (its future cancelled, or timed out): nobody would answer the
        provider, which retries, so the delivery is not written. From here on a thread's future
        cannot be cancelled; an event loop's may still be (it is then written all the same, and
        the provider's retry is a duplicate)."""
        if self.loop is None:
            return not self.future.set_running_or_notify_cancel()  # type: ignore[union-attr]
        return self.future.done()  # read from another thread: at worst written anyway


def _settle(future: Future[Recorded] | asyncio.Future[Recorded], outcome: _Outcome) -> None:
    if future.done():  # an asyncio waiter that timed out in the meantime
        return
    recorded, error = outcome
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(recorded)  # type: ignore[arg-type]


def _settle_many(settled: list[tuple[asyncio.Future[Recorded], _Outcome]]) -> None:
    for future, outcome in settled:
        _settle(future, outcome)


class GroupWriter:
    """The group-commit writer of one database (see the module doc). :meth:`submit` is safe from
    any thread, :meth:`submit_async` from an event loop; the future resolves only after the
    delivery's transaction committed (to :class:`~settlement.domains.payments.record.Recorded`), or with
    CallbackStoreUnavailableError."""

    def __init__(self, *, queue_items_max: int = QUEUE_ITEMS_MAX, group_items_max: int = GROUP_ITEMS_MAX,
                 idle_exit_s: float = IDLE_EXIT_S, linger_s: float = GROUP_LINGER_S,
                 linger_items: int = GROUP_LINGER_ITEMS) -> None:
        if not 0 < group_items_max <= GROUP_ITEMS_MAX:
            raise ValueError(f"group_items_max must be 1..{GROUP_ITEMS_MAX}")
        if not 0 <= linger_s <= 1.0:
            raise ValueError("linger_s must be 0..1 s")
        self.queue_items_max = queue_items_max
        self.group_items_max = group_items_max
        self.idle_exit_s = idle_exit_s
        self.linger_s = linger_s
        self.linger_items = min(linger_items, group_items_max)
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Pending] = deque()
        self._thread: threading.Thread | None = None
        self._waiting_for = 0  # the writer sleeps until the queue holds this many (0: it is busy)
        self._last_group_items = 0
        # Figures for tests and benchmarks: groups written, deliveries in them, failed groups.
        self.groups = self.grouped = self.fallbacks = 0

    def submit(self, runtime: Runtime, values: Mapping[str, Any]) -> Future[Recorded]:
        future: Future[Recorded] = Future()
        self._enqueue(_Pending(runtime, values, future))
        return future

    def submit_async(self, runtime: Runtime, values: Mapping[str, Any]) -> asyncio.Future[Recorded]:
        """:meth:`submit` for a coroutine on the running event loop (the returned future is that
        loop's)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        self._enqueue(_Pending(runtime, values, future, loop))
        return future

    def _enqueue(self, item: _Pending) -> None:
        with self._cond:
            if len(self._queue) >= self.queue_items_max:
                raise CallbackStoreUnavailableError("too many callbacks waiting to be recorded")
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="callback-writer", daemon=True)
                self._thread.start()
            elif self._waiting_for and len(self._queue) >= self._waiting_for:
                self._cond.notify()  # a busy writer finds the queue when it is done: no wake-up

    def _wait_for(self, items: int, timeout_s: float) -> None:
        """Sleep (lock released) until ``items`` are queued or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        self._waiting_for = items
        try:
            while len(self._queue) < items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
        finally:
            self._waiting_for = 0

    def _take(self) -> list[_Pending] | None:
        """The next group (same runtime, arrival order), or None when idle long enough to stop."""
        with self._cond:
            if self._last_group_items > 1 and self.linger_s > 0:
                # Under load: the callers just answered send their next deliveries, others are
                # being verified; gather them (up to linger_items) instead of writing one by one.
                self._wait_for(self.linger_items, self.linger_s)
            if not self._queue:
                self._last_group_items = 0  # the load has passed: a lone delivery is written at once
                self._wait_for(1, self.idle_exit_s)
                if not self._queue:
                    self._thread = None  # under the lock: the next submit starts a new thread
                    return None
            group: list[_Pending] = []
            runtime = self._queue[0].runtime
            while self._queue and len(group) < self.group_items_max and self._queue[0].runtime is runtime:
                item = self._queue.popleft()
                if not item.abandoned():
                    group.append(item)
            self._last_group_items = len(group)
            return group

    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            try:
                outcomes = self._write(group) if group else []
            except Exception:  # a bug here must neither stop the writer nor leave a caller waiting
                log.exception("the callback writer failed on a group of %d", len(group))
                outcomes = [(None, CallbackStoreUnavailableError("the callback could not be recorded"))] * len(group)
            self._deliver(group, outcomes)
            del group, outcomes  # no runtime is kept alive between groups

    def _write(self, group: list[_Pending]) -> list[_Outcome]:
        try:
            results = record_group(group[0].runtime, [item.values for item in group])
        except Exception as exc:  # noqa: BLE001 - nothing of the group was committed; each is retried alone
            self.fallbacks += 1
            log.info("a group of %d callbacks failed (%s); writing each in its own transaction",
                     len(group), type(exc).__name__)
            return [self._write_one(item) for item in group]
        self.groups += 1
        self.grouped += len(group)
        return [(recorded, None) for recorded in results]

    @staticmethod
    def _write_one(item: _Pending) -> _Outcome:
        try:
            return record_one(item.runtime, item.values), None
        except CallbackStoreUnavailableError as exc:
            return None, exc
        except Exception:  # never leave a caller waiting
            log.exception("callback %s/%s could not be recorded", item.values.get("provider"),
                          item.values.get("account"))
            return None, CallbackStoreUnavailableError("the callback could not be recorded")

    @staticmethod
    def _deliver(group: list[_Pending], outcomes: list[_Outcome]) -> None:
        """Hand out the results (after the commit): directly to threads, and to each event loop
        in one call."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Recorded], _Outcome]]] = {}
        for item, outcome in zip(group, outcomes, strict=True):
            if item.loop is None:
                _settle(item.future, outcome)
            else:
                by_loop.setdefault(item.loop, []).append((item.future, outcome))  # type: ignore[arg-type]
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_many, settled)
            except RuntimeError:  # the loop was closed: nobody is waiting any more
                log.warning("an event loop closed before %d callback results could be handed back", len(settled))


# A forked child has none of the parent's threads: its writers start afresh on first use.
_writers = per_database(GroupWriter, fresh_after_fork=True)


def writer_for(db: Database) -> GroupWriter:
    """The group writer of ``db`` (one per Database object in this process)."""
    return _writers(db)
