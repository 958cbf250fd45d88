"""Member administration over HTTP: onboarding (key shown once, stored hashed, one transaction),
registry changes enqueued, key issue/rotation/revocation."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import func, select

from settlement.domains.members.service import ROLE_HASHES, onchain_id, read_onchain_member
from settlement.store.models import ApiKey, Member, MemberAccount, OutboxRow

from .support import Api, apply_outbox_directly, onboard_direct

NEW_MEMBER = {"id": "retailer-cn", "name": "Retailer (Shanghai) Ltd", "country": "CN", "roles": ["finance", "buyer"]}


def _counts(api: Api) -> tuple[int, int, int, int]:
    with api.runtime.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Member, MemberAccount, ApiKey, OutboxRow))


def test_onboarding_returns_the_key_once_and_stores_only_its_hash(api: Api) -> None:
    """201 with member + key; the key works; no later answer nor any column holds it."""
    r = api.http.post("/v1/members", json=NEW_MEMBER, headers=api.as_(api.operator_key))
    assert r.status_code == 201, r.text
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


def test_enqueued_onboarding_is_accepted_by_the_registry(api: Api) -> None:
    """The outbox row's arguments and gas limit are what the registry needs."""
    r = api.http.post("/v1/members", json={**NEW_MEMBER, "roles": ["operator", "finance", "supplier", "buyer",
                                                                   "financier", "auditor"]},
                      headers=api.as_(api.operator_key))
    assert r.status_code == 201
    apply_outbox_directly(api.runtime)
    onchain = read_onchain_member(api.runtime, onchain_id("retailer-cn"))
    assert onchain.status == "active" and onchain.country == "CN"
    assert len(onchain.roles) == 6 and list(onchain.accounts) == r.json()["member"]["accounts"]


def test_invalid_onboarding_writes_nothing(api: Api) -> None:
    """A refused request leaves no member, account, key or outbox row behind."""
    before = _counts(api)
    bad_country = api.http.post("/v1/members", json={**NEW_MEMBER, "country": "ZZ"}, headers=api.as_(api.operator_key))
    assert bad_country.status_code == 422 and bad_country.json()["type"] == "urn:ledger:problem:invalid-country"
    bad_role = api.http.post("/v1/members", json={**NEW_MEMBER, "roles": ["king"]}, headers=api.as_(api.operator_key))
    assert bad_role.status_code == 422 and bad_role.json()["type"] == "urn:ledger:problem:validation-failed"
    assert _counts(api) == before
    assert api.http.post("/v1/members", json=NEW_MEMBER, headers=api.as_(api.operator_key)).status_code == 201
    after_one = _counts(api)
    dup = api.http.post("/v1/members", json=NEW_MEMBER, headers=api.as_(api.operator_key))
    assert dup.status_code == 409 and dup.json()["type"] == "urn:ledger:problem:duplicate"
    assert _counts(api) == after_one


def test_suspend_reactivate_and_roles_enqueue_registry_calls(api: Api) -> None:
    """Each change answers 202 with its outbox row; an impossible transition is 409."""
    onboard_direct(api.runtime, "supplier-x", ["supplier"])
    op = api.as_(api.operator_key)
    s1 = api.http.post("/v1/members/supplier-x/suspend", headers=op)
    assert s1.status_code == 202 and s1.json()["member"]["status"] == "suspended"
    s2 = api.http.post("/v1/members/supplier-x/suspend", headers=op)
    assert s2.status_code == 409 and s2.json()["type"] == "urn:ledger:problem:invalid-state-transition"
    r = api.http.post("/v1/members/supplier-x/reactivate", headers=op)
    assert r.status_code == 202 and r.json()["member"]["status"] == "active"
    g = api.http.post("/v1/members/supplier-x/roles", json={"action": "grant", "role": "financier"}, headers=op)
    assert g.status_code == 202 and g.json()["member"]["roles"] == ["supplier", "financier"]
    v = api.http.post("/v1/members/supplier-x/roles", json={"action": "revoke", "role": "supplier"}, headers=op)
    assert v.status_code == 202 and v.json()["member"]["roles"] == ["financier"]
    with api.runtime.db.read() as s:
        kinds = list(s.scalars(select(OutboxRow.function).where(OutboxRow.aggregate_id == "supplier-x")
                               .order_by(OutboxRow.id)))
    assert kinds == ["onboardMember", "suspendMember", "reactivateMember", "grantMemberRole", "revokeMemberRole"]
    apply_outbox_directly(api.runtime, "supplier-x")
    onchain = read_onchain_member(api.runtime, onchain_id("supplier-x"))
    assert onchain.status == "active" and onchain.roles == ("financier",)
    missing = api.http.post("/v1/members/nobody/suspend", headers=op)
    assert missing.status_code == 404 and missing.json()["type"] == "urn:ledger:problem:unknown-member"


def test_key_rotation_with_and_without_overlap(api: Api) -> None:
    """Rotation issues a new key; old keys stay valid for the overlap only."""
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
    assert [k["active"] for k in keys["data"]] == [False, False, True]
    assert newest not in str(keys)


def test_members_revoke_only_their_own_keys(api: Api) -> None:
    """Another member's key prefix answers 404, as an unknown one would."""
    a = onboard_direct(api.runtime, "member-a", ["finance"])
    b = onboard_direct(api.runtime, "member-b", ["finance"])
    r = api.http.delete(f"/v1/api-keys/{b.split('_')[1]}", headers=api.as_(a))
    assert r.status_code == 404 and r.json()["type"] == "urn:ledger:problem:unknown-api-key"
    assert api.http.get("/v1/me", headers=api.as_(b)).status_code == 200
    r = api.http.delete(f"/v1/api-keys/{b.split('_')[1]}", headers=api.as_(api.operator_key))
    assert r.status_code == 200 and r.json()["active"] is False
    again = api.http.delete(f"/v1/api-keys/{b.split('_')[1]}", headers=api.as_(api.operator_key))
    assert again.status_code == 409
