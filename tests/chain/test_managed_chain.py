"""The managed chain's supervisor in-process, with real anvils: restart backoff, a restart never
adopts whoever took the port meanwhile, and what a pid file must match before a node on the
port counts as this data dir's. (tests/chain/test_supervision.py drives the same through the
real `ledger up`.)"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.chain.anvil import ManagedAnvil, free_port, read_pid_file, rpc_call
from settlement.chain.managed import (
    RESTART_DELAY_MAX_S, RESTART_DELAY_MIN_S, RESTART_JITTER, ManagedChain, managed_anvil_config, restart_delay_s,
)
from settlement.core.errors import ChainMismatchError

WAIT_S = 30.0


def wait_until(predicate, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def answers(url: str) -> bool:
    try:
        rpc_call(url, "eth_chainId", timeout_s=0.5)
        return True
    except Exception:
        return False


class NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


@given(attempt=st.integers(min_value=1, max_value=10_000), seed=st.integers(min_value=0, max_value=2**32))
def test_restart_delays_are_bounded_and_grow(attempt: int, seed: int) -> None:
    """Never a hot loop (at least the minimum, less jitter), never longer than the cap, and without
    jitter each delay is at least the one before."""
    delay = restart_delay_s(attempt, random.Random(seed))
    assert RESTART_DELAY_MIN_S * (1 - RESTART_JITTER) <= delay <= RESTART_DELAY_MAX_S
    assert restart_delay_s(attempt + 1, NoJitter()) >= restart_delay_s(attempt, NoJitter())
    assert restart_delay_s(1, NoJitter()) == RESTART_DELAY_MIN_S


def test_a_restart_never_adopts_whoever_took_the_port_and_backs_off(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The chain dies and another process grabs its port: each restart fails (logged, spaced by
    the backoff), nothing of the other process is taken for the chain; once the port is free
    again the chain is back, from its state file."""
    caplog.set_level(logging.INFO, logger="ledger.chain")
    home = tmp_path
    config = managed_anvil_config(home, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    chain = ManagedChain(home, config).start()
    try:
        rpc_call(chain.rpc_url, "evm_mine")
        time.sleep(1.5)  # past the 1 s state dump
        first = chain.anvil.pid
        os.kill(first, signal.SIGKILL)
        squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

        def grab() -> bool:
            try:
                squatter.bind(("127.0.0.1", config.port))
                return True
            except OSError:
                return False

        wait_until(grab, 5.0)
        squatter.listen(1)
        try:
            wait_until(lambda: sum(r.levelno == logging.ERROR for r in caplog.records) >= 2)
            held_s = 3.0
            time.sleep(held_s)
        finally:
            squatter.close()
        failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert all(f"taken by pid {os.getpid()}" in m for m in failures), failures
        # Backoff: the delays double from 0.25 s; a hot loop would have failed hundreds of times.
        assert len(failures) <= 8, failures
        wait_until(lambda: chain.restarts == 1 and answers(chain.rpc_url))
        assert chain.anvil.pid not in (None, first)
        assert int(rpc_call(chain.rpc_url, "eth_blockNumber"), 16) == 1  # the same chain, from its state
        assert read_pid_file(home / "anvil.pid").pid == chain.anvil.pid
    finally:
        chain.stop()
    assert not (home / "anvil.pid").exists()  # a clean stop removes it
    assert not answers(chain.rpc_url)


def test_a_stale_pid_file_does_not_stop_a_start(tmp_path: Path) -> None:
    """anvil.pid naming a process that is gone (the machine rebooted, anvil was killed): the port
    is free, the chain starts and the pid file names the new process."""
    config = managed_anvil_config(tmp_path, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    (tmp_path / "anvil.pid").write_text(json.dumps({"pid": 2**22 + 7, "start_ticks": 1, "port": config.port,
                                                    "state_path": str(config.state_path)}))
    with ManagedChain(tmp_path, config) as chain:
        record = read_pid_file(tmp_path / "anvil.pid")
        assert record.pid == chain.anvil.pid and record.alive()


def test_a_pid_file_is_not_enough_when_the_node_runs_another_state_file(tmp_path: Path) -> None:
    """A process that this data dir's pid file names, listening on the port, but running with
    another state file (another data dir's chain) is refused, and left alone."""
    home = tmp_path / "home"
    home.mkdir()
    config = managed_anvil_config(home, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    other = ManagedAnvil(managed_anvil_config(tmp_path / "other", host="127.0.0.1", port=config.port,
                                              block_time_s=None, zero_fees=True))
    other.config.pid_path = home / "anvil.pid"  # written here, as if this data dir's
    other.start()
    try:
        pid_file = (home / "anvil.pid").read_text()
        with pytest.raises(ChainMismatchError, match=rf"port 127\.0\.0\.1:{config.port} is taken by pid "
                                                     rf"{other.pid} .*does not run with this data dir's state file"):
            ManagedChain(home, config).start()
        assert (home / "anvil.pid").read_text() == pid_file
        assert other.process.poll() is None and answers(other.rpc_url)
    finally:
        other.stop()


def test_a_node_of_this_data_dir_with_another_chain_is_refused(tmp_path: Path) -> None:
    """Pid file and state file match, but the chain is not the manifest's (its id differs): refused."""
    home = tmp_path
    config = managed_anvil_config(home, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    node = ManagedAnvil(managed_anvil_config(home, host="127.0.0.1", port=config.port, block_time_s=None,
                                             zero_fees=True))
    node.config.chain_id = 4242
    node.start()
    try:
        with pytest.raises(ChainMismatchError, match="chain id 4242, expected 31337"):
            ManagedChain(home, config).start()
        assert node.process.poll() is None
    finally:
        node.stop()


def test_the_chain_of_a_running_service_is_not_taken_over(tmp_path: Path) -> None:
    """Two managed chains on one data dir and port: the second sees the first's anvil, named by
    the pid file, started by a process that is alive, and refuses; the first is untouched."""
    config = managed_anvil_config(tmp_path, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    with ManagedChain(tmp_path, config) as first:
        with pytest.raises(ChainMismatchError, match=rf"run by a live service, pid {os.getpid()} "):
            ManagedChain(tmp_path, config).start()
        assert first.anvil.exited() is None and answers(first.rpc_url)
        assert read_pid_file(tmp_path / "anvil.pid").pid == first.anvil.pid


def _best_block(path: Path) -> int:
    value = json.loads(path.read_bytes())["block"]["number"]
    return int(value, 16) if isinstance(value, str) else int(value)


def test_a_state_file_cut_short_by_a_kill_is_replaced_by_the_last_good_copy(tmp_path: Path, monkeypatch,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """anvil rewrites its state file in place; killed in the middle of a dump it leaves the file
    cut short, and every start from it fails ("failed to parse json file"): the soak saw it twice
    in 9 managed-chain faults, and the chain then never came back. The watcher keeps a whole copy
    aside and a restart puts it back: the chain is back, at the copy's block at least, and the
    cut-short file is kept for a look. (The kill is real; the cut is made while the watcher
    cannot restart anvil, as a kill in the middle of the write leaves it.)"""
    from settlement.chain import managed

    monkeypatch.setattr(managed, "LAST_GOOD_INTERVAL_S", 0.3)
    caplog.set_level(logging.INFO, logger="ledger.chain")
    home = tmp_path
    config = managed_anvil_config(home, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    chain = ManagedChain(home, config).start()
    good = home / managed.LAST_GOOD_FILE_NAME
    try:
        for _ in range(5):
            rpc_call(chain.rpc_url, "evm_mine")
        wait_until(lambda: good.is_file() and _best_block(good) >= 5)
        state = config.state_path
        with chain._lock:  # the watcher restarts anvil only once this is released
            first = chain.anvil.pid
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: chain.anvil.exited() is not None)
            whole = state.read_bytes()
            state.write_bytes(whole[:len(whole) // 2])
        wait_until(lambda: chain.restarts == 1 and answers(chain.rpc_url))
        assert int(rpc_call(chain.rpc_url, "eth_blockNumber"), 16) >= 5  # the same chain, from the copy
        assert chain.state_restores == 1
        assert (home / managed.CUT_SHORT_FILE_NAME).stat().st_size == len(whole) // 2
        assert any("was cut short" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    finally:
        chain.stop()


def test_only_a_whole_state_file_counts_as_whole(tmp_path: Path) -> None:
    """Every prefix of a real state dump (what a kill in the middle of the write leaves) is found
    cut short, the empty file too; the whole dump is whole."""
    from settlement.chain.anvil import state_file_complete

    config = managed_anvil_config(tmp_path, host="127.0.0.1", port=free_port(), block_time_s=None, zero_fees=True)
    node = ManagedAnvil(config).start()
    try:
        for _ in range(3):
            rpc_call(node.rpc_url, "evm_mine")
    finally:
        node.stop()  # SIGTERM: anvil writes its final state
    whole = config.state_path.read_bytes()
    assert state_file_complete(config.state_path)
    cut = tmp_path / "cut.json"
    for size in sorted({0, 1, len(whole) - 1, *range(0, len(whole), max(1, len(whole) // 300))}):
        cut.write_bytes(whole[:size])
        assert not state_file_complete(cut), size
    assert not state_file_complete(tmp_path / "missing.json")
