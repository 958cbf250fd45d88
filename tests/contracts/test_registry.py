"""ConsortiumRegistry on a real anvil: every external function and custom error, the bootstrap,
members' consented key changes, suspension everywhere, and Besu account permissioning.

Two kinds of deployment:
- `stack`: the real thing (Safe + timelock governance, sealed bootstrap, the operator's key as
  deployer), used for the attacks and everything about who may act;
- `direct`: a registry whose default admin is a plain test key standing in for the timelock, used
  only to exercise the registry's own rules (inputs, states, errors) without a governance round
  trip per call. test_governance.py proves the timelock reaches every one of those functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.conftest import start_anvil
from tests.contracts.governance_stack import (
    ACTIVE,
    ADMIN_TRANSFER_DELAY_S,
    DEFAULT_ADMIN_ROLE,
    ROLE_AUDITOR,
    ROLE_BUYER,
    ROLE_FINANCE,
    ROLE_OPERATOR,
    ROLE_SUPPLIER,
    SUSPENDED,
    SUSPENDER_ROLE,
    ZERO_ADDRESS,
    Chain,
    Stack,
    artifact,
    b32,
    decode_revert,
    deploy_stack,
    events,
)


@pytest.fixture(scope="module")
def rpc_url() -> Iterator[str]:
    """A private automine anvil for this module: these tests move its clock."""
    node = start_anvil()
    yield node.rpc_url
    node.stop()


@pytest.fixture
def stack(rpc_url: str) -> Stack:
    return deploy_stack(rpc_url)


@dataclass
class Direct:
    chain: Chain
    registry: Any
    admin: LocalAccount
    guardian: LocalAccount


@pytest.fixture
def direct(rpc_url: str) -> Direct:
    chain = Chain.connect(rpc_url)
    admin, guardian = Account.create(), Account.create()
    registry = chain.deploy("ConsortiumRegistry", admin, admin.address, 0, guardian.address, ZERO_ADDRESS, [])
    return Direct(chain, registry, admin, guardian)


def onboard(d: Direct, name: str, roles: list[bytes] | None = None, n_accounts: int = 1) -> tuple[bytes, list[LocalAccount]]:
    keys = [Account.create() for _ in range(n_accounts)]
    mid = b32(f"member:{name}")
    d.chain.send(d.registry.functions.onboardMember(mid, b"DE", [k.address for k in keys],
                                                    roles if roles is not None else [ROLE_FINANCE]), d.admin)
    return mid, keys


def error_of(chain: Chain, fn: Any, sender: LocalAccount) -> str:
    error = chain.revert_of(fn, sender)
    assert error is not None, "expected a revert"
    return error[0]


# --------------------------------------------------------------------------- deployment


def test_deployment_leaves_all_power_with_governance(stack: Stack) -> None:
    """Proves the wiring after deployment: the timelock is the registry's only admin, the governors'
    Safe its only proposer and canceller, execution is open, the guardian Safe only suspends, the
    bootstrap is sealed, and the deployer (the operator's key) holds no role anywhere."""
    reg, tl, op = stack.registry.functions, stack.timelock.functions, stack.operator.address
    assert reg.defaultAdmin().call() == stack.timelock.address
    assert reg.owner().call() == stack.timelock.address
    assert reg.defaultAdminDelay().call() == ADMIN_TRANSFER_DELAY_S
    assert reg.pendingDefaultAdmin().call() == [ZERO_ADDRESS, 0]
    assert reg.hasRole(SUSPENDER_ROLE, stack.guardian_safe.address).call()
    assert reg.getRoleAdmin(SUSPENDER_ROLE).call() == DEFAULT_ADMIN_ROLE
    assert reg.bootstrapper().call() == ZERO_ADDRESS
    assert reg.governanceSafes().call() == [stack.gov_safe.address, stack.guardian_safe.address]
    assert tl.getMinDelay().call() == stack.delay_s
    for role_name in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        role = getattr(tl, role_name)().call()
        assert tl.hasRole(role, stack.gov_safe.address).call()
        assert not tl.hasRole(role, op).call()
    assert tl.hasRole(tl.EXECUTOR_ROLE().call(), ZERO_ADDRESS).call()  # anyone executes a ready operation
    assert tl.hasRole(DEFAULT_ADMIN_ROLE, stack.timelock.address).call()  # it administers itself
    for holder in (op, *(g.address for g in stack.governors)):
        assert not tl.hasRole(DEFAULT_ADMIN_ROLE, holder).call()
        assert not reg.hasRole(DEFAULT_ADMIN_ROLE, holder).call()
        assert not reg.hasRole(SUSPENDER_ROLE, holder).call()
    assert stack.gov_safe.functions.getOwners().call() == [g.address for g in stack.governors]
    assert stack.gov_safe.functions.getThreshold().call() == 2
    assert stack.guardian_safe.functions.getThreshold().call() == 2
    assert not stack.gov_safe.functions.isOwner(op).call()
    assert reg.memberOf(op).call() == stack.members["op"]
    assert reg.memberCount().call() == len(stack.members)
    assert [reg.memberIdAt(i).call() for i in range(len(stack.members))] == list(stack.members.values())
    assert reg.isActiveWithRole(op, ROLE_OPERATOR).call()


def test_operator_key_can_do_nothing_an_outsider_cannot(stack: Stack) -> None:
    """Proves the deployer/operator key has no admin power once deployment is complete: every admin
    function of the registry, of the timelock and of the Safes refuses it."""
    c, reg, op = stack.chain, stack.registry.functions, stack.operator
    supplier, rogue = stack.members["supplier"], stack.accounts["rogue"].address
    unauthorized = ("AccessControlUnauthorizedAccount", (op.address, DEFAULT_ADMIN_ROLE))
    for fn in (
        reg.onboardMember(b32("new"), b"DE", [rogue], [ROLE_FINANCE]),
        reg.addAccount(supplier, rogue),
        reg.removeAccount(supplier, stack.accounts["supplier"].address),
        reg.grantMemberRole(stack.members["op"], ROLE_FINANCE),
        reg.revokeMemberRole(supplier, ROLE_SUPPLIER),
        reg.setCountry(supplier, b"FR"),
        reg.suspendMember(supplier),
        reg.reactivateMember(supplier),
        reg.setGovernanceSafes([]),
        reg.grantRole(SUSPENDER_ROLE, op.address),
        reg.revokeRole(SUSPENDER_ROLE, stack.guardian_safe.address),
        reg.beginDefaultAdminTransfer(op.address),
        reg.cancelDefaultAdminTransfer(),
        reg.changeDefaultAdminDelay(0),
        reg.rollbackDefaultAdminDelay(),
    ):
        assert c.revert_of(fn, op) == unauthorized, fn.fn_name
        assert c.send_raw(fn, op)["status"] == 0
    c.assert_reverts(reg.grantRole(DEFAULT_ADMIN_ROLE, op.address), op, "AccessControlEnforcedDefaultAdminRules")
    c.assert_reverts(reg.acceptDefaultAdminTransfer(), op, "AccessControlInvalidDefaultAdmin", op.address)
    c.assert_reverts(reg.sealBootstrap(), op, "RegistryNotBootstrapper", op.address)
    c.assert_reverts(reg.renounceRole(SUSPENDER_ROLE, stack.guardian_safe.address), op, "AccessControlBadConfirmation")
    # Renouncing a role it does not hold changes nothing.
    c.send(reg.renounceRole(DEFAULT_ADMIN_ROLE, op.address), op)
    assert reg.defaultAdmin().call() == stack.timelock.address
    # A consent it forges for the supplier is refused.
    c.assert_reverts(stack.add_with_consent_fn("supplier", stack.accounts["rogue"], op), op,
                     "RegistryInvalidConsent", supplier, op.address)
    # The timelock: no proposing, cancelling, delay change or role change.
    tl = stack.timelock.functions
    proposer, canceller = tl.PROPOSER_ROLE().call(), tl.CANCELLER_ROLE().call()
    call = stack.registry_call("addAccount", supplier, rogue)
    c.assert_reverts(tl.schedule(call.target, 0, call.data, b"\0" * 32, b"\0" * 32, stack.delay_s), op,
                     "AccessControlUnauthorizedAccount", op.address, proposer)
    c.assert_reverts(tl.cancel(b"\1" * 32), op, "AccessControlUnauthorizedAccount", op.address, canceller)
    c.assert_reverts(tl.updateDelay(0), op, "TimelockUnauthorizedCaller", op.address)
    c.assert_reverts(tl.grantRole(proposer, op.address), op, "AccessControlUnauthorizedAccount", op.address,
                     DEFAULT_ADMIN_ROLE)
    # The Safes: not an owner, so no approval and no execution with its signature alone.
    c.assert_reverts(stack.gov_safe.functions.approveHash(b"\1" * 32), op, "Error", "GS030")
    data = stack.schedule_data(stack.operation(call))
    assert c.revert_of(stack.exec_safe_fn(stack.gov_safe, stack.timelock.address, data, [op.address]), op) == (
        "Error", ("GS020",))


# --------------------------------------------------------------------------- the attacks


def test_attack_rogue_key_for_supplier_then_hide_it_is_refused(stack: Stack) -> None:
    """Proves the issue's first attack is impossible: the operator key cannot add a rogue account to
    the supplier (directly, by bootstrap or by a forged consent), so the rogue key never acts as the
    supplier anywhere, and it cannot remove the supplier's account to hide a trace.
    (On today's main the operator is the registry admin and all three calls succeed.)"""
    c, reg, op, rogue = stack.chain, stack.registry.functions, stack.operator, stack.accounts["rogue"]
    supplier = stack.members["supplier"]
    c.assert_reverts(reg.addAccount(supplier, rogue.address), op, "AccessControlUnauthorizedAccount", op.address,
                     DEFAULT_ADMIN_ROLE)
    c.assert_reverts(reg.onboardMember(supplier, b"VN", [rogue.address], [ROLE_SUPPLIER]), op,
                     "AccessControlUnauthorizedAccount", op.address, DEFAULT_ADMIN_ROLE)
    # The operator relays a consent it signed itself, and one the rogue key signed as "the supplier".
    c.assert_reverts(stack.add_with_consent_fn("supplier", rogue, op), op, "RegistryInvalidConsent", supplier,
                     op.address)
    c.assert_reverts(stack.add_with_consent_fn("supplier", rogue, rogue), op, "RegistryInvalidConsent", supplier,
                     rogue.address)
    assert reg.memberOf(rogue.address).call() == b"\0" * 32
    # So the rogue key cannot act as the supplier in any guarded contract (the probe stands for them).
    c.assert_reverts(stack.probe.functions.actWithRole(ROLE_SUPPLIER), rogue, "RegistryNotAMember", rogue.address)
    c.assert_reverts(reg.removeAccount(supplier, stack.accounts["supplier"].address), op,
                     "AccessControlUnauthorizedAccount", op.address, DEFAULT_ADMIN_ROLE)
    assert stack.accounts_of("supplier") == [stack.accounts["supplier"].address]


def test_attack_grant_admin_or_renounce_in_one_transaction_is_refused(stack: Stack) -> None:
    """Proves the issue's second attack is impossible: no key can grant the admin role to anyone or
    renounce it in one transaction — not the operator, and not even governance itself: a second
    admin cannot exist, and a renounce needs a scheduled transfer to zero and its own delay."""
    c, reg, op, outsider = stack.chain, stack.registry.functions, stack.operator, stack.accounts["outsider"]
    c.assert_reverts(reg.grantRole(DEFAULT_ADMIN_ROLE, outsider.address), op, "AccessControlEnforcedDefaultAdminRules")
    c.assert_reverts(reg.renounceRole(DEFAULT_ADMIN_ROLE, stack.timelock.address), op,
                     "AccessControlEnforcedDefaultAdminDelay", 0)
    # Governance itself, after M approvals and the delay, cannot grant a second admin ...
    op_grant = stack.operation(stack.registry_call("grantRole", DEFAULT_ADMIN_ROLE, outsider.address))
    stack.schedule(op_grant)
    c.warp(stack.delay_s)
    assert c.revert_of(stack.execute_fn(op_grant), op) == ("AccessControlEnforcedDefaultAdminRules", ())
    # ... nor renounce at once: renouncing needs beginDefaultAdminTransfer(0) and the admin delay.
    op_renounce = stack.operation(stack.registry_call("renounceRole", DEFAULT_ADMIN_ROLE, stack.timelock.address))
    stack.schedule(op_renounce)
    c.warp(stack.delay_s)
    assert c.revert_of(stack.execute_fn(op_renounce), op) == ("AccessControlEnforcedDefaultAdminDelay", (0,))
    assert reg.defaultAdmin().call() == stack.timelock.address
    assert not reg.hasRole(DEFAULT_ADMIN_ROLE, outsider.address).call()


def test_a_single_governor_cannot_change_anything(stack: Stack) -> None:
    """Proves M-of-N: one governor's approval (or its own execution) does not schedule an operation,
    and a governor cannot call the timelock or the registry directly."""
    c, g = stack.chain, stack.governors[0]
    op = stack.operation(stack.registry_call("suspendMember", stack.members["buyer"]))
    data = stack.schedule_data(op)
    h, _ = stack.propose(stack.gov_safe, g, stack.timelock.address, data, "suspend the buyer")
    stack.approve(stack.gov_safe, g, h)
    fn = stack.exec_safe_fn(stack.gov_safe, stack.timelock.address, data, [g.address])
    assert c.revert_of(fn, g) == ("Error", ("GS020",))  # one signature where two are needed
    assert c.revert_of(stack.exec_safe_fn(stack.gov_safe, stack.timelock.address, data,
                                          [g.address, stack.governors[1].address]), g) == ("Error", ("GS025",))
    c.assert_reverts(stack.registry.functions.suspendMember(stack.members["buyer"]), g,
                     "AccessControlUnauthorizedAccount", g.address, DEFAULT_ADMIN_ROLE)
    assert stack.status("buyer") == ACTIVE


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_only_onboards_and_seals_for_good(rpc_url: str) -> None:
    """Proves the bootstrap window: before the seal the deployer may onboard founding members and
    nothing else; sealing is one-shot; after it, onboarding and transacting on Besu are refused."""
    s = deploy_stack(rpc_url, seal=False)
    c, reg, op = s.chain, s.registry.functions, s.operator
    assert reg.bootstrapper().call() == op.address
    outsider = s.accounts["outsider"]
    assert reg.transactionAllowed(op.address, ZERO_ADDRESS, 0, 0, 0, b"").call()
    for fn in (reg.addAccount(s.members["supplier"], outsider.address), reg.suspendMember(s.members["buyer"]),
               reg.grantMemberRole(s.members["op"], ROLE_FINANCE), reg.grantRole(SUSPENDER_ROLE, op.address)):
        assert error_of(c, fn, op) == "AccessControlUnauthorizedAccount", fn.fn_name
    c.assert_reverts(reg.sealBootstrap(), outsider, "RegistryNotBootstrapper", outsider.address)
    late = b32("late-founder")
    c.send(reg.onboardMember(late, b"FR", [outsider.address], [ROLE_AUDITOR]), op)
    receipt = c.send(reg.sealBootstrap(), op)
    assert [e.args.bootstrapper for e in events(s.registry, receipt, "BootstrapSealed")] == [op.address]
    assert reg.bootstrapper().call() == ZERO_ADDRESS
    c.assert_reverts(reg.sealBootstrap(), op, "RegistryNotBootstrapper", op.address)
    c.assert_reverts(reg.onboardMember(b32("too-late"), b"FR", [Account.create().address], []), op,
                     "AccessControlUnauthorizedAccount", op.address, DEFAULT_ADMIN_ROLE)
    assert reg.getMember(late).call()[0] == ACTIVE


def test_registry_without_bootstrapper_is_sealed_from_the_start(direct: Direct) -> None:
    """Proves a zero bootstrapper means no bootstrap: nobody but governance ever onboards."""
    c, reg = direct.chain, direct.registry.functions
    assert reg.bootstrapper().call() == ZERO_ADDRESS
    stranger = Account.create()
    c.assert_reverts(reg.sealBootstrap(), stranger, "RegistryNotBootstrapper", stranger.address)
    c.assert_reverts(reg.onboardMember(b32("x"), b"DE", [stranger.address], []), stranger,
                     "AccessControlUnauthorizedAccount", stranger.address, DEFAULT_ADMIN_ROLE)


def test_constructor_rejects_a_zero_admin_and_non_contract_safes(rpc_url: str) -> None:
    """Proves the constructor's checks: a default admin is required, and governance Safes must be contracts."""
    c, key = Chain.connect(rpc_url), Account.create()
    art = artifact("ConsortiumRegistry")
    factory = c.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    for args, expected in (
        ((ZERO_ADDRESS, 0, ZERO_ADDRESS, ZERO_ADDRESS, []), ("AccessControlInvalidDefaultAdmin", (ZERO_ADDRESS,))),
        ((key.address, 0, ZERO_ADDRESS, ZERO_ADDRESS, [key.address]), ("RegistryInvalidInput", ())),
    ):
        tx = factory.constructor(*args).build_transaction({"from": key.address, "gasPrice": 0, "gas": 8_000_000,
                                                           "nonce": 0, "chainId": c.w3.eth.chain_id})
        answer = c.w3.provider.make_request("eth_call", [{"from": key.address, "data": tx["data"],
                                                          "gas": hex(8_000_000)}, "latest"])
        assert decode_revert(answer["error"]["data"]) == expected


# --------------------------------------------------------------------------- registry rules (direct admin)


def test_onboard_rules(direct: Direct) -> None:
    """Proves onboardMember's input rules and events."""
    c, reg, admin = direct.chain, direct.registry.functions, direct.admin
    a, b = Account.create().address, Account.create().address
    mid = b32("m")
    receipt = c.send(reg.onboardMember(mid, b"DE", [a, b], [ROLE_FINANCE, ROLE_AUDITOR]), admin)
    assert events(direct.registry, receipt, "MemberOnboarded")[0].args.roleMask == (1 << 1) | (1 << 5)
    assert [e.args.account for e in events(direct.registry, receipt, "MemberAccountAdded")] == [a, b]
    assert len(events(direct.registry, receipt, "MemberRoleGranted")) == 2
    assert reg.getMember(mid).call() == [ACTIVE, b"DE", (1 << 1) | (1 << 5), [a, b]]
    fresh = Account.create().address
    c.assert_reverts(reg.onboardMember(mid, b"DE", [fresh], []), admin, "RegistryMemberExists", mid)
    c.assert_reverts(reg.onboardMember(b"\0" * 32, b"DE", [fresh], []), admin, "RegistryInvalidInput")
    c.assert_reverts(reg.onboardMember(b32("n"), b"DE", [], []), admin, "RegistryInvalidInput")
    c.assert_reverts(reg.onboardMember(b32("n"), b"DE", [fresh], [ROLE_FINANCE] * 7), admin, "RegistryInvalidInput")
    c.assert_reverts(reg.onboardMember(b32("n"), b"DE", [ZERO_ADDRESS], []), admin, "RegistryInvalidInput")
    c.assert_reverts(reg.onboardMember(b32("n"), b"de", [fresh], []), admin, "RegistryInvalidCountry", b"de")
    c.assert_reverts(reg.onboardMember(b32("n"), b"DE", [fresh], [b32("KING")]), admin, "RegistryUnknownRole",
                     b32("KING"))
    c.assert_reverts(reg.onboardMember(b32("n"), b"DE", [a], []), admin, "RegistryAccountTaken", a, mid)
    many = [Account.create().address for _ in range(17)]
    c.assert_reverts(reg.onboardMember(b32("n"), b"DE", many, []), admin, "RegistryTooManyAccounts", b32("n"), 16)


def test_governance_account_roles_country_and_status_rules(direct: Direct) -> None:
    """Proves addAccount/removeAccount/grant/revoke/setCountry/suspend/reactivate rules and events."""
    c, reg, admin = direct.chain, direct.registry.functions, direct.admin
    mid, (k1,) = onboard(direct, "m")
    other, _ = onboard(direct, "other")
    unknown = b32("nobody")
    k2 = Account.create().address
    assert [e.args.account for e in events(direct.registry, c.send(reg.addAccount(mid, k2), admin),
                                           "MemberAccountAdded")] == [k2]
    c.assert_reverts(reg.addAccount(unknown, Account.create().address), admin, "RegistryUnknownMember", unknown)
    c.assert_reverts(reg.addAccount(mid, k2), admin, "RegistryAccountTaken", k2, mid)
    c.assert_reverts(reg.removeAccount(other, k2), admin, "RegistryAccountNotOfMember", k2, other)
    c.assert_reverts(reg.removeAccount(unknown, k2), admin, "RegistryUnknownMember", unknown)
    receipt = c.send(reg.removeAccount(mid, k1.address), admin)
    assert [e.args.account for e in events(direct.registry, receipt, "MemberAccountRemoved")] == [k1.address]
    assert reg.memberOf(k1.address).call() == b"\0" * 32
    c.assert_reverts(reg.removeAccount(mid, k2), admin, "RegistryLastAccount", mid)
    for _ in range(15):
        c.send(reg.addAccount(mid, Account.create().address), admin)
    c.assert_reverts(reg.addAccount(mid, Account.create().address), admin, "RegistryTooManyAccounts", mid, 16)

    assert len(events(direct.registry, c.send(reg.grantMemberRole(mid, ROLE_BUYER), admin), "MemberRoleGranted")) == 1
    assert events(direct.registry, c.send(reg.grantMemberRole(mid, ROLE_BUYER), admin), "MemberRoleGranted") == []
    assert reg.memberHasRole(mid, ROLE_BUYER).call()
    assert len(events(direct.registry, c.send(reg.revokeMemberRole(mid, ROLE_BUYER), admin), "MemberRoleRevoked")) == 1
    assert events(direct.registry, c.send(reg.revokeMemberRole(mid, ROLE_BUYER), admin), "MemberRoleRevoked") == []
    c.assert_reverts(reg.grantMemberRole(unknown, ROLE_BUYER), admin, "RegistryUnknownMember", unknown)
    c.assert_reverts(reg.revokeMemberRole(mid, b32("X")), admin, "RegistryUnknownRole", b32("X"))

    assert events(direct.registry, c.send(reg.setCountry(mid, b"FR"), admin), "MemberCountryChanged")[0].args.country == b"FR"
    c.assert_reverts(reg.setCountry(mid, b"F1"), admin, "RegistryInvalidCountry", b"F1")
    c.assert_reverts(reg.setCountry(unknown, b"FR"), admin, "RegistryUnknownMember", unknown)

    c.assert_reverts(reg.reactivateMember(mid), admin, "RegistryStatusUnchanged", mid, ACTIVE)
    assert len(events(direct.registry, c.send(reg.suspendMember(mid), direct.guardian), "MemberSuspended")) == 1
    c.assert_reverts(reg.suspendMember(mid), admin, "RegistryStatusUnchanged", mid, SUSPENDED)
    c.assert_reverts(reg.suspendMember(unknown), direct.guardian, "RegistryUnknownMember", unknown)
    # The guardian only suspends: reinstatement is governance's.
    c.assert_reverts(reg.reactivateMember(mid), direct.guardian, "AccessControlUnauthorizedAccount",
                     direct.guardian.address, DEFAULT_ADMIN_ROLE)
    c.assert_reverts(reg.reactivateMember(unknown), admin, "RegistryUnknownMember", unknown)
    assert len(events(direct.registry, c.send(reg.reactivateMember(mid), admin), "MemberReactivated")) == 1
    assert reg.isActive(mid).call()


def test_suspension_stops_a_member_in_every_check(direct: Direct) -> None:
    """Proves requireActiveRole/requireActiveMember/isActiveWithRole/transactionAllowed semantics:
    a suspended member fails each of them (so every ledger contract refuses it), others do not."""
    c, reg = direct.chain, direct.registry.functions
    mid, (key,) = onboard(direct, "m", [ROLE_FINANCE])
    stranger = Account.create().address
    assert reg.requireActiveRole(key.address, ROLE_FINANCE).call() == mid
    assert reg.requireActiveMember(key.address).call() == mid
    assert reg.isActiveWithRole(key.address, ROLE_FINANCE).call()
    assert not reg.isActiveWithRole(key.address, ROLE_BUYER).call()
    assert not reg.isActiveWithRole(stranger, ROLE_FINANCE).call()
    assert reg.transactionAllowed(key.address, ZERO_ADDRESS, 0, 0, 0, b"").call()
    assert c.call_error(direct.registry.address, reg.requireActiveRole(key.address, ROLE_BUYER)._encode_transaction_data(),
                        stranger) == ("RegistryMissingRole", (key.address, mid, ROLE_BUYER))
    assert c.call_error(direct.registry.address, reg.requireActiveMember(stranger)._encode_transaction_data(),
                        stranger) == ("RegistryNotAMember", (stranger,))
    c.send(reg.suspendMember(mid), direct.guardian)
    for fn in (reg.requireActiveRole(key.address, ROLE_FINANCE), reg.requireActiveMember(key.address)):
        assert c.call_error(direct.registry.address, fn._encode_transaction_data(), stranger) == (
            "RegistryMemberNotActive", (key.address, mid))
    assert not reg.isActiveWithRole(key.address, ROLE_FINANCE).call()
    assert not reg.transactionAllowed(key.address, ZERO_ADDRESS, 0, 0, 0, b"").call()
    assert reg.memberHasRole(mid, ROLE_FINANCE).call()  # roles kept: reinstatement restores them


def test_besu_permissioning_allows_members_and_governors_only(stack: Stack) -> None:
    """Proves transactionAllowed: active members' accounts and governors (owners of the governance
    Safes) may transact; strangers, suspended members, and governors removed from the list may not."""
    reg = stack.registry.functions

    def allowed(address: str) -> bool:
        return reg.transactionAllowed(address, ZERO_ADDRESS, 0, 0, 0, b"").call()

    assert allowed(stack.accounts["buyer"].address) and allowed(stack.operator.address)
    assert all(allowed(g.address) for g in stack.governors)
    assert allowed(stack.timelock.address) and allowed(stack.guardian_safe.address)
    assert not allowed(stack.accounts["outsider"].address)
    stack.fast_suspend("buyer")
    assert not allowed(stack.accounts["buyer"].address)
    receipt = stack.govern(stack.registry_call("setGovernanceSafes", []))
    assert events(stack.registry, receipt, "GovernanceSafesChanged")[0].args.safes == []
    assert not any(allowed(g.address) for g in stack.governors)
    c = stack.chain
    op = stack.operation(stack.registry_call("setGovernanceSafes", [stack.accounts["outsider"].address]))
    stack.schedule(op)
    c.warp(stack.delay_s)
    assert c.revert_of(stack.execute_fn(op), stack.operator) == ("RegistryInvalidInput", ())
    too_many = [stack.gov_safe.address] * 5
    op = stack.operation(stack.registry_call("setGovernanceSafes", too_many))
    stack.schedule(op)
    c.warp(stack.delay_s)
    assert c.revert_of(stack.execute_fn(op), stack.operator) == ("RegistryInvalidInput", ())


# --------------------------------------------------------------------------- a member's own consent


def test_member_adds_its_own_key_with_consent_and_proof_of_possession(stack: Stack) -> None:
    """Proves addAccountWithConsent: the member's current key consents, the new key proves
    possession, anyone (the operator's relayer) submits; the nonce makes it one-shot."""
    c, reg = stack.chain, stack.registry.functions
    supplier, current, new = stack.members["supplier"], stack.accounts["supplier"], Account.create()
    fn = stack.add_with_consent_fn("supplier", new, current)
    receipt = c.send(fn, stack.operator)
    (used,) = events(stack.registry, receipt, "MemberConsentUsed")
    assert (used.args.id, used.args.signer, used.args.nonce) == (supplier, current.address, 0)
    assert [e.args.account for e in events(stack.registry, receipt, "MemberAccountAdded")] == [new.address]
    assert reg.nonces(current.address).call() == 1
    assert reg.memberOf(new.address).call() == supplier
    # Replaying the same signed consent: its nonce is used, so the signature no longer matches.
    c.assert_reverts(fn, stack.operator, "RegistryInvalidConsent", supplier, current.address)
    # The member's own new key acts as the supplier.
    assert stack.probe.functions.actWithRole(ROLE_SUPPLIER).call({"from": new.address}) == supplier


def test_consent_refusals(stack: Stack) -> None:
    """Proves each refusal of a consented change: expired, wrong or foreign signer, tampered data,
    missing possession proof, suspended member, taken account."""
    c, reg = stack.chain, stack.registry.functions
    supplier, current, op = stack.members["supplier"], stack.accounts["supplier"], stack.operator
    new = Account.create()
    past = c.now() - 1
    c.assert_reverts(stack.add_with_consent_fn("supplier", new, current, deadline=past), op,
                     "RegistryConsentExpired", past)
    # A key of another member cannot consent for the supplier.
    c.assert_reverts(stack.add_with_consent_fn("supplier", new, stack.accounts["buyer"]), op, "RegistryInvalidConsent",
                     supplier, stack.accounts["buyer"].address)
    # The consent names another account than the one submitted.
    deadline = c.now() + 600
    nonce = reg.nonces(current.address).call()
    other = Account.create()
    consent = stack.sign_account_change(current, "AddAccount", supplier, other.address, current.address, nonce, deadline)
    possession = stack.sign_account_change(new, "AddAccount", supplier, new.address, current.address, nonce, deadline)
    c.assert_reverts(reg.addAccountWithConsent(supplier, new.address, current.address, deadline, consent, possession),
                     op, "RegistryInvalidConsent", supplier, current.address)
    # A removal consent is no add consent (distinct type hashes).
    removal = stack.sign_account_change(current, "RemoveAccount", supplier, new.address, current.address, nonce,
                                        deadline)
    c.assert_reverts(reg.addAccountWithConsent(supplier, new.address, current.address, deadline, removal, possession),
                     op, "RegistryInvalidConsent", supplier, current.address)
    # Possession signed by another key than the one added, or missing.
    good = stack.sign_account_change(current, "AddAccount", supplier, new.address, current.address, nonce, deadline)
    wrong = stack.sign_account_change(other, "AddAccount", supplier, new.address, current.address, nonce, deadline)
    c.assert_reverts(reg.addAccountWithConsent(supplier, new.address, current.address, deadline, good, wrong), op,
                     "RegistryInvalidPossessionProof", new.address)
    c.assert_reverts(reg.addAccountWithConsent(supplier, new.address, current.address, deadline, good, b""), op,
                     "RegistryInvalidPossessionProof", new.address)
    # An account of another member cannot be taken over, even with its holder's signature.
    buyer_key = stack.accounts["buyer"]
    c.assert_reverts(stack.add_with_consent_fn("supplier", buyer_key, current), op, "RegistryAccountTaken",
                     buyer_key.address, stack.members["buyer"])
    # A suspended member's keys change only by governance.
    stack.fast_suspend("supplier")
    c.assert_reverts(stack.add_with_consent_fn("supplier", new, current), op, "RegistryMemberNotActive",
                     current.address, supplier)
    assert reg.nonces(current.address).call() == nonce


def test_member_removes_a_key_with_consent_but_never_its_last(stack: Stack) -> None:
    """Proves removeAccountWithConsent: a current key consents (even to removing itself), the last
    key can never be removed, and a key of another member is out of reach."""
    c, reg, op = stack.chain, stack.registry.functions, stack.operator
    supplier, first, second = stack.members["supplier"], stack.accounts["supplier"], Account.create()
    c.send(stack.add_with_consent_fn("supplier", second, first), op)
    c.assert_reverts(stack.remove_with_consent_fn("supplier", stack.accounts["buyer"].address, first), op,
                     "RegistryAccountNotOfMember", stack.accounts["buyer"].address, supplier)
    past = c.now() - 5
    c.assert_reverts(stack.remove_with_consent_fn("supplier", second.address, first, deadline=past), op,
                     "RegistryConsentExpired", past)
    receipt = c.send(stack.remove_with_consent_fn("supplier", first.address, first), op)  # the old key retires itself
    assert [e.args.account for e in events(stack.registry, receipt, "MemberAccountRemoved")] == [first.address]
    assert stack.accounts_of("supplier") == [second.address]
    c.assert_reverts(stack.remove_with_consent_fn("supplier", second.address, second), op, "RegistryLastAccount",
                     supplier)
    # The removed key's consent is no longer a member's consent.
    c.assert_reverts(stack.add_with_consent_fn("supplier", Account.create(), first), op, "RegistryInvalidConsent",
                     supplier, first.address)


# --------------------------------------------------------------------------- coverage of the ABI's errors


# Errors in ConsortiumRegistry's ABI that no call can raise, and why.
UNREACHABLE_ERRORS = {
    "InvalidAccountNonce": "Nonces' checked variant; the registry uses unchecked _useNonce (the nonce is signed, not passed)",
    "InvalidShortString": "EIP712 constructor with a short literal name",
    "StringTooLong": "EIP712 constructor with a short literal name",
    "SafeCastOverflowedUintDowncast": "AccessControlDefaultAdminRules casts block.timestamp + uint48 delay to uint48",
}


def test_every_registry_error_is_raised_by_some_test() -> None:
    """Proves the tests above cover the ABI: every custom error the registry declares is asserted
    by name somewhere in this module (the rest are listed as unreachable, with the reason)."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    declared = {i["name"] for i in artifact("ConsortiumRegistry")["abi"] if i["type"] == "error"}
    interface = {i["name"] for i in artifact("IConsortiumRegistry")["abi"] if i["type"] == "error"}
    assert interface <= declared
    missing = sorted(n for n in declared - set(UNREACHABLE_ERRORS) if f'"{n}"' not in source)
    assert missing == [], f"errors never asserted: {missing}"
    assert set(UNREACHABLE_ERRORS) <= declared - interface
