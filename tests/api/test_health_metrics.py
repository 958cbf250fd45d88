"""/health reports the chain, contracts and store, and degrades (200) without a chain; anonymous
callers get the status, chain id, head block and contracts only. /metrics serves Prometheus text
from the app's own registry, with worker figures from runtime.stats, to the operator's or an
auditor's key only."""

from __future__ import annotations

import httpx

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.chain.client import ChainClient

from .support import Api, dead_rpc_url, onboard_direct


def test_health_ok(api: Api) -> None:
    r = api.http.get("/health", headers=api.as_(api.operator_key))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["chain"]["reachable"] is True and body["chain"]["chain_id"] == 31337
    assert body["chain"]["head_block"] >= 1
    assert body["contracts"]["ConsortiumRegistry"] == api.runtime.address("ConsortiumRegistry")
    assert body["store"]["reachable"] is True and body["store"]["dialect"] == api.runtime.db.dialect
    # The fixture's founding member was onboarded on chain before the bootstrap was sealed.
    assert body["store"]["outbox_depth"] == 0 and body["store"]["outbox_by_status"] == {"confirmed": 1}
    assert body["governance"] == {"bootstrap_sealed": True}
    assert body["version"]


def test_health_degraded_while_the_bootstrap_is_open(bootstrap_api: Api) -> None:
    """Until the registry's bootstrap is sealed the operator's key may still onboard members: the
    service is not ready (degraded), and says why."""
    body = bootstrap_api.http.get("/health", headers=bootstrap_api.as_(bootstrap_api.operator_key)).json()
    assert body["status"] == "degraded" and body["governance"] == {"bootstrap_sealed": False}
    assert body["chain"]["reachable"] is True


def test_health_degraded_when_the_chain_is_down(api: Api, serve) -> None:  # type: ignore[no-untyped-def]
    """A dead RPC port: 200, status degraded, chain unreachable, store still reported."""
    rt = api.runtime
    rt.chain = ChainClient(dead_rpc_url(), timeout_s=1.0)
    server = serve(create_app(rt, Settings(home=rt.home)))
    r = httpx.get(server.url + "/health", timeout=30.0, headers=api.as_(api.operator_key))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded"
    assert body["chain"]["reachable"] is False and body["chain"]["head_block"] is None
    assert body["chain"]["error"].startswith("chain-unavailable")
    assert body["store"]["reachable"] is True


def test_anonymous_health_shows_only_what_the_chain_shows(api: Api) -> None:
    """No node URL, store, outbox volumes, governance or version without the operator's or an
    auditor's key; a member of another role gets the same public answer; a bad key is 401."""
    finance_key = onboard_direct(api.runtime, "fin", ["finance"])
    detailed = api.http.get("/health", headers=api.as_(api.operator_key)).json()
    for headers in ({}, api.as_(finance_key)):
        r = api.http.get("/health", headers=headers)
        assert r.status_code == 200
        body = r.json()
        assert body == {"status": detailed["status"], "contracts": detailed["contracts"],
                        "chain": {"reachable": True, "chain_id": 31337,
                                  "head_block": body["chain"]["head_block"]}}
        assert body["chain"]["head_block"] >= 1
        assert api.runtime.chain.rpc_url.split("//")[1] not in r.text and "outbox" not in r.text
    bad = api.http.get("/health", headers={"Authorization": "Bearer lk_nope_nope"})
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"


def test_metrics_need_the_operators_or_an_auditors_key(api: Api) -> None:
    auditor_key = onboard_direct(api.runtime, "aud", ["auditor"])
    finance_key = onboard_direct(api.runtime, "fin", ["finance"])
    assert api.http.get("/metrics").status_code == 401
    assert api.http.get("/metrics", headers=api.as_(finance_key)).status_code == 403
    r = api.http.get("/metrics", headers=api.as_(auditor_key))
    assert r.status_code == 200 and "ledger_http_requests_total" in r.text


def test_metrics_text(api: Api) -> None:
    api.http.get("/health")
    api.http.get("/v1/members/ops", headers=api.as_(api.operator_key))
    api.http.get("/definitely/not/a/route")
    api.runtime.stats.update({"dispatch_latency_s_sum": 3.5, "dispatch_latency_s_count": 7, "follower_lag_blocks": 2})
    r = api.http.get("/metrics", headers=api.as_(api.operator_key))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'ledger_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'ledger_http_requests_total{method="GET",route="/v1/members/{member_id}",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "ledger_http_request_duration_seconds_bucket" in text
    assert "ledger_outbox_depth 0.0" in text
    assert 'ledger_outbox_rows{status="confirmed"} 1.0' in text
    assert "ledger_dispatch_latency_seconds_count 7.0" in text and "ledger_dispatch_latency_seconds_sum 3.5" in text
    assert "ledger_follower_lag_blocks 2.0" in text
    assert "python_gc" not in text  # a per-app registry, not the process-global one


def test_openapi_docs(api: Api) -> None:
    assert api.http.get("/docs").status_code == 200 and api.http.get("/redoc").status_code == 200
    spec = api.http.get("/openapi.json").json()
    assert spec["info"]["title"] == "Ledger API" and "/v1/members" in spec["paths"]
