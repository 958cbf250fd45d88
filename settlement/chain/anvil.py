"""The managed chain: an anvil process from the npm package ``@foundry-rs/anvil``.

`ledger up` starts one when ``LEDGER_RPC_URL`` is unset, with its state persisted under
``LEDGER_HOME`` (``--state`` plus a short ``--state-interval``), and stops it with SIGTERM so that
anvil writes its final state dump. Tests use the same class, in two modes: automine, and a
production emulation (interval mining, zero base fee and gas price) that behaves like a Besu QBFT
network with ~1 s blocks and instant finality.

Only this module and test fixtures know anvil; the chain client talks standard JSON-RPC.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from settlement.core.errors import ChainUnavailableError
from settlement.core.private_files import private_dir, private_file

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
STATE_INTERVAL_S = 1
CHILD_UMASK = 0o077  # anvil's files (its state dump) are private to the service's user
HISTORY_STATES_MAX = 256  # states anvil keeps for calls at past blocks (memory only)
DEFAULT_CHAIN_ID = 31337
# anvil's gas limit per block. With automine, transactions that do not fit the block mined for
# them wait in the pool until another transaction arrives; a limit far above any burst the
# dispatcher usually sends (100 settlement batches of ~8M gas) keeps them from
# stalling. (Very large pools slow automine down whatever the limit: see docs/benchmarks.md.)
BLOCK_GAS_LIMIT = 1_000_000_000


def find_anvil() -> str:
    """The anvil binary: $LEDGER_ANVIL_BIN, the project's node_modules, or PATH."""
    explicit = os.environ.get("LEDGER_ANVIL_BIN")
    if explicit:
        return explicit
    # The npm package's `bin` is a Node shim that spawns the platform binary; run the binary
    # itself, so that signals (SIGTERM for the state dump, SIGKILL in crash tests) reach anvil.
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), "")
    here = Path(__file__).resolve()
    for parent in here.parents:
        modules = parent / "node_modules" / "@foundry-rs"
        for candidate in (modules / f"anvil-{sys.platform}-{arch}" / "bin" / "anvil", parent / "node_modules" / ".bin" / "anvil"):
            if candidate.exists():
                return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise ChainUnavailableError("anvil not found: run `npm ci` (or `make deps`) to install @foundry-rs/anvil")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def rpc_call(url: str, method: str, params: list | None = None, timeout_s: float = 2.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise ChainUnavailableError(f"{method}: {answer['error']}")
    return answer["result"]


@dataclass
class AnvilConfig:
    host: str = "127.0.0.1"
    port: int = 8545
    chain_id: int = DEFAULT_CHAIN_ID
    # None: automine (a block per transaction). An integer: interval mining every N seconds.
    block_time_s: int | None = None
    # Zero base fee and zero gas price, as on a permissioned network.
    zero_fees: bool = True
    state_path: Path | None = None
    log_path: Path | None = None
    accounts: int = 2


class ManagedAnvil:
    """An anvil child process; use as a context manager or call start()/stop()."""

    def __init__(self, config: AnvilConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def command(self) -> list[str]:
        c = self.config
        cmd = [
            find_anvil(),
            "--host", c.host,
            "--port", str(c.port),
            "--chain-id", str(c.chain_id),
            "--accounts", str(c.accounts),
            "--gas-limit", str(BLOCK_GAS_LIMIT),
            "--no-request-size-limit",
            # Keep the last HISTORY_STATES_MAX states in memory and none on disk: by default anvil
            # writes every older state under ~/.foundry/anvil/tmp and leaves it there when it is
            # killed (tens of GB after a day of tests and benchmarks). Nothing here reads state
            # older than a few blocks (revert replays read the block before a receipt).
            "--prune-history", str(HISTORY_STATES_MAX),
        ]
        if c.block_time_s is not None:
            cmd += ["--block-time", str(c.block_time_s)]
        if c.zero_fees:
            cmd += ["--block-base-fee-per-gas", "0", "--gas-price", "0", "--disable-min-priority-fee"]
        if c.state_path is not None:
            cmd += ["--state", str(c.state_path), "--state-interval", str(STATE_INTERVAL_S)]
        return cmd

    def start(self) -> ManagedAnvil:
        if self.process is not None:
            return self
        if self.config.state_path is not None and not self.config.state_path.parent.exists():
            private_dir(self.config.state_path.parent)
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(private_file(self.config.log_path, "ab")) if self.config.log_path \
                else subprocess.DEVNULL
            # umask 077: the state file anvil writes (the whole chain, in the data dir) is 0600.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, umask=CHILD_UMASK,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChainUnavailableError(
                    f"anvil exited with code {self.process.returncode} on start"
                    + (f"; see {self.config.log_path}" if self.config.log_path else "")
                )
            try:
                rpc_call(self.rpc_url, "eth_chainId", timeout_s=0.5)
                return self
            except (OSError, urllib.error.URLError, ChainUnavailableError):
                time.sleep(0.05)
        self.kill()
        raise ChainUnavailableError(f"anvil did not answer on {self.rpc_url} within {START_TIMEOUT_S}s")

    def stop(self) -> None:
        """SIGTERM, so anvil dumps its state; SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        self.process = None

    def _signal_group(self, sig: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)  # its own session: the whole group, shim or not
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL: what a crash looks like (blocks since the last state dump are lost)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __enter__(self) -> ManagedAnvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
