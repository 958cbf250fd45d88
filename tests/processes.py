"""Find and stop processes by a variable in their environment (Linux /proc).

A test that starts ``ledger up`` or an anvil marks it through its environment (the variable is
inherited by its own children, such as the anvil that ``ledger up`` starts in a session of its
own), so it can be found again whoever its parent is now, even after its parent was killed.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Proc", "find_by_env", "kill_all"]

PROC = Path("/proc")
CMDLINE_LEN_MAX = 200
KILL_WAIT_S_MAX = 10.0


@dataclass(frozen=True)
class Proc:
    pid: int
    cmdline: str
    env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # its environment


def _environ(pid: int) -> bytes | None:
    try:
        return (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or not ours
        return None


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def find_by_env(name: str, value: str) -> list[Proc]:
    """Live processes (not this one) whose environment holds ``name=value`` exactly."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        environ = _environ(int(entry.name))
        if environ is None or needle not in (pairs := environ.split(b"\0")) or not _alive(int(entry.name)):
            continue
        env = dict(pair.decode(errors="replace").partition("=")[::2] for pair in pairs if b"=" in pair)
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append(Proc(int(entry.name), cmdline[:CMDLINE_LEN_MAX], env))
    return found


def kill_all(procs: list[Proc]) -> None:
    """SIGKILL each process and wait (bounded) until none is running."""
    for proc in procs:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + KILL_WAIT_S_MAX
    while any(_alive(p.pid) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
