"""Governance for test worlds: the demo governors (deterministic keys the service holds), the
bootstrap window and its seal, and the whole governed path run quickly: propose, approve with the
custodial governors, execute, move the dev chain's clock past the delay (evm_increaseTime +
evm_mine: anvil only) and execute, driving the dispatcher and follower in between."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from settlement.chain.deploy import seal_bootstrap
from settlement.chain.governance import GovernanceParams
from settlement.chain.signing import LocalSigner
from settlement.custody.governors import demo_governance
from settlement.domains import governance as gov
from settlement.domains import members as members_svc
from settlement.pipeline.workers import build
from settlement.runtime import Runtime
from settlement.store.models.governance import GovernanceProposal
from settlement.wiring import build_registry

# Governors as the demo has them (2-of-3, guardians 2-of-3), with their member ids; a delay that
# tests skip by moving the clock.
TEST_DELAY_S = 30
GOVERNOR_MEMBERS = ("gov-a", "gov-b", "gov-c")
DRIVE_ROUNDS_MAX = 30


def test_governance(delay_s: int = TEST_DELAY_S) -> tuple[GovernanceParams, dict[str, LocalSigner]]:
    return demo_governance(GOVERNOR_MEMBERS, delay_s=delay_s)


test_governance.__test__ = False  # type: ignore[attr-defined]  (a helper, not a test)


def drive(runtime: Runtime) -> None:
    """Send what waits in the outbox and apply what the chain says back, until nothing moves."""
    dispatcher, follower = build(runtime, build_registry())
    for _ in range(DRIVE_ROUNDS_MAX):
        dispatcher.drain(timeout_s=60)
        moved = 0
        while follower.run_once():
            moved += 1
        if not moved:
            return
    raise AssertionError("the outbox and the follower did not settle")


def warp(runtime: Runtime, seconds: int) -> None:
    """Move the dev chain's clock (anvil only; a permissioned network has no such method)."""
    runtime.chain.rpc("evm_increaseTime", [seconds])
    runtime.chain.rpc("evm_mine", [])


def seal(runtime: Runtime) -> None:
    """Apply the bootstrap onboardings on chain, then close the bootstrap window for good."""
    drive(runtime)
    assert runtime.manifest is not None
    seal_bootstrap(runtime.chain, runtime.operator, runtime.manifest, runtime.home)


def propose(runtime: Runtime, action: gov.Action, proposed_by: str = "ops") -> str:
    with runtime.db.transaction() as s:
        return gov.propose(runtime, s, gov.read_facts(runtime), action, proposed_by=proposed_by).id


def approve_all(runtime: Runtime, proposal_id: str) -> None:
    """Approvals by the custodial demo governors up to the Safe's threshold, applied on chain."""
    facts = gov.read_facts(runtime)
    with runtime.db.transaction() as s:
        gov.approve_custodially(runtime, s, facts, proposal_id)
    drive(runtime)


def execute(runtime: Runtime, proposal_id: str) -> None:
    with runtime.db.read() as s:
        op_id = s.get(GovernanceProposal, proposal_id).op_id
    facts = gov.read_facts(runtime, (op_id,) if op_id else ())
    with runtime.db.transaction() as s:
        gov.execute(runtime, s, facts, proposal_id)
    drive(runtime)


def status(runtime: Runtime, proposal_id: str) -> str:
    with runtime.db.read() as s:
        return s.get(GovernanceProposal, proposal_id).status


def govern(runtime: Runtime, action: gov.Action, proposed_by: str = "ops") -> str:
    """The whole path of one decision; returns the proposal id (executed)."""
    pid = propose(runtime, action, proposed_by)
    drive(runtime)
    approve_all(runtime, pid)
    execute(runtime, pid)
    if status(runtime, pid) == "scheduled":
        params = runtime.governance
        assert params is not None
        warp(runtime, params.delay_s + 1)
        execute(runtime, pid)
    final = status(runtime, pid)
    assert final == "executed", f"proposal {pid} is {final}"
    return pid


def onboard_governed(runtime: Runtime, member_id: str, roles: list[str], *, country: str = "SG",
                     name: str | None = None, account: str | None = None) -> str:
    """Onboard after the seal, through governance; returns a new API key of the member."""
    govern(runtime, gov.Action("onboard", member_id=member_id, name=name or member_id, country=country,
                               roles=tuple(roles), account=account))
    with runtime.db.transaction() as s:
        return members_svc.issue_key(s, member_id, label="test").plaintext


def suspend(runtime: Runtime, member_id: str) -> str:
    """The guardians' fast path: k approvals, executed at once."""
    return govern(runtime, gov.Action("suspend", member_id=member_id))


def reactivate(runtime: Runtime, member_id: str) -> str:
    return govern(runtime, gov.Action("reactivate", member_id=member_id))


def add_own_key(runtime: Runtime, member_id: str) -> LocalAccount:
    """A new account of ``member_id`` whose key only the caller holds: the typed data signed by the
    new key (proof of possession), consent by the member's custodial key, relayed to the registry;
    the mirror gets the account when the follower sees ``MemberAccountAdded``."""
    account = Account.create()
    change = members_svc.keys.prepare_key_change(runtime, member_id, members_svc.keys.ADD, account.address)
    possession = "0x" + account.sign_message(encode_typed_data(full_message=change.typed_data)).signature.hex()
    with runtime.db.transaction() as s:
        members_svc.keys.change_key(runtime, s, change, possession_signature=possession, consent_signature=None,
                                    custodial_consent=True)
    drive(runtime)
    return account


def suspend_on_chain(runtime: Runtime, member_id: str) -> None:
    """The guardians suspend ``member_id`` with their own tools, around the service: k of them
    approve the guardian Safe's ``suspendMember`` and one executes it, each a transaction of its
    own. Nothing goes through the outbox, so what waits there is sent after the suspension."""
    from settlement.chain.governance import approval_signatures, safe_tx_hash
    from settlement.domains.members import onchain_id

    client, a = runtime.chain, runtime.manifest.addresses  # type: ignore[union-attr]
    params = runtime.governance
    assert params is not None
    safe, registry = a["GuardianSafe"], a["ConsortiumRegistry"]
    data = client.encode("ConsortiumRegistry", "suspendMember", [onchain_id(member_id)])
    (nonce,) = client.call("GuardianSafe", safe, "nonce")
    tx_hash = safe_tx_hash(client.chain_id, safe, registry, data, int(nonce))
    guardians = [runtime.governors[g.address] for g in params.governors][:params.guardian_threshold]
    for guardian in guardians:
        client.transact(guardian, to=safe, gas=100_000, data=client.encode("GuardianSafe", "approveHash", [tx_hash]))
    zero = "0x" + "00" * 20
    signatures = approval_signatures([(g.address, None) for g in guardians])
    client.transact(guardians[0], to=safe, gas=400_000, data=client.encode(
        "GuardianSafe", "execTransaction", [registry, 0, data, 0, 0, 0, 0, zero, zero, signatures]))


def govern_on_chain(runtime: Runtime, function: str, args: list) -> None:
    """The governors change the registry with their own tools, around the service: M approve the
    Safe transaction scheduling ``registry.<function>(*args)`` on the timelock, one executes it,
    the delay passes (the clock moved), and one executes the batch. Nothing goes through the
    outbox or the follower."""
    import os

    from settlement.chain.governance import ZERO_BYTES32, approval_signatures, safe_tx_hash

    client, a = runtime.chain, runtime.manifest.addresses  # type: ignore[union-attr]
    params = runtime.governance
    assert params is not None
    safe, timelock, registry = a["GovernanceSafe"], a["ConsortiumTimelock"], a["ConsortiumRegistry"]
    payload = client.encode("ConsortiumRegistry", function, args)
    salt = "0x" + os.urandom(32).hex()
    batch = [[registry], [0], [payload], ZERO_BYTES32, salt]
    data = client.encode("ConsortiumTimelock", "scheduleBatch", [*batch, params.delay_s])
    (nonce,) = client.call("GovernanceSafe", safe, "nonce")
    tx_hash = safe_tx_hash(client.chain_id, safe, timelock, data, int(nonce))
    governors = [runtime.governors[g.address] for g in params.governors][:params.threshold]
    for governor in governors:
        client.transact(governor, to=safe, gas=100_000, data=client.encode("GovernanceSafe", "approveHash", [tx_hash]))
    zero = "0x" + "00" * 20
    signatures = approval_signatures([(g.address, None) for g in governors])
    client.transact(governors[0], to=safe, gas=600_000, data=client.encode(
        "GovernanceSafe", "execTransaction", [timelock, 0, data, 0, 0, 0, 0, zero, zero, signatures]))
    warp(runtime, params.delay_s + 1)
    client.transact(governors[0], to=timelock, gas=800_000, data=client.encode("ConsortiumTimelock", "executeBatch",
                                                                                batch))
