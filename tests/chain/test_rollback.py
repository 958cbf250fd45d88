"""The follower after a chain loss, when the restarted node has mined its chain back up to the
follower's checkpoint (or past it) before the follower looks, as a supervised anvil does: back
within a second, the lost transactions re-sent at once.

Proves: whatever blocks the restarted chain holds at those heights -- the very same blocks again
(the same transactions re-sent in the same order within the same second give the same block
hashes, so the checkpoint still looks canonical) or other blocks -- the follower reads them,
and in the end the store holds exactly the chain's events, with their canonical block hashes,
and every row is confirmed. Real anvil, real databases; each row onboards a distinct member."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from settlement.pipeline.workers import build
from settlement.store.models import ChainEvent, Checkpoint, OutboxRow
from settlement.wiring import build_registry
from tests.chain.helpers import make_runtime
from tests.chain.test_outbox import enqueue_onboardings, statuses

SETTLE_TIMEOUT_S = 60.0


def settle(rt, dispatcher, follower, expected: int) -> None:
    """The pipeline as the workers run it, until every row is confirmed and a pass finds nothing."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        busy = dispatcher.run_once() + follower.run_once()
        if not busy and statuses(rt) == {"confirmed": expected}:
            return
        if not busy:
            time.sleep(0.05)
    raise AssertionError(f"not settled: {statuses(rt)}")


def events_on_chain(rt) -> set[tuple[str, int, str]]:
    head = rt.chain.block_number()
    logs = rt.chain.get_logs([rt.address("ConsortiumRegistry")], rt.manifest.deploy_block, head)
    return {(lg.tx_hash, lg.log_index, lg.block_hash) for lg in logs if lg.event == "MemberOnboarded"}


def events_stored(rt) -> set[tuple[str, int, str]]:
    with rt.db.read() as s:
        return set(s.execute(select(ChainEvent.tx_hash, ChainEvent.log_index, ChainEvent.block_hash)
                             .where(ChainEvent.event == "MemberOnboarded")).all())


@pytest.mark.parametrize("regrowth", ["same-blocks", "other-blocks-to-the-checkpoint", "other-blocks-past-it"])
def test_the_follower_reads_again_what_a_restarted_chain_mined_up_to_its_checkpoint(restartable_chain, database_url,
                                                                                     tmp_path, regrowth):
    chain = restartable_chain()
    rt = make_runtime(chain.rpc_url, database_url, tmp_path / "home")
    dispatcher, follower = build(rt, build_registry())
    enqueue_onboardings(rt, 0, 5)
    settle(rt, dispatcher, follower, 5)
    chain.save()  # the state dump the node will come back to
    saved_head = rt.chain.block_number()
    # The blocks to be lost get timestamps ahead of the clock, so that the restarted node may mine
    # blocks with the very same timestamps again (it refuses a timestamp below its own clock).
    rt.chain.rpc("evm_setNextBlockTimestamp", [rt.chain.get_block(saved_head)["timestamp"] + 3_600])
    enqueue_onboardings(rt, 5, 6)
    settle(rt, dispatcher, follower, 11)
    with rt.db.read() as s:
        checkpoint = s.get(Checkpoint, "contracts").block_number
        raw = {r.tx_hash: r.raw_tx for r in s.scalars(select(OutboxRow))}
    assert checkpoint > saved_head and len(events_stored(rt)) == 11
    lost = {n: rt.chain.rpc("eth_getBlockByNumber", [hex(n), False]) for n in range(saved_head + 1, checkpoint + 1)}

    chain.crash()  # the blocks after the dump are gone
    assert rt.chain.block_number() == saved_head

    if regrowth == "same-blocks":
        # The dispatcher finds the loss first (the signer's nonce count went down): the rows go
        # back to signed, their events are forgotten, their records pending. The same signed
        # transactions are then mined again into the same blocks -- what the supervised chain
        # does when they are re-sent within the second they were first mined in; here the
        # blocks' own timestamps make it certain.
        dispatcher.audit([rt.operator.address])
        assert statuses(rt) == {"confirmed": 5, "signed": 6}
        rt.chain.rpc("evm_setAutomine", [False])
        for n, block in sorted(lost.items()):
            for tx_hash in block["transactions"]:
                rt.chain.rpc("eth_sendRawTransaction", ["0x" + raw[tx_hash].hex()])
            rt.chain.rpc("evm_mine", [int(block["timestamp"], 16)])
        rt.chain.rpc("evm_setAutomine", [True])
        again = rt.chain.block_hashes(sorted(lost))
        assert again == {n: block["hash"] for n, block in lost.items()}  # the checkpoint still looks canonical
    else:
        # Other blocks (another sender's, empty here) up to the checkpoint's height or past it,
        # before the follower or the dispatcher has looked.
        extra = 0 if regrowth == "other-blocks-to-the-checkpoint" else 3
        rt.chain.rpc("anvil_mine", [hex(checkpoint - saved_head + extra)])
        assert rt.chain.block_number() == checkpoint + extra
        assert rt.chain.get_block(checkpoint)["hash"] != lost[checkpoint]["hash"]

    settle(rt, dispatcher, follower, 11)
    on_chain = events_on_chain(rt)
    assert len(on_chain) == 11  # each member once
    assert events_stored(rt) == on_chain  # every event read, none of a lost block left
