"""Three-way reconciliation over HTTP and the CLI on a generated statement: statement lines vs the
journal (settlements paid through verified callbacks) vs the chain state of each operation. Every
line and entry lands in one bucket; broken rows are per-row errors; exceptions are resolved with a
note (who and when kept, digest journaled)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger_api.cli import main as ledger_main
from settlement.core.money import Money
from settlement.store.models.anchoring import RecordDigest

from .conftest import CWorld

USD = "USD"
HEADER = "provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"


def _paid_world(cw: CWorld, count: int = 3) -> list[dict]:
    """``count`` settlements paid through Stripe callbacks and confirmed on chain, one left unpaid
    with a pending payment (its chain operation not yet confirmed)."""
    paid = []
    for i in range(count):
        s = cw.settlement()
        pi = f"pi_test{i:04d}"
        assert cw.post("stripe", cw.payment("stripe", s["payment_reference"], Money(s["target"]["value"], USD),
                                            payment_intent_id=pi)).status_code == 200
        paid.append({**s, "pi": pi})
    cw.w.sync()
    return paid


def _statement(paid: list[dict]) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    lines = [HEADER]
    for i, s in enumerate(paid):
        amount = s["target"]["value"] + (5 if i == 1 else 0)  # the second one differs by 5 minor units
        lines.append(f"{s['pi']},{s['payment_reference']},payment,{amount},USD,succeeded,{now}\n")
    lines.append(f"pi_stranger,ORDER-X,payment,777,USD,succeeded,{now}\n")  # not in the ledger
    lines.append("pi_broken,ORDER-Y,payment,12.5,USD,succeeded,not-a-date\n")  # a broken row
    return "".join(lines)


def test_reconciliation_over_http_buckets_totals_and_exception_resolution(sworld: CWorld) -> None:
    paid = _paid_world(sworld)
    h = sworld.w.h("retailer")
    up = sworld.w.http.post("/v1/reconciliation/statements", params={"kind": "normalized", "filename": "s.csv"},
                            content=_statement(paid).encode(), headers={**h, "Content-Type": "text/csv"})
    assert up.status_code == 201, up.text
    stmt = up.json()
    assert stmt["line_count"] == 4 and stmt["row_error_count"] == 1 and stmt["row_errors"][0]["line_no"] == 6
    # Idempotency-Key on the upload: the same file again with its key is the first answer, no new statement
    once = {**h, "Content-Type": "text/csv", "Idempotency-Key": "upload-1"}
    first = sworld.w.http.post("/v1/reconciliation/statements", params={"kind": "normalized", "filename": "s.csv"},
                               content=_statement(paid).encode(), headers=once)
    again = sworld.w.http.post("/v1/reconciliation/statements", params={"kind": "normalized", "filename": "s.csv"},
                               content=_statement(paid).encode(), headers=once)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and first.json()["id"] != stmt["id"]
    other = sworld.w.http.post("/v1/reconciliation/statements", params={"kind": "normalized", "filename": "t.csv"},
                               content=_statement(paid).encode(), headers=once)
    assert other.status_code == 409 and other.json()["type"].endswith(":idempotency-key-reused")
    listed = sworld.w.http.get("/v1/reconciliation/statements", headers=h).json()["data"]
    assert len(listed) == 2
    run = sworld.w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]},
                             headers={**h, "Idempotency-Key": "run-1"})
    assert run.status_code == 201, run.text
    replayed = sworld.w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]},
                                  headers={**h, "Idempotency-Key": "run-1"})
    assert replayed.json() == run.json() and replayed.headers["Idempotent-Replayed"] == "true"
    assert run.headers["Location"] == replayed.headers["Location"] == f"/v1/reconciliation/runs/{run.json()['id']}"
    assert sworld.w.http.get(run.headers["Location"], headers=h).json()["id"] == run.json()["id"]
    assert len(sworld.w.http.get("/v1/reconciliation/runs", headers=h).json()["data"]) == 1
    summary = run.json()["summary"]
    buckets = {b: v["items"] for b, v in summary["buckets"].items()}
    assert buckets["matched"] == 2 and buckets["amount_mismatch"] == 1 and buckets["missing_in_ledger"] == 1
    assert sum(v["statement"] for v in summary["buckets"].values()) == 4
    assert sum(v["ledger"] for v in summary["buckets"].values()) == 3
    assert summary["buckets"]["matched"]["statement_totals"] == [{"value": 200_000, "currency": USD}]
    run_id = run.json()["id"]
    report = sworld.w.http.get(f"/v1/reconciliation/runs/{run_id}/report", headers=h).json()
    assert len(report["exceptions"]) == 2 and report["row_errors"][0]["line_no"] == 6
    csv_text = sworld.w.http.get(f"/v1/reconciliation/runs/{run_id}/report", params={"format": "csv"},
                                 headers=h).text
    assert csv_text.count("\n") == 3 and "amount_mismatch" in csv_text
    text = sworld.w.http.get(f"/v1/reconciliation/runs/{run_id}/report", params={"format": "text"}, headers=h).text
    assert "matched" in text and "USD" in text
    mismatch = next(e for e in report["exceptions"] if e["bucket"] == "amount_mismatch")
    assert mismatch["difference"] == {"value": 5, "currency": USD} and mismatch["chain_state"] == "confirmed"
    # resolve with a note: who and when kept, append-only, digest journaled
    r = sworld.w.http.post(f"/v1/reconciliation/exceptions/{mismatch['exception_id']}/resolve",
                           json={"action": "provider_claimed", "note": "fee deducted twice; claimed"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved" and r.json()["resolution"]["resolved_by"] == "retailer"
    again = sworld.w.http.post(f"/v1/reconciliation/exceptions/{mismatch['exception_id']}/resolve",
                               json={"action": "accepted", "note": "again"}, headers=h)
    assert again.status_code == 409
    assert sworld.w.http.post(f"/v1/reconciliation/exceptions/{mismatch['exception_id']}/resolve",
                              json={"action": "accepted", "note": ""}, headers=h).status_code == 422
    with sworld.w.runtime.db.read() as s:
        digests = list(s.scalars(select(RecordDigest).where(RecordDigest.kind == "reconciliation.resolution")))
    assert len(digests) == 1 and "fee deducted twice" in digests[0].canonical_json
    # a re-run over the same file does not duplicate or re-open the queue's items
    run2 = sworld.w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]}, headers=h).json()
    assert run2["summary"]["exceptions"] == {"total": 2, "new": 0, "seen_before": 2, "stored_truncated": False}
    # the one list envelope, newest first: a page of one, its cursor, the last page
    first = sworld.w.http.get("/v1/reconciliation/runs", params={"limit": 1}, headers=h).json()
    assert [r["id"] for r in first["data"]] == [run2["id"]] and first["has_more"] is True
    rest = sworld.w.http.get("/v1/reconciliation/runs", params={"limit": 1, "cursor": first["next_cursor"]},
                             headers=h).json()
    assert len(rest["data"]) == 1 and rest["data"][0]["id"] != run2["id"]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    assert sworld.w.http.get("/v1/reconciliation/runs", params={"cursor": "2026-13-01T00:00:00~ab"},
                             headers=h).status_code == 422
    open_items = sworld.w.http.get("/v1/reconciliation/exceptions", params={"state": "open", "origin": "run"},
                                   headers=h).json()["data"]
    assert len(open_items) == 1
    assert sworld.w.http.get("/v1/reconciliation/exceptions", headers=sworld.w.h("auditor")).status_code == 200
    assert sworld.w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]},
                              headers=sworld.w.h("auditor")).status_code == 403


@pytest.mark.parametrize("kind,body,status", [
    ("camt053", b"<Document><!DOCTYPE x [<!ENTITY a 'b'>]></Document>", 422),
    ("normalized", b"\xff\xfe\x00garbage without a header", 422),
    ("alipay", b"", 422),
    ("wechatpay", "交易时间,公众账号ID\n`2024-01-01 10:00:00,`wx\n".encode("gbk"), 422),  # columns missing
])
def test_bad_statements_are_refused_or_reported_per_row_never_a_500(sworld: CWorld, kind: str, body: bytes,
                                                                   status: int) -> None:
    r = sworld.w.http.post("/v1/reconciliation/statements", params={"kind": kind}, content=body,
                           headers=sworld.w.h("retailer"))
    assert r.status_code == status, r.text
    if status == 422:
        assert r.headers["content-type"].startswith("application/problem+json")


def test_cli_reconcile_writes_a_report_and_queues_exceptions(sworld: CWorld, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    paid = _paid_world(sworld, 2)
    rt = sworld.w.runtime
    monkeypatch.setenv("LEDGER_HOME", str(rt.home))
    monkeypatch.setenv("LEDGER_DATABASE_URL", rt.db.url)
    monkeypatch.setenv("LEDGER_RPC_URL", rt.chain.rpc_url)
    statement = tmp_path / "stmt.csv"
    statement.write_text(_statement(paid), encoding="utf-8")
    out = tmp_path / "report.json"
    code = ledger_main(["reconcile", str(statement), "--provider", "normalized", "--member", "retailer",
                        "--out", str(out), "--csv", str(tmp_path / "exc.csv")])
    captured = capsys.readouterr()
    assert code == 3  # exceptions were found and queued
    assert "matched" in captured.out and "parse" in captured.err and "match" in captured.err  # summary on stdout, progress on stderr
    report = json.loads(out.read_text())
    assert report["buckets"]["matched"]["items"] == 1 and report["buckets"]["amount_mismatch"]["items"] == 1
    assert report["inputs"]["statement_row_errors"] == 1
    assert (tmp_path / "exc.csv").read_text().count("\n") == 3
    assert ledger_main(["reconcile", str(tmp_path / "missing.csv"), "--provider", "normalized",
                        "--member", "retailer"]) == 1
    assert ledger_main(["reconcile", str(statement), "--provider", "normalized", "--member", "nobody"]) == 1


def test_cli_simulate_payment_posts_a_signed_notification(sworld: CWorld, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``ledger simulate-payment`` reads demo.json and pays the settlement through the running API."""
    s = sworld.settlement()
    rt = sworld.w.runtime
    demo = {"api": str(sworld.w.http.base_url), "providers": sworld.creds,
            "members": [{"id": "operator", "roles": ["operator"], "api_key": sworld.w.operator_key}]}
    (rt.home / "demo.json").write_text(json.dumps(demo))
    monkeypatch.setenv("LEDGER_HOME", str(rt.home))
    assert ledger_main(["simulate-payment", "--provider", "wechatpay", "--settlement", s["id"]]) == 0
    # WeChat Pay's acknowledgement is 204 with no body; the CLI prints it, what the server did, what it paid
    answer, server, paid = capsys.readouterr().out.splitlines()
    assert answer == f"POST /v1/callbacks/wechatpay/{sworld.creds['wechatpay']['account']}: 204 ''"
    assert server.startswith("server: applied")
    assert paid.startswith(f"settlement {s['id']}: ") and " paid via wechatpay (reference " in paid
    assert sworld.w.get(s["id"])["state"] == "paid"


def test_cli_providers_add_and_list(sworld: CWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from settlement.providers.testing import demo_credentials

    rt = sworld.w.runtime
    monkeypatch.setenv("LEDGER_HOME", str(rt.home))
    monkeypatch.setenv("LEDGER_DATABASE_URL", rt.db.url)
    monkeypatch.setenv("LEDGER_RPC_URL", rt.chain.rpc_url)
    creds = demo_credentials("stripe", "x")
    cfg = tmp_path / "stripe.json"
    cfg.write_text(json.dumps({"webhook_secrets": [creds["webhook_secret"]]}))
    assert ledger_main(["providers", "add", "stripe", "stripe-eu", "--config", str(cfg)]) == 0
    assert ledger_main(["providers", "list"]) == 0
    out = capsys.readouterr().out
    assert "stripe-eu" in out and creds["webhook_secret"] not in out
