"""Fixtures: a served consortium on a private anvil (its clock is moved by some tests), on SQLite
and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import World, make_world


@pytest.fixture
def world(tmp_path: Path, database_url: str, anvil_factory) -> Iterator[World]:  # type: ignore[no-untyped-def]
    node = anvil_factory()
    w, stop = make_world(tmp_path, database_url, node.rpc_url, serve=True)
    yield w
    for item in reversed(stop):
        (item.close if hasattr(item, "close") else item.stop)()
    w.runtime.db.dispose()
