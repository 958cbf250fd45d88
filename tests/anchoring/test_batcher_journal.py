"""The batcher's bounds and sequencing, and journal anchoring with its auditor export and audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from ledger_api.cli.anchors import audit_export_file
from settlement.domains import anchoring
from settlement.domains.anchoring.batcher import flush_events
from settlement.core.errors import JournalRecordInvalidError
from settlement.domains.members.service import onchain_id
from settlement.store.models.anchoring import AnchorBatch, RecordDigest
from settlement.pipeline.workers import build
from settlement.wiring import build_registry

from .conftest import AnchorApi
from .test_provenance_api import event

LIVE: dict[str, dict] = {}


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


def test_a_taken_sequence_is_repaired_by_re_sequencing(runtime) -> None:  # type: ignore[no-untyped-def]
    """A batch enqueued with a sequence the chain already passed reverts with
    TraceAnchorSequenceNotIncreasing; the failure hook gives it the next sequence and it anchors."""
    _record(runtime, [event(i) for i in range(2)])
    address = runtime.address("TraceAnchor")
    data = runtime.chain.encode("TraceAnchor", "anchor", ["0x" + "77" * 32, 5, 1, 1, 1, 1])
    assert runtime.chain.transact(runtime.operator, to=address, data=data, gas=200_000).status == 1
    with runtime.db.transaction() as s:
        batch = flush_events(s, runtime.operator.address, force=True, floor=0)
        assert batch is not None and batch.sequence == 1
    dispatcher, follower = build(runtime, build_registry())
    dispatcher.drain()
    dispatcher.drain()
    follower.run_once()
    with runtime.db.read() as s:
        batch = s.scalar(select(AnchorBatch))
        assert (batch.status, batch.sequence, batch.attempts) == ("anchored", 6, 2)


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


def test_journal_anchor_export_and_audit_detect_tampering(api: AnchorApi, tmp_path: Path) -> None:
    """Digests of records are anchored as a journal root (schema 0x8001); the export audits clean
    offline and on chain; an altered record (in the journal, in a live table, or in the export
    file) and a dropped record line make the audit fail."""
    rt = api.runtime
    anchoring.register_record_loader("test-live", lambda session, record_id: LIVE.get(record_id))
    LIVE["live-1"] = {"id": "live-1", "amount_minor": 1000, "currency": "EUR"}
    with rt.db.transaction() as s:
        for i in range(5):
            anchoring.record_digest(s, "settlement", f"stl-{i}", {"id": f"stl-{i}", "amount_minor": 100 * i,
                                                                  "currency": "CNY", "state": "confirmed"})
        anchoring.record_digest(s, "callback", "alipay:2024001", {"provider": "alipay", "trade_no": "2024001"})
        anchoring.record_digest(s, "test-live", "live-1", LIVE["live-1"])
    made = anchoring.flush(rt, force=True)
    assert [(m.kind, m.leaf_count, m.schema_version) for m in made] == [("journal", 7, anchoring.JOURNAL_SCHEMA_VERSION)]
    dispatcher, follower = build(rt, build_registry())
    dispatcher.drain()
    follower.run_once()

    def export(name: str) -> Path:
        r = api.http.get("/v1/anchors/journal/export", headers=api.as_("auditor-c"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        path = tmp_path / name
        path.write_text(r.text)
        return path

    clean = export("clean.jsonl")
    out: list[str] = []
    assert audit_export_file(clean, api.rpc_url, out.append) == 0, "\n".join(out)
    assert out[-1].startswith("AUDIT PASSED") and any("contract-verify" in line for line in out)

    lines = clean.read_text().splitlines()
    edited = [json.dumps({**json.loads(line), "record": json.loads(line)["record"].replace("300", "301")})
              if '"stl-3"' in line else line for line in lines]
    dropped = [line for line in lines if '"stl-2"' not in line]
    for name, content in (("edited.jsonl", edited), ("dropped.jsonl", dropped), ("truncated.jsonl", lines[:-1])):
        (tmp_path / name).write_text("\n".join(content) + "\n")
        out = []
        assert audit_export_file(tmp_path / name, None, out.append) == 1, name
        assert out[-1].startswith("AUDIT FAILED")

    LIVE["live-1"] = {**LIVE["live-1"], "amount_minor": 999}
    out = []
    assert audit_export_file(export("live.jsonl"), api.rpc_url, out.append) == 1
    assert any("live-1" in line and "digest" in line for line in out)
    LIVE["live-1"]["amount_minor"] = 1000

    with rt.db.transaction() as s:
        s.execute(update(RecordDigest).where(RecordDigest.record_id == "stl-1")
                  .values(canonical_json='{"amount_minor":1,"currency":"CNY","id":"stl-1","state":"confirmed"}'))
    out = []
    assert audit_export_file(export("db.jsonl"), api.rpc_url, out.append) == 1
    assert any("stl-1" in line and "[FAIL]" in line for line in out)
