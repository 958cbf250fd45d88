"""The suite leaves nothing behind (issue 11, item 8).

Proves, by running a small pytest session in a subprocess with this suite's conftest: a test
that takes a PostgreSQL database from the fixture and starts a process it never stops passes,
yet the session fails, names the leftover process and kills it, and the database is gone.
Before, every PostgreSQL test's database stayed in the cluster for good (1.3 GB per run of the
suite) and nothing noticed a leftover anvil or service.

Under pytest-xdist the same holds, and one worker's end never touches another worker's live
processes: every worker process carries the run's id too (inherited from the controller), and
before, the first worker to finish killed the others (and what they had started) as leftovers.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import RUN_ENV, pg_admin_url
from tests.processes import find_by_env

pytest_plugins = ["pytester"]

INNER_CONFTEST = """
from tests.conftest import (  # noqa: F401  (the suite's hygiene, serial and under xdist)
    postgres_url, pytest_configure, pytest_configure_node, pytest_sessionfinish, pytest_testnodedown)
"""

INNER_TEST = """
import subprocess, sys
from pathlib import Path


def test_leaks_a_process_and_uses_a_database(postgres_url):
    Path("url.txt").write_text(postgres_url)
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
"""


def _database_exists(name: str) -> bool:
    engine = sa.create_engine(pg_admin_url())
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}) == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_session_drops_its_databases_and_fails_on_a_leftover_process(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    inner_run = uuid.uuid4().hex  # the inner session's own id: it must not touch this session's processes
    monkeypatch.setenv(RUN_ENV, inner_run)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    pg_admin_url()  # the inner session uses the same server
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 passed*"])  # the test itself passed ...
    result.stdout.fnmatch_lines(["*[[]hygiene[]] FAILED: 1 process(es) started by this test run*",
                                 "*time.sleep(300)*"])  # ... the session did not
    assert find_by_env(RUN_ENV, inner_run) == []  # and the leftover was killed
    name = sa.engine.make_url((pytester.path / "url.txt").read_text()).database
    assert name.startswith("t_") and not _database_exists(name)


INNER_XDIST_TEST = """
import os, subprocess, sys, time
from pathlib import Path

import pytest

SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]


@pytest.mark.xdist_group("leak")
def test_leaks_a_process_and_uses_a_database(postgres_url):
    Path("url.txt").write_text(postgres_url)
    leak = subprocess.Popen(SLEEP, start_new_session=True)
    Path("leak.pid").write_text(str(leak.pid))


@pytest.mark.xdist_group("hold")
def test_holds_a_process_while_the_other_worker_ends():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(301)"], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the other worker's end killed its leftover
            pid = Path("leak.pid").read_text() if Path("leak.pid").exists() else ""
            stat = Path(f"/proc/{pid}/stat")
            if pid and (not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the other worker's leftover was never killed")
        assert child.poll() is None, "another worker's end killed this worker's live process"
    finally:
        child.kill()
        child.wait()
"""


@pytest.mark.postgres
def test_under_xdist_each_worker_kills_only_its_own_leftovers_and_the_run_fails(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    inner_run = uuid.uuid4().hex
    monkeypatch.setenv(RUN_ENV, inner_run)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    pg_admin_url()
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_XDIST_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadgroup",
                                           timeout=240)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 passed*"])  # both tests passed: neither worker was killed ...
    result.stdout.fnmatch_lines(["*[[]hygiene[]] FAILED: 1 process(es) started by this test run*",
                                 "*gw? pid *time.sleep(300)*"])  # ... the leak was reported by its worker
    assert "time.sleep(301)" not in result.stdout.str()
    assert find_by_env(RUN_ENV, inner_run) == []  # nothing of the inner run is left
    name = sa.engine.make_url((pytester.path / "url.txt").read_text()).database
    assert name.startswith("t_") and not _database_exists(name)
