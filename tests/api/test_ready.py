"""GET /ready tells the truth (issue 11, item 7), and /metrics says the same.

Proves over real HTTP, with a real anvil and a real store (SQLite and PostgreSQL): ready is 200
when everything holds; each failing check gives 503 problem+json `not-ready` naming it in
`reasons`: the follower's checkpoint far behind the head, an outbox row older than the limit, a
signer whose lowest in-flight nonce is above the node's pending nonce, the chain unreachable, the
store unreachable, the bootstrap window open; /metrics exports the same verdict and figures.
/health stays a 200 liveness answer throughout.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import httpx
from eth_account import Account
from sqlalchemy import update

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.chain.client import ChainClient
from settlement.pipeline import outbox
from settlement.store.db import Database
from settlement.store.models import Checkpoint, OutboxRow

from .support import Api, dead_rpc_url

PROBLEM = "application/problem+json"


def _follower_at_head(api: Api) -> int:
    head = api.runtime.chain.block_number()
    block = api.runtime.chain.get_block(head)
    with api.runtime.db.transaction() as s:
        s.merge(Checkpoint(name="contracts", block_number=head, block_hash=block["hash"]))
    return head


def _metrics(url: str, operator_key: str) -> str:
    """/metrics, for the operator's key (anonymous callers get 401)."""
    answer = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {operator_key}"}, timeout=30.0)
    assert answer.status_code == 200, answer.text
    return answer.text


def _not_ready(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["type"] == "urn:ledger:problem:not-ready" and body["status"] == 503
    assert "checks" in body
    return {r["code"]: r["detail"] for r in body["reasons"]}


def _enqueue(api: Api, *, status: str = "pending", signer: str | None = None, nonce: int | None = None,
             age_s: float = 0.0) -> None:
    with api.runtime.db.transaction() as s:
        row = outbox.enqueue(s, kind="test.ready", contract="ConsortiumRegistry", function="bootstrapper", args=[],
                             signer=signer or api.runtime.operator.address, gas_limit=100_000)
        row.status, row.nonce = status, nonce
        s.flush()
        s.execute(update(OutboxRow).where(OutboxRow.id == row.id)
                  .values(created_at=datetime.now(timezone.utc) - timedelta(seconds=age_s)))


def test_ready_then_each_store_and_chain_fact_that_makes_it_not_ready(api: Api) -> None:
    _follower_at_head(api)
    answer = api.http.get("/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ready" and answer.json()["checks"]["follower_lag_blocks"] == 0
    assert "ledger_ready 1.0" in _metrics(api.url, api.operator_key)

    # The follower 30 blocks behind (the limit is 20 by default).
    api.runtime.chain.rpc("anvil_mine", [hex(30)])
    reasons = _not_ready(api.http.get("/ready"))
    assert set(reasons) == {"follower-lagging"} and "30 blocks ahead" in reasons["follower-lagging"]
    head = _follower_at_head(api)
    assert api.http.get("/ready").status_code == 200

    # An outbox row waiting longer than the limit (120 s by default).
    _enqueue(api, age_s=600)
    reasons = _not_ready(api.http.get("/ready"))
    assert set(reasons) == {"outbox-stalled"} and "600 s" in reasons["outbox-stalled"]

    # A signer whose lowest sent nonce is 5 while the node expects 0: nonces 0..4 are missing.
    stuck = Account.create().address
    _enqueue(api, status="sent", signer=stuck, nonce=5)
    _enqueue(api, status="sent", signer=stuck, nonce=6)
    answer = api.http.get("/ready")
    reasons = _not_ready(answer)
    assert set(reasons) == {"outbox-stalled", "signer-nonce-gap"}
    assert stuck in reasons["signer-nonce-gap"] and "0..4 are missing" in reasons["signer-nonce-gap"]
    assert answer.json()["checks"]["stuck_signers"] == [{"signer": stuck, "lowest_nonce": 5, "chain_pending_nonce": 0}]
    assert answer.json()["checks"]["head_block"] == head

    metrics = _metrics(api.url, api.operator_key)
    assert "ledger_ready 0.0" in metrics
    assert 'ledger_not_ready{reason="signer-nonce-gap"} 1.0' in metrics
    assert 'ledger_not_ready{reason="outbox-stalled"} 1.0' in metrics
    assert 'ledger_not_ready{reason="follower-lagging"} 0.0' in metrics
    assert f'ledger_signer_nonce_gap{{signer="{stuck}"}} 5.0' in metrics
    assert "ledger_follower_checkpoint_lag_blocks 0.0" in metrics
    assert "ledger_chain_reachable 1.0" in metrics and "ledger_store_reachable 1.0" in metrics
    assert api.http.get("/health").status_code == 200


def test_rows_set_aside_as_orphaned_are_a_figure_of_ready_not_a_reason(api: Api) -> None:
    """A row the chain-loss recovery set aside as orphaned (its effect on chain without its
    transaction) waits for an operator but holds nothing else up: /ready stays 200, old as the row
    may be, and counts it in ``checks.outbox_orphaned``; /metrics shows it by status."""
    _follower_at_head(api)
    assert api.http.get("/ready").json()["checks"]["outbox_orphaned"] == 0
    _enqueue(api, status=outbox.ORPHANED, nonce=0, age_s=600)
    answer = api.http.get("/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["outbox_orphaned"] == 1
    assert 'ledger_outbox_rows{status="orphaned"} 1.0' in _metrics(api.url, api.operator_key)


def test_not_ready_while_the_bootstrap_is_open(bootstrap_api: Api) -> None:
    _follower_at_head(bootstrap_api)
    reasons = _not_ready(bootstrap_api.http.get("/ready"))
    assert set(reasons) == {"bootstrap-open"}


def test_not_ready_when_the_chain_is_unreachable(api: Api, serve) -> None:  # type: ignore[no-untyped-def]
    rt = dataclasses.replace(api.runtime, chain=ChainClient(dead_rpc_url(), timeout_s=1.0))
    server = serve(create_app(rt, Settings(home=rt.home)))
    answer = httpx.get(server.url + "/ready", timeout=30.0)
    reasons = _not_ready(answer)
    assert set(reasons) == {"chain-unreachable"}
    assert answer.json()["checks"]["store_reachable"] is True
    metrics = _metrics(server.url, api.operator_key)
    assert "ledger_chain_reachable 0.0" in metrics and 'ledger_not_ready{reason="chain-unreachable"} 1.0' in metrics
    assert httpx.get(server.url + "/health", timeout=30.0).status_code == 200


def test_not_ready_when_the_store_is_unreachable(api: Api, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _follower_at_head(api)
    if api.runtime.db.dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'no-such-dir' / 'ledger.db'}"
    else:  # a server that is not there
        url = "postgresql+psycopg://ledger@127.0.0.1:1/nowhere?connect_timeout=2"
    broken = Database(url)
    try:
        rt = dataclasses.replace(api.runtime, db=broken)
        server = serve(create_app(rt, Settings(home=rt.home)))
        answer = httpx.get(server.url + "/ready", timeout=30.0)
        reasons = _not_ready(answer)
        assert set(reasons) == {"store-unreachable"}
        assert answer.json()["checks"]["chain_reachable"] is True
        # /metrics cannot check a key without the store: it says so, it does not fail.
        metrics = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {api.operator_key}"},
                            timeout=30.0)
        assert metrics.status_code == 503 and metrics.headers["content-type"].startswith(PROBLEM), metrics.text
        assert httpx.get(server.url + "/health", timeout=30.0).status_code == 200
    finally:
        broken.dispose()
