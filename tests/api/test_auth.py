"""Authentication and authorization: 401 for no/bad/revoked keys, 403 for roles and suspension,
roles read from the on-chain registry (mirror as fallback); on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.chain.client import ChainClient
from settlement.domains.members.service import ROLE_HASHES, onchain_id
from settlement.store.models import Member, SecurityEvent

from tests.governance.support import approve_all, drive, execute, govern_on_chain

from .support import Api, dead_rpc_url, onboard_direct

PROBLEM = "application/problem+json"
UNAUTHENTICATED = "urn:ledger:problem:unauthenticated"


def _assert_401(response: httpx.Response) -> dict:
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["type"] == UNAUTHENTICATED and body["status"] == 401
    return body


def _security_events(api: Api) -> list[SecurityEvent]:
    with api.runtime.db.read() as s:
        return list(s.scalars(select(SecurityEvent).order_by(SecurityEvent.id)))


def test_missing_key_is_401_with_bearer_challenge(api: Api) -> None:
    """No Authorization header: 401 problem, WWW-Authenticate: Bearer, recorded."""
    _assert_401(api.http.get("/v1/me"))
    _assert_401(api.http.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    kinds = [e.kind for e in _security_events(api)]
    assert "auth.missing" in kinds and "auth.malformed_key" in kinds


def test_bad_key_is_401_and_recorded_by_prefix_only(api: Api) -> None:
    """A well-formed key with a wrong secret is refused; the event names the prefix, never the key."""
    prefix = api.operator_key.split("_")[1]
    forged = f"lk_{prefix}_" + "A" * 43
    response = api.http.get("/v1/me", headers=api.as_(forged))
    _assert_401(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert forged not in response.text
    events = _security_events(api)
    assert any(e.kind == "auth.invalid_key" and f"prefix={prefix}" in e.detail for e in events)
    assert all(forged not in e.detail and api.operator_key not in e.detail for e in events)


def test_revoked_key_is_401(api: Api) -> None:
    """A revoked key stops working at once."""
    key = onboard_direct(api.runtime, "supplier-a", ["supplier"])
    assert api.http.get("/v1/me", headers=api.as_(key)).status_code == 200
    prefix = key.split("_")[1]
    assert api.http.delete(f"/v1/api-keys/{prefix}", headers=api.as_(key)).status_code == 200
    _assert_401(api.http.get("/v1/me", headers=api.as_(key)))
    assert any(e.kind == "auth.revoked_key" for e in _security_events(api))


def test_wrong_role_is_403_forbidden(api: Api) -> None:
    """A valid key without the operator role cannot use admin endpoints."""
    key = onboard_direct(api.runtime, "supplier-b", ["supplier", "finance"])
    response = api.http.get("/v1/members", headers=api.as_(key))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:ledger:problem:forbidden"
    assert body["required_roles"] == ["operator"]
    assert api.http.get("/v1/members", headers=api.as_(api.operator_key)).status_code == 200


def test_suspended_member_is_403_member_suspended(api: Api) -> None:
    """A suspension proposal alone changes nothing; once the guardians executed it (fast path, no
    delay) the member is refused at once, by the registry's answer."""
    key = onboard_direct(api.runtime, "buyer-a", ["buyer"])
    assert api.http.get("/v1/me", headers=api.as_(key)).status_code == 200
    r = api.http.post("/v1/members/buyer-a/suspend", headers=api.as_(api.operator_key))
    assert r.status_code == 202, r.text
    assert api.http.get("/v1/me", headers=api.as_(key)).status_code == 200  # proposed, not decided
    pid = r.json()["proposal"]["id"]
    drive(api.runtime)
    approve_all(api.runtime, pid)
    execute(api.runtime, pid)
    response = api.http.get("/v1/me", headers=api.as_(key))
    assert response.status_code == 403 and response.json()["type"] == "urn:ledger:problem:member-suspended"


def test_roles_come_from_the_chain_and_refresh_the_mirror(api: Api) -> None:
    """A role revoked on chain by the governors around the API is denied at the next request; the
    mirror follows."""
    key = onboard_direct(api.runtime, "bank-a", ["financier", "operator"])
    me = api.http.get("/v1/me", headers=api.as_(key)).json()
    assert me["roles_source"] == "chain" and sorted(me["effective_roles"]) == ["financier", "operator"]
    rt = api.runtime
    govern_on_chain(rt, "revokeMemberRole", [onchain_id("bank-a"), ROLE_HASHES["operator"]])
    response = api.http.get("/v1/members", headers=api.as_(key))
    assert response.status_code == 403
    with rt.db.read() as s:
        assert s.get(Member, "bank-a").roles == ["financier"]


def test_chain_unreachable_falls_back_to_the_mirror(api: Api, serve) -> None:  # type: ignore[no-untyped-def]
    """With the node down, members still authenticate with the roles in the mirror."""
    rt = api.runtime
    rt.chain = ChainClient(dead_rpc_url(), timeout_s=1.0)
    app = create_app(rt, Settings(home=rt.home), registry_cache_ttl_s=0.0)
    server = serve(app)
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        me = http.get("/v1/me", headers=api.as_(api.operator_key))
        assert me.status_code == 200, me.text
        assert me.json()["roles_source"] == "mirror"
        # Said in headers too, with how stale the mirror may be: the follower's checkpoint.
        assert me.headers["Ledger-Roles-Source"] == "mirror"
        assert re.fullmatch(r"chain-unreachable; block=\d+; age_s=\d+\.\d", me.headers["Ledger-Mirror-Staleness"])
        assert http.get("/v1/members", headers=api.as_(api.operator_key)).status_code == 200
