"""Members' own keys for everything they do: a member registers its own key with its consent and
the new key's proof of possession, retires the custodial one, and then records, cancels and
refunds settlements by signing intents (EIP-712 ForwardRequests, ``ledger sign`` for one of them)
that the service relays through the LedgerForwarder, holding none of the member's keys.

Forged and replayed requests are refused on chain (the forwarder's custom errors) and over the
API; a refused inner call is reported with the target's own error; unsigned intents expire, are
released with their command undone, and later intents of the account move down one nonce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from ledger_api.cli import main as ledger_main
from settlement.core.errors import ChainRevertError
from settlement.pipeline.intents import request_tuple
from settlement.store.models import MemberAccount
from settlement.store.models.governance import Intent
from tests.governance.support import suspend_on_chain, warp
from tests.settlements.conftest import CANCELLED, INSTRUCTED, REFUNDED, World

PROBLEM = "urn:ledger:problem:"
INTENT = {"Prefer": "intent"}


def ok(r: httpx.Response, code: int = 202) -> dict[str, Any]:
    assert r.status_code == code, r.text
    return r.json()


def problem(r: httpx.Response, code: int, slug: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.json()["type"] == PROBLEM + slug, r.text
    return r.json()


def sign(account: LocalAccount, typed: dict) -> str:
    return "0x" + account.sign_message(encode_typed_data(full_message=typed)).signature.hex().removeprefix("0x")


def take_own_key(w: World, member: str) -> LocalAccount:
    """``member`` adds its own key (custodial consent, the new key's proof of possession), then
    removes the custodial one with its own key's consent: the service is left with no key of it."""
    own = Account.create()
    typed = ok(w.http.post(f"/v1/members/{member}/keys/typed-data", json={"account": own.address},
                           headers=w.h(member)), 200)
    assert typed["signer_custodial"] and typed["typed_data"]["primaryType"] == "AddAccount"
    body = {"account": own.address, "signer": typed["signer"], "nonce": typed["nonce"], "deadline": typed["deadline"],
            "possession_signature": sign(own, typed["typed_data"]), "custodial_consent": True}
    ok(w.http.post(f"/v1/members/{member}/keys", json=body, headers=w.h(member)))
    w.sync()
    keys = ok(w.http.get(f"/v1/members/{member}/keys", headers=w.h(member)), 200)["data"]
    custodial = [k["address"] for k in keys if k["custodial"]]
    assert [k["address"] for k in keys if not k["custodial"]] == [own.address] and len(custodial) == 1
    removal = ok(w.http.post(f"/v1/members/{member}/keys/typed-data",
                             json={"action": "remove", "account": custodial[0], "signer": own.address},
                             headers=w.h(member)), 200)
    ok(w.http.post(f"/v1/members/{member}/keys/{custodial[0]}/removal", headers=w.h(member), json={
        "signer": own.address, "nonce": removal["nonce"], "deadline": removal["deadline"],
        "consent_signature": sign(own, removal["typed_data"])}))
    w.sync()
    return own


def intent_of(answer: dict) -> dict:
    return answer["intent"]


def relay(w: World, member: str, intent: dict, account: LocalAccount) -> dict:
    """Sign the intent's typed data with the member's own key and send the signature."""
    return ok(w.http.post(f"/v1/intents/{intent['id']}/signature", json={"signature": sign(account, intent["typed_data"])},
                          headers=w.h(member)))


def test_a_member_with_its_own_key_completes_settlements_while_the_service_holds_none_of_its_keys(
        world: World, tmp_path: Path) -> None:
    w = world
    own = take_own_key(w, "retailer")
    with w.runtime.db.read() as s:
        accounts = s.scalars(select(MemberAccount).where(MemberAccount.member_id == "retailer")).all()
    assert [(a.address, a.encrypted_key) for a in accounts] == [(own.address, None)]  # the key store holds none

    # Custodial signing is impossible now: the member must sign.
    refused = w.http.post("/v1/settlements", json=w.body(), headers=w.h("retailer", "no-custody"))
    problem(refused, 409, "no-custodial-account")

    # 1. Record with its own key, signed with `ledger sign` and a local key file.
    recorded = w.http.post("/v1/settlements", json=w.body(source={"value": 123_456, "currency": "HKD"},
                                                          target={"value": 112_839, "currency": "CNY"}, fx_rate="0.914"),
                           headers={**w.h("retailer", "own-1"), **INTENT})
    answer = ok(recorded)
    assert recorded.headers["Location"] == f"/v1/settlements/{answer['settlement']['id']}"
    assert answer["settlement"]["state"] == "instructed" and answer["settlement"]["chain"]["status"] == "pending"
    intent = intent_of(answer)
    assert intent["status"] == "held" and intent["account"] == own.address and intent["chain"]["status"] == "held"
    assert intent["typed_data"]["primaryType"] == "ForwardRequest"
    assert any("1,234.56 HKD" in line for line in intent["summary"])
    w.sync()  # the held row is never sent
    assert w.onchain(answer["settlement"]["id"])[0] == 0
    key_file = tmp_path / "retailer.key"
    key_file.write_text("0x" + bytes(own.key).hex())
    key_file.chmod(0o600)
    (tmp_path / "intent.json").write_text(json.dumps(answer))
    assert ledger_main(["sign", str(tmp_path / "intent.json"), "--key", str(key_file), "--out",
                        str(tmp_path / "sig"), "--yes"]) == 0
    relayed = ok(w.http.post(f"/v1/intents/{intent['id']}/signature",
                             json={"signature": (tmp_path / "sig").read_text().strip()}, headers=w.h("retailer")))
    assert relayed["status"] == "relayed" and relayed["chain"]["status"] == "pending"
    w.sync()
    first = w.get(answer["settlement"]["id"])
    assert first["chain"]["status"] == "confirmed" and w.onchain(first["id"])[0] == INSTRUCTED

    # 2. Cancel another one, with its own key.
    second = ok(w.http.post("/v1/settlements", json=w.body(), headers={**w.h("retailer", "own-2"), **INTENT}))
    relay(w, "retailer", intent_of(second), own)
    w.sync()
    cancel = ok(w.http.post(f"/v1/settlements/{second['settlement']['id']}/cancel",
                            headers={**w.h("retailer"), **INTENT}))
    assert cancel["settlement"]["state"] == "cancelled" and intent_of(cancel)["function"] == "cancelSettlement"
    relay(w, "retailer", intent_of(cancel), own)
    w.sync()
    assert w.onchain(second["settlement"]["id"])[0] == CANCELLED

    # 3. As payee: the bank pays it (custodially), the operator relays the payment evidence, the
    #    member refunds with its own key.
    paid_to_it = w.create("bank", payee="retailer")
    w.sync()
    ok(w.http.post(f"/v1/settlements/{paid_to_it['id']}/payments", headers=w.h("operator"), json={
        "provider": "alipay", "provider_transaction_id": "2026-own-key-1", "amount": paid_to_it["target"]}))
    w.sync()
    refund = ok(w.http.post(f"/v1/settlements/{paid_to_it['id']}/refunds", headers={**w.h("retailer"), **INTENT},
                            json={"amount": paid_to_it["target"], "reference": "RETURN-1"}))
    assert refund["refund"]["status"] == "pending" and intent_of(refund)["function"] == "refund"
    relay(w, "retailer", intent_of(refund), own)
    w.sync()
    assert w.onchain(paid_to_it["id"]) == (REFUNDED, paid_to_it["target"]["value"])
    mine = ok(w.http.get("/v1/intents", headers=w.h("retailer")), 200)["data"]
    assert len(mine) == 4 and {i["chain"]["status"] for i in mine} == {"confirmed"}
    # the one list envelope: pages of 3 then 1, newest first, has_more exact; a foreign cursor is refused
    first = ok(w.http.get("/v1/intents", params={"limit": 3}, headers=w.h("retailer")), 200)
    assert first["has_more"] is True and [i["id"] for i in first["data"]] == [i["id"] for i in mine[:3]]
    last = ok(w.http.get("/v1/intents", params={"limit": 3, "cursor": first["next_cursor"]},
                         headers=w.h("retailer")), 200)
    assert [i["id"] for i in last["data"]] == [mine[3]["id"]] and last["has_more"] is False
    assert last["next_cursor"] is None
    problem(w.http.get("/v1/intents", params={"cursor": "2026-01-01"}, headers=w.h("retailer")), 422,
            "invalid-cursor")
    assert ok(w.http.get("/v1/intents", headers=w.h("bank")), 200)["count"] == 0  # each sees its own
    problem(w.http.get(f"/v1/intents/{mine[0]['id']}", headers=w.h("bank")), 404, "intent-not-found")
    with w.runtime.db.read() as s:
        assert s.scalars(select(MemberAccount.encrypted_key).where(MemberAccount.member_id == "retailer")).all() == [None]


def test_forged_and_replayed_requests_are_refused_on_chain_and_over_the_api(world: World) -> None:
    w = world
    own = take_own_key(w, "retailer")
    rogue = Account.create()
    answer = ok(w.http.post("/v1/settlements", json=w.body(), headers={**w.h("retailer", "f-1"), **INTENT}))
    intent = intent_of(answer)
    forged = problem(w.http.post(f"/v1/intents/{intent['id']}/signature",
                                 json={"signature": sign(rogue, intent["typed_data"])}, headers=w.h("retailer")),
                     422, "signature-invalid")
    assert rogue.address in forged["detail"]
    rt = w.runtime
    forwarder = rt.address("LedgerForwarder")
    with rt.db.read() as s:
        held = s.get(Intent, intent["id"])
        forged_request = request_tuple(held, bytes.fromhex(sign(rogue, intent["typed_data"])[2:]))
        good_request = request_tuple(held, bytes.fromhex(sign(own, intent["typed_data"])[2:]))
    with pytest.raises(ChainRevertError) as on_chain:  # the operator relays a forged request itself
        rt.chain.transact(rt.operator, to=forwarder, gas=600_000,
                          data=rt.chain.encode("LedgerForwarder", "execute", [forged_request]))
    assert on_chain.value.error_name == "ERC2771ForwarderInvalidSigner"
    relay(w, "retailer", intent, own)
    w.sync()
    assert w.get(answer["settlement"]["id"])["chain"]["status"] == "confirmed"
    with pytest.raises(ChainRevertError) as replayed:  # the same signed request again: its nonce is used
        rt.chain.transact(rt.operator, to=forwarder, gas=600_000,
                          data=rt.chain.encode("LedgerForwarder", "execute", [good_request]))
    assert replayed.value.error_name == "ERC2771ForwarderInvalidSigner"
    problem(w.http.post(f"/v1/intents/{intent['id']}/signature", json={"signature": sign(own, intent["typed_data"])},
                        headers=w.h("retailer")), 409, "intent-state")
    problem(w.http.post("/v1/settlements", json=w.body(), headers={**w.h("bank", "nokey"), **INTENT}), 409,
            "no-own-account")


def test_inner_reverts_are_reported_with_the_targets_own_error(world: World) -> None:
    """A signature whose call would fail is refused with the target's own error (the inner call
    simulated from the forwarder, as ERC2771Context reads it), and the intent stays held. A relayed
    call that fails on chain (the forwarder only says FailedCall) is decoded the same way by the
    dispatcher, and the command is rolled back with that error."""
    w = world
    own = take_own_key(w, "retailer")
    to_bank = ok(w.http.post("/v1/settlements", json=w.body(), headers={**w.h("retailer", "i-1"), **INTENT}))
    to_psp = ok(w.http.post("/v1/settlements", json=w.body(payee="psp"), headers={**w.h("retailer", "i-2"), **INTENT}))
    relay(w, "retailer", intent_of(to_bank), own)  # relayed: waiting in the outbox
    suspend_on_chain(w.runtime, "psp")  # the guardians, around the service
    refused = problem(w.http.post(f"/v1/intents/{intent_of(to_psp)['id']}/signature",
                                  json={"signature": sign(own, intent_of(to_psp)["typed_data"])},
                                  headers=w.h("retailer")), 422, "chain-revert")
    assert refused["error_name"] == "SettlementPayeeNotActive"
    assert ok(w.http.get(f"/v1/intents/{intent_of(to_psp)['id']}", headers=w.h("retailer")), 200)["status"] == "held"
    suspend_on_chain(w.runtime, "retailer")  # before the relayed call is sent
    w.sync()
    rejected = w.get(to_bank["settlement"]["id"], "bank")
    assert rejected["state"] == "rejected" and rejected["chain"]["error"]["name"] == "RegistryMemberNotActive"
    assert rejected["chain"]["error"]["args"]["account"] == own.address


def test_unsigned_intents_expire_and_later_ones_move_down_one_nonce(world: World) -> None:
    w = world
    own = take_own_key(w, "retailer")
    now = w.runtime.chain.chain_time()
    short = ok(w.http.post("/v1/settlements", json=w.body(),
                           headers={**w.h("retailer", "e-1"), "Prefer": f"intent; deadline={now + 120}"}))
    later = ok(w.http.post("/v1/settlements", json=w.body(), headers={**w.h("retailer", "e-2"), **INTENT}))
    assert intent_of(later)["nonce"] == intent_of(short)["nonce"] + 1
    out_of_order = problem(w.http.post(f"/v1/intents/{intent_of(later)['id']}/signature",
                                       json={"signature": sign(own, intent_of(later)["typed_data"])},
                                       headers=w.h("retailer")), 409, "intent-out-of-order")
    assert out_of_order["earlier"] == [intent_of(short)["id"]]
    warp(w.runtime, 200)
    w.dispatcher.release_intents(force=True)
    w.sync()
    expired = ok(w.http.get(f"/v1/intents/{intent_of(short)['id']}", headers=w.h("retailer")), 200)
    assert expired["status"] == "expired" and expired["chain"]["error_name"] == "IntentExpired"
    assert w.get(short["settlement"]["id"])["state"] == "rejected"
    moved = ok(w.http.get(f"/v1/intents/{intent_of(later)['id']}", headers=w.h("retailer")), 200)
    assert moved["nonce"] == intent_of(short)["nonce"] and moved["typed_data"] != intent_of(later)["typed_data"]
    stale = problem(w.http.post(f"/v1/intents/{moved['id']}/signature",
                                json={"signature": sign(own, intent_of(later)["typed_data"])},
                                headers=w.h("retailer")), 422, "signature-invalid")
    assert "fetch the intent again" in stale["detail"]
    relay(w, "retailer", moved, own)
    w.sync()
    assert w.get(later["settlement"]["id"])["chain"]["status"] == "confirmed"
    withdrawn = ok(w.http.post("/v1/settlements", json=w.body(), headers={**w.h("retailer", "e-3"), **INTENT}))
    ok(w.http.post(f"/v1/intents/{intent_of(withdrawn)['id']}/withdrawal", headers=w.h("retailer")))
    w.dispatcher.release_intents(force=True)
    w.sync()
    assert ok(w.http.get(f"/v1/intents/{intent_of(withdrawn)['id']}", headers=w.h("retailer")), 200)["status"] == \
        "withdrawn"
    assert w.get(withdrawn["settlement"]["id"])["state"] == "rejected"
