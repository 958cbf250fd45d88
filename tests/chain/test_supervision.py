"""The managed chain lives and dies with `ledger up` (issue 11, item 2), proved with the real command
as a subprocess, a real anvil and real HTTP:

- SIGKILL of the managed anvil: the service starts it again from its state file, the chain head
  moves again, and a settlement created afterwards is confirmed on chain;
- SIGKILL of the service's process alone: its anvil is gone a moment later (parent-death signal);
- a foreign anvil on the managed port (zero fees, like a second `make run`): `ledger up` refuses
  with a message naming the port, deploys nothing to it and changes no file of the data dir;
- this data dir's own leftover anvil (its service died while anvil was kept alive): reused, its
  chain kept, and from then on supervised like any managed anvil.

One `ledger up --demo` builds a deployed data dir for the module; each test runs on a copy of it
with its own ports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port, rpc_call

UP_TIMEOUT_S = 120.0
GONE_TIMEOUT_S = 10.0
BACK_TIMEOUT_S = 30.0


class Up:
    """One `ledger up --demo` subprocess on ``home``; its output goes beside the data dir, not in it."""

    def __init__(self, home: Path, api_port: int, rpc_port: int, demo: bool = True, log_name: str = "up") -> None:
        self.home, self.api_port, self.rpc_port = home, api_port, rpc_port
        self.api = f"http://127.0.0.1:{api_port}"
        self.rpc = f"http://127.0.0.1:{rpc_port}"
        self.log_path = home.parent / f"{home.name}-{log_name}.log"
        env = dict(os.environ, LEDGER_HOME=str(home), LEDGER_API_PORT=str(api_port),
                   LEDGER_ANVIL_PORT=str(rpc_port), LEDGER_LOG_FORMAT="text")
        env.pop("LEDGER_RPC_URL", None)
        env.pop("LEDGER_DATABASE_URL", None)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "up"] + (["--demo"] if demo else []),
                                         env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> dict:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"ledger up exited early:\n{self.output()[-3000:]}"
            # The store's figures are shown to the operator only (anonymous /health: status and chain).
            key_file = self.home / "operator-api-key"
            headers = {"Authorization": f"Bearer {key_file.read_text().strip()}"} if key_file.is_file() else {}
            try:
                health = httpx.get(f"{self.api}/health", headers=headers, timeout=2).json()
                if health["status"] == "ok" and health.get("store", {}).get("outbox_depth") == 0:
                    return health
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"not healthy in time:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def key(self, member: str) -> str:
        demo = json.loads((self.home / "demo.json").read_text())
        return next(m["api_key"] for m in demo["members"] if m["id"] == member)


def anvil_pids(home: Path) -> list[int]:
    """Live anvil processes running with ``home``'s state file (read from /proc, independently of
    the code under test)."""
    state = str(home / "anvil-state.json")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if state.encode() in args and stat.rsplit(")", 1)[1].split()[0] != "Z":
            pids.append(int(entry.name))
    return pids


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def head(rpc: str) -> int | None:
    try:
        return int(rpc_call(rpc, "eth_blockNumber", timeout_s=1.0), 16)
    except Exception:
        return None


# The instance lock (one service per data dir) is taken before the chain is looked at; it records
# who holds it, and is no data.
INSTANCE_LOCK_NAME = "ledger.lock"


def tree_digest(home: Path) -> dict[str, str]:
    """Every file of the data dir (hidden ones too) by relative path, with its mode and content hash;
    the instance lock aside."""
    out = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and path.name != INSTANCE_LOCK_NAME:
            data = path.read_bytes()
            out[str(path.relative_to(home))] = f"{oct(path.stat().st_mode)}:{hashlib.sha256(data).hexdigest()}"
    return out


def kill_leftovers(home: Path) -> None:
    for pid in anvil_pids(home):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def deployed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir after `ledger up --demo` and a clean stop: contracts deployed, demo seeded."""
    home = tmp_path_factory.mktemp("template") / "home"
    home.mkdir(mode=0o700)
    up = Up(home, free_port(), free_port())
    try:
        up.wait_healthy()
    finally:
        up.stop()
        kill_leftovers(home)
    assert up.proc.returncode == 0
    return home


@pytest.fixture
def home(deployed_home: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "home"
    shutil.copytree(deployed_home, copy)
    yield copy
    kill_leftovers(copy)


def test_a_killed_chain_is_restarted_and_the_pipeline_carries_on(home: Path) -> None:
    """SIGKILL the managed anvil: it is back (from its state file), and a settlement created
    afterwards is confirmed on chain."""
    up = Up(home, free_port(), free_port())
    try:
        up.wait_healthy()
        head_before = head(up.rpc)
        time.sleep(1.5)  # past anvil's 1 s state dump: the kill loses no block
        (first,) = anvil_pids(home)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: "anvil restarted" in up.output() and head(up.rpc) is not None, BACK_TIMEOUT_S,
                   "anvil restarted")
        assert [p for p in anvil_pids(home) if p != first]
        assert head(up.rpc) == head_before  # the same chain, from its state file
        assert "anvil was killed by signal 9" in up.output()

        r = httpx.post(f"{up.api}/v1/settlements", headers={"Authorization": f"Bearer {up.key('retailer')}",
                                                           "Idempotency-Key": "after-restart-1"},
                       json={"client_reference": "INV-RESTART-1", "payee": "supplier",
                             "source": {"value": 100000, "currency": "HKD"},
                             "target": {"value": 91400, "currency": "CNY"}, "fx_rate": "0.914",
                             "purpose_code": "GDDS", "payment_reference": "ORDER-R1"}, timeout=30)
        assert r.status_code in (200, 201, 202), r.text
        settlement_id = r.json()["id"]

        def confirmed() -> dict | None:
            s = httpx.get(f"{up.api}/v1/settlements/{settlement_id}",
                          headers={"Authorization": f"Bearer {up.key('retailer')}"}, timeout=10).json()
            return s["chain"] if s["chain"]["status"] == "confirmed" else None

        chain = wait_until(confirmed, BACK_TIMEOUT_S, "settlement confirmed after the restart")
        receipt = rpc_call(up.rpc, "eth_getTransactionReceipt", [chain["tx_hash"]])
        assert receipt is not None and int(receipt["status"], 16) == 1
        assert head(up.rpc) > head_before  # the head moves again
    finally:
        up.stop()
    assert up.proc.returncode == 0
    assert anvil_pids(home) == []


def test_sigkill_of_the_service_alone_takes_its_anvil_along(home: Path) -> None:
    up = Up(home, free_port(), free_port())
    try:
        up.wait_healthy()
        (chain_pid,) = anvil_pids(home)
        up.proc.send_signal(signal.SIGKILL)  # the service's process only, not its group
        up.proc.wait()
        wait_until(lambda: chain_pid not in anvil_pids(home), GONE_TIMEOUT_S, "anvil gone with its service")
    finally:
        up.stop()


@pytest.mark.parametrize("data_dir", ["deployed", "fresh"])
def test_a_foreign_anvil_on_the_managed_port_is_refused(home: Path, tmp_path: Path, data_dir: str) -> None:
    """Someone else's zero-fee anvil on the port (a developer's, another data dir's): refused with a
    message naming the port; nothing deployed to it, no file of the data dir changed."""
    if data_dir == "fresh":
        shutil.rmtree(home)
        home.mkdir(mode=0o700)
    rpc_port = free_port()
    foreign = ManagedAnvil(AnvilConfig(port=rpc_port, zero_fees=True, state_path=tmp_path / "other" / "anvil-state.json"))
    foreign.start()
    try:
        before = tree_digest(home)
        up = Up(home, free_port(), rpc_port)
        try:
            code = up.proc.wait(timeout=UP_TIMEOUT_S)
        finally:
            up.stop()
        out = up.output()
        assert code != 0, out
        assert f"127.0.0.1:{rpc_port}" in out and "not this data dir's chain" in out, out
        assert f"pid {foreign.process.pid}" in out, out  # what was found: the process, and its chain
        assert "chain id 31337 at block 0" in out, out
        assert head(foreign.rpc_url) == 0  # nothing deployed, nothing sent
        assert tree_digest(home) == before
        assert foreign.process.poll() is None  # left alone
    finally:
        foreign.stop()


LEFTOVER_SCRIPT = """
import os, sys
from pathlib import Path
from settlement.chain.anvil import AnvilConfig, ManagedAnvil
home, port = Path(sys.argv[1]), int(sys.argv[2])
ManagedAnvil(AnvilConfig(port=port, state_path=home / "anvil-state.json", log_path=home / "anvil.log",
                         pid_path=home / "anvil.pid", die_with_parent=False)).start()
os._exit(0)  # like a service killed while its anvil was kept alive
"""


def test_this_data_dirs_leftover_anvil_is_reused_and_then_supervised(home: Path) -> None:
    """The service died while its anvil was kept alive (simulated: a process starts anvil through the
    same code path, without the parent-death signal, with its pid file, and exits): the next
    `ledger up` checks it is this data dir's chain, keeps that chain, and supervises it again
    (it dies with the service)."""
    rpc_port = free_port()
    manifest_before = (home / "deployment.json").read_text()
    subprocess.run([sys.executable, "-c", LEFTOVER_SCRIPT, str(home), str(rpc_port)], check=True, timeout=60)
    (leftover,) = anvil_pids(home)
    rpc = f"http://127.0.0.1:{rpc_port}"
    rpc_call(rpc, "evm_mine")  # a block only the leftover has, not in a clean stop's dump
    head_before = head(rpc)
    up = Up(home, free_port(), rpc_port)
    try:
        up.wait_healthy()
        assert leftover not in anvil_pids(home)  # taken over, not adopted as it was
        assert "is this data dir's anvil" in up.output()
        assert head(up.rpc) >= head_before  # its chain kept, the extra block included
        assert (home / "deployment.json").read_text() == manifest_before  # nothing redeployed
        (chain_pid,) = anvil_pids(home)
        ppid = int(Path(f"/proc/{chain_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid == up.proc.pid  # the service's own child now
        up.proc.send_signal(signal.SIGKILL)
        up.proc.wait()
        wait_until(lambda: chain_pid not in anvil_pids(home), GONE_TIMEOUT_S, "anvil gone with its service")
    finally:
        up.stop()


def test_a_second_service_on_the_data_dir_does_not_take_the_running_chain(home: Path) -> None:
    """`ledger up` twice on one data dir: the second finds the first's anvil on the port, sees that
    its service is alive, and stops with a message; the first keeps running."""
    rpc_port = free_port()
    first = Up(home, free_port(), rpc_port)
    try:
        first.wait_healthy()
        (chain_pid,) = anvil_pids(home)
        second = Up(home, free_port(), rpc_port, log_name="second")
        try:
            code = second.proc.wait(timeout=UP_TIMEOUT_S)
        finally:
            second.stop()
        out = second.output()
        assert code != 0
        # Stopped by the instance lock, or (without it) by the managed chain's own check; either
        # way the message names the running service.
        assert f"pid {first.proc.pid}" in out, out
        assert anvil_pids(home) == [chain_pid]
        first.wait_healthy()
    finally:
        first.stop()
