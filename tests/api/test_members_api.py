"""Member administration over HTTP: founding members onboarded by the operator in the bootstrap
window (key shown once, stored hashed, one transaction); after the seal, onboarding, suspension,
reinstatement and roles are governance proposals (202) that change nothing until the governors'
quorum (and, but for suspension, the delay) executes them; key issue/rotation/revocation."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import func, select

from settlement.domains.members.service import ROLE_HASHES, onchain_id, read_onchain_member
from settlement.store.models import ApiKey, Member, MemberAccount, OutboxRow
from settlement.store.models.governance import GovernanceProposal, MemberOnboarding
from tests.governance.support import approve_all, drive, execute, warp

from .support import Api, apply_outbox_directly, onboard_direct

NEW_MEMBER = {"id": "retailer-cn", "name": "Retailer (Shanghai) Ltd", "country": "CN", "roles": ["finance", "buyer"]}


def _counts(api: Api) -> tuple[int, ...]:
    with api.runtime.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t))
                     for t in (Member, MemberAccount, ApiKey, OutboxRow, GovernanceProposal, MemberOnboarding))


def test_bootstrap_onboarding_returns_the_key_once_and_stores_only_its_hash(bootstrap_api: Api) -> None:
    """In the bootstrap window: 201 with member + key; the key works; no later answer nor any column
    holds it; the registry call is signed by the operator, the bootstrapper."""
    api = bootstrap_api
    r = api.http.post("/v1/members", json=NEW_MEMBER, headers=api.as_(api.operator_key))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v1/members/retailer-cn"
    body = r.json()
    key = body["api_key"]["key"]
    assert key.startswith("lk_") and len(key) >= 50
    assert body["member"]["roles"] == ["finance", "buyer"] and body["member"]["status"] == "active"
    assert body["member"]["onchain_id"] == onchain_id("retailer-cn")
    [address] = body["member"]["accounts"]
    with api.runtime.db.read() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.prefix == body["api_key"]["prefix"]))
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        account = s.get(MemberAccount, address)
        assert account.encrypted_key and bytes.fromhex(key.encode().hex()) not in account.encrypted_key
        outbox = s.get(OutboxRow, body["outbox_id"])
        assert (outbox.kind, outbox.function, outbox.signer) == ("member.onboard", "onboardMember",
                                                                 api.runtime.operator.address)
        assert outbox.args == [onchain_id("retailer-cn"), "0x434e", [address],
                               [ROLE_HASHES["finance"], ROLE_HASHES["buyer"]]]
    me = api.http.get("/v1/me", headers=api.as_(key))
    assert me.status_code == 200 and me.json()["member"]["id"] == "retailer-cn"
    again = api.http.get("/v1/members/retailer-cn", headers=api.as_(api.operator_key))
    assert again.status_code == 200 and key not in again.text
    listed = api.http.get("/v1/members", headers=api.as_(api.operator_key)).json()
    assert [m["id"] for m in listed["data"]] == ["ops", "retailer-cn"] and key not in str(listed)
    assert listed["has_more"] is False and listed["next_cursor"] is None
    # the one list envelope: a page, its cursor, and has_more exact on a full last page
    first = api.http.get("/v1/members", params={"limit": 1}, headers=api.as_(api.operator_key)).json()
    assert [m["id"] for m in first["data"]] == ["ops"] and first["has_more"] is True
    last = api.http.get("/v1/members", params={"limit": 1, "cursor": first["next_cursor"]},
                        headers=api.as_(api.operator_key)).json()
    assert [m["id"] for m in last["data"]] == ["retailer-cn"] and last == {**last, "has_more": False,
                                                                           "next_cursor": None}
    apply_outbox_directly(api.runtime)
    onchain = read_onchain_member(api.runtime, onchain_id("retailer-cn"))
    assert onchain.status == "active" and list(onchain.accounts) == [address]


def test_after_the_seal_onboarding_is_a_proposal_that_executes_only_with_quorum_and_delay(api: Api) -> None:
    """202 with the proposal (at Location); nothing is onboarded while it waits for approvals, nor before the
    delay; once executed the follower creates the member from the registry's MemberOnboarded, and
    the operator issues its first API key."""
    op = api.as_(api.operator_key)
    r = api.http.post("/v1/members", json=NEW_MEMBER, headers=op)
    assert r.status_code == 202, r.text  # no member yet (nor ever, unless the governors decide so)
    proposal = r.json()["proposal"]
    pid = proposal["id"]
    assert r.headers["Location"] == f"/v1/governance/proposals/{pid}"  # what decides it: watch it there
    assert proposal["action"] == "onboard" and proposal["member_id"] == "retailer-cn"
    assert proposal["safe"] == "governance" and proposal["status"] == "proposed"
    assert proposal["approvals_needed"] == 2 and proposal["earliest_execution_at"] is None
    assert any("onboardMember" in line for call in proposal["calls"] for line in call["summary"])
    assert api.http.get("/v1/members/retailer-cn", headers=op).status_code == 404
    drive(api.runtime)  # published in the proposal log by a (demo) governor
    early = api.http.post(f"/v1/governance/proposals/{pid}/execute", headers=op)
    assert early.status_code == 409 and early.json()["type"] == "urn:ledger:problem:quorum-not-met"
    approve_all(api.runtime, pid)
    execute(api.runtime, pid)  # the Safe schedules the batch on the timelock
    scheduled = api.http.get(f"/v1/governance/proposals/{pid}", headers=op).json()
    assert scheduled["status"] == "scheduled" and scheduled["earliest_execution_at"]
    too_soon = api.http.post(f"/v1/governance/proposals/{pid}/execute", headers=op)
    assert too_soon.status_code == 409 and too_soon.json()["type"] == "urn:ledger:problem:governance-delay-pending"
    assert too_soon.json()["earliest_execution_at"] > too_soon.json()["chain_time"]
    assert read_onchain_member(api.runtime, onchain_id("retailer-cn")).status == "none"
    warp(api.runtime, api.runtime.governance.delay_s + 1)
    assert api.http.post(f"/v1/governance/proposals/{pid}/execute", headers=op).status_code == 202
    drive(api.runtime)
    member = api.http.get("/v1/members/retailer-cn", headers=op).json()
    assert member["status"] == "active" and member["roles"] == ["finance", "buyer"] and len(member["accounts"]) == 1
    onchain = read_onchain_member(api.runtime, onchain_id("retailer-cn"))
    assert onchain.status == "active" and list(onchain.accounts) == member["accounts"]
    issued = api.http.post("/v1/members/retailer-cn/api-keys", json={}, headers=op)
    assert issued.status_code == 201
    assert api.http.get("/v1/me", headers=api.as_(issued.json()["key"])).json()["roles_source"] == "chain"


def test_invalid_onboarding_writes_nothing(api: Api) -> None:
    """A refused request leaves no member, account, key, outbox row or proposal behind; a member
    proposed already (or existing) is a 409."""
    before = _counts(api)
    op = api.as_(api.operator_key)
    bad_country = api.http.post("/v1/members", json={**NEW_MEMBER, "country": "ZZ"}, headers=op)
    assert bad_country.status_code == 422 and bad_country.json()["type"] == "urn:ledger:problem:invalid-country"
    bad_role = api.http.post("/v1/members", json={**NEW_MEMBER, "roles": ["king"]}, headers=op)
    assert bad_role.status_code == 422 and bad_role.json()["type"] == "urn:ledger:problem:validation-failed"
    taken = api.http.post("/v1/members", json={**NEW_MEMBER, "id": "ops"}, headers=op)
    assert taken.status_code == 409 and taken.json()["type"] == "urn:ledger:problem:duplicate"
    assert _counts(api) == before
    assert api.http.post("/v1/members", json=NEW_MEMBER, headers=op).status_code == 202
    after_one = _counts(api)
    dup = api.http.post("/v1/members", json=NEW_MEMBER, headers=op)
    assert dup.status_code == 409 and dup.json()["type"] == "urn:ledger:problem:duplicate"
    assert _counts(api) == after_one


def test_suspend_reactivate_and_roles_are_governance_proposals(api: Api) -> None:
    """Each change answers 202 with its proposal and changes nothing by itself; suspension is the
    guardians' fast path (no delay), reinstatement and roles wait for the delay; an impossible
    transition is 409 and an unknown member 404."""
    onboard_direct(api.runtime, "supplier-x", ["supplier"])
    op = api.as_(api.operator_key)
    s1 = api.http.post("/v1/members/supplier-x/suspend", headers=op)
    assert s1.status_code == 202 and s1.json()["proposal"]["safe"] == "guardian"
    assert s1.json()["proposal"]["delay_s"] is None
    assert api.http.get("/v1/members/supplier-x", headers=op).json()["status"] == "active"
    early = api.http.post("/v1/members/supplier-x/reactivate", headers=op)
    assert early.status_code == 409 and early.json()["type"] == "urn:ledger:problem:invalid-state-transition"
    pid = s1.json()["proposal"]["id"]
    drive(api.runtime)
    approve_all(api.runtime, pid)
    execute(api.runtime, pid)
    assert api.http.get("/v1/members/supplier-x", headers=op).json()["status"] == "suspended"
    assert read_onchain_member(api.runtime, onchain_id("supplier-x")).status == "suspended"
    r = api.http.post("/v1/members/supplier-x/reactivate", headers=op)
    assert r.status_code == 202 and r.json()["proposal"]["safe"] == "governance"
    g = api.http.post("/v1/members/supplier-x/roles", json={"action": "grant", "role": "financier"}, headers=op)
    assert g.status_code == 202 and g.json()["proposal"]["action"] == "grant_role"
    for proposal in (r.json()["proposal"], g.json()["proposal"]):
        drive(api.runtime)
        approve_all(api.runtime, proposal["id"])
        execute(api.runtime, proposal["id"])
    warp(api.runtime, api.runtime.governance.delay_s + 1)
    for proposal in (r.json()["proposal"], g.json()["proposal"]):
        execute(api.runtime, proposal["id"])
    member = api.http.get("/v1/members/supplier-x", headers=op).json()
    assert member["status"] == "active" and member["roles"] == ["supplier", "financier"]
    onchain = read_onchain_member(api.runtime, onchain_id("supplier-x"))
    assert onchain.status == "active" and onchain.roles == ("supplier", "financier")
    missing = api.http.post("/v1/members/nobody/suspend", headers=op)
    assert missing.status_code == 404 and missing.json()["type"] == "urn:ledger:problem:unknown-member"


def test_key_rotation_with_and_without_overlap(bootstrap_api: Api) -> None:
    """Rotation issues a new key; old keys stay valid for the overlap only."""
    api = bootstrap_api
    old = onboard_direct(api.runtime, "finance-x", ["finance"])
    op = api.as_(api.operator_key)
    r = api.http.post("/v1/members/finance-x/api-keys", json={"rotate": True, "overlap_s": 2}, headers=op)
    assert r.status_code == 201, r.text
    new = r.json()["key"]
    assert r.json()["revokes"] == [old.split("_")[1]]
    assert api.http.get("/v1/me", headers=api.as_(old)).status_code == 200  # within the overlap
    assert api.http.get("/v1/me", headers=api.as_(new)).status_code == 200
    time.sleep(2.2)
    assert api.http.get("/v1/me", headers=api.as_(old)).status_code == 401
    r2 = api.http.post("/v1/members/finance-x/api-keys", json={"rotate": True}, headers=op)
    newest = r2.json()["key"]
    assert api.http.get("/v1/me", headers=api.as_(new)).status_code == 401
    assert api.http.get("/v1/me", headers=api.as_(newest)).status_code == 200
    keys = api.http.get("/v1/members/finance-x/api-keys", headers=op).json()
    assert [k["active"] for k in keys["data"]] == [True, False, False]  # newest first
    assert keys["has_more"] is False and keys["next_cursor"] is None and keys["count"] == 3
    assert newest not in str(keys)
    # the one list envelope: pages of 2 then 1, has_more exact, the cursor a keyset one
    first = api.http.get("/v1/members/finance-x/api-keys", params={"limit": 2}, headers=op).json()
    assert first["has_more"] is True and [k["prefix"] for k in first["data"]] == [
        k["prefix"] for k in keys["data"][:2]]
    last = api.http.get("/v1/members/finance-x/api-keys", params={"limit": 2, "cursor": first["next_cursor"]},
                        headers=op).json()
    assert [k["prefix"] for k in last["data"]] == [keys["data"][2]["prefix"]] and last["has_more"] is False
    bad = api.http.get("/v1/members/finance-x/api-keys", params={"cursor": "not-a-cursor"}, headers=op)
    assert bad.status_code == 422 and bad.json()["type"] == "urn:ledger:problem:invalid-cursor"
    # Idempotency-Key: a retry gets the first answer without the key (shown once), and issues nothing
    once = {**op, "Idempotency-Key": "issue-once"}
    issued = api.http.post("/v1/members/finance-x/api-keys", json={"label": "once"}, headers=once)
    assert issued.status_code == 201 and issued.json()["key"] and issued.headers["Idempotent-Replayed"] == "false"
    again = api.http.post("/v1/members/finance-x/api-keys", json={"label": "once"}, headers=once)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**issued.json(), "key": None}
    assert api.http.get("/v1/members/finance-x/api-keys", headers=op).json()["count"] == 4
    other = api.http.post("/v1/members/finance-x/api-keys", json={"label": "other"}, headers=once)
    assert other.status_code == 409 and other.json()["type"] == "urn:ledger:problem:idempotency-key-reused"


def test_members_revoke_only_their_own_keys(bootstrap_api: Api) -> None:
    """Another member's key prefix answers 404, as an unknown one would."""
    api = bootstrap_api
    a = onboard_direct(api.runtime, "member-a", ["finance"])
    b = onboard_direct(api.runtime, "member-b", ["finance"])
    r = api.http.delete(f"/v1/api-keys/{b.split('_')[1]}", headers=api.as_(a))
    assert r.status_code == 404 and r.json()["type"] == "urn:ledger:problem:unknown-api-key"
    assert api.http.get("/v1/me", headers=api.as_(b)).status_code == 200
    r = api.http.delete(f"/v1/api-keys/{b.split('_')[1]}", headers=api.as_(api.operator_key))
    assert r.status_code == 200 and r.json()["active"] is False
    again = api.http.delete(f"/v1/api-keys/{b.split('_')[1]}", headers=api.as_(api.operator_key))
    assert again.status_code == 409
