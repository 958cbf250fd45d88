"""Governance over the API: propose, approve (a governor's member, with the demo key the service
holds or with its own signature over the Safe transaction), execute after the quorum and the
delay, the guardians' fast path, cancellation, proposals made around the API, and who sees what.
Each refusal is problem+json with a stable type; on chain the Safe and the timelock refuse too."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from settlement.core.errors import ChainRevertError
from settlement.custody.governors import demo_governor_keys
from settlement.domains.members import ROLE_HASHES, onchain_id, read_onchain_member
from tests.governance.conftest import Gov
from tests.governance.support import drive, warp

PROBLEM = "urn:ledger:problem:"


def ok(r: httpx.Response, code: int = 202) -> dict[str, Any]:
    assert r.status_code == code, r.text
    return r.json()


def problem(r: httpx.Response, code: int, slug: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == PROBLEM + slug, body
    return body


def test_slow_path_over_the_api_needs_the_quorum_and_the_delay(gworld: Gov) -> None:
    """The operator proposes a role grant; the members of two governors approve as their
    governors; execution first schedules it on the timelock (earliest execution time shown), is
    refused until the delay has passed, then runs it; the registry and the mirror agree."""
    w = gworld
    grant = {"action": "grant_role", "member_id": "supplier", "role": "financier"}
    made = w.http.post("/v1/governance/proposals", json=grant, headers={**w.h("ops"), "Idempotency-Key": "grant-1"})
    proposal = ok(made, 201)  # a create: 201 with the proposal, at its Location
    pid = proposal["id"]
    assert made.headers["Location"] == f"/v1/governance/proposals/{pid}"
    again = w.http.post("/v1/governance/proposals", json=grant, headers={**w.h("ops"), "Idempotency-Key": "grant-1"})
    assert (again.status_code, again.json(), again.headers["Location"]) == (201, proposal, made.headers["Location"])
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (proposal["status"], proposal["safe"], proposal["approvals_needed"]) == ("proposed", "governance", 2)
    drive(w.runtime)
    assert ok(w.http.get(f"/v1/governance/proposals/{pid}", headers=w.h("ops")), 200)["published_tx_hash"]
    problem(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("ops")), 409, "quorum-not-met")
    # The operator is no governor; a governor's member approves only as its own governor.
    problem(w.http.post(f"/v1/governance/proposals/{pid}/approvals", json={"governor": w.governor("gov-a")},
                        headers=w.h("ops")), 403, "not-a-governor")
    problem(w.http.post(f"/v1/governance/proposals/{pid}/approvals", json={"governor": w.governor("gov-b")},
                        headers=w.h("gov-a")), 403, "not-a-governor")
    for member in ("gov-a", "gov-b"):
        ok(w.http.post(f"/v1/governance/proposals/{pid}/approvals", json={"governor": w.governor(member)},
                       headers=w.h(member)))
    drive(w.runtime)
    approvals = ok(w.http.get(f"/v1/governance/proposals/{pid}", headers=w.h("ops")), 200)["approvals"]
    assert [(a["governor_member_id"], a["method"], a["status"]) for a in approvals] == [
        ("gov-a", "on_chain", "approved"), ("gov-b", "on_chain", "approved")]
    ok(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("gov-c")))
    drive(w.runtime)
    scheduled = ok(w.http.get(f"/v1/governance/proposals/{pid}", headers=w.h("ops")), 200)
    assert scheduled["status"] == "scheduled" and scheduled["earliest_execution_at"]
    body = problem(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("ops")), 409,
                   "governance-delay-pending")
    assert body["earliest_execution_at"] - body["chain_time"] <= w.runtime.governance.delay_s
    assert read_onchain_member(w.runtime, onchain_id("supplier")).roles == ("finance", "supplier")
    warp(w.runtime, w.runtime.governance.delay_s + 1)
    ok(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("ops")))
    drive(w.runtime)
    done = ok(w.http.get(f"/v1/governance/proposals/{pid}", headers=w.h("ops")), 200)
    assert done["status"] == "executed" and done["executed_tx_hash"]
    assert read_onchain_member(w.runtime, onchain_id("supplier")).roles == ("finance", "supplier", "financier")
    assert "financier" in ok(w.http.get("/v1/me", headers=w.h("supplier")), 200)["effective_roles"]
    problem(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("ops")), 409, "proposal-state")


def test_an_own_key_governor_approves_by_signing_the_safe_transaction(gworld: Gov) -> None:
    """A governor that keeps its key approves with its signature over the proposal's typed data
    (``ledger sign`` or a wallet); the Safe accepts it beside an on-chain approval; a signature by
    another key, or over another proposal, is refused."""
    w = gworld
    pid = ok(w.http.post("/v1/governance/proposals", json={"action": "set_country", "member_id": "buyer",
                                                           "country": "DE"}, headers=w.h("gov-c")), 201)["id"]
    typed = ok(w.http.get(f"/v1/governance/proposals/{pid}/typed-data", headers=w.h("gov-c")), 200)
    assert typed["typed_data"]["primaryType"] == "SafeTx"
    assert any("setCountry" in line for line in typed["summary"]) and any("'DE'" in line for line in typed["summary"])
    params = w.runtime.governance
    key_of = dict(zip([g.address for g in params.governors], demo_governor_keys(len(params.governors))))

    def signature(member: str) -> str:
        signed = Account.from_key(key_of[w.governor(member)]).sign_message(
            encode_typed_data(full_message=typed["typed_data"]))
        return "0x" + signed.signature.hex().removeprefix("0x")

    forged = problem(w.http.post(f"/v1/governance/proposals/{pid}/approvals",
                                 json={"governor": w.governor("gov-c"), "signature": signature("gov-a")},
                                 headers=w.h("gov-c")), 422, "signature-invalid")
    assert "not to governor" in forged["detail"]
    ok(w.http.post(f"/v1/governance/proposals/{pid}/approvals",
                   json={"governor": w.governor("gov-c"), "signature": signature("gov-c")}, headers=w.h("gov-c")))
    ok(w.http.post(f"/v1/governance/proposals/{pid}/approvals", json={"governor": w.governor("gov-a")},
                   headers=w.h("gov-a")))
    drive(w.runtime)
    ok(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("ops")))
    drive(w.runtime)
    warp(w.runtime, params.delay_s + 1)
    ok(w.http.post(f"/v1/governance/proposals/{pid}/execute", headers=w.h("ops")))
    drive(w.runtime)
    methods = {a["governor_member_id"]: a["method"] for a in ok(w.http.get(
        f"/v1/governance/proposals/{pid}", headers=w.h("ops")), 200)["approvals"]}
    assert methods == {"gov-c": "signature", "gov-a": "on_chain"}
    assert read_onchain_member(w.runtime, onchain_id("buyer")).country == "DE"
    assert ok(w.http.get("/v1/members/buyer", headers=w.h("ops")), 200)["country"] == "DE"


def test_fast_path_suspends_at_once_and_reinstatement_waits_for_the_delay(gworld: Gov) -> None:
    """Suspension: k guardians, executed at once. Reinstatement: M governors and the delay; the
    suspended member sees both pending actions about itself, and nothing about others."""
    w = gworld
    suspension = ok(w.http.post("/v1/members/buyer/suspend", headers=w.h("ops")))["proposal"]
    assert suspension["safe"] == "guardian" and suspension["delay_s"] is None
    assert suspension["earliest_execution_at"] is not None  # no delay: as soon as k approved
    other = ok(w.http.post("/v1/governance/proposals", json={"action": "suspend", "member_id": "supplier"},
                           headers=w.h("ops")), 201)  # the guardians' next nonce: it blocks nothing here
    pending = ok(w.http.get("/v1/governance/proposals", params={"pending": "true"}, headers=w.h("buyer")), 200)
    assert [p["id"] for p in pending["data"]] == [suspension["id"]]  # its own, not the supplier's
    assert pending["has_more"] is False and pending["next_cursor"] is None
    # the one list envelope: the operator's two proposals a page at a time, newest first
    first = ok(w.http.get("/v1/governance/proposals", params={"pending": "true", "limit": 1}, headers=w.h("ops")), 200)
    assert first["has_more"] is True and [p["id"] for p in first["data"]] == [other["id"]]
    last = ok(w.http.get("/v1/governance/proposals", params={"pending": "true", "limit": 1,
                                                             "cursor": first["next_cursor"]}, headers=w.h("ops")), 200)
    assert [p["id"] for p in last["data"]] == [suspension["id"]] and last["has_more"] is False
    problem(w.http.get("/v1/governance/proposals", params={"cursor": "x~y"}, headers=w.h("ops")), 422,
            "invalid-cursor")
    problem(w.http.get(f"/v1/governance/proposals/{other['id']}", headers=w.h("buyer")), 404, "proposal-not-found")
    problem(w.http.post("/v1/governance/proposals", json={"action": "suspend", "member_id": "supplier"},
                        headers=w.h("buyer")), 403, "not-a-governor")
    drive(w.runtime)
    for member in ("gov-b", "gov-c"):
        ok(w.http.post(f"/v1/governance/proposals/{suspension['id']}/approvals", json={"governor": w.governor(member)},
                       headers=w.h(member)))
    drive(w.runtime)
    ok(w.http.post(f"/v1/governance/proposals/{suspension['id']}/execute", headers=w.h("ops")))
    drive(w.runtime)
    assert ok(w.http.get(f"/v1/governance/proposals/{suspension['id']}", headers=w.h("ops")), 200)["status"] == "executed"
    assert read_onchain_member(w.runtime, onchain_id("buyer")).status == "suspended"
    problem(w.http.get("/v1/me", headers=w.h("buyer")), 403, "member-suspended")
    reinstatement = ok(w.http.post("/v1/members/buyer/reactivate", headers=w.h("ops")))["proposal"]
    assert reinstatement["safe"] == "governance" and reinstatement["delay_s"] == w.runtime.governance.delay_s
    drive(w.runtime)
    for member in ("gov-a", "gov-c"):
        ok(w.http.post(f"/v1/governance/proposals/{reinstatement['id']}/approvals",
                       json={"governor": w.governor(member)}, headers=w.h(member)))
    drive(w.runtime)
    listed = ok(w.http.get("/v1/governance/proposals", params={"pending": "true", "member": "buyer"},
                           headers=w.h("gov-a")), 200)["data"]
    assert [p["id"] for p in listed] == [reinstatement["id"]]
    ok(w.http.post(f"/v1/governance/proposals/{reinstatement['id']}/execute", headers=w.h("ops")))
    drive(w.runtime)
    problem(w.http.post(f"/v1/governance/proposals/{reinstatement['id']}/execute", headers=w.h("ops")), 409,
            "governance-delay-pending")
    assert read_onchain_member(w.runtime, onchain_id("buyer")).status == "suspended"
    warp(w.runtime, w.runtime.governance.delay_s + 1)
    ok(w.http.post(f"/v1/governance/proposals/{reinstatement['id']}/execute", headers=w.h("ops")))
    drive(w.runtime)
    assert ok(w.http.get("/v1/me", headers=w.h("buyer")), 200)["effective_status"] == "active"


def test_cancel_and_reject_and_proposals_made_around_the_api(gworld: Gov) -> None:
    """A scheduled change is cancelled by another governance decision during the delay; a proposal
    that will never run is rejected at its Safe nonce (unblocking later ones); a proposal a governor
    publishes with its own tools is mirrored, decoded, and shown to the member it is about."""
    w = gworld
    rt = w.runtime
    grant = ok(w.http.post("/v1/governance/proposals", json={"action": "grant_role", "member_id": "buyer",
                                                             "role": "auditor"}, headers=w.h("ops")), 201)
    drive(rt)
    for member in ("gov-a", "gov-b"):
        ok(w.http.post(f"/v1/governance/proposals/{grant['id']}/approvals", json={"governor": w.governor(member)},
                       headers=w.h(member)))
    drive(rt)
    ok(w.http.post(f"/v1/governance/proposals/{grant['id']}/execute", headers=w.h("ops")))
    drive(rt)
    cancel = ok(w.http.post("/v1/governance/proposals", json={"action": "cancel", "proposal_id": grant["id"]},
                            headers=w.h("gov-a")), 201)
    drive(rt)
    for member in ("gov-a", "gov-b"):
        ok(w.http.post(f"/v1/governance/proposals/{cancel['id']}/approvals", json={"governor": w.governor(member)},
                       headers=w.h(member)))
    drive(rt)
    ok(w.http.post(f"/v1/governance/proposals/{cancel['id']}/execute", headers=w.h("ops")))
    drive(rt)
    assert ok(w.http.get(f"/v1/governance/proposals/{grant['id']}", headers=w.h("ops")), 200)["status"] == "cancelled"
    warp(rt, rt.governance.delay_s + 1)
    problem(w.http.post(f"/v1/governance/proposals/{grant['id']}/execute", headers=w.h("ops")), 409, "proposal-state")
    assert "auditor" not in read_onchain_member(rt, onchain_id("buyer")).roles

    stuck = ok(w.http.post("/v1/governance/proposals", json={"action": "revoke_role", "member_id": "supplier",
                                                             "role": "finance"}, headers=w.h("ops")), 201)
    later = ok(w.http.post("/v1/governance/proposals", json={"action": "grant_role", "member_id": "supplier",
                                                             "role": "auditor"}, headers=w.h("ops")), 201)
    assert later["safe_nonce"] == stuck["safe_nonce"] + 1
    drive(rt)
    for member in ("gov-a", "gov-b"):
        ok(w.http.post(f"/v1/governance/proposals/{later['id']}/approvals", json={"governor": w.governor(member)},
                       headers=w.h(member)))
    drive(rt)
    problem(w.http.post(f"/v1/governance/proposals/{later['id']}/execute", headers=w.h("ops")), 409, "proposal-state")
    reject = ok(w.http.post("/v1/governance/proposals", json={"action": "reject", "proposal_id": stuck["id"]},
                            headers=w.h("ops")), 201)
    assert reject["safe_nonce"] == stuck["safe_nonce"]
    drive(rt)
    for member in ("gov-b", "gov-c"):
        ok(w.http.post(f"/v1/governance/proposals/{reject['id']}/approvals", json={"governor": w.governor(member)},
                       headers=w.h(member)))
    drive(rt)
    ok(w.http.post(f"/v1/governance/proposals/{reject['id']}/execute", headers=w.h("ops")))
    drive(rt)
    assert ok(w.http.get(f"/v1/governance/proposals/{stuck['id']}", headers=w.h("ops")), 200)["status"] == "stale"
    ok(w.http.post(f"/v1/governance/proposals/{later['id']}/execute", headers=w.h("ops")))
    drive(rt)
    assert ok(w.http.get(f"/v1/governance/proposals/{later['id']}", headers=w.h("ops")), 200)["status"] == "scheduled"

    # A governor publishes a suspension proposal with its own tools, around the service.
    governor = rt.governors[w.governor("gov-c")]
    a = rt.manifest.addresses
    data = rt.chain.encode("ConsortiumRegistry", "suspendMember", [onchain_id("supplier")])
    (nonce,) = rt.chain.call("GuardianSafe", a["GuardianSafe"], "nonce")
    rt.chain.transact(governor, to=a["GovernanceProposals"], gas=300_000, data=rt.chain.encode(
        "GovernanceProposals", "propose", [a["GuardianSafe"], a["ConsortiumRegistry"], 0, data, int(nonce),
                                           "suspend the supplier: a governor's own proposal"]))
    drive(rt)
    mine = ok(w.http.get("/v1/governance/proposals", params={"pending": "true"}, headers=w.h("supplier")), 200)["data"]
    assert [(p["action"], p["proposed_by"], p["safe"], p["status"]) for p in mine] == [
        ("suspend", "chain", "guardian", "proposed"), ("grant_role", "ops", "governance", "scheduled")]
    assert mine[0]["description"].startswith("suspend the supplier") and mine[1]["id"] == later["id"]


def test_attacks_of_the_operator_over_the_api_are_refused(gworld: Gov) -> None:
    """The issue's first bullet, over the API: the operator can neither add a key to a member nor
    change a member on its own (it only proposes; nothing happens without the governors), cannot
    approve, and cannot propose anything outside the governed actions (no admin role grant)."""
    w = gworld
    rogue = "0x" + "66" * 20
    problem(w.http.post("/v1/members/supplier/keys/typed-data", json={"account": rogue}, headers=w.h("ops")), 403,
            "member-keys-own-only")
    problem(w.http.post("/v1/members/supplier/keys", json={
        "account": rogue, "signer": rogue, "nonce": 0, "deadline": int(time.time()) + 600,
        "possession_signature": "0x" + "11" * 65, "custodial_consent": True}, headers=w.h("ops")),
        403, "member-keys-own-only")
    bad = w.http.post("/v1/governance/proposals", json={"action": "grant_admin", "member_id": "ops"},
                      headers=w.h("ops"))
    problem(bad, 422, "validation-failed")
    proposal = ok(w.http.post("/v1/governance/proposals", json={"action": "add_account", "member_id": "supplier",
                                                                 "account": rogue}, headers=w.h("ops")), 201)
    problem(w.http.post(f"/v1/governance/proposals/{proposal['id']}/approvals",
                        json={"governor": w.governor("gov-a")}, headers=w.h("ops")), 403, "not-a-governor")
    problem(w.http.post(f"/v1/governance/proposals/{proposal['id']}/execute", headers=w.h("ops")), 409,
            "quorum-not-met")
    drive(w.runtime)
    warp(w.runtime, w.runtime.governance.delay_s + 1)
    problem(w.http.post(f"/v1/governance/proposals/{proposal['id']}/execute", headers=w.h("ops")), 409,
            "quorum-not-met")
    accounts = read_onchain_member(w.runtime, onchain_id("supplier")).accounts
    assert rogue.lower() not in [a.lower() for a in accounts]
    # The registry itself refuses the operator's key for every admin function.
    rt = w.runtime
    registry = rt.address("ConsortiumRegistry")
    for fn, args in (("addAccount", [onchain_id("supplier"), rogue]),
                     ("grantRole", ["0x" + "00" * 32, rt.operator.address]),
                     ("grantMemberRole", [onchain_id("ops"), ROLE_HASHES["finance"]])):
        with pytest.raises(ChainRevertError) as refused:
            rt.chain.call("ConsortiumRegistry", registry, fn, args, sender=rt.operator.address)
        assert refused.value.error_name in ("AccessControlUnauthorizedAccount",
                                            "AccessControlEnforcedDefaultAdminRules"), fn
