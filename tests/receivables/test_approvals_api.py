"""Issue 13 over HTTP, own approvals: the typed data a buyer signs names what it owes (supplier,
amount with currency, dates) and a signature over other terms is refused before anything is
written; keyed nonces let a buyer's approvals of two receivables land in any order; an unused
approval can be voided; a bank whose account is a Safe multisig offers through ERC-1271, checked
by the service with an eth_call before relaying and by the contract again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eth_account import Account

from anchors.keccak import keccak256
from settlement.chain.contracts import checksum_address
from settlement.chain.describe import describe_typed_data
from settlement.chain.signing import LocalSigner
from settlement.domains.members import onchain_id
from settlement.domains.receivables import typed_data_digest
from settlement.store.models import MemberAccount

from .support import World, invoice, sign_typed
from .test_attacks_api import _ok, _writes, refused


def _registered(world: World, number: str, **kw) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    assert world.http is not None
    done = _ok(world.http.post("/v1/receivables", json=invoice(number=number, today=world.today(), **kw),
                               headers=world.h("acme")), 201)
    world.step()
    return done["id"], _ok(world.http.get(f"/v1/receivables/{done['id']}", headers=world.h("acme")), 200)["parts"][0]["id"]


def test_buyer_signs_the_terms_shown_in_human_terms_and_other_terms_are_refused(world: World) -> None:
    """The confirmation typed data names supplier, face value with currency, issue and due dates;
    its summary renders them as a wallet or `ledger sign` would. A signature the buyer made over
    its genuine invoice (5,000.00) does not confirm a receivable registered at 5,000,000.00: 422
    signature-invalid, nothing written."""
    http = world.http
    assert http is not None
    buyer_key = world.add_own_key("bigbuy")
    today = world.today()
    rid, _ = _registered(world, "INV-TERMS-1", value=500_000_000, due=today + timedelta(days=90))
    typed = _ok(http.get(f"/v1/receivables/{rid}/confirmation-typed-data", headers=world.h("bigbuy")), 200)
    message = typed["message"]
    assert message["supplierId"] == onchain_id("acme") and message["faceValueMinor"] == 500_000_000
    assert message["currency"] == "CNY" and message["dueDay"] == (today + timedelta(days=90) - datetime(
        1970, 1, 1).date()).days
    summary = "\n".join(typed["summary"])
    assert "faceValueMinor: 5,000,000.00 CNY" in summary, summary
    assert f"dueDay: {(today + timedelta(days=90)).isoformat()}" in summary
    assert summary == "\n".join(describe_typed_data(typed))

    genuine = dict(typed, message=dict(message, faceValueMinor=500_000))
    before = _writes(world)
    refused(world, http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                             json={"signature": sign_typed(buyer_key, genuine), "deadline": message["deadline"]}),
            422, "signature-invalid")
    assert _writes(world) == before
    _ok(http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                  json={"signature": sign_typed(buyer_key, typed), "deadline": message["deadline"],
                        "signer": buyer_key.address}))
    world.step()
    assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["status"] == "confirmed"


def test_parallel_approvals_do_not_race_and_an_unused_one_can_be_voided(world: World) -> None:
    """Two confirmations signed at once (each with its receivable's nonce key) are both relayed
    and mined, whichever goes first; a third, voided with POST /v1/receivables/nonce-invalidations,
    is refused afterwards."""
    http = world.http
    assert http is not None
    buyer_key = world.add_own_key("bigbuy")
    rids = [_registered(world, f"INV-PAR-{i}")[0] for i in range(3)]
    signed = []
    for rid in rids:
        typed = _ok(http.get(f"/v1/receivables/{rid}/confirmation-typed-data", headers=world.h("bigbuy")), 200)
        signed.append((rid, typed, sign_typed(buyer_key, typed)))
    for rid, typed, sig in (signed[1], signed[0]):
        _ok(http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                      json={"signature": sig, "deadline": typed["message"]["deadline"]}))
    world.step()
    for rid, _, _ in signed[:2]:
        assert _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)["status"] == "confirmed"

    rid, typed, sig = signed[2]
    voided = _ok(http.post("/v1/receivables/nonce-invalidations", headers=world.h("bigbuy"),
                           json={"nonce": hex(typed["message"]["nonce"])}))
    assert voided["member_id"] == "bigbuy" and voided["status"] == "pending"
    world.step()
    before = _writes(world)
    refused(world, http.post(f"/v1/receivables/{rid}/confirmations", headers=world.h("bigbuy"),
                             json={"signature": sig, "deadline": typed["message"]["deadline"]}),
            422, "signature-invalid")
    refused(world, http.post("/v1/receivables/nonce-invalidations", headers=world.h("bigbuy"),
                             json={"nonce": hex(2**64 - 1)}), 422, "validation-failed")
    assert _writes(world) == before


def _bank_safe(world: World, owners: list) -> str:  # type: ignore[type-arg]
    """A Safe 1.5.0 (2 of 3) with the ERC-1271 fallback handler, made the bank's account by
    governance (around the service: the follower mirrors the account)."""
    from tests.governance.support import govern_on_chain

    rt = world.runtime
    client = rt.chain
    operator = LocalSigner(bytes(Account.create().key))  # anyone may deploy a Safe (zero-fee chain)
    handler = client.transact(operator, to=None, gas=6_000_000, data=bytes.fromhex(
        client.contracts.artifacts["ConsortiumSafeFallbackHandler"]["bytecode"].removeprefix("0x"))).contract_address
    singleton, factory = rt.address("ConsortiumSafe"), rt.address("ConsortiumSafeProxyFactory")
    zero = "0x" + "00" * 20
    setup = client.encode("ConsortiumSafe", "setup", [[o.address for o in owners], 2, zero, b"", handler, zero, 0,
                                                      zero])
    args = [singleton, setup, 4242]
    (safe,) = client.call("ConsortiumSafeProxyFactory", factory, "createProxyWithNonce", args, sender=operator.address)
    client.transact(operator, to=factory, gas=1_000_000,
                    data=client.encode("ConsortiumSafeProxyFactory", "createProxyWithNonce", args))
    safe = checksum_address(safe)
    govern_on_chain(rt, "addAccount", [onchain_id("bank"), safe])
    world.step()
    with rt.db.read() as s:
        assert s.query(MemberAccount).filter_by(address=safe, member_id="bank").count() == 1
    return safe


def _safe_signature(world: World, safe: str, owners: list, typed: dict) -> str:  # type: ignore[type-arg]
    client = world.runtime.chain
    digest = bytes.fromhex(typed_data_digest(typed)[2:])
    (domain_separator,) = client.call("ConsortiumSafe", safe, "domainSeparator")
    safe_msg_typehash = bytes.fromhex("60b3cbf8b4a223d68d641b3b6ddf9a298e7f33710cf3d3a9d1146b5a6150fbca")
    message_hash = keccak256(b"\x19\x01" + bytes(domain_separator)
                             + keccak256(safe_msg_typehash + keccak256(digest)))
    sigs = [o.unsafe_sign_hash(message_hash) for o in sorted(owners, key=lambda o: int(o.address, 16))]
    return "0x" + b"".join(s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v]) for s in sigs).hex()


def test_a_bank_offers_from_its_safe_multisig_through_erc1271(world: World) -> None:
    """The bank's account is a Safe (2 of 3): its offer typed data is approved by two owners and
    relayed (signer = the Safe); one owner's signature is refused by the service's ERC-1271
    eth_call before anything is written."""
    http = world.http
    assert http is not None
    owners = [Account.create() for _ in range(3)]
    safe = _bank_safe(world, owners)
    rid, part = _registered(world, "INV-SAFE-1", value=10_000_000)
    _ok(http.post(f"/v1/receivables/{rid}/confirm", headers=world.h("bigbuy")))
    world.step()
    _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=world.h("acme"),
                  json={"financier_id": "bank"}))
    world.step()
    valid_until = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
    query = {"discount_rate": "0.05", "day_count": "ACT/360", "fee_minor": 1_000,
             "valid_until": valid_until.isoformat()}
    typed = _ok(http.get(f"/v1/receivables/{rid}/parts/{part}/offer-typed-data", headers=world.h("bank"),
                         params=query), 200)
    assert typed["primaryType"] == "FinancingOffer" and typed["message"]["amountMinor"] == 10_000_000
    assert any(line.startswith("  advanceMinor: ") and "CNY" in line for line in typed["summary"])
    body = {"discount_rate": "0.05", "day_count": "ACT/360", "fee": {"value": 1_000, "currency": "CNY"},
            "valid_until": valid_until.isoformat(), "deadline": typed["message"]["deadline"], "signer": safe}
    before = _writes(world)
    refused(world, http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"),
                             json=dict(body, signature=_safe_signature(world, safe, owners[:1], typed))),
            422, "signature-invalid")
    assert _writes(world) == before
    done = _ok(http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=world.h("bank"),
                         json=dict(body, signature=_safe_signature(world, safe, owners[1:], typed))), 201)
    assert done["pending_operations"][0]["kind"] == "offer_signed" and done["signer"].lower() == safe.lower()
    assert done["id"] == typed["message"]["offerId"]  # the id the Safe's owners approved
    world.step()
    rec = _ok(http.get(f"/v1/receivables/{rid}", headers=world.h("acme")), 200)
    offer = rec["parts"][0]["offer"]
    assert offer["financier_id"] == "bank" and offer["advance"]["value"] == typed["message"]["advanceMinor"]
