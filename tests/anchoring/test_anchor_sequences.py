"""Anchor sequences against a real anvil: TraceAnchor takes only lastSequence + 1, so the service
never leaves a gap. A batch whose anchoring fails for good hands its sequence to the next batch;
batches enqueued behind it, refused with TraceAnchorSequenceNotNext(expected, sequence), are
re-sequenced from the error's `expected`; sequences another anchor took are skipped."""

from __future__ import annotations

from sqlalchemy import select

from settlement.domains import anchoring
from settlement.domains.anchoring.batcher import flush_events
from settlement.domains.members.service import onchain_id
from settlement.pipeline.workers import build
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow
from settlement.store.models.anchoring import AnchorBatch
from settlement.wiring import build_registry

from .test_provenance_api import event

# Enough for the intrinsic cost of an anchor transaction, not for the call: it reverts out of gas.
STARVED_GAS = 30_000


def _record(runtime: Runtime, raw: list[dict]) -> None:
    with runtime.db.transaction() as s:
        anchoring.record_events(s, "supplier-a", onchain_id("supplier-a"), raw)


def _one_batch_per_event(runtime: Runtime) -> list[int]:
    """One event batch per waiting event (journal batches left out: these tests count batches)."""
    made = []
    limits = anchoring.BatchLimits(events_max=1, delay_s=0.0)
    while True:
        with runtime.db.transaction() as s:
            batch = flush_events(s, runtime.operator.address, limits, force=True,
                                 floor=anchoring.chain_last_sequence(runtime))
            if batch is None:
                return made
            made.append(batch.id)


def _starve(runtime: Runtime, batch_id: int) -> None:
    """Make this batch's anchoring revert on chain for a reason no sequence fixes."""
    with runtime.db.transaction() as s:
        batch = s.get(AnchorBatch, batch_id)
        s.get(OutboxRow, batch.outbox_id).gas_limit = STARVED_GAS


def _drive(runtime: Runtime) -> None:
    dispatcher, follower = build(runtime, build_registry())
    dispatcher.drain()
    follower.run_once()


def _batches(runtime: Runtime) -> dict[int, tuple[str, int, int]]:
    with runtime.db.read() as s:
        return {b.id: (b.status, b.sequence, b.attempts) for b in s.scalars(select(AnchorBatch))}


def _chain_sequences(runtime: Runtime) -> list[int]:
    """Every RootAnchored sequence on chain, in log order."""
    logs = runtime.chain.get_logs([runtime.address("TraceAnchor")], 0, runtime.chain.block_number())
    return [int(log.args["sequence"]) for log in logs if log.event == "RootAnchored"]


def test_a_failed_batch_hands_its_sequence_to_the_batches_behind_it(runtime: Runtime) -> None:
    """Batches 1, 2, 3 are in flight together; 1 reverts (out of gas), so 2 and 3 are refused with
    TraceAnchorSequenceNotNext(1, 2) and (1, 3). The service re-sequences them to 1 and 2 (not
    3 and 4: no gap), the failed batch holds no sequence, and after the cause is fixed
    retry-failed anchors it as 3. The chain's sequences are 1, 2, 3."""
    _record(runtime, [event(i) for i in range(3)])
    first, second, third = _one_batch_per_event(runtime)
    assert [v[1] for v in _batches(runtime).values()] == [1, 2, 3]
    _starve(runtime, first)
    _drive(runtime)
    batches = _batches(runtime)
    assert batches[first] == ("failed", -first, 1)
    assert batches[second] == ("anchored", 1, 2) and batches[third] == ("anchored", 2, 2)
    with runtime.db.read() as s:
        refusals = s.scalars(select(OutboxRow.error_name).where(OutboxRow.status == "failed")
                             .order_by(OutboxRow.id)).all()
    assert refusals[0] in (None, "Reverted") and refusals[1:] == ["TraceAnchorSequenceNotNext"] * 2
    with runtime.db.transaction() as s:
        [retried] = anchoring.retry_failed(s, runtime.operator.address, anchoring.chain_last_sequence(runtime))
        assert retried.sequence == 3
    _drive(runtime)
    assert _batches(runtime)[first] == ("anchored", 3, 2)
    assert _chain_sequences(runtime) == [1, 2, 3]


def test_the_latest_batch_failing_gives_its_sequence_to_the_next_batch_made(runtime: Runtime) -> None:
    """The only batch in flight fails: its sequence goes back to the counter, so the next batch is
    created with it and anchors at once (no refused attempt)."""
    _record(runtime, [event(0)])
    [failed] = _one_batch_per_event(runtime)
    _starve(runtime, failed)
    _drive(runtime)
    assert _batches(runtime)[failed] == ("failed", -failed, 1)
    _record(runtime, [event(1)])
    [nxt] = _one_batch_per_event(runtime)
    _drive(runtime)
    assert _batches(runtime)[nxt] == ("anchored", 1, 1)
    assert _chain_sequences(runtime) == [1]


def test_sequences_taken_by_another_anchor_are_re_read_from_the_refusal(runtime: Runtime) -> None:
    """Three anchors made straight on the contract (around the service) took sequences 1..3; the
    batch the store numbered 1 is refused with TraceAnchorSequenceNotNext(4, 1), takes 4 from the
    error, and anchors; the next batches follow with 5 and 6."""
    address = runtime.address("TraceAnchor")
    for n in (1, 2, 3):
        data = runtime.chain.encode("TraceAnchor", "anchor", ["0x" + f"{n:02x}" * 32, n, 1, 1, 1, 1])
        assert runtime.chain.transact(runtime.operator, to=address, data=data, gas=200_000).status == 1
    _record(runtime, [event(i) for i in range(2)])
    with runtime.db.transaction() as s:
        batch = flush_events(s, runtime.operator.address, force=True, floor=0)
        assert batch is not None and batch.sequence == 1
        batch_id = batch.id
    _drive(runtime)
    assert _batches(runtime)[batch_id] == ("anchored", 4, 2)
    _record(runtime, [event(i) for i in range(2, 4)])
    _one_batch_per_event(runtime)
    _drive(runtime)
    assert sorted(v[1] for v in _batches(runtime).values()) == [4, 5, 6]
    assert _chain_sequences(runtime) == [1, 2, 3, 4, 5, 6]


def test_random_failures_never_leave_a_gap(tmp_path, anvil_automine) -> None:  # type: ignore[no-untyped-def]
    """Hypothesis: rounds of 1..4 batches in flight together, a random subset of them reverting
    (out of gas), and failed batches retried at random moments. After every round the chain's
    RootAnchored sequences are exactly 1..n, each anchored batch holds its chain sequence, and
    every other batch is failed and holds none; no batch is sent more than twice. (One runtime across examples on SQLite: the
    invariant is about the whole history.)"""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.anchoring.conftest import make_operator_anchorer
    from tests.api.support import build_runtime

    runtime = build_runtime(tmp_path / "home", f"sqlite:///{tmp_path / 'seq.db'}", anvil_automine.rpc_url)
    make_operator_anchorer(runtime)
    made = [0]

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.booleans(), min_size=1, max_size=4), st.booleans())
    def rounds(starved: list[bool], retry: bool) -> None:
        _record(runtime, [event(made[0] + i, lot="LOT-H") for i in range(len(starved))])
        made[0] += len(starved)
        for batch_id, starve in zip(_one_batch_per_event(runtime), starved):
            if starve:
                _starve(runtime, batch_id)
        _drive(runtime)
        if retry:
            with runtime.db.transaction() as s:
                anchoring.retry_failed(s, runtime.operator.address, anchoring.chain_last_sequence(runtime))
            _drive(runtime)
        on_chain = _chain_sequences(runtime)
        assert on_chain == list(range(1, len(on_chain) + 1))
        batches = _batches(runtime)
        anchored = sorted(seq for status, seq, _attempts in batches.values() if status == "anchored")
        assert anchored == on_chain
        assert all(status == "failed" and seq == -batch_id
                   for batch_id, (status, seq, _attempts) in batches.items() if status != "anchored")
        # Each batch is sent at most twice: once refused (re-sequenced right the first time, the
        # calls in flight ahead of it counted) or once failed and retried.
        assert max(attempts for _status, _seq, attempts in batches.values()) <= 2

    try:
        rounds()
    finally:
        runtime.db.dispose()


def test_refusals_in_a_block_shared_with_our_own_anchor_use_the_true_expected(tmp_path, anvil_factory,
                                                                               sqlite_url) -> None:  # type: ignore[no-untyped-def]
    """Production emulation (1 s blocks): batches 1, 2, 3 are mined in one block; 1 anchors, 2
    reverts (out of gas), 3 is refused. Replaying 3's call on the state before the block names
    expected 1 (batch 1 was not anchored yet there); the service knows 1 is taken by its own mined
    call, so it re-sequences 3 to 2 at the first try and never takes 1 from batch 1."""
    node = anvil_factory(block_time_s=1)
    from tests.anchoring.conftest import make_operator_anchorer
    from tests.api.support import build_runtime

    runtime = build_runtime(tmp_path / "home", sqlite_url, node.rpc_url)
    try:
        make_operator_anchorer(runtime)
        _record(runtime, [event(i) for i in range(3)])
        first, second, third = _one_batch_per_event(runtime)
        _starve(runtime, second)
        _drive(runtime)
        with runtime.db.read() as s:
            blocks = {s.get(OutboxRow, row_id).block_number for row_id in
                      s.scalars(select(OutboxRow.id).where(OutboxRow.kind == "anchors.anchor")).all()[:3]}
        assert len(blocks) == 1  # the three calls shared a block, as they do on a live chain
        batches = _batches(runtime)
        assert batches[first] == ("anchored", 1, 1) and batches[second] == ("failed", -second, 1)
        assert batches[third] == ("anchored", 2, 2)
        assert _chain_sequences(runtime) == [1, 2]
    finally:
        runtime.db.dispose()
