"""schemathesis over every operation of ``/openapi.json`` against a real ``ledger up --demo``, with
the operator's key, a finance member's key and no key (issue 15, item 5): no server error, no
undocumented status, no undeclared content type, no answer that breaks its schema.

Bounded: ``MAX_EXAMPLES`` per operation and phase (examples, coverage, fuzzing), one worker, a
fixed seed per caller, so a run takes about a minute per caller on one core. The schemathesis
command line is run as it is (its own report is the assertion message).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .demo_service import DemoService, start_demo

pytest.importorskip("schemathesis")

MAX_EXAMPLES = 3
REQUEST_TIMEOUT_S = 30
SCHEMA_BUILD_TIMEOUT_S = 120
RUN_TIMEOUT_S = 600
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEEDS = {"operator": 20261205, "retailer": 20261206, None: 20261207}
# Without a key every operation but the public ones answers 401 (or 429) before it reads its input:
# random bodies (the fuzzing phase) add nothing the coverage phase's edge cases do not, in half the
# time. The public operations (the providers' callbacks) ignore the key, and are fuzzed in full by
# the two runs with a key.
PHASES = {"operator": "examples,coverage,fuzzing", "retailer": "examples,coverage,fuzzing", None: "examples,coverage"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoService]:
    s = start_demo(tmp_path_factory.mktemp("fuzz") / "home")
    try:
        # The service builds its OpenAPI document on the first request for it (then keeps it):
        # built here, unhurried, not inside schemathesis's 10 s schema-loading timeout, which a
        # loaded machine (the suite runs in parallel) can exceed.
        httpx.get(f"{s.api}/openapi.json", timeout=SCHEMA_BUILD_TIMEOUT_S).raise_for_status()
        yield s
    finally:
        s.stop()


@pytest.mark.slow(seconds=120)  # the three together: one worker, one service
@pytest.mark.timeout(900)
@pytest.mark.parametrize("member", ["operator", "retailer", None], ids=["operator", "finance", "no-key"])
def test_schemathesis_finds_nothing(service: DemoService, member: str | None, tmp_path: Path) -> None:
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{service.api}/openapi.json",
               "--max-examples", str(MAX_EXAMPLES), "--checks", CHECKS, "--workers", "1",
               "--phases", PHASES[member], "--request-timeout", str(REQUEST_TIMEOUT_S),
               "--seed", str(SEEDS[member]), "--no-color",
               # The SSE stream never ends by design (an hour per connection): it has its own tests
               # (tests/events/test_stream.py); fuzzed here it would only time out.
               "--exclude-operation-id", "events.stream"]
    if member is not None:
        command += ["-H", f"Authorization: Bearer {service.key(member)}"]
    if not Path(command[0]).exists():
        command[0:1] = [sys.executable, "-m", "schemathesis.cli"]
    # The no-key run's failures are throttled (429, declared); a valid key is never throttled.
    env = dict(os.environ, NO_COLOR="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, cwd=tmp_path)
    report = done.stdout[-12000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert " passed" in report and "failure" not in report.split("SUMMARY")[-1], report
