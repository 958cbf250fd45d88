"""The data dir and everything in it are private to the service's user (0700 folders, 0600 files)
whatever the umask (issue 15: ledger.db, its WAL, the anvil state file and raw statements were
0644 in a 0755 home). The service creates its files that way, and tightens at start, with a
warning, what an older version or another tool left readable; it never follows a link out of the
data dir and leaves files it does not own alone."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger_api.bootstrap import build_runtime, secure_data_dir
from tests.governance.support import test_governance
from ledger_api.demo import ensure_operator_member, seed_demo
from ledger_api.settings import Settings
from settlement.chain.anvil import ManagedAnvil
from settlement.domains import reconciliation as rs

STATE_WAIT_S = 15.0


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _modes(home: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(home.stat().st_mode)}
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(root) / name
            out[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_everything_the_service_creates_is_private_under_a_permissive_umask(
        tmp_path: Path, anvil_factory, permissive_umask: None) -> None:  # type: ignore[no-untyped-def]
    """Under umask 000: the data dir, the SQLite file with its WAL and SHM, the managed anvil's
    state file and log, the deployment manifest, the KEK and the operator's key file, the
    operator's API key, demo.json and an uploaded statement are all 0600, folders 0700."""
    settings = Settings(home=tmp_path / "home", rpc_url=None, database_url=None)
    home = settings.home_dir
    node: ManagedAnvil = anvil_factory(state_path=home / "anvil-state.json", log_path=home / "anvil.log")
    params, _signers = test_governance()  # an external chain names its governors
    settings = Settings(home=home, rpc_url=node.rpc_url, database_url=None,
                        governors=",".join(f"{g.member_id}:{g.address}" for g in params.governors),
                        governance_threshold=params.threshold, governance_delay_s=params.delay_s)
    runtime = build_runtime(settings, deploy_contracts=True)
    try:
        ensure_operator_member(runtime)
        seed_demo(runtime, settings)
        rs.import_statement(runtime, "normalized", b"provider_txn_id,reference,kind,amount_minor,currency,status,"
                            b"booked_at\nt1,R1,payment,1,USD,succeeded,2026-01-01\n", owner="operator",
                            filename="s.csv", uploaded_by="operator")
        deadline = time.monotonic() + STATE_WAIT_S
        while not (home / "anvil-state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        modes = _modes(home)
        expected = {"ledger.db", "ledger.db-wal", "ledger.db-shm", "anvil-state.json", "anvil.log", "deployment.json",
                    "kek", "operator.key", "operator-api-key", "demo.json", "statements"}
        assert expected <= set(modes), sorted(modes)
        loose = {name: oct(mode) for name, mode in modes.items()
                 if mode != (0o700 if (home / name).is_dir() else 0o600)}
        assert loose == {}
    finally:
        runtime.db.dispose()


def test_a_readable_data_dir_is_tightened_at_start_with_a_warning(
        tmp_path: Path, anvil_automine: ManagedAnvil, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    (home / "statements" / "old").mkdir(parents=True)
    for path in (home, home / "statements", home / "statements" / "old"):
        os.chmod(path, 0o755)
    owned = ["ledger.db", "anvil-state.json", "anvil.log", "anvil.pid", "demo.json", "operator-api-key",
             "statements/old/abc"]
    for name in [*owned, "notes.txt"]:
        (home / name).write_text("x")
        os.chmod(home / name, 0o644)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.chmod(outside, 0o644)
    (home / "demo.tmp").symlink_to(outside)  # a link is never followed out of the data dir
    (home / "ledger.db").unlink()  # build_runtime makes a real store here

    caplog.set_level(logging.WARNING, logger="ledger.files")
    runtime = build_runtime(Settings(home=home, rpc_url=anvil_automine.rpc_url, database_url=None))
    runtime.db.dispose()
    modes = _modes(home)
    assert modes["."] == 0o700 and modes["statements"] == 0o700 and modes["statements/old"] == 0o700
    assert {name: modes[name] for name in owned if name != "ledger.db"} == {n: 0o600 for n in owned if n != "ledger.db"}
    assert modes["ledger.db"] == 0o600  # created private
    assert modes["notes.txt"] == 0o644  # not the service's file
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    warned = " ".join(r.getMessage() for r in caplog.records if r.name == "ledger.files")
    for name in ["demo.json", "anvil-state.json", "statements/old/abc"]:
        assert f"{home / name} was readable by others (mode 0o644); now 0o600" in warned
    assert secure_data_dir(home) == []  # nothing left to change


def test_a_private_copy_is_whole_and_0600_even_over_a_readable_file(tmp_path: Path, permissive_umask: None) -> None:
    """The anvil state's last good copy is made with copy_private (fsync'd before its rename)."""
    from settlement.core.private_files import copy_private, fsync_dir

    source = tmp_path / "state.json"
    source.write_bytes(os.urandom(3 << 20) + b"}")
    target = tmp_path / ".copy.tmp"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    copy_private(source, target)
    fsync_dir(tmp_path)
    assert target.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
