"""The real `ledger up` as a test's subprocess: started, waited for, stopped, and, whatever
happened to it, never left behind (itself and the anvil it started are found by a marker in
their environment and killed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from settlement.chain.anvil import free_port
from tests.processes import find_by_env, kill_all

__all__ = ["INSTANCE_ENV", "LedgerUp"]

INSTANCE_ENV = "LEDGER_TEST_INSTANCE"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.3


class LedgerUp:
    """``python -m ledger_api.cli up [--demo]`` with its own data dir and ports."""

    def __init__(self, home: Path, *, demo: bool = True, database_url: str | None = None,
                 rpc_url: str | None = None, api_port: int | None = None, anvil_port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.home = home
        self.demo = demo
        self.api_port = api_port or free_port()
        self.anvil_port = anvil_port or free_port()
        self.marker = uuid.uuid4().hex
        self.env = dict(os.environ, LEDGER_HOME=str(home), LEDGER_API_PORT=str(self.api_port),
                        LEDGER_ANVIL_PORT=str(self.anvil_port), **{INSTANCE_ENV: self.marker})
        for name, value in (("LEDGER_DATABASE_URL", database_url), ("LEDGER_RPC_URL", rpc_url)):
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.env.update(env or {})
        self.log_path = home.parent / f"{home.name}-up-{self.marker[:8]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> "LedgerUp":
        self.home.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "ledger_api.cli", "up"] + (["--demo"] if self.demo else [])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def run(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Start and wait for the process to exit by itself (a start that must be refused)."""
        self.start()
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> dict:
        """Wait until /health says ok with an empty outbox (the demo seeded and on chain)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ledger up exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            try:
                # The store's outbox is shown to the operator only (anonymous /health is public).
                key = (self.home / "operator-api-key").read_text().strip()
                health = httpx.get(f"{self.api}/health", timeout=5, headers={"Authorization": f"Bearer {key}"}).json()
                if health["status"] == "ok" and health["store"]["outbox_depth"] == 0:
                    return health
            except (httpx.HTTPError, OSError, ValueError, KeyError):
                pass
            time.sleep(POLL_S)
        raise AssertionError(f"ledger up not healthy within {timeout_s:g} s:\n{self.log()[-3000:]}")

    def demo_keys(self) -> dict[str, str]:
        """Member id -> API key, from demo.json and the operator's key file."""
        demo = json.loads((self.home / "demo.json").read_text())
        keys = {m["id"]: m["api_key"] for m in demo["members"]}
        keys.setdefault("operator", (self.home / "operator-api-key").read_text().strip())
        return keys

    def stop(self) -> int | None:
        """SIGTERM and wait for a clean exit; returns the exit code, or None when it had to be
        killed (a process that ignores SIGTERM is a finding: the caller asserts on it)."""
        if self.proc is None:
            return None
        code: int | None = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
        else:
            code = self.proc.returncode
        self.kill()
        return code

    def kill(self) -> None:
        """SIGKILL whatever of this instance still runs (the service, its anvil), and reap it."""
        kill_all(find_by_env(INSTANCE_ENV, self.marker))
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
