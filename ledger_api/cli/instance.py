"""One service per data dir, and busy ports reported before anything starts (issue 11, item 3).

``ledger up`` and ``ledger worker`` each run a dispatcher and a follower on the data dir's store:
two of them would sign with the same keys and race for nonces, and two managed anvils would share
one state file. So each holds an exclusive lock on ``$LEDGER_HOME/ledger.lock`` (``flock``) for its
whole life; a second one exits at once, before it touches anything (no migration, no deployment,
no ``demo.json`` rewrite), naming the process that holds the lock. The kernel drops the lock when
its holder dies however it dies (SIGKILL included), so a stale lock file never blocks a restart;
the descriptor is not inherited by children (the anvil), so a leftover anvil holds nothing.

The API port is checked the same way before anything starts: a port another process listens on
is reported at once instead of after the chain was started and contracts deployed. (The managed
chain's port is checked by the managed chain itself, which tells this data dir's own leftover
anvil from a foreign node: see docs/operations.md.)
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO

from settlement.core.errors import LedgerError

__all__ = ["InstanceLock", "InstanceLockedError", "LOCK_FILE_NAME", "PortBusyError", "check_port_free"]

LOCK_FILE_NAME = "ledger.lock"
LOCK_FILE_MODE = 0o600
HOLDER_TEXT_LEN_MAX = 1_000


class InstanceLockedError(LedgerError):
    type_slug = "data-dir-in-use"
    title = "Another ledger process holds this data dir"
    status = 409


class PortBusyError(LedgerError):
    type_slug = "port-in-use"
    title = "A port the service needs is already in use"
    status = 409


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return (f"pid {holder.get('pid')}, `ledger {holder.get('command')}`, started {holder.get('started_at')}"
                + (f", API {holder['api']}" if holder.get("api") else ""))
    except (ValueError, AttributeError):
        return "a process that left no details"


class InstanceLock:
    """An exclusive ``flock`` on ``<home>/ledger.lock``, held until :meth:`release` or process exit."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE_NAME
        self._file: IO[str] | None = None

    def acquire(self, command: str, api: str | None = None) -> "InstanceLock":
        """Take the lock or raise :class:`InstanceLockedError` at once (never waits)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_FILE_MODE)
        handle = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = handle.read(HOLDER_TEXT_LEN_MAX)
            handle.close()
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise InstanceLockedError(
                f"another ledger process is already running on the data dir {self.path.parent} "
                f"({_describe_holder(holder)}); stop it first, or give this one its own LEDGER_HOME",
                lock_file=str(self.path)) from None
        # Ours: say who holds it (read by the next one that is refused).
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "api": api,
                                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        handle.flush()
        self._file = handle
        return self

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __enter__(self) -> "InstanceLock":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def check_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Bind ``host:port`` the way the server will (SO_REUSEADDR, so a socket in TIME_WAIT does
    not count as busy) and let it go; raise :class:`PortBusyError` naming the setting to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise PortBusyError(f"the {what} port {host}:{port} is {reason.lower()}: another process listens "
                                f"there (a second service, or another program); stop it or set {setting}",
                                host=host, port=port) from None
