"""Shared fixtures: real anvil chains and real databases (SQLite and PostgreSQL).

PostgreSQL: `make test` starts a private server and sets LEDGER_TEST_DATABASE_URL. Run pytest
directly and this file starts it the same way (scripts/test-postgres.sh). It is never skipped: a
test that asks for PostgreSQL and cannot get it fails.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port

ROOT = Path(__file__).resolve().parent.parent

# anvil's first dev account (public test key of the default mnemonic): funded on an automine chain
# with fees, used only by tests that need ETH.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def start_anvil(tmp_path: Path | None = None, **kwargs: object) -> ManagedAnvil:
    config = AnvilConfig(port=free_port(), **kwargs)  # type: ignore[arg-type]
    if tmp_path is not None and config.log_path is None:
        config.log_path = tmp_path / f"anvil-{config.port}.log"
    return ManagedAnvil(config).start()


@pytest.fixture(scope="session")
def anvil_automine() -> Iterator[ManagedAnvil]:
    """A zero-fee anvil with automine, shared by the session (tests use fresh deployments)."""
    node = start_anvil()
    yield node
    node.stop()


@pytest.fixture
def anvil_factory(tmp_path: Path) -> Iterator[callable]:
    """Start extra anvils (interval mining, fees, persisted state); all stopped after the test."""
    started: list[ManagedAnvil] = []

    def make(**kwargs: object) -> ManagedAnvil:
        node = start_anvil(tmp_path, **kwargs)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


_PG_ADMIN_URL: str | None = None


def pg_admin_url() -> str:
    """URL of the test PostgreSQL server's maintenance DB, starting the server if needed."""
    global _PG_ADMIN_URL
    if _PG_ADMIN_URL is None:
        url = os.environ.get("LEDGER_TEST_DATABASE_URL")
        if not url:
            url = subprocess.run(
                [str(ROOT / "scripts" / "test-postgres.sh"), "start"],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
            os.environ["LEDGER_TEST_DATABASE_URL"] = url
        _PG_ADMIN_URL = url
    return _PG_ADMIN_URL


def fresh_postgres_url() -> str:
    """Create an empty database on the test server and return its URL."""
    import sqlalchemy as sa

    admin = pg_admin_url()
    name = "t_" + uuid.uuid4().hex[:16]
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return fresh_postgres_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def postgres_url() -> str:
    return fresh_postgres_url()
