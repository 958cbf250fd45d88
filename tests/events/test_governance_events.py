"""governance.* events from real governance actions (real anvil, real HTTP, SQLite and PostgreSQL):
the guardians' fast-path suspension, a reinstatement through the timelock after its delay, a
scheduled change cancelled by another decision, a proposal made stale by a rejection, and a change
of country. Each proposal's events (proposed, each approval, scheduled, executed, cancelled, stale)
reach exactly the member the action concerns, the governors' members and the operator, with the
payload the OpenAPI webhooks section documents; the member.* events of the change reach the member
itself only; a member never reads another's."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data

from ledger_api.routes.webhooks import _delivery_model
from settlement.custody.governors import demo_governor_keys
from tests.governance.conftest import FOUNDERS, Gov, gworld  # noqa: F401  (fixture)
from tests.governance.support import drive, warp

from .support import all_events

AUDIENCE = {"ops", "gov-a", "gov-b", "gov-c"}  # the operator and the governors' members


def _ok(r: httpx.Response, code: int = 202) -> dict[str, Any]:
    assert r.status_code == code, r.text
    return r.json()


def _decide(w: Gov, body: dict[str, Any], approvers: tuple[str, ...], *, proposer: str = "ops",
            execute: bool = True) -> dict[str, Any]:
    """Propose over the API, approve with the governors' members, execute (the Safe step)."""
    p = _ok(w.http.post("/v1/governance/proposals", json=body, headers=w.h(proposer)), 201)
    drive(w.runtime)
    for member in approvers:
        _ok(w.http.post(f"/v1/governance/proposals/{p['id']}/approvals", json={"governor": w.governor(member)},
                        headers=w.h(member)))
    drive(w.runtime)
    if execute:
        _ok(w.http.post(f"/v1/governance/proposals/{p['id']}/execute", headers=w.h("ops")))
        drive(w.runtime)
    return p


def _after_delay(w: Gov, proposal_id: str) -> None:
    warp(w.runtime, w.runtime.governance.delay_s + 1)  # type: ignore[union-attr]
    _ok(w.http.post(f"/v1/governance/proposals/{proposal_id}/execute", headers=w.h("ops")))
    drive(w.runtime)


def test_governance_events_reach_the_member_concerned_the_governors_and_the_operator(gworld: Gov) -> None:
    w = gworld
    suspension = _ok(w.http.post("/v1/members/supplier/suspend", headers=w.h("ops")))["proposal"]
    drive(w.runtime)
    for member in ("gov-b", "gov-c"):
        _ok(w.http.post(f"/v1/governance/proposals/{suspension['id']}/approvals",
                        json={"governor": w.governor(member)}, headers=w.h(member)))
    drive(w.runtime)
    _ok(w.http.post(f"/v1/governance/proposals/{suspension['id']}/execute", headers=w.h("ops")))
    drive(w.runtime)
    reinstatement = _decide(w, {"action": "reactivate", "member_id": "supplier"}, ("gov-a", "gov-c"))
    _after_delay(w, reinstatement["id"])
    grant = _decide(w, {"action": "grant_role", "member_id": "buyer", "role": "auditor"}, ("gov-a", "gov-b"))
    cancel = _decide(w, {"action": "cancel", "proposal_id": grant["id"]}, ("gov-a", "gov-b"), proposer="gov-a")
    stuck = _ok(w.http.post("/v1/governance/proposals", json={"action": "revoke_role", "member_id": "supplier",
                                                              "role": "finance"}, headers=w.h("ops")), 201)
    drive(w.runtime)
    reject = _decide(w, {"action": "reject", "proposal_id": stuck["id"]}, ("gov-b", "gov-c"))
    # gov-c approves with its own signature over the Safe transaction (an own-key governor)
    country = _decide(w, {"action": "set_country", "member_id": "buyer", "country": "HK"}, ("gov-a",),
                      proposer="gov-c", execute=False)
    typed = _ok(w.http.get(f"/v1/governance/proposals/{country['id']}/typed-data", headers=w.h("gov-c")), 200)
    addresses = w.runtime.governance.addresses  # type: ignore[union-attr]
    key = dict(zip(addresses, demo_governor_keys(len(addresses)), strict=True))[w.governor("gov-c")]
    signed = Account.from_key(key).sign_message(encode_typed_data(full_message=typed["typed_data"]))
    signature = "0x" + signed.signature.hex().removeprefix("0x")
    _ok(w.http.post(f"/v1/governance/proposals/{country['id']}/approvals", headers=w.h("gov-c"),
                    json={"governor": w.governor("gov-c"), "signature": signature}))
    _ok(w.http.post(f"/v1/governance/proposals/{country['id']}/execute", headers=w.h("ops")))
    drive(w.runtime)
    _after_delay(w, country["id"])

    # Who reads which event: every member's own list, read over the API.
    seen: dict[str, dict[str, Any]] = {}
    readers: dict[str, set[str]] = defaultdict(set)
    for member in FOUNDERS:
        for e in all_events(w.http, w.h(member)):
            seen[e["id"]] = e
            readers[e["id"]].add(member)
    gov_events = [e for e in seen.values() if e["type"].startswith("governance.")]
    by_proposal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(gov_events, key=lambda e: int(e["cursor"])):
        by_proposal[e["data"]["object_id"]].append(e)

    def types(pid: str) -> list[str]:
        return [e["type"] for e in by_proposal[pid]]

    assert types(suspension["id"]) == ["governance.proposed", "governance.approved", "governance.approved",
                                       "governance.executed"]
    assert types(reinstatement["id"]) == ["governance.proposed", "governance.approved", "governance.approved",
                                          "governance.scheduled", "governance.executed"]
    assert types(grant["id"]) == ["governance.proposed", "governance.approved", "governance.approved",
                                  "governance.scheduled", "governance.cancelled"]
    assert types(cancel["id"]) == ["governance.proposed", "governance.approved", "governance.approved",
                                   "governance.executed"]
    assert types(stuck["id"]) == ["governance.proposed", "governance.stale"]
    assert types(reject["id"])[-1] == "governance.executed"
    assert types(country["id"]) == ["governance.proposed", "governance.approved", "governance.approved",
                                    "governance.scheduled", "governance.executed"]
    by_signature = next(e for e in by_proposal[country["id"]] if e["type"] == "governance.approved"
                        and e["data"]["object"]["approval"]["governor_member_id"] == "gov-c")
    assert by_signature["data"]["object"]["approval"]["method"] == "signature"
    assert by_signature["data"]["tx_hash"] is None  # an off-chain signature: no transaction yet

    subjects = {suspension["id"]: "supplier", reinstatement["id"]: "supplier", grant["id"]: "buyer",
                cancel["id"]: "buyer", stuck["id"]: "supplier", reject["id"]: "supplier", country["id"]: "buyer"}
    assert set(by_proposal) == set(subjects)
    for pid, events in by_proposal.items():
        for e in events:
            # exactly the member concerned, the governors' members and the operator: the other
            # member (buyer for the supplier's actions and the other way round) never reads it
            assert readers[e["id"]] == AUDIENCE | {subjects[pid]}, (e["type"], pid, readers[e["id"]])
            obj = e["data"]["object"]
            assert obj["id"] == pid and obj["member_id"] == subjects[pid] and e["data"]["state"] == obj["status"]
            assert e["data"]["object_type"] == "governance_proposal"
            _delivery_model(e["type"]).model_validate(e)

    executed = by_proposal[suspension["id"]][-1]
    assert executed["data"]["state"] == "executed" and executed["data"]["tx_hash"].startswith("0x")
    assert executed["data"]["block_number"] > 0 and executed["data"]["object"]["safe"] == "guardian"
    approvals = [e["data"]["object"]["approval"] for e in by_proposal[suspension["id"]][1:3]]
    assert {a["governor_member_id"] for a in approvals} == {"gov-b", "gov-c"}
    assert {a["governor"] for a in approvals} == {w.governor("gov-b"), w.governor("gov-c")}
    assert all(a["method"] == "approveHash" and e["data"]["tx_hash"].startswith("0x")
               for a, e in zip(approvals, by_proposal[suspension["id"]][1:3], strict=True))
    assert max(a["approvals"] for a in approvals) == 2
    scheduled = by_proposal[reinstatement["id"]][3]
    assert scheduled["data"]["object"]["earliest_execution_at"].endswith("Z")
    assert scheduled["data"]["object"]["safe"] == "governance" and scheduled["data"]["tx_hash"].startswith("0x")
    assert by_proposal[stuck["id"]][-1]["data"]["object"]["error"].startswith("rejected by proposal")

    # member.*: the change itself, to the member it changed only
    member_events = {(e["type"], e["data"]["object_id"]): readers[e["id"]] for e in seen.values()
                     if e["type"] in ("member.suspended", "member.reactivated", "member.country_changed")}
    assert member_events == {("member.suspended", "supplier"): {"supplier"},
                             ("member.reactivated", "supplier"): {"supplier"},
                             ("member.country_changed", "buyer"): {"buyer"}}
    country_changed = next(e for e in seen.values() if e["type"] == "member.country_changed")
    assert country_changed["data"]["object"]["country"] == "HK"
    # the filter takes the family
    assert {e["type"] for e in all_events(w.http, w.h("buyer"), types="governance.*")} == {
        "governance.proposed", "governance.approved", "governance.scheduled", "governance.executed",
        "governance.cancelled"}
