"""The data dir's managed chain: one anvil that lives and dies with the service.

- **Supervised.** A watcher thread notices within :data:`WATCH_INTERVAL_S` when anvil exits without
  being asked to, and starts it again from its state file after a backoff (doubling from
  :data:`RESTART_DELAY_MIN_S` up to :data:`RESTART_DELAY_MAX_S`, with jitter), logging each exit and
  each restart. The backoff is reset once a node has stayed up :data:`RESTART_RESET_AFTER_S`, so
  a node that dies right after every start is retried at most every few seconds, never in a hot
  loop. The dispatcher and the follower see the node unreachable meanwhile, back off, and carry
  on against the restarted node (their connections are re-opened on the next call).
- **Dies with the service.** Every anvil is started with the parent-death signal
  (:mod:`settlement.chain.anvil`), by the thread that calls :meth:`ManagedChain.start` or by the
  watcher, which stops anvil itself before it ends.
- **Foreign or leftover nodes.** If something already listens on the managed port at start, it is
  this data dir's own leftover anvil only when all of these hold: ``anvil.pid`` names the listening
  process (pid and process start time), that process runs with this data dir's state file, the
  service that started it (also in ``anvil.pid``) is gone, and
  the node has the manifest's chain id, the block hash recorded at the deploy block and the
  deployed code at every recorded address (:func:`settlement.chain.deploy.verify_manifest`). Such
  a leftover (its service was killed while it was kept alive) is taken over: stopped with SIGTERM,
  so that it writes its state, and started again as a supervised child from that state; its chain
  is kept. Anything else is refused with :class:`~settlement.core.errors.ChainMismatchError` naming
  the port and what was found, before anything is started, deployed or written.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from settlement.chain.anvil import (
    STOP_TIMEOUT_S, AnvilConfig, AnvilPortBusyError, ManagedAnvil, PidRecord, describe_process, listening_pids,
    port_is_free, process_cmdline, read_pid_file, state_file_complete,
)
from settlement.chain.client import ChainClient
from settlement.chain.deploy import Manifest, verify_manifest
from settlement.core.errors import ChainMismatchError, ChainUnavailableError, LedgerError
from settlement.core.private_files import copy_private, fsync_dir

__all__ = ["CUT_SHORT_FILE_NAME", "LAST_GOOD_FILE_NAME", "PID_FILE_NAME", "STATE_FILE_NAME", "LOG_FILE_NAME",
           "ManagedChain", "copy_if_whole", "managed_anvil_config"]

log = logging.getLogger("ledger.chain")

PID_FILE_NAME = "anvil.pid"
STATE_FILE_NAME = "anvil-state.json"
LOG_FILE_NAME = "anvil.log"
LAST_GOOD_FILE_NAME = "anvil-state.last-good.json"  # the newest whole state file, copied by the watcher
CUT_SHORT_FILE_NAME = "anvil-state.cut-short.json"  # a state file found cut short, kept for a look

WATCH_INTERVAL_S = 0.25  # how often the watcher looks at the child
RESTART_DELAY_MIN_S = 0.25  # first restart: a dead chain is back in about a second
RESTART_DELAY_MAX_S = 5.0
RESTART_JITTER = 0.5  # each delay is drawn from [delay * (1 - jitter), delay]
RESTART_RESET_AFTER_S = 30.0  # up this long: the next death starts the backoff afresh
IDENTIFY_TIMEOUT_S = 2.0  # per JSON-RPC call to a node found on the port
TAKEOVER_PORT_WAIT_S = 5.0  # for the port to be free once a taken-over leftover has exited
LAST_GOOD_INTERVAL_S = 10.0  # how often the watcher copies a whole state file aside (when it changed)


def managed_anvil_config(home: Path, *, host: str, port: int, block_time_s: int | None,
                         zero_fees: bool) -> AnvilConfig:
    """The managed anvil of data dir ``home``: its state, log and pid file live there."""
    return AnvilConfig(host=host, port=port, block_time_s=block_time_s, zero_fees=zero_fees,
                       state_path=home / STATE_FILE_NAME, log_path=home / LOG_FILE_NAME,
                       pid_path=home / PID_FILE_NAME)


def restart_delay_s(attempt: int, rng: random.Random) -> float:
    """The wait before restart number ``attempt`` (1, 2, ...): doubling, capped, with jitter."""
    base = min(RESTART_DELAY_MAX_S, RESTART_DELAY_MIN_S * 2 ** min(attempt - 1, 16))
    return base * (1 - RESTART_JITTER * rng.random())


def copy_if_whole(state: Path, good: Path) -> tuple[int, int] | None:
    """Copy the state file ``state`` aside to ``good`` if it is whole (``state_file_complete``)
    and did not change during the copy (anvil rewrites it in place): a temporary copy on disk
    (fsync), then renamed over ``good`` atomically. Returns the (mtime ns, size) copied, or None
    when nothing was (an empty, changing or cut-short file: ``good`` is left as it was)."""
    before = state.stat()
    stamp = (before.st_mtime_ns, before.st_size)
    if before.st_size == 0:
        return None
    tmp = good.with_name(f".{good.name}.tmp")
    copy_private(state, tmp)  # on disk before it may replace the last good copy
    after = state.stat()
    if (after.st_mtime_ns, after.st_size) != stamp or not state_file_complete(tmp):
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, good)
    fsync_dir(good.parent)
    return stamp


def _finding(detail: str) -> str:
    """A manifest check's finding without its advice (meant for a restart against the wrong node;
    here the advice is to free the port)."""
    for advice in ("; use ", ": point LEDGER_RPC_URL"):
        detail = detail.split(advice)[0]
    return detail


class ManagedChain:
    """One data dir's anvil, supervised; ``start()`` then ``stop()`` (or a ``with`` block)."""

    def __init__(self, home: Path, config: AnvilConfig, *, progress: Callable[[str], None] = lambda s: None) -> None:
        self.home = home
        self.config = config
        self.anvil = ManagedAnvil(config)
        self.restarts = 0  # restarts after an unexpected exit, for health and tests
        self._progress = progress
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one of: a restart, or stop()
        self._rng = random.Random()
        self._watcher: threading.Thread | None = None
        self.state_restores = 0  # state files found cut short and replaced by the last good copy
        self._good_copied_at = 0.0
        self._good_stamp: tuple[int, int] | None = None  # (mtime ns, size) of the state file last copied

    @property
    def rpc_url(self) -> str:
        return self.anvil.rpc_url

    # -- start ------------------------------------------------------------------------------------

    def start(self) -> ManagedChain:
        """Start anvil (or take over this data dir's provable leftover) and its watcher.
        ChainMismatchError, with nothing started or written, when another node holds the port."""
        c = self.config
        if not port_is_free(c.host, c.port):
            self._take_over_leftover()
        self._progress(f"chain: starting anvil on {self.rpc_url} (state in {c.state_path})")
        self._restore_if_cut_short()
        try:
            self.anvil.start()
        except AnvilPortBusyError as exc:
            raise ChainMismatchError(f"the managed chain's {exc.detail}; nothing was started") from exc
        self._watcher = threading.Thread(target=self._watch, name="ledger-chain-watcher", daemon=True)
        self._watcher.start()
        return self

    def _take_over_leftover(self) -> None:
        c = self.config
        found, problems = self._identify()
        if problems:
            raise ChainMismatchError(
                f"the managed chain's port {c.host}:{c.port} is taken by {found}, which is not this data dir's "
                f"chain ({'; '.join(problems)}). Nothing was started, deployed or written in {self.home}: stop "
                f"that process, or give this data dir another port (LEDGER_ANVIL_PORT), or point LEDGER_RPC_URL "
                f"at an external node")
        record = read_pid_file(c.pid_path)  # type: ignore[arg-type]
        assert record is not None  # _identify found no problem: the pid file names the listener
        self._progress(f"chain: {found} on {c.host}:{c.port} is this data dir's anvil, left running by an earlier "
                       f"start: taking it over (stopped with its state written, then restarted as a supervised "
                       f"child)")
        self._stop_leftover(record)

    def _identify(self) -> tuple[str, list[str]]:
        """Who holds the managed port, and why it is not this data dir's anvil (empty: it is)."""
        c = self.config
        pids = listening_pids(c.port)
        who = ", ".join(describe_process(p) for p in pids) or "a process this user cannot see"
        problems: list[str] = []
        record = read_pid_file(c.pid_path) if c.pid_path is not None else None
        if record is None:
            problems.append(f"no pid file {c.pid_path}" if c.pid_path is not None else "no pid file configured")
        elif record.pid not in pids:
            problems.append(f"{c.pid_path} names pid {record.pid}, which does not listen on the port")
        elif not record.alive():
            problems.append(f"pid {record.pid} is not the process {c.pid_path} recorded (pid reused)")
        elif c.state_path is not None and str(c.state_path) not in process_cmdline(record.pid):
            problems.append(f"pid {record.pid} does not run with this data dir's state file {c.state_path}")
        elif record.owner_pid is not None and record.owner_alive():
            # Its service still runs: taking its chain over would fight that service's watcher.
            problems.append(f"it is this data dir's chain, run by a live service, {describe_process(record.owner_pid)}"
                            f" (one service per data dir)")
        client = ChainClient(self.rpc_url, timeout_s=IDENTIFY_TIMEOUT_S)
        try:
            chain_id = client.chain_id
            head = client.block_number()
        except (LedgerError, OSError, ValueError) as exc:
            problems.append(f"it does not answer JSON-RPC as a node ({exc})")
            return who, problems
        who += f", a node with chain id {chain_id} at block {head}"
        manifest = Manifest.load(self.home)
        if manifest is None:
            if chain_id != c.chain_id:
                problems.append(f"chain id {chain_id}, expected {c.chain_id}")
        else:
            try:
                verify_manifest(client, manifest)
            except ChainMismatchError as exc:
                problems.append(_finding(exc.detail))
            except (ChainUnavailableError, OSError, ValueError) as exc:
                problems.append(f"its contracts could not be checked ({exc})")
        return who, problems

    def _stop_leftover(self, record: PidRecord) -> None:
        """SIGTERM (anvil writes its state), SIGKILL after STOP_TIMEOUT_S; then wait for the port."""
        c = self.config
        for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            if record.alive():
                try:
                    os.kill(record.pid, sig)
                except ProcessLookupError:
                    break
            deadline = time.monotonic() + wait_s
            while record.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not record.alive():
                break
        if record.alive():
            raise ChainUnavailableError(f"the leftover anvil (pid {record.pid}) did not stop")
        deadline = time.monotonic() + TAKEOVER_PORT_WAIT_S
        while not port_is_free(c.host, c.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- supervision -------------------------------------------------------------------------------

    def _watch(self) -> None:
        attempt = 0
        started_at = time.monotonic()
        while not self._stop.wait(WATCH_INTERVAL_S):
            try:
                status = self.anvil.exited()
                if status is None and self.anvil.process is not None:
                    if attempt and time.monotonic() - started_at >= RESTART_RESET_AFTER_S:
                        attempt = 0
                    if time.monotonic() - self._good_copied_at >= LAST_GOOD_INTERVAL_S:
                        self._good_copied_at = time.monotonic()
                        self._keep_last_good()
                    continue
                attempt += 1
                delay = restart_delay_s(attempt, self._rng)
                how = "is not running (the last restart failed)" if status is None else (
                    f"was killed by signal {-status}" if status < 0 else f"exited with code {status}")
                log.warning("managed chain: anvil %s; restart %d in %.2f s from %s", how, attempt, delay,
                            self.config.state_path)
                if self._stop.wait(delay):
                    break
                with self._lock:
                    if self._stop.is_set():
                        break
                    self.anvil.forget()
                    began = time.monotonic()
                    self._restore_if_cut_short()
                    try:
                        self.anvil.start()
                    except ChainUnavailableError as exc:
                        log.error("managed chain: restart %d failed: %s", attempt, exc.detail)
                        continue
                    started_at = time.monotonic()
                    self.restarts += 1
                    log.warning("managed chain: anvil restarted (pid %s) in %.2f s, restart %d", self.anvil.pid,
                                started_at - began, attempt)
            except Exception:  # the watcher must outlive any surprise: it owns the child's life
                log.exception("managed chain: watcher error")
        # This thread may have started the child: with the parent-death signal tied to it, the
        # child must be stopped (state written) before the thread ends.
        with self._lock:
            self.anvil.stop()

    # -- the state file -------------------------------------------------------------------------------

    @property
    def _last_good_path(self) -> Path | None:
        state = self.config.state_path
        return state.with_name(LAST_GOOD_FILE_NAME) if state is not None else None

    def _keep_last_good(self) -> None:
        """Copy the state file aside when it changed and is whole (see ``state_file_complete``):
        a copy taken while anvil rewrote it is dropped (the file changed during the copy, or the
        copy does not close). Replaces the last good copy atomically (a rename)."""
        state, good = self.config.state_path, self._last_good_path
        if state is None or good is None:
            return
        try:
            current = state.stat()
            if (current.st_mtime_ns, current.st_size) == self._good_stamp:
                return
            self._good_stamp = copy_if_whole(state, good) or self._good_stamp
        except OSError as exc:
            log.warning("managed chain: could not copy the state file aside: %s", exc)

    def _restore_if_cut_short(self) -> None:
        """Before anvil starts: a state file cut short (anvil killed in the middle of a dump, which
        it writes in place) would stop every start ("failed to parse json file"). It is replaced by
        the last good copy, an older state: the blocks since are lost like any between two dumps,
        and the outbox recovery puts their transactions back (docs/operations.md). The cut-short
        file is kept beside it for a look."""
        state, good = self.config.state_path, self._last_good_path
        if state is None or good is None or not state.exists() or state_file_complete(state):
            return
        size = state.stat().st_size
        if not state_file_complete(good):
            log.error("managed chain: the state file %s is cut short (%d bytes: anvil was killed while writing it) "
                      "and there is no whole copy to restore (%s); anvil cannot start from it", state, size, good)
            return
        os.replace(state, state.with_name(CUT_SHORT_FILE_NAME))
        tmp = state.with_name(f".{state.name}.restoring")
        copy_private(good, tmp)
        os.replace(tmp, state)
        fsync_dir(state.parent)
        self.state_restores += 1
        age_s = time.time() - good.stat().st_mtime
        log.warning("managed chain: the state file %s was cut short (%d bytes: anvil was killed while writing it); "
                    "restored the last good copy, written %.0f s ago (the blocks since are recovered by the outbox); "
                    "the cut-short file is kept as %s", state, size, age_s, CUT_SHORT_FILE_NAME)

    # -- stop ----------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the watcher and anvil (SIGTERM: anvil writes its final state)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        with self._lock:
            self.anvil.stop()

    def __enter__(self) -> ManagedChain:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
