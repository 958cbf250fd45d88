"""The batcher's bounds and sequencing, and journal anchoring with its auditor export and audit
(re-sequencing against the chain: test_anchor_sequences.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from settlement.core.errors import JournalRecordInvalidError, LedgerError
from settlement.domains import anchoring
from settlement.domains.anchoring.batcher import prepare_journal, write_journal
from settlement.domains.members.service import onchain_id
from settlement.store.models.anchoring import AnchorBatch

from .test_provenance_api import event


def _record(runtime, raw: list[dict]) -> None:  # type: ignore[no-untyped-def]
    with runtime.db.transaction() as s:
        anchoring.record_events(s, "supplier-a", onchain_id("supplier-a"), raw)


def test_batches_close_on_size_bytes_and_time_in_insertion_order(runtime) -> None:  # type: ignore[no-untyped-def]
    """7 events with events_max=3 -> batches of 3, 3, and the last 1 only once it is old enough;
    a bytes bound cuts earlier; each batch rebuilds to its root and sequences increase."""
    _record(runtime, [event(i) for i in range(7)])
    limits = anchoring.BatchLimits(events_max=3, bytes_max=1024 * 1024, delay_s=2.0)
    made = anchoring.flush(runtime, limits)
    assert [m.leaf_count for m in made] == [3, 3]
    assert anchoring.flush(runtime, limits) == []  # the last event is younger than delay_s
    import time
    [last] = anchoring.flush(runtime, limits, now_s=time.time() + 3)
    assert last.leaf_count == 1 and [m.sequence for m in made] + [last.sequence] == [1, 2, 3]
    with runtime.db.read() as s:
        for m in [*made, last]:
            assert anchoring.rebuild_tree(s, anchoring.get_batch(s, m.sequence)).root == m.root
        first = anchoring.event_proof(runtime, s, "evt-LOT-1-0")
        assert first.root == made[0].root and first.anchor is None
    _record(runtime, [event(i, lot="LOT-9") for i in range(5)])
    by_bytes = anchoring.flush(runtime, anchoring.BatchLimits(events_max=100, bytes_max=1024, delay_s=0))
    assert sum(m.leaf_count for m in by_bytes) == 5 and len(by_bytes) > 1


def test_record_digest_is_canonical_versioned_and_strict(runtime) -> None:  # type: ignore[no-untyped-def]
    """Same content -> same row; new content -> next version; floats and non-canonical text refused."""
    with runtime.db.transaction() as s:
        a = anchoring.record_digest(s, "settlement", "stl-1", {"b": 1, "a": "x"})
        same = anchoring.record_digest(s, "settlement", "stl-1", '{"a":"x","b":1}')
        b = anchoring.record_digest(s, "settlement", "stl-1", {"a": "x", "b": 2})
        assert (a.id, a.version, b.version) == (same.id, 1, 2) and a.canonical_json == '{"a":"x","b":1}'
        for bad in ({"x": 1.5}, '{"b":1, "a":2}', "[1]", {"when": object()}):
            with pytest.raises(JournalRecordInvalidError):
                anchoring.record_digest(s, "settlement", "stl-2", bad)
        with pytest.raises(JournalRecordInvalidError):
            anchoring.record_digest(s, "Bad Kind", "x", {})


def test_a_journal_batch_prepared_before_another_batcher_claimed_its_versions_is_not_written(runtime) -> None:  # type: ignore[no-untyped-def]
    """Two batchers (the worker's pass, an operator's flush) prepare the same versions outside the
    lock: the second to write gets a LedgerError (flush() stops there), never a store error on the
    batch's root and never a second batch of the same versions."""
    with runtime.db.transaction() as s:
        for i in range(3):
            anchoring.record_digest(s, "settlement", f"stl-race-{i}", {"n": i})
    with runtime.db.read() as r:
        stale = prepare_journal(r, force=True)
    assert stale is not None
    [first] = [m for m in anchoring.flush(runtime, force=True) if m.kind == anchoring.KIND_JOURNAL]
    with pytest.raises(LedgerError, match="batched concurrently"), runtime.db.transaction() as s:
        write_journal(s, stale, runtime.operator.address)
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(AnchorBatch).where(AnchorBatch.root == first.root)) == 1


def test_the_first_two_batchers_queue_on_the_sequence_counter(runtime) -> None:  # type: ignore[no-untyped-def]
    """Before the first batch there is no counter row to lock: the second batcher still waits for
    the first one's commit (it went on unlocked, and the two collided on the batch's root: a 500
    from concurrent POST /v1/anchors/flush on PostgreSQL)."""
    import threading

    from settlement.domains.anchoring.submit import lock_sequences

    entered = threading.Event()
    release = threading.Event()
    second_locked = threading.Event()

    def first() -> None:
        with runtime.db.transaction() as s:
            lock_sequences(s)
            entered.set()
            release.wait(10)

    def second() -> None:
        entered.wait(10)
        with runtime.db.transaction() as s:
            lock_sequences(s)
            second_locked.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert entered.wait(10)
    assert not second_locked.wait(1.0), "the second batcher went on while the first held the (new) counter"
    release.set()
    for t in threads:
        t.join(15)
    assert second_locked.is_set()
