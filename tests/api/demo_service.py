"""A real `ledger up --demo` for the tests that need the whole service as a user meets it: the
matrix test, the schema fuzzer and the README tour. Each caller starts its own (a temp
LEDGER_HOME, free ports), reads demo.json, and stops it (SIGTERM, then kill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from settlement.chain.anvil import free_port

UP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


@dataclass
class DemoService:
    """A running `ledger up --demo`: its URLs, its home and demo.json."""

    home: Path
    api: str
    rpc: str
    demo: dict[str, Any]
    proc: subprocess.Popen

    def key(self, member_id: str) -> str:
        return next(m["api_key"] for m in self.demo["members"] if m["id"] == member_id)

    @property
    def members(self) -> list[str]:
        return [m["id"] for m in self.demo["members"]]

    def env(self) -> dict[str, str]:
        """The environment a CLI command or a script run against this service needs."""
        return dict(os.environ, LEDGER_HOME=str(self.home), LEDGER_API_PORT=self.api.rsplit(":", 1)[1],
                    LEDGER_RPC_URL=self.rpc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_demo(home: Path) -> DemoService:
    """Start `ledger up --demo` in ``home`` and wait until it is healthy with an empty outbox."""
    home.mkdir(parents=True, exist_ok=True)
    api_port, rpc_port = free_port(), free_port()
    env = dict(os.environ, LEDGER_HOME=str(home), LEDGER_API_PORT=str(api_port), LEDGER_ANVIL_PORT=str(rpc_port))
    env.pop("LEDGER_RPC_URL", None)
    env.pop("LEDGER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "up", "--demo"], env=env,
                            stdout=open(home / "up.log", "ab"), stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{api_port}"
    service = DemoService(home=home, api=api, rpc=f"http://127.0.0.1:{rpc_port}", demo={}, proc=proc)
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise AssertionError("ledger up exited early:\n" + (home / "up.log").read_text()[-3000:])
            if time.monotonic() > deadline:
                raise AssertionError("ledger up --demo not healthy in time")
            if _ready(service):
                return service
            time.sleep(0.3)
    except BaseException:
        service.stop()
        raise


def _ready(service: DemoService) -> bool:
    try:
        service.demo = json.loads((service.home / "demo.json").read_text())
        operator = next(m["api_key"] for m in service.demo["members"] if "operator" in m["roles"])
        health = httpx.get(f"{service.api}/health", timeout=2,
                           headers={"Authorization": f"Bearer {operator}"}).json()
    except (OSError, ValueError, StopIteration, KeyError, httpx.HTTPError):
        return False
    return health.get("status") == "ok" and health.get("store", {}).get("outbox_depth") == 0
