"""The outbox path: exactly-once dispatch through crashes, and resubmission after the chain
lost blocks, on real anvil nodes and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time

from eth_account import Account
import pytest
from sqlalchemy import func, select

from settlement.chain.signing import keccak256
from settlement.pipeline.outbox import enqueue
from settlement.store.models import ChainEvent, OutboxRow
from settlement.pipeline.workers import build
from settlement.wiring import build_registry
from tests.governance.support import test_governance
from tests.chain.helpers import make_runtime

FINANCE = "0x" + keccak256(b"FINANCE").hex()


def enqueue_onboardings(rt, start: int, count: int) -> None:
    """Each row onboards a distinct member: a duplicate send would revert (RegistryMemberExists)
    and a lost one would leave memberCount short, so the chain itself counts deliveries."""
    with rt.db.transaction() as s:
        for i in range(start, start + count):
            enqueue(s, kind="test.onboard", contract="ConsortiumRegistry", function="onboardMember",
                    args=["0x" + keccak256(b"member-%d" % i).hex(), "0x434e", [Account.create().address], [FINANCE]],
                    signer=rt.operator.address, gas_limit=400_000, aggregate_id=f"member-{i}")


def statuses(rt) -> dict[str, int]:
    with rt.db.read() as s:
        return dict(s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())


def member_count(rt) -> int:
    return rt.chain.call("ConsortiumRegistry", rt.address("ConsortiumRegistry"), "memberCount")[0]


def test_dispatch_and_follow_exactly_once(anvil_automine, database_url, tmp_path):
    rt = make_runtime(anvil_automine.rpc_url, database_url, tmp_path)
    enqueue_onboardings(rt, 0, 120)
    dispatcher, follower = build(rt, build_registry(), batch_size=50)
    dispatcher.drain(timeout_s=120)
    while follower.run_once():
        pass
    assert statuses(rt) == {"confirmed": 120}
    assert member_count(rt) == 120
    with rt.db.read() as s:
        nonces = sorted(s.scalars(select(OutboxRow.nonce)).all())
        assert s.scalar(select(func.count()).select_from(ChainEvent).where(ChainEvent.event == "MemberOnboarded")) == 120
    assert nonces == list(range(nonces[0], nonces[0] + 120))  # no gap, no reuse
    # Following again reads nothing new and applies nothing twice.
    assert follower.run_once() == 0


def test_a_reverted_row_fails_with_its_custom_error(anvil_automine, sqlite_url, tmp_path):
    rt = make_runtime(anvil_automine.rpc_url, sqlite_url, tmp_path)
    enqueue_onboardings(rt, 0, 1)
    enqueue_onboardings(rt, 0, 1)  # the same member again: the contract refuses it
    dispatcher, _ = build(rt, build_registry())
    dispatcher.drain()
    with rt.db.read() as s:
        rows = s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    assert [r.status for r in rows] == ["mined", "failed"]
    assert rows[1].error_name == "RegistryMemberExists"


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "worker", "--batch-size", "10"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.slow(seconds=90)
def test_sigkill_during_dispatch_loses_and_duplicates_nothing(anvil_factory, database_url, tmp_path):
    """The worker process is killed with SIGKILL three times mid-dispatch; after a final
    restart every outbox row is on chain exactly once."""
    node = anvil_factory(block_time_s=1)  # production emulation: sends outpace blocks
    kek = os.urandom(32)
    env = dict(os.environ, LEDGER_HOME=str(tmp_path), LEDGER_RPC_URL=node.rpc_url, LEDGER_DATABASE_URL=database_url,
               LEDGER_KEK=base64.urlsafe_b64encode(kek).decode(), LEDGER_OPERATOR_KEY=Account.create().key.hex(),
               LEDGER_DISPATCH_INTERVAL_MS="20",
               # An external chain names its governors (here the demo keys' addresses, 2-of-3).
               LEDGER_GOVERNORS=",".join(f"{g.member_id}:{g.address}" for g in test_governance()[0].governors),
               LEDGER_GOVERNANCE_THRESHOLD="2", LEDGER_GOVERNANCE_DELAY_S="30")
    # Deploy through the real bootstrap (same settings the worker reads); the bootstrap window stays
    # open, so the operator may onboard (the rows this test sends).
    subprocess.run([sys.executable, "-m", "ledger_api.cli", "deploy"], env=env, check=True, capture_output=True)
    rt = make_runtime(node.rpc_url, database_url, tmp_path, operator_key=bytes.fromhex(env["LEDGER_OPERATOR_KEY"].removeprefix("0x")),
                      deploy_contracts=True)
    total = 300
    enqueue_onboardings(rt, 0, total)
    kills = 0
    for threshold in (30, 120, 210):
        proc = _worker(env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = statuses(rt)
            if total - st.get("pending", 0) >= threshold:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        st = statuses(rt)
        assert st.get("pending", 0) > 0, f"the kill came too late to test anything: {st}"
    proc = _worker(env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and statuses(rt) != {"confirmed": total}:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert kills == 3
    assert statuses(rt) == {"confirmed": total}
    assert member_count(rt) == total
    with rt.db.read() as s:
        rows = s.scalars(select(OutboxRow)).all()
    receipts = rt.chain.receipts([r.tx_hash for r in rows])
    assert all(r is not None and r.status == 1 for r in receipts.values())


def test_chain_that_comes_back_behind_the_store_gets_the_lost_records_again(restartable_chain, tmp_path, sqlite_url):
    """A managed anvil killed between state dumps restarts with fewer blocks than the store has
    seen: the follower notices, the lost rows are sent again (the same signed transactions, at
    their own nonces), and the chain ends up with every record exactly once."""
    chain = restartable_chain()
    rt = make_runtime(chain.rpc_url, sqlite_url, tmp_path / "home")
    dispatcher, follower = build(rt, build_registry())
    enqueue_onboardings(rt, 0, 20)
    dispatcher.drain()
    while follower.run_once():
        pass
    chain.save()  # a clean stop writes the state: this is the last dump the chain will keep
    enqueue_onboardings(rt, 20, 15)
    dispatcher.drain()
    while follower.run_once():
        pass
    assert statuses(rt) == {"confirmed": 35} and member_count(rt) == 35
    chain.crash()  # and the blocks since the last dump are gone
    assert member_count(rt) == 20
    follower.run_once()  # notices the rollback
    assert rt.stats.get("rollbacks") == 1
    assert statuses(rt) == {"confirmed": 20, "signed": 15}  # kept their nonces and bytes
    dispatcher.drain()
    while follower.run_once():
        pass
    assert statuses(rt) == {"confirmed": 35}
    assert member_count(rt) == 35
