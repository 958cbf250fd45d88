"""A member's accounts change only with its own consent: over the API only the member itself may
ask, with a current key's consent and the new key's proof of possession over the typed data the API
serves; a forged consent, a stranger's proof, a replayed consent, a suspended member's request and
the removal of a member's last account are refused (problem+json), and the registry refuses the
same on chain (RegistryInvalidConsent, ...)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from settlement.core.errors import ChainRevertError
from settlement.domains.members import onchain_id, read_onchain_member
from tests.governance.conftest import Gov
from tests.governance.support import drive, suspend

PROBLEM = "urn:ledger:problem:"


def ok(r: httpx.Response, code: int = 202) -> dict[str, Any]:
    assert r.status_code == code, r.text
    return r.json()


def problem(r: httpx.Response, code: int, slug: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.json()["type"] == PROBLEM + slug, r.text
    return r.json()


def sign(account: Any, typed: dict) -> str:
    return "0x" + account.sign_message(encode_typed_data(full_message=typed)).signature.hex().removeprefix("0x")


def test_consent_and_possession_are_required_and_checked(gworld: Gov) -> None:
    w = gworld
    new, rogue = Account.create(), Account.create()
    typed = ok(w.http.post("/v1/members/supplier/keys/typed-data", json={"account": new.address},
                           headers=w.h("supplier")), 200)
    assert any("memberId" in line for line in typed["summary"])
    base = {"account": new.address, "signer": typed["signer"], "nonce": typed["nonce"], "deadline": typed["deadline"]}
    # Another member (or the operator) cannot ask for the supplier's keys.
    problem(w.http.post("/v1/members/supplier/keys", json={**base, "possession_signature": sign(new, typed["typed_data"]),
                                                            "custodial_consent": True}, headers=w.h("buyer")),
            403, "member-keys-own-only")
    # A stranger's "proof of possession": binding someone else's address is refused.
    problem(w.http.post("/v1/members/supplier/keys", json={**base, "possession_signature": sign(rogue, typed["typed_data"]),
                                                            "custodial_consent": True}, headers=w.h("supplier")),
            422, "signature-invalid")
    # A forged consent (not a current key of the member).
    problem(w.http.post("/v1/members/supplier/keys", json={**base, "possession_signature": sign(new, typed["typed_data"]),
                                                            "consent_signature": sign(rogue, typed["typed_data"])},
                        headers=w.h("supplier")), 422, "signature-invalid")
    # No consent at all.
    problem(w.http.post("/v1/members/supplier/keys", json={**base, "possession_signature": sign(new, typed["typed_data"])},
                        headers=w.h("supplier")), 422, "signature-invalid")
    # The right one: custodial consent, the new key's proof.
    accepted = ok(w.http.post("/v1/members/supplier/keys", json={
        **base, "possession_signature": sign(new, typed["typed_data"]), "custodial_consent": True},
        headers=w.h("supplier")))
    assert accepted["status"] == "pending" and accepted["signer"] == typed["signer"]
    drive(w.runtime)
    assert new.address in read_onchain_member(w.runtime, onchain_id("supplier")).accounts
    # The same consent again: its nonce is used.
    replay = problem(w.http.post("/v1/members/supplier/keys", json={
        **base, "account": rogue.address, "possession_signature": sign(rogue, typed["typed_data"]),
        "custodial_consent": True}, headers=w.h("supplier")), 422, "signature-invalid")
    assert "nonce" in replay["detail"]


def test_the_registry_refuses_a_forged_consent_relayed_around_the_api(gworld: Gov) -> None:
    """The service's checks are a courtesy: the registry checks the consent itself."""
    w = gworld
    rt = w.runtime
    new, rogue = Account.create(), Account.create()
    typed = ok(w.http.post("/v1/members/buyer/keys/typed-data", json={"account": new.address},
                           headers=w.h("buyer")), 200)
    message = typed["typed_data"]["message"]
    call = rt.chain.encode("ConsortiumRegistry", "addAccountWithConsent", [
        onchain_id("buyer"), new.address, message["signer"], message["deadline"], sign(rogue, typed["typed_data"]),
        sign(new, typed["typed_data"])])
    with pytest.raises(ChainRevertError) as refused:
        rt.chain.transact(rt.operator, to=rt.address("ConsortiumRegistry"), data=call, gas=300_000)
    assert refused.value.error_name == "RegistryInvalidConsent"


def test_a_suspended_members_keys_change_only_by_governance_and_the_last_key_stays(gworld: Gov) -> None:
    w = gworld
    keys = ok(w.http.get("/v1/members/buyer/keys", headers=w.h("buyer")), 200)["data"]
    assert len(keys) == 1 and keys[0]["custodial"]
    only = keys[0]["address"]
    removal = ok(w.http.post("/v1/members/buyer/keys/typed-data", json={"action": "remove", "account": only},
                             headers=w.h("buyer")), 200)
    problem(w.http.post(f"/v1/members/buyer/keys/{only}/removal", headers=w.h("buyer"), json={
        "signer": removal["signer"], "nonce": removal["nonce"], "deadline": removal["deadline"],
        "custodial_consent": True}), 409, "invalid-state-transition")
    suspend(w.runtime, "buyer")
    problem(w.http.post("/v1/members/buyer/keys/typed-data", json={"account": Account.create().address},
                        headers=w.h("buyer")), 403, "member-suspended")
