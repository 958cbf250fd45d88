"""The settlements world (real anvil, real store, the API over real HTTP, a sealed consortium of
founding members) for own-key intents, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement.chain.anvil import ManagedAnvil
from tests.settlements.conftest import World, make_world


@pytest.fixture
def world(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[World]:
    w, server = make_world(tmp_path, database_url, anvil_automine.rpc_url)
    yield w
    w.http.close()
    server.stop()
    w.runtime.db.dispose()
