"""One object per :class:`~settlement.store.db.Database` in this process (a cache, a writer), made on
first use and dropped when the Database is."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from settlement.store.db import Database

T = TypeVar("T")


class PerDatabase(Generic[T]):
    """``getter(db)``: the object of ``db``, made by ``factory()`` the first time; threads asking at
    once share one. The Database is held weakly, so its object goes with it."""

    def __init__(self, factory: Callable[[], T], *, fresh_after_fork: bool) -> None:
        self._factory = factory
        self._forget()
        if fresh_after_fork:
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._objects: weakref.WeakKeyDictionary[Database, T] = weakref.WeakKeyDictionary()

    def __call__(self, db: Database) -> T:
        with self._lock:
            found = self._objects.get(db)
            if found is None:
                found = self._objects[db] = self._factory()
            return found


def per_database(factory: Callable[[], T], *, fresh_after_fork: bool = False) -> PerDatabase[T]:
    """A getter of one ``factory()`` object per Database. ``fresh_after_fork``: a forked child starts
    with none (for objects that own threads, which a child does not inherit)."""
    return PerDatabase(factory, fresh_after_fork=fresh_after_fork)


__all__ = ["PerDatabase", "per_database"]
