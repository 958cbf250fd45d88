"""Shared fixtures: real anvil chains and real databases (SQLite and PostgreSQL).

PostgreSQL: `make test` starts a private server and sets LEDGER_TEST_DATABASE_URL. Run pytest
directly and this file starts it the same way (scripts/test-postgres.sh). It is never skipped: a
test that asks for PostgreSQL and cannot get it fails.

Hygiene (issue 11, item 8): every database this suite creates is dropped, by the fixture that
asked for it when the test ends, else when the session ends; every process the suite starts
carries ``LEDGER_TEST_RUN=<this run's id>`` in its environment (inherited by its own children,
such as the anvil of a `ledger up`), and when the session ends any still running is killed and
the run fails, naming them.

In parallel (pytest-xdist, ``make test`` runs ``-n 3 --dist loadgroup``): the controller draws the
run's id and hands it to every worker (``workerinput``), so all carry the same one; each worker
also marks what it starts with ``LEDGER_TEST_WORKER=<gwN>`` and, at its own end, kills and reports
only its own leftovers (never another worker's live processes); the controller fails the run on
any worker's report and, once all workers are done, on whatever of this run is still running.
Each worker drops only the databases it created (names are random, so unique across workers).
Slow tests run first (``pytest.mark.slow``, longest first) so the workers finish together.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from tests.processes import Proc, find_by_env, kill_all

ROOT = Path(__file__).resolve().parent.parent

# Set before anything is started: every child process of this run inherits it. Under xdist the
# controller's id is the one: workers inherit it and pytest_configure checks it against workerinput.
RUN_ENV = "LEDGER_TEST_RUN"
os.environ.setdefault(RUN_ENV, uuid.uuid4().hex)
RUN_ID = os.environ[RUN_ENV]
# Under xdist, which worker started a process (<run id>/gw0, ...): set in the worker after it
# started, so the worker processes themselves do not carry it, only what they start.
WORKER_ENV = "LEDGER_TEST_WORKER"
_LEFTOVERS_KEY = "ledger_test_leftovers"  # a worker's report to the controller (workeroutput)
_WORKER_REPORTS: list[str] = []  # on the controller: the leftovers the workers reported

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


def _worker_id(config: pytest.Config) -> str | None:
    """This process's xdist worker id (gw0, ...), None on the controller or in a serial run."""
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """Controller (xdist): every worker gets this run's id."""
    node.workerinput[RUN_ENV] = RUN_ID  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    global RUN_ID
    worker = _worker_id(config)
    if worker is None:
        # Not a worker (a serial run, or the controller before it starts its workers): a mark
        # inherited from an outer run (a pytest run by a test) means nothing here.
        os.environ.pop(WORKER_ENV, None)
        return
    # The controller's id, whatever this worker's environment said (it inherits the controller's).
    RUN_ID = os.environ[RUN_ENV] = str(config.workerinput[RUN_ENV])  # type: ignore[attr-defined]
    os.environ[WORKER_ENV] = _worker_mark(worker)


def _worker_mark(worker: str) -> str:
    """The run's id with the worker's: a pytest run by a test (tests/test_hygiene.py) inherits an
    outer worker's mark, which must never pass for one of its own."""
    return f"{RUN_ID}/{worker}"


def _slow_seconds(item: pytest.Item) -> float:
    """How long a test is expected to take: ``pytest.mark.slow(seconds=...)``; 0 when not slow."""
    mark = item.get_closest_marker("slow")
    if mark is None:
        return 0.0
    return float(mark.kwargs.get("seconds", 60))


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in ("module", "class", "package") for defs in info.name2fixturedefs.values())


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For pytest-xdist's ``--dist loadgroup``: the tests of a module with a module-scoped fixture
    (a deployed contract, a `ledger up`) go to one worker together (``xdist_group`` named after the
    module, unless the test names its own group), so the fixture is set up once, not once per
    worker, and a module's last test still sees what the ones before it did (the registry's
    ``test_zz_every_custom_error...``). Then slow tests first, longest first (a stable sort: the
    rest keep their order), so that no worker starts a three-minute test when the others are
    nearly done. Every worker collects the same order (xdist checks it)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _uses_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    items.sort(key=lambda item: -_slow_seconds(item))


@pytest.hookimpl(tryfirst=True)  # before xdist sends the ids to the controller
def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker under ``--dist loadgroup``: give each grouped test the ``@group`` suffix the
    controller groups by. xdist 3.8 sets ``item._nodeid``, which pytest >= 9.2 no longer reads
    (the id is ``item._id``), so without this every group was silently spread over the workers."""
    config = session.config
    if _worker_id(config) is None or not config.getvalue("loadgroup"):
        return
    for item in session.items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and not item.nodeid.endswith("@" + "_".join(names)) and hasattr(item, "_id"):
            item._id = type(item._id).parse(f"{item.nodeid}@{'_'.join(names)}")


def _own_leftovers(config: pytest.Config) -> list[Proc]:
    """This run's processes still running that this process is answerable for: all of the run's in
    a serial run; a worker's own only; on the controller, those of any worker (once all are done)."""
    found = find_by_env(RUN_ENV, RUN_ID)
    worker = _worker_id(config)
    if worker is not None:
        return [p for p in found if p.env.get(WORKER_ENV) == _worker_mark(worker)]
    if config.pluginmanager.hasplugin("dsession"):
        # the controller: the worker processes carry the run id too (inherited), never the worker mark
        return [p for p in found if p.env.get(WORKER_ENV, "").startswith(f"{RUN_ID}/")]
    return found


def pytest_testnodedown(node: object, error: object) -> None:
    """Controller (xdist): keep what a worker reported as left over at its end."""
    output = getattr(node, "workeroutput", None) or {}
    _WORKER_REPORTS.extend(output.get(_LEFTOVERS_KEY, []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave nothing behind: drop what is left of this run's databases; kill this run's processes
    still running, and fail the run naming them (a test or fixture forgot to stop them)."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")

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
    leftovers = _own_leftovers(config)
    lines = [f"pid {p.pid}: {p.cmdline}" for p in leftovers]
    if leftovers:
        kill_all(leftovers)
    worker = _worker_id(config)
    if worker is not None:
        # A worker's own exit status never reaches the controller: report there (workeroutput is
        # sent after this hook).
        config.workeroutput[_LEFTOVERS_KEY] = [f"{worker} {line}" for line in lines]  # type: ignore[attr-defined]
        return
    lines = _WORKER_REPORTS + lines
    if lines:
        text = "\n".join(f"  {line}" for line in lines)
        say(f"[hygiene] FAILED: {len(lines)} process(es) started by this test run were still running "
            f"at its end (killed now):\n{text}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
