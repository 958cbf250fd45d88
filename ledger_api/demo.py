"""`ledger up --demo`: the demo consortium, created idempotently, and ``$LEDGER_HOME/demo.json``.

The operator member (the service's own account: an OPERATOR member, no admin power) is created on
the first start by :func:`ensure_operator_member`; the demo adds a retailer, a supplier, a
core-enterprise buyer, a bank, a cross-border payment institution and an auditor, each with a
custodial account and an API key, plus one test account per payment provider whose key material
lets a client sign notifications as that provider would. The provider accounts belong to the
payment institution (``payments``) unless an entry of demo.json's ``providers`` names another
``owner``. All of them are founding members,
onboarded in the registry's bootstrap window before `ledger up` seals it.

demo.json's ``governance`` object names the Safes, the timelock, the proposal log and the demo
governors (member id, address and, for the demo only, their test keys: a test client can propose,
approve and execute with them). demo.json holds secrets of a demo: it is written 0600.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from ledger_api.settings import Settings
from settlement.domains.anchoring import digest_changed
from settlement.core.errors import BootstrapSealedError
from settlement.custody.governors import demo_governor_keys, demo_governor_signers
from settlement.core.private_files import write_private
from settlement.domains.members import ROLE_HASHES, country_hex, hash_key, issue_key, onboard, onchain_id
from settlement.domains.payments import configure_demo_providers
from settlement.pipeline.outbox import enqueue
from settlement.providers.testing import demo_credentials
from settlement.runtime import Runtime
from settlement.store.models import ApiKey, Member, MemberAccount

OPERATOR_ID = "operator"
DEMO_FILE = "demo.json"

DEMO_MEMBERS: tuple[dict, ...] = (
    {"id": "retailer", "name": "Harbour O2O Retail Ltd", "country": "HK", "roles": ["finance", "buyer"]},
    {"id": "supplier", "name": "Pearl River Components Co", "country": "CN", "roles": ["supplier", "finance"]},
    {"id": "buyer", "name": "Great Wall Manufacturing Group", "country": "CN", "roles": ["buyer", "finance"]},
    {"id": "bank", "name": "Lion City Trade Bank", "country": "SG", "roles": ["financier", "finance"]},
    {"id": "payments", "name": "Bridge Cross-border Payments", "country": "SG", "roles": ["finance"]},
    {"id": "auditor", "name": "Ledger Assurance Partners", "country": "GB", "roles": ["auditor"]},
)
DEMO_PROVIDERS = (("alipay", "alipay-demo"), ("wechatpay", "wechatpay-demo"), ("stripe", "stripe-demo"))
# Who owns the demo's provider accounts unless demo.json names another member per account.
DEMO_PROVIDER_OWNER = "payments"


def ensure_operator_member(runtime: Runtime, progress: Callable[[str], None] = lambda s: None) -> str | None:
    """Make the operator's account a member with the operator role (contracts ask the registry
    for it when the service relays), in the bootstrap window: it is a founding member. Returns a
    new API key for it, or None if it existed."""
    with runtime.db.read() as s:
        if s.get(Member, OPERATOR_ID) is not None:
            return None
    if not runtime.bootstrap_open():
        raise BootstrapSealedError("the registry's bootstrap is sealed but the store has no operator member: "
                                   "this LEDGER_HOME's store does not belong to its chain; start from a fresh one")
    with runtime.db.transaction() as s:
        if s.get(Member, OPERATOR_ID) is not None:
            return None
        s.add(Member(id=OPERATOR_ID, onchain_id=onchain_id(OPERATOR_ID), name="Ledger operator", country="SG",
                     roles=["operator"], status="active"))
        s.flush()
        s.add(MemberAccount(address=runtime.operator.address, member_id=OPERATOR_ID, encrypted_key=None))
        digest_changed(s, "member", OPERATOR_ID)
        digest_changed(s, "member.account", runtime.operator.address)
        key = issue_key(s, OPERATOR_ID, label="operator")
        enqueue(s, kind="member.onboard", contract="ConsortiumRegistry", function="onboardMember",
                args=[onchain_id(OPERATOR_ID), country_hex("SG"), [runtime.operator.address], [ROLE_HASHES["operator"]]],
                signer=runtime.operator.address, gas_limit=500_000, aggregate_id=OPERATOR_ID)
    path = runtime.home / "operator-api-key"
    write_private(path, key.plaintext + "\n")
    progress(f"operator member created; its API key is in {path} (mode 0600)")
    return key.plaintext


def _key_valid(session, member_id: str, plaintext: str | None) -> bool:
    if not plaintext:
        return False
    row = session.scalar(select(ApiKey).where(ApiKey.member_id == member_id, ApiKey.key_hash == hash_key(plaintext),
                                              ApiKey.revoked_at.is_(None)))
    return row is not None


def seed_demo(runtime: Runtime, settings: Settings, progress: Callable[[str], None] = lambda s: None) -> Path:
    path = runtime.home / DEMO_FILE
    previous = json.loads(path.read_text()) if path.exists() else {}
    old_members = {m["id"]: m for m in previous.get("members", [])}
    operator_key = ensure_operator_member(runtime, progress)
    if operator_key is None:
        old = old_members.get(OPERATOR_ID, {}).get("api_key")
        with runtime.db.read() as s:
            operator_key = old if _key_valid(s, OPERATOR_ID, old) else None
        if operator_key is None:
            with runtime.db.transaction() as s:
                operator_key = issue_key(s, OPERATOR_ID, label="demo").plaintext
    members = [{"id": OPERATOR_ID, "name": "Ledger operator", "roles": ["operator"],
                "address": runtime.operator.address, "api_key": operator_key}]
    for spec in DEMO_MEMBERS:
        with runtime.db.read() as s:
            missing = s.get(Member, spec["id"]) is None
        if missing and not runtime.bootstrap_open():
            raise BootstrapSealedError(
                f"demo member {spec['id']} is missing but the registry's bootstrap is sealed: demo members are founding "
                "members; start the demo from a fresh LEDGER_HOME (make clean-state)")
        with runtime.db.transaction() as s:
            existing = s.get(Member, spec["id"])
            if existing is None:
                done = onboard(runtime, s, member_id=spec["id"], name=spec["name"], country=spec["country"],
                               roles=spec["roles"], key_label="demo")
                address, api_key = done.address, done.api_key.plaintext
                progress(f"demo member {spec['id']} onboarded ({', '.join(spec['roles'])})")
            else:
                address = s.scalar(select(MemberAccount.address).where(MemberAccount.member_id == spec["id"]))
                old = old_members.get(spec["id"], {}).get("api_key")
                api_key = old if _key_valid(s, spec["id"], old) else issue_key(s, spec["id"], label="demo").plaintext
        members.append({"id": spec["id"], "name": spec["name"], "roles": spec["roles"], "address": address,
                        "api_key": api_key, "country": spec["country"]})
    providers = previous.get("providers") or {p: demo_credentials(p, account) for p, account in DEMO_PROVIDERS}
    for creds in providers.values():
        # Tenancy (docs/api.md): the demo's merchant accounts are the payment institution's; it
        # reconciles what arrives on them, and their callbacks' exceptions are its own.
        creds.setdefault("owner", DEMO_PROVIDER_OWNER)
    configure_providers = _provider_configurer()
    if configure_providers is not None:
        configure_providers(runtime, providers)
    manifest = runtime.manifest
    demo = {
        "api": settings.api_url,
        "rpc": runtime.chain.rpc_url,
        "chain_id": runtime.chain.chain_id,
        "contracts": manifest.addresses if manifest else {},
        "members": members,
        "providers": providers,
        "governance": demo_governance_json(runtime),
    }
    write_private(path, json.dumps(demo, indent=2))
    return path


def demo_governance_json(runtime: Runtime) -> dict:
    """The governance a test client drives: Safes, timelock, proposal log, forwarder, thresholds,
    delay and the governors; their private keys only when they are the demo's public test keys."""
    params = runtime.governance
    if params is None or runtime.manifest is None:
        return {}
    a = runtime.manifest.addresses
    keys = dict(zip([s.address for s in demo_governor_signers(len(params.governors))],
                    demo_governor_keys(len(params.governors)))) if params.demo else {}
    governors = []
    for g in params.governors:
        entry = {"member_id": g.member_id, "address": g.address}
        if g.address in keys:
            entry["private_key"] = keys[g.address]
        governors.append(entry)
    return {"governance_safe": a.get("GovernanceSafe"), "guardian_safe": a.get("GuardianSafe"),
            "timelock": a.get("ConsortiumTimelock"), "proposal_log": a.get("GovernanceProposals"),
            "forwarder": a.get("LedgerForwarder"), "threshold": params.threshold,
            "guardian_threshold": params.guardian_threshold, "delay_s": params.delay_s, "governors": governors,
            "note": "demo governors: public test keys, valid on this dev chain only"}


def _provider_configurer() -> Callable | None:
    """The provider-account store registers the demo accounts."""
    return configure_demo_providers
