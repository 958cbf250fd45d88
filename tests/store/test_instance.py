"""One service per data dir; busy ports reported before anything starts (issue 11, item 3).

Proves with the real `ledger up`: a second one on a data dir a running one holds (managed chain,
and an external node through LEDGER_RPC_URL) exits at once, non-zero, with a message naming the
data dir and the holder, and changes nothing there (same bytes and mtimes of every file it could
write: demo.json, the deployment manifest, the keys, the store); the first keeps serving. A busy
API port is reported before the chain is started or anything written. The lock dies with its
holder: after a SIGKILL the next start gets it.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger_api.cli.instance import LOCK_FILE_NAME, InstanceLock, InstanceLockedError
from settlement.chain.anvil import ManagedAnvil
from tests.governance.support import test_governance
from tests.store.ledger_up import LedgerUp

REFUSAL_TIMEOUT_S = 30.0  # generous: the refusal comes before any start-up work
# The anvil state file is left out: the running anvil rewrites it now and then by itself; the
# chain's head block shows instead that nothing was sent to the chain.
WATCHED = ("demo.json", "deployment.json", "kek", "operator.key", "operator-api-key", LOCK_FILE_NAME)


def _snapshot(home: Path) -> dict[str, tuple[str, int]]:
    """Hash and mtime (ns) of each file a start could write."""
    found = {}
    for name in WATCHED:
        path = home / name
        if path.exists():
            found[name] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return found


def _head(up: LedgerUp) -> int:
    return httpx.get(f"{up.api}/health", timeout=10).json()["chain"]["head_block"]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _external_env(node: ManagedAnvil) -> dict[str, str]:
    params, _signers = test_governance()
    return {"LEDGER_GOVERNORS": ",".join(f"{g.member_id}:{g.address}" for g in params.governors),
            "LEDGER_GOVERNANCE_THRESHOLD": "2", "LEDGER_GOVERNANCE_DELAY_S": "30"}


@pytest.fixture
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerUp]:
    """A running `ledger up`: on its managed anvil, or (param "external") on a node of the test's."""
    if request.param == "external":
        node = request.getfixturevalue("anvil_factory")()
        up = LedgerUp(tmp_path / "home", demo=False, rpc_url=node.rpc_url, env=_external_env(node))
    else:
        up = LedgerUp(tmp_path / "home")
    up.start()
    try:
        up.wait_ready()
        yield up
    finally:
        up.kill()


@pytest.mark.parametrize("running", ["managed", "external"], indirect=True)
@pytest.mark.parametrize("same_ports", [True, False], ids=["same-ports", "own-ports"])
def test_a_second_ledger_up_on_the_same_data_dir_stops_and_changes_nothing(running: LedgerUp, same_ports: bool) -> None:
    before, head_before = _snapshot(running.home), _head(running)
    assert "deployment.json" in before and LOCK_FILE_NAME in before
    second = LedgerUp(running.home, demo=True, rpc_url=running.env.get("LEDGER_RPC_URL"),
                      api_port=running.api_port if same_ports else None,
                      anvil_port=running.anvil_port if same_ports else None,
                      env={k: v for k, v in running.env.items() if k.startswith("LEDGER_GOVERN")})
    code = second.run(timeout_s=REFUSAL_TIMEOUT_S)
    out = second.log()
    assert code == 1, out
    assert "another ledger process is already running on the data dir" in out
    assert str(running.home.resolve()) in out and f"pid {running.proc.pid}" in out
    assert "`ledger up`" in out
    assert _snapshot(running.home) == before  # no demo.json written, nothing redeployed or re-keyed
    if not same_ports:  # it started nothing: no API, no anvil of its own
        assert not _listening(second.api_port) and not _listening(second.anvil_port)
    assert _head(running) == head_before  # nothing deployed or sent
    assert httpx.get(f"{running.api}/health", timeout=10).json()["status"] == "ok"  # the first serves on


def test_a_busy_api_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        up = LedgerUp(home, api_port=squatter.getsockname()[1])
        code = up.run(timeout_s=REFUSAL_TIMEOUT_S)
    out = up.log()
    assert code == 1, out
    assert f"the API port 127.0.0.1:{up.api_port} is already in use" in out and "LEDGER_API_PORT" in out
    assert not _listening(up.anvil_port)  # no chain started
    assert sorted(p.name for p in home.iterdir()) == [LOCK_FILE_NAME]  # no store, keys or manifest


def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    """A SIGKILLed service leaves its lock file, not its lock: the next start can take it."""
    home = tmp_path / "home"
    first = LedgerUp(home).start()
    try:
        first.wait_ready()
        with pytest.raises(InstanceLockedError):
            InstanceLock(home).acquire("up")
    finally:
        first.kill()  # SIGKILL, the service and its anvil
    assert (home / LOCK_FILE_NAME).exists()
    InstanceLock(home).acquire("up").release()


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with InstanceLock(tmp_path).acquire("up", api="http://127.0.0.1:1") as held:
        with pytest.raises(InstanceLockedError, match="pid"):
            InstanceLock(tmp_path).acquire("worker")
        assert held.held
    InstanceLock(tmp_path).acquire("worker").release()
