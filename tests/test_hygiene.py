"""The suite leaves nothing behind (issue 11, item 8).

Proves, by running a small pytest session in a subprocess with this suite's conftest: a test
that takes a PostgreSQL database from the fixture and starts a process it never stops passes,
yet the session fails, names the leftover process and kills it, and the database is gone.
Before, every PostgreSQL test's database stayed in the cluster for good (1.3 GB per run of the
suite) and nothing noticed a leftover anvil or service.
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
from tests.conftest import postgres_url, pytest_sessionfinish  # noqa: F401  (the suite's hygiene)
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
