"""Provenance events over real HTTP on anvil: post, batch, anchor through the outbox, prove, verify
offline and on chain (our CLI and TraceAnchor.verify), and refuse bad input cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from anchors import StandardMerkleTree
from ledger_api.cli.anchors import verify_proof_file
from settlement.domains import anchoring
from settlement.domains.members.service import onchain_id
from settlement.store.models import OutboxRow
from settlement.store.models.anchoring import AnchorBatch, ProvenanceEventRow
from settlement.pipeline.workers import build
from settlement.wiring import build_registry

from .conftest import AnchorApi

T0 = 1_700_000_000
PROBLEM = "urn:ledger:problem:"


def event(n: int, lot: str = "LOT-1", **extra: object) -> dict:
    return {"event_id": f"evt-{lot}-{n}", "lot_id": lot, "product": "gtin:4006381333931",
            "event_type": ["produced", "shipped", "received"][n % 3], "location": "gln:0614141000005",
            "occurred_at_s": T0 + 60 * n, "attributes": {"qty": n, "unit": "box"}, **extra}


def _drive(api: AnchorApi) -> None:
    """Dispatch the outbox and apply the chain's events, then record block times."""
    dispatcher, follower = build(api.runtime, build_registry())
    dispatcher.drain()
    follower.run_once()
    anchoring.run_once(api.runtime)


def _count(api: AnchorApi, model: type) -> int:
    with api.runtime.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_posted_events_are_anchored_and_their_proofs_verify_offline_and_on_chain(api: AnchorApi,
                                                                                 tmp_path: Path) -> None:
    """Events posted by a supplier and a buyer land in one batch whose root TraceAnchor holds; each
    event's proof document verifies with our CLI (offline + chain) and TraceAnchor.verify, the
    lot trace lists the events in order with proofs, and the standard-v1 dump rebuilds the root."""
    r = api.http.post("/v1/provenance/events", json={"events": [event(i) for i in range(3)]},
                      headers=api.as_("supplier-a"))
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 3 and all(e["leaf_hash"].startswith("0x") for e in r.json()["events"])
    r = api.http.post("/v1/provenance/events", json={"events": [event(3), event(0, lot="LOT-2")]},
                      headers=api.as_("buyer-b"))
    assert r.status_code == 201, r.text
    # Retrying the same request records nothing new.
    again = api.http.post("/v1/provenance/events", json={"events": [event(3)]}, headers=api.as_("buyer-b"))
    assert again.status_code == 200 and again.json()["duplicates"] == 1

    pending = api.http.get("/v1/provenance/events/evt-LOT-1-0/proof", headers=api.as_("auditor-c"))
    assert pending.status_code == 409 and pending.json()["type"] == PROBLEM + "provenance-event-pending"
    # that answer, saved and given to the verifier, is "not anchored yet" (exit 3), not a bad format
    (tmp_path / "pending.json").write_text(pending.text)
    said: list[str] = []
    assert verify_proof_file(tmp_path / "pending.json", api.rpc_url, said.append) == 3
    assert said[-1].startswith("NOT ANCHORED YET") and "unknown proof format" not in " ".join(said)

    flushed = api.http.post("/v1/anchors/flush", headers=api.as_("ops"))
    assert flushed.status_code == 200, flushed.text
    # Every open batch: the events, and the journal of the members onboarded meanwhile.
    [batch] = [b for b in flushed.json()["batches"] if b["kind"] == "events"]
    assert {b["kind"] for b in flushed.json()["batches"]} == {"events", "journal"}
    assert batch["kind"] == "events" and batch["leaf_count"] == 5 and batch["status"] == "pending"
    assert (batch["first_time_s"], batch["last_time_s"]) == (T0, T0 + 180)
    _drive(api)

    doc = api.http.get("/v1/provenance/events/evt-LOT-1-3/proof", headers=api.as_("auditor-c")).json()
    anchor = doc["anchor"]
    assert anchor is not None and anchor["batch_sequence"] == batch["sequence"]
    assert anchor["chain_id"] == api.runtime.manifest.chain_id and anchor["block_time"] > 0
    assert doc["event"]["member_id"] == onchain_id("buyer-b") and doc["root"] == batch["root"]

    path = tmp_path / "proof.json"
    path.write_text(json.dumps(doc))
    lines: list[str] = []
    assert verify_proof_file(path, api.rpc_url, lines.append) == 0, "\n".join(lines)
    assert lines[-1] == "VERIFIED" and any("contract-verify" in line for line in lines)
    assert any(line.strip().startswith("[ok] contract-verify-values: TraceAnchor.verifyEventValues") for line in lines)
    address = api.runtime.address("TraceAnchor")
    (ok,) = api.runtime.chain.call("TraceAnchor", address, "verify", [doc["root"], doc["proof"], doc["leaf_hash"]])
    assert ok is True
    (record,) = api.runtime.chain.call("TraceAnchor", address, "anchorOf", [doc["root"]])
    assert list(record)[2:] == [batch["sequence"], 5, 1]

    trace = api.http.get("/v1/provenance/lots/LOT-1/trace", headers=api.as_("auditor-c")).json()
    assert [e["event"]["event_id"] for e in trace["data"]] == [f"evt-LOT-1-{i}" for i in range(4)]
    assert all(e["status"] == "anchored" and e["proof"]["anchor"]["tx_hash"] == anchor["tx_hash"]
               for e in trace["data"])
    assert trace["has_more"] is False and trace["next_cursor"] is None
    # the one list envelope: pages of 3 then 1, has_more exact; a cursor naming no event of the lot is refused
    first = api.http.get("/v1/provenance/lots/LOT-1/trace", params={"limit": 3}, headers=api.as_("auditor-c")).json()
    assert first["has_more"] is True and first["next_cursor"] == "evt-LOT-1-2"
    last = api.http.get("/v1/provenance/lots/LOT-1/trace", params={"limit": 3, "cursor": first["next_cursor"]},
                        headers=api.as_("auditor-c")).json()
    assert [e["event"]["event_id"] for e in last["data"]] == ["evt-LOT-1-3"] and last["has_more"] is False
    bad = api.http.get("/v1/provenance/lots/LOT-1/trace", params={"cursor": "evt-nope"}, headers=api.as_("auditor-c"))
    assert bad.status_code == 422 and bad.json()["type"] == "urn:ledger:problem:invalid-cursor"

    dump = api.http.get(f"/v1/anchors/batches/{batch['sequence']}/dump", headers=api.as_("auditor-c")).json()
    assert StandardMerkleTree.load(dump).root == batch["root"]
    listed = api.http.get("/v1/anchors/batches?kind=events", headers=api.as_("ops")).json()
    assert [b["status"] for b in listed["data"]] == ["anchored"]


def test_a_tampered_or_truncated_proof_is_reported_not_verified(api: AnchorApi, tmp_path: Path) -> None:
    """Changing the event, a proof node or the root, or truncating the file, gives exit 1 and
    'NOT VERIFIED' (never a traceback); an unreachable node gives exit 2."""
    api.http.post("/v1/provenance/events", json={"events": [event(i) for i in range(4)]},
                  headers=api.as_("supplier-a"))
    api.http.post("/v1/anchors/flush", headers=api.as_("ops"))
    _drive(api)
    doc = api.http.get("/v1/provenance/events/evt-LOT-1-1/proof", headers=api.as_("ops")).json()
    later = {**doc, "event": {**doc["event"], "occurred_at_s": doc["event"]["occurred_at_s"] + 1}}
    both = {**later, "value": [*doc["value"][:7], str(doc["event"]["occurred_at_s"] + 1), *doc["value"][8:]]}
    node = {**doc, "proof": ["0x" + "11" * 32, *doc["proof"][1:]]}
    root = {**doc, "root": "0x" + "22" * 32}
    for name, bad in (("event", later), ("event+value", both), ("proof", node), ("root", root)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bad))
        out: list[str] = []
        assert verify_proof_file(path, api.rpc_url, out.append) == 1, name
        assert out[-1].startswith("NOT VERIFIED") and any("[FAIL]" in line for line in out), name
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(doc)[:200])
    out = []
    assert verify_proof_file(truncated, api.rpc_url, out.append) == 1 and out[-1] == "NOT VERIFIED"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc))
    out = []
    assert verify_proof_file(good, "http://127.0.0.1:9", out.append) == 2
    assert verify_proof_file(good, None, out.append) == 0
    from ledger_api.cli import main
    assert main(["anchors", "verify", str(good), "--rpc", api.rpc_url]) == 0
    assert main(["anchors", "verify", str(tmp_path / "proof.json"), "--rpc", api.rpc_url]) == 1


def test_bad_events_are_refused_with_stable_types_and_nothing_written(api: AnchorApi) -> None:
    """Malformed events -> 422 (leaf-schema rules: provenance-event-invalid with the index),
    too many -> 413, reused ids -> 409, wrong roles -> 403, unknown lot/event/batch -> 404;
    no refused request writes a row."""
    def post(events: list, member: str = "supplier-a") -> tuple[int, dict]:
        r = api.http.post("/v1/provenance/events", json={"events": events}, headers=api.as_(member))
        return r.status_code, r.json()

    status, body = post([event(0), event(1, product="gtin:4006381333932")])
    assert (status, body["type"], body["index"]) == (422, PROBLEM + "provenance-event-invalid", 1)
    status, body = post([event(0), event(0)])
    assert status == 422 and body["type"] == PROBLEM + "provenance-event-invalid"
    status, body = post([event(0, attributes={"weight": 1.5})])
    assert status == 422 and "float" in body["detail"]
    status, body = post([event(0, event_type="teleported")])
    assert status == 422 and body["type"] == PROBLEM + "validation-failed"
    status, body = post([event(0, member_id="0x" + "ab" * 32)])
    assert status == 422 and body["errors"][0]["field"].endswith("member_id")
    status, body = post([event(0, occurred_at_s="1700000000")])
    assert status == 422
    status, body = post([event(i) for i in range(1001)])
    assert (status, body["type"]) == (413, PROBLEM + "provenance-batch-too-large")
    big = {f"k{i}": "x" * 500 for i in range(30)}
    status, body = post([event(i, attributes=big) for i in range(40)])
    assert status in (413, 422), body
    status, body = post([])
    assert status == 422
    assert _count(api, ProvenanceEventRow) == 0

    assert post([event(0)])[0] == 201
    status, body = post([event(1), event(0, location="gln:other")])
    assert (status, body["type"]) == (409, PROBLEM + "provenance-event-conflict")
    assert _count(api, ProvenanceEventRow) == 1

    assert post([event(5)], member="auditor-c")[0] == 403
    assert post([event(5)], member="finance-d")[0] == 403
    assert api.http.get("/v1/provenance/lots/LOT-1/trace", headers=api.as_("supplier-a")).status_code == 403
    assert api.http.post("/v1/anchors/flush", headers=api.as_("auditor-c")).status_code == 403
    for url, slug in (("/v1/provenance/lots/NO-SUCH-LOT/trace", "unknown-lot"),
                      ("/v1/provenance/events/evt-none/proof", "unknown-provenance-event"),
                      ("/v1/anchors/batches/999", "unknown-anchor-batch")):
        r = api.http.get(url, headers=api.as_("auditor-c"))
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"] == PROBLEM + slug
    assert _count(api, AnchorBatch) == 0 and _count(api, OutboxRow) == len(
        [m for m in ("ops", "supplier-a", "buyer-b", "auditor-c", "finance-d")])
