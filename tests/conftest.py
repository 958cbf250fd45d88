"""Shared fixtures: real anvil chains and real databases (SQLite and PostgreSQL).

PostgreSQL: `make test` starts a private server and sets LEDGER_TEST_DATABASE_URL. Run pytest
directly and this file starts it the same way (scripts/test-postgres.sh). It is never skipped: a
test that asks for PostgreSQL and cannot get it fails.

Hygiene (issue 11, item 8): every database this suite creates is dropped, by the fixture that
asked for it when the test ends, else when the session ends; every process the suite starts
carries ``LEDGER_TEST_RUN=<this run's id>`` in its environment (inherited by its own children,
such as the anvil of a `ledger up`), and when the session ends any still running is killed and
the run fails, naming them.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from tests.processes import find_by_env, kill_all

ROOT = Path(__file__).resolve().parent.parent

# Set before anything is started: every child process of this run inherits it.
RUN_ENV = "LEDGER_TEST_RUN"
os.environ.setdefault(RUN_ENV, uuid.uuid4().hex)
RUN_ID = os.environ[RUN_ENV]

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


@pytest.fixture
def restartable_chain(tmp_path: Path) -> Iterator[callable]:
    """``restartable_chain(block_time_s=None)``: a started anvil with a state file that the test
    can ``save()`` and ``crash()`` back to (tests.chain.helpers.RestartableChain); stopped after
    the test."""
    from tests.chain.helpers import RestartableChain

    made: list[RestartableChain] = []

    def make(block_time_s: int | None = None) -> RestartableChain:
        folder = tmp_path / f"chain-{len(made)}"
        folder.mkdir()
        made.append(RestartableChain(folder, block_time_s=block_time_s))
        made[-1].start()
        return made[-1]

    yield make
    for chain in made:
        chain.close()


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


_CREATED_DATABASES: set[str] = set()  # created by this run and not dropped yet


def fresh_postgres_url() -> str:
    """Create an empty database on the test server and return its URL. It is dropped when the
    session ends (the fixtures below drop theirs when their test ends)."""
    import sqlalchemy as sa

    admin = pg_admin_url()
    name = "t_" + uuid.uuid4().hex[:16]
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    _CREATED_DATABASES.add(name)
    return admin.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    """Drop a database made by fresh_postgres_url, whoever is still connected (WITH FORCE)."""
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    if name not in _CREATED_DATABASES:
        raise ValueError(f"{name} was not created by this test run")
    engine = sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
    _CREATED_DATABASES.discard(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL (dropped after the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    url = fresh_postgres_url()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = fresh_postgres_url()
    yield url
    drop_postgres_database(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave nothing behind: drop what is left of this run's databases; kill this run's processes
    still running, and fail the run naming them (a test or fixture forgot to stop them)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(text: str) -> None:
        if reporter is not None:
            reporter.write_line(text, red=True, bold=True)
        else:
            print(text)

    for name in sorted(_CREATED_DATABASES):
        try:
            drop_postgres_database(pg_admin_url().rsplit("/", 1)[0] + "/" + name)
        except Exception as exc:  # noqa: BLE001 - reported, the next ones still dropped
            say(f"[hygiene] could not drop test database {name}: {exc}")
    leftovers = find_by_env(RUN_ENV, RUN_ID)
    if leftovers:
        kill_all(leftovers)
        lines = "\n".join(f"  pid {p.pid}: {p.cmdline}" for p in leftovers)
        say(f"[hygiene] FAILED: {len(leftovers)} process(es) started by this test run were still running "
            f"at its end (killed now):\n{lines}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
