"""The managed chain: an anvil process from the npm package ``@foundry-rs/anvil``.

`ledger up` starts one when ``LEDGER_RPC_URL`` is unset, with its state persisted under
``LEDGER_HOME`` (``--state`` plus a short ``--state-interval``), and stops it with SIGTERM so that
anvil writes its final state dump (``settlement.chain.managed`` supervises it). Tests use the same
class, in two modes: automine, and a production emulation (interval mining, zero base fee and gas
price) that behaves like a Besu QBFT network with ~1 s blocks and instant finality.

The child dies with its parent: on Linux it asks the kernel for SIGKILL when the thread that
started it ends (``prctl(PR_SET_PDEATHSIG)``), so even a SIGKILL of the service alone leaves no
anvil behind. The kernel ties that signal to the starting *thread*: start anvil from a thread that
lives as long as the process should (the main thread, or the supervisor's). Its pid, process start
time and port go to a pid file when configured, so a later start can tell its own leftover from a
foreign node on the port (:func:`listening_pids`, :func:`read_pid_file`).

Only this module and test fixtures know anvil; the chain client talks standard JSON-RPC.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from settlement.core.errors import ChainUnavailableError
from settlement.core.private_files import private_dir, private_file, write_private

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
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PROC_ENTRIES_MAX = 100_000  # processes and descriptors looked at when naming who holds a port
CMDLINE_CHARS_MAX = 200  # of a foreign process's command line, in error messages


STATE_CHECK_CHUNK_BYTES = 8 << 20  # read this much at a time when checking a state file


def state_file_complete(path: Path) -> bool:
    """Whether anvil's state file ``path`` holds a whole JSON document. anvil rewrites the file
    in place (truncate, then write), so one killed in the middle of a dump leaves a prefix: empty,
    or an object whose braces and brackets do not close. A prefix never balances (the outer
    object closes last), so counting them tells a cut-short file from a whole one without parsing
    tens of MB (the dump's strings are hex and names: no braces in them). False when missing."""
    opens = closes = 0
    first = last = b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(STATE_CHECK_CHUNK_BYTES):
                if not first:
                    first = chunk.lstrip()[:1]
                opens += chunk.count(b"{") + chunk.count(b"[")
                closes += chunk.count(b"}") + chunk.count(b"]")
                tail = chunk.rstrip()
                if tail:
                    last = tail[-1:]
    except OSError:
        return False
    return first == b"{" and last == b"}" and opens == closes


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


class AnvilPortBusyError(ChainUnavailableError):
    """The port anvil should listen on is taken by another process."""


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (a bind test, with SO_REUSEADDR like anvil's own,
    so connections of a node that just died, in TIME_WAIT, do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _listening_inodes(port: int) -> set[int]:
    """Inodes of the TCP sockets listening on ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def _holds_socket(pid: int, inodes: set[int]) -> bool:
    wanted = {f"socket:[{i}]" for i in inodes}
    try:
        with os.scandir(f"/proc/{pid}/fd") as it:
            for n, entry in enumerate(it):
                if n >= PROC_ENTRIES_MAX:
                    break
                with contextlib.suppress(OSError):
                    if os.readlink(entry.path) in wanted:
                        return True
    except OSError:
        pass  # gone, or another user's: not ours to see
    return False


def listening_pids(port: int, candidates: list[int] | None = None) -> list[int]:
    """The processes (of those this user may inspect) holding a socket that listens on ``port``;
    only among ``candidates`` when given. Empty when none is visible (another user's process, or
    no /proc)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    if candidates is None:
        candidates = []
        with os.scandir("/proc") as it:
            for n, entry in enumerate(it):
                if n >= PROC_ENTRIES_MAX:
                    break
                if entry.name.isdigit():
                    candidates.append(int(entry.name))
    return [pid for pid in candidates if _holds_socket(pid, inodes)]


def process_start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks after boot, /proc/<pid>/stat field 22): with the pid,
    it names one process, whatever pids are reused later. None when there is no such process
    (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def describe_process(pid: int) -> str:
    """``pid 123 (anvil --host ... --port ...)``: who a process is, for error messages."""
    args = process_cmdline(pid)
    cmd = " ".join([os.path.basename(args[0])] + args[1:]) if args else ""
    if len(cmd) > CMDLINE_CHARS_MAX:
        cmd = cmd[:CMDLINE_CHARS_MAX] + "..."
    return f"pid {pid} ({cmd})" if cmd else f"pid {pid}"


@dataclass(frozen=True)
class PidRecord:
    """What ``anvil.pid`` says: which process is (or was) the data dir's anvil, and which process
    started it (the service that owns it)."""
    pid: int
    start_ticks: int | None
    port: int
    state_path: str | None
    owner_pid: int | None = None
    owner_start_ticks: int | None = None

    def alive(self) -> bool:
        ticks = process_start_ticks(self.pid)
        return ticks is not None and ticks == self.start_ticks

    def owner_alive(self) -> bool:
        if self.owner_pid is None:
            return False
        ticks = process_start_ticks(self.owner_pid)
        return ticks is not None and ticks == self.owner_start_ticks


def read_pid_file(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text())
        return PidRecord(pid=int(data["pid"]), start_ticks=data.get("start_ticks"), port=int(data["port"]),
                         state_path=data.get("state_path"), owner_pid=data.get("owner_pid"),
                         owner_start_ticks=data.get("owner_start_ticks"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when its parent thread ends, and
    kills it at once if the parent is already gone. None off Linux (no such prctl)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    # Runs in the child between fork and exec: nothing here takes a lock or allocates much.
    def hook() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the parent died before the prctl: no signal will come
            os._exit(126)

    return hook


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
    # Where start() records the child's pid, start time and port (the data dir's anvil.pid).
    pid_path: Path | None = None
    # SIGKILL when the starting thread's process dies (Linux). Off only in tests that need a
    # leftover node outliving its parent.
    die_with_parent: bool = True


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
        """Start anvil and wait until it answers. AnvilPortBusyError, without starting anything,
        when another process listens on the port: an answer from that process is never taken
        for this anvil's."""
        if self.process is not None:
            return self
        c = self.config
        if not port_is_free(c.host, c.port):
            holders = ", ".join(describe_process(p) for p in listening_pids(c.port)) or "a process this user cannot see"
            raise AnvilPortBusyError(f"port {c.host}:{c.port} is already taken by {holders}")
        if c.state_path is not None and not c.state_path.parent.exists():
            private_dir(c.state_path.parent)
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(private_file(c.log_path, "ab")) if c.log_path else subprocess.DEVNULL
            # umask 077: the state file anvil writes (the whole chain, in the data dir) is 0600.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, umask=CHILD_UMASK,
                preexec_fn=_parent_death_hook() if c.die_with_parent else None,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ChainUnavailableError(
                    f"anvil exited with code {code} on start" + (f"; see {c.log_path}" if c.log_path else ""))
            try:
                rpc_call(self.rpc_url, "eth_chainId", timeout_s=0.5)
            except (OSError, urllib.error.URLError, ChainUnavailableError):
                time.sleep(0.05)
                continue
            if _listening_inodes(c.port) and not listening_pids(c.port, [self.process.pid]):
                # Someone else took the port between the check and anvil's bind: that is who answered.
                holders = ", ".join(describe_process(p) for p in listening_pids(c.port)) or "another process"
                self.kill()
                raise AnvilPortBusyError(f"port {c.host}:{c.port} was taken by {holders} while anvil started")
            self._write_pid_file()
            return self
        self.kill()
        raise ChainUnavailableError(f"anvil did not answer on {self.rpc_url} within {START_TIMEOUT_S}s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _write_pid_file(self) -> None:
        c = self.config
        if c.pid_path is None or self.process is None:
            return
        record = {"pid": self.process.pid, "start_ticks": process_start_ticks(self.process.pid), "port": c.port,
                  "state_path": str(c.state_path) if c.state_path else None,
                  "owner_pid": os.getpid(), "owner_start_ticks": process_start_ticks(os.getpid())}
        write_private(c.pid_path, json.dumps(record, sort_keys=True) + "\n")

    def _remove_pid_file(self, pid: int) -> None:
        path = self.config.pid_path
        if path is not None:
            record = read_pid_file(path)
            if record is not None and record.pid == pid:
                path.unlink(missing_ok=True)

    def exited(self) -> int | None:
        """The exit status once the child has died (negative: the signal), else None."""
        if self.process is None:
            return None
        return self.process.poll()

    def forget(self) -> None:
        """Drop a child that has exited by itself, so that start() starts a new one."""
        if self.process is not None and self.process.poll() is not None:
            self.process = None

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
        self._remove_pid_file(self.process.pid)
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
        self._remove_pid_file(self.process.pid)
        self.process = None

    def __enter__(self) -> ManagedAnvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
