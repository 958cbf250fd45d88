"""Consortium governance on a real anvil: the Safe -> TimelockController -> registry pipeline, the
guardian fast path, the admin-role transfer rules, the proposal log, gas per governed action, and
a hypothesis state machine over governance and membership.

The chain's clock is moved with `evm_increaseTime` + `evm_mine` (a private anvil per module).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.conftest import start_anvil
from tests.contracts.governance_stack import (
    ACTIVE,
    ADMIN_TRANSFER_DELAY_S,
    DEFAULT_ADMIN_ROLE,
    GUARDIAN_THRESHOLD_K,
    ROLE_AUDITOR,
    ROLE_FINANCE,
    SUSPENDED,
    SUSPENDER_ROLE,
    THRESHOLD_M,
    ZERO_ADDRESS,
    Call,
    Stack,
    artifact,
    b32,
    deploy_stack,
    events,
)

# TimelockController.OperationState bitmaps (1 << state): Unset 0, Waiting 1, Ready 2, Done 3.
READY_BITMAP = (1 << 2).to_bytes(32, "big")
WAITING_OR_READY_BITMAP = ((1 << 1) | (1 << 2)).to_bytes(32, "big")
UNSET_BITMAP = (1 << 0).to_bytes(32, "big")


@pytest.fixture(scope="module")
def rpc_url() -> Iterator[str]:
    node = start_anvil()
    yield node.rpc_url
    node.stop()


@pytest.fixture
def stack(rpc_url: str) -> Stack:
    return deploy_stack(rpc_url)


def _as_safe(stack: Stack, safe: Any, call: Call) -> tuple[str, tuple[Any, ...]] | None:
    """The revert a Safe would meet making `call` itself."""
    return stack.chain.call_error(call.target, call.data, safe.address)


# --------------------------------------------------------------------------- the slow path


def test_every_admin_function_runs_through_quorum_and_delay(stack: Stack) -> None:
    """Proves the governed pipeline reaches every admin function of the registry: M approvals
    schedule one batch, nothing runs before the delay, then anyone executes it once, with events at
    each step (ProposalSubmitted, ApproveHash, CallScheduled, CallExecuted, the registry's own)."""
    c, reg = stack.chain, stack.registry.functions
    newcomer, spare = Account.create(), Account.create()
    nid, supplier = b32("newcomer"), stack.members["supplier"]
    op = stack.operation(
        stack.registry_call("onboardMember", nid, b"JP", [newcomer.address], [ROLE_FINANCE]),
        stack.registry_call("addAccount", supplier, spare.address),
        stack.registry_call("removeAccount", supplier, stack.accounts["supplier"].address),
        stack.registry_call("grantMemberRole", nid, ROLE_AUDITOR),
        stack.registry_call("revokeMemberRole", nid, ROLE_FINANCE),
        stack.registry_call("setCountry", nid, b"KR"),
        stack.registry_call("suspendMember", stack.members["buyer"]),
        stack.registry_call("reactivateMember", stack.members["buyer"]),
        stack.registry_call("grantRole", SUSPENDER_ROLE, stack.gov_safe.address),
        stack.registry_call("revokeRole", SUSPENDER_ROLE, stack.gov_safe.address),
        stack.registry_call("setGovernanceSafes", [stack.gov_safe.address]),
    )
    receipt = stack.schedule(op)
    scheduled = events(stack.timelock, receipt, "CallScheduled")
    assert len(scheduled) == len(op.calls) and all(e.args.id == op.op_id for e in scheduled)
    assert scheduled[0].args.delay == stack.delay_s
    ready_at = stack.timelock.functions.getTimestamp(op.op_id).call()
    assert ready_at == c.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + stack.delay_s
    assert events(stack.gov_safe, receipt, "ExecutionSuccess")[0].args.txHash == op.safe_tx_hash
    assert stack.gov_safe.functions.approvedHashes(stack.governors[0].address, op.safe_tx_hash).call() == 1
    # Before the delay: refused, whoever executes.
    c.assert_reverts(stack.execute_fn(op), stack.operator, "TimelockUnexpectedOperationState", op.op_id, READY_BITMAP)
    assert reg.getMember(nid).call()[0] == 0
    c.warp(stack.delay_s)
    receipt = stack.execute(op, executor=stack.accounts["outsider"])  # execution is open to anyone
    assert len(events(stack.timelock, receipt, "CallExecuted")) == len(op.calls)
    assert reg.getMember(nid).call() == [ACTIVE, b"KR", 1 << 5, [newcomer.address]]
    assert stack.accounts_of("supplier") == [spare.address]
    assert stack.status("buyer") == ACTIVE
    assert not reg.hasRole(SUSPENDER_ROLE, stack.gov_safe.address).call()
    assert reg.governanceSafes().call() == [stack.gov_safe.address]
    assert len(events(stack.registry, receipt, "MemberSuspended")) == 1
    assert len(events(stack.registry, receipt, "MemberReactivated")) == 1
    # Once done, never again.
    c.assert_reverts(stack.execute_fn(op), stack.operator, "TimelockUnexpectedOperationState", op.op_id, READY_BITMAP)


def test_delay_cannot_be_shortened_and_a_failing_action_stays_pending(stack: Stack) -> None:
    """Proves the timelock refuses a delay under its minimum, changes its delay only through its
    own delayed operation, and that an action the registry refuses reverts (with the registry's
    error, bubbled by the timelock) and may be retried or cancelled."""
    c, tl = stack.chain, stack.timelock.functions
    op = stack.operation(stack.registry_call("reactivateMember", stack.members["buyer"]))  # buyer is active
    short = tl.scheduleBatch(*stack._batch_args(op), stack.delay_s - 1)
    assert c.call_error(stack.timelock.address, short._encode_transaction_data(), stack.gov_safe.address) == (
        "TimelockInsufficientDelay", (stack.delay_s - 1, stack.delay_s))
    c.assert_reverts(tl.updateDelay(0), stack.governors[0], "TimelockUnauthorizedCaller", stack.governors[0].address)
    stack.schedule(op)
    c.warp(stack.delay_s)
    assert c.revert_of(stack.execute_fn(op), stack.operator) == (
        "RegistryStatusUnchanged", (stack.members["buyer"], ACTIVE))
    assert tl.isOperationReady(op.op_id).call()
    # Governance cancels it (M approvals again).
    cancel = stack.timelock_call("cancel", op.op_id)
    h, _ = stack.propose(stack.gov_safe, stack.governors[1], cancel.target, cancel.data, "cancel a stale operation")
    for g in stack.governors[1:3]:
        stack.approve(stack.gov_safe, g, h)
    receipt = stack.exec_safe(stack.gov_safe, cancel.target, cancel.data, [g.address for g in stack.governors[1:3]],
                              stack.operator)
    assert [e.args.id for e in events(stack.timelock, receipt, "Cancelled")] == [op.op_id]
    c.assert_reverts(stack.execute_fn(op), stack.operator, "TimelockUnexpectedOperationState", op.op_id, READY_BITMAP)
    # The delay itself changes only by a delayed operation of the timelock on itself.
    stack.govern(stack.timelock_call("updateDelay", 3_600))
    assert tl.getMinDelay().call() == 3_600


def test_fast_path_suspends_at_once_and_reinstatement_waits_for_governance(stack: Stack) -> None:
    """Proves the fast path: k guardians suspend without delay; the guardian Safe cannot reinstate
    nor do anything else; reinstatement only through M governors and the full delay."""
    c = stack.chain
    receipt = stack.fast_suspend("supplier")
    assert len(events(stack.registry, receipt, "MemberSuspended")) == 1
    assert stack.status("supplier") == SUSPENDED
    g = stack.guardian_safe
    for call in (stack.registry_call("reactivateMember", stack.members["supplier"]),
                 stack.registry_call("addAccount", stack.members["supplier"], Account.create().address),
                 stack.registry_call("grantRole", SUSPENDER_ROLE, stack.operator.address)):
        assert _as_safe(stack, g, call) == ("AccessControlUnauthorizedAccount", (g.address, DEFAULT_ADMIN_ROLE))
    # Executed through the Safe, the registry's error surfaces as is (Safe 1.5.0 bubbles the inner
    # revert data when safeTxGas and gasPrice are zero, as they are here).
    call = stack.registry_call("reactivateMember", stack.members["supplier"])
    h, _ = stack.propose(g, stack.guardians[0], call.target, call.data, "reinstate at once?")
    for guardian in stack.guardians[:GUARDIAN_THRESHOLD_K]:
        stack.approve(g, guardian, h)
    assert c.revert_of(stack.exec_safe_fn(g, call.target, call.data,
                                          [x.address for x in stack.guardians[:GUARDIAN_THRESHOLD_K]]),
                       stack.operator) == ("AccessControlUnauthorizedAccount", (g.address, DEFAULT_ADMIN_ROLE))
    # One guardian is not enough either.
    c2 = stack.registry_call("suspendMember", stack.members["buyer"])
    h2, _ = stack.propose(g, stack.guardians[0], c2.target, c2.data, "suspend buyer")
    stack.approve(g, stack.guardians[0], h2)
    assert c.revert_of(stack.exec_safe_fn(g, c2.target, c2.data, [stack.guardians[0].address]),
                       stack.operator)[0] == "Error"
    # The last guardian may execute instead of approving: its own transaction counts as its approval.
    receipt = stack.exec_safe(g, c2.target, c2.data, [stack.guardians[0].address, stack.guardians[1].address],
                              stack.guardians[1])
    assert len(events(stack.registry, receipt, "MemberSuspended")) == 1
    assert stack.status("buyer") == SUSPENDED
    # Reinstatement: governance, and not before the delay.
    op = stack.operation(call)
    stack.schedule(op)
    c.warp(stack.delay_s // 2)
    c.assert_reverts(stack.execute_fn(op), stack.operator, "TimelockUnexpectedOperationState", op.op_id, READY_BITMAP)
    assert stack.status("supplier") == SUSPENDED
    c.warp(stack.delay_s)
    stack.execute(op)
    assert stack.status("supplier") == ACTIVE


def test_admin_role_moves_only_in_two_delayed_steps(stack: Stack) -> None:
    """Proves AccessControlDefaultAdminRules under governance: a new admin (e.g. a new timelock) is
    proposed by governance and may accept only after the admin delay; the delay itself changes
    only by governance; a pending transfer can be cancelled."""
    c, reg = stack.chain, stack.registry.functions
    new_admin = stack.accounts["outsider"]
    stack.govern(stack.registry_call("beginDefaultAdminTransfer", new_admin.address))
    pending, schedule = reg.pendingDefaultAdmin().call()
    assert pending == new_admin.address
    c.assert_reverts(reg.acceptDefaultAdminTransfer(), new_admin, "AccessControlEnforcedDefaultAdminDelay", schedule)
    c.assert_reverts(reg.acceptDefaultAdminTransfer(), stack.operator, "AccessControlInvalidDefaultAdmin",
                     stack.operator.address)
    stack.govern(stack.registry_call("cancelDefaultAdminTransfer"))
    assert reg.pendingDefaultAdmin().call() == [ZERO_ADDRESS, 0]
    stack.govern(stack.registry_call("changeDefaultAdminDelay", 3_600))
    assert reg.pendingDefaultAdminDelay().call()[0] == 3_600
    stack.govern(stack.registry_call("rollbackDefaultAdminDelay"))
    assert reg.pendingDefaultAdminDelay().call() == [0, 0]
    assert reg.defaultAdminDelayIncreaseWait().call() > 0
    stack.govern(stack.registry_call("beginDefaultAdminTransfer", new_admin.address))
    c.warp(ADMIN_TRANSFER_DELAY_S + 1)
    c.send(reg.acceptDefaultAdminTransfer(), new_admin)
    assert reg.defaultAdmin().call() == new_admin.address
    assert not reg.hasRole(DEFAULT_ADMIN_ROLE, stack.timelock.address).call()


def test_proposal_log_publishes_what_each_hash_means(stack: Stack) -> None:
    """Proves the proposal log: only a Safe owner proposes, at a usable nonce, with a bounded
    description; the event carries the content and the Safe's own hash; proposals queued at later
    nonces execute in order."""
    c, log = stack.chain, stack.proposals.functions
    safe, g = stack.gov_safe, stack.governors[2]
    call = stack.registry_call("suspendMember", stack.members["buyer"])
    outsider = stack.accounts["outsider"]
    c.assert_reverts(log.propose(safe.address, call.target, 0, call.data, 0, "x"), outsider,
                     "GovernanceProposalsNotAnOwner", safe.address, outsider.address)
    c.assert_reverts(log.propose(safe.address, call.target, 0, call.data, 65, "x"), g,
                     "GovernanceProposalsInvalidNonce", safe.address, 65, 0)
    c.assert_reverts(log.propose(safe.address, call.target, 0, call.data, 0, "x" * 1025), g,
                     "GovernanceProposalsDescriptionTooLong", 1025, 1024)
    assert log.NONCE_AHEAD_MAX().call() == 64 and log.DESCRIPTION_BYTES_MAX().call() == 1024
    first, second = stack.operation(call), stack.operation(stack.registry_call("suspendMember", stack.members["auditor"]))
    d1, d2 = stack.schedule_data(first), stack.schedule_data(second)
    receipt = c.send(log.propose(safe.address, stack.timelock.address, 0, d1, 0, "suspend the buyer"), g)
    (event,) = events(stack.proposals, receipt, "ProposalSubmitted")
    assert (event.args.safe, event.args.proposer, event.args.to, event.args.data, event.args.nonce,
            event.args.description) == (safe.address, g.address, stack.timelock.address, d1, 0, "suspend the buyer")
    h1 = event.args.safeTxHash
    h2, n2 = stack.propose(safe, g, stack.timelock.address, d2, "suspend the auditor", nonce=1)
    approvers = stack.governors[1:3]
    for a in approvers:
        stack.approve(safe, a, h1)
        stack.approve(safe, a, h2)
    # The later nonce cannot go first (its signatures are over nonce 1, the Safe is at 0).
    assert c.revert_of(stack.exec_safe_fn(safe, stack.timelock.address, d2, [a.address for a in approvers]),
                       stack.operator)[0] == "Error"
    stack.exec_safe(safe, stack.timelock.address, d1, [a.address for a in approvers], stack.operator)
    stack.exec_safe(safe, stack.timelock.address, d2, [a.address for a in approvers], stack.operator)
    assert stack.timelock.functions.isOperationPending(second.op_id).call()
    c.assert_reverts(log.propose(safe.address, call.target, 0, call.data, 0, "stale"), g,
                     "GovernanceProposalsInvalidNonce", safe.address, 0, 2)


def test_every_governance_error_is_raised_by_some_test() -> None:
    """Proves the proposal log's errors and the timelock errors the pipeline relies on are each
    asserted in this module (the others belong to TimelockController's batch/predecessor features)."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    log_errors = {i["name"] for i in artifact("GovernanceProposals")["abi"] if i["type"] == "error"}
    relied_on = {"TimelockInsufficientDelay", "TimelockUnauthorizedCaller", "TimelockUnexpectedOperationState",
                 "AccessControlUnauthorizedAccount"}
    missing = sorted(n for n in log_errors | relied_on if f'"{n}"' not in source)
    assert missing == []


# --------------------------------------------------------------------------- gas


def test_gas_per_governed_action(rpc_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Measures gas per governed action (deployment, propose, each approval, schedule, execute,
    fast-path suspension, consent) and checks it stays within generous bounds."""
    s = deploy_stack(rpc_url, labels=True)
    c = s.chain
    for name, call in (
        ("suspendMember", s.registry_call("suspendMember", s.members["buyer"])),
        ("reactivateMember", s.registry_call("reactivateMember", s.members["buyer"])),
        ("onboardMember (1 account, 1 role)", s.registry_call("onboardMember", b32("gas"), b"FR",
                                                              [Account.create().address], [ROLE_FINANCE])),
        ("addAccount", s.registry_call("addAccount", s.members["bank3"], Account.create().address)),
    ):
        op = s.operation(call)
        s.schedule(op, labels=True)
        c.warp(s.delay_s)
        s.execute(op, label=f"timelock executeBatch -> {name}")
    s.fast_suspend("auditor", labels=True)
    new = Account.create()
    c.send(s.add_with_consent_fn("supplier", new, s.accounts["supplier"]), s.operator, "addAccountWithConsent (relayed)")
    c.send(s.remove_with_consent_fn("supplier", new.address, s.accounts["supplier"]), s.operator,
           "removeAccountWithConsent (relayed)")
    rows = {label: max(values) for label, values in c.gas_used.items()}
    with capsys.disabled():
        print("\ngovernance gas per operation (max over runs):")
        for label, gas in rows.items():
            print(f"  {label:<55} {gas:>10,}")
    assert rows["approveHash (each governor)"] < 60_000
    assert rows["execTransaction -> scheduleBatch"] < 150_000
    assert rows["fast path: execTransaction -> suspendMember"] < 120_000
    assert rows["timelock executeBatch -> suspendMember"] < 100_000


# --------------------------------------------------------------------------- state machine

MEMBERS_UNDER_TEST = ("supplier", "buyer", "bank3")
WARPS_S = (1, 30, 60, 61, 120)
KEYS_PER_MEMBER_IN_MODEL_MAX = 3


class GovernanceMachine(RuleBasedStateMachine):
    """Random interleavings of proposals, approvals, executions, clock moves, fast-path suspensions,
    consented key changes and operator attacks, checked against a model:
    - no governed action executes without M approvals and its full delay;
    - a fast-path suspension needs k guardians and takes effect at once;
    - a reinstatement never skips the delay;
    - a suspended member fails requireActiveMember (and so every guarded contract);
    - the operator's key changes nothing."""

    rpc_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.s = deploy_stack(self.rpc_url)
        self.status = {m: ACTIVE for m in MEMBERS_UNDER_TEST}
        self.keys: dict[str, list[LocalAccount]] = {m: [self.s.accounts[m]] for m in MEMBERS_UNDER_TEST}
        # Operations: kind, member, Operation, ready_at (None until scheduled), done.
        self.ops: list[dict[str, Any]] = []

    # -- governance

    @rule(kind=st.sampled_from(["suspendMember", "reactivateMember"]), member=st.sampled_from(MEMBERS_UNDER_TEST),
          approvers=st.integers(min_value=0, max_value=3))
    def schedule(self, kind: str, member: str, approvers: int) -> None:
        s = self.s
        op = s.operation(s.registry_call(kind, s.members[member]))
        data = s.schedule_data(op)
        signers = s.governors[:approvers]
        h, _ = s.propose(s.gov_safe, s.governors[0], s.timelock.address, data, kind)
        for g in signers:
            s.approve(s.gov_safe, g, h)
        receipt = s.chain.send_raw(s.exec_safe_fn(s.gov_safe, s.timelock.address, data, [g.address for g in signers]),
                                   s.operator)
        if approvers >= THRESHOLD_M:
            assert receipt["status"] == 1, "M approvals must schedule"
            block_ts = s.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
            ready = s.timelock.functions.getTimestamp(op.op_id).call()
            assert ready == block_ts + s.delay_s
            self.ops.append({"kind": kind, "member": member, "op": op, "ready": ready, "done": False})
        else:
            assert receipt["status"] == 0, "fewer than M approvals must not schedule"
            assert not s.timelock.functions.isOperation(op.op_id).call()

    @precondition(lambda self: any(not o["done"] for o in self.ops))
    @rule(data=st.data())
    def execute(self, data: st.DataObject) -> None:
        s = self.s
        pending = [o for o in self.ops if not o["done"]]
        o = data.draw(st.sampled_from(pending))
        receipt = s.chain.send_raw(s.execute_fn(o["op"]), s.accounts["outsider"])
        block_ts = s.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        member, kind = o["member"], o["kind"]
        applicable = (self.status[member] == ACTIVE) if kind == "suspendMember" else (self.status[member] == SUSPENDED)
        if receipt["status"] == 1:
            assert block_ts >= o["ready"], "executed before its delay"
            assert applicable
            o["done"] = True
            self.status[member] = SUSPENDED if kind == "suspendMember" else ACTIVE
        else:
            assert block_ts < o["ready"] or not applicable, "a ready, applicable operation was refused"

    @rule(seconds=st.sampled_from(WARPS_S))
    def warp(self, seconds: int) -> None:
        self.s.chain.warp(seconds)

    @rule(member=st.sampled_from(MEMBERS_UNDER_TEST), approvers=st.integers(min_value=1, max_value=3))
    def fast_suspend(self, member: str, approvers: int) -> None:
        s = self.s
        call = s.registry_call("suspendMember", s.members[member])
        signers = s.guardians[:approvers]
        h, _ = s.propose(s.guardian_safe, signers[0], call.target, call.data, "fast suspension")
        for g in signers:
            s.approve(s.guardian_safe, g, h)
        receipt = s.chain.send_raw(s.exec_safe_fn(s.guardian_safe, call.target, call.data,
                                                  [g.address for g in signers]), s.operator)
        should = approvers >= GUARDIAN_THRESHOLD_K and self.status[member] == ACTIVE
        assert receipt["status"] == int(should)
        if should:
            self.status[member] = SUSPENDED

    # -- a member's own keys

    @precondition(lambda self: any(len(k) < KEYS_PER_MEMBER_IN_MODEL_MAX for k in self.keys.values()))
    @rule(member=st.sampled_from(MEMBERS_UNDER_TEST), signer_index=st.integers(min_value=0, max_value=2))
    def consent_add(self, member: str, signer_index: int) -> None:
        keys = self.keys[member]
        if len(keys) >= KEYS_PER_MEMBER_IN_MODEL_MAX:
            return
        new, signer = Account.create(), keys[signer_index % len(keys)]
        receipt = self.s.chain.send_raw(self.s.add_with_consent_fn(member, new, signer), self.s.operator)
        assert receipt["status"] == int(self.status[member] == ACTIVE)
        if receipt["status"]:
            keys.append(new)

    @rule(member=st.sampled_from(MEMBERS_UNDER_TEST), signer_index=st.integers(min_value=0, max_value=2),
          target_index=st.integers(min_value=0, max_value=2))
    def consent_remove(self, member: str, signer_index: int, target_index: int) -> None:
        keys = self.keys[member]
        signer, target = keys[signer_index % len(keys)], keys[target_index % len(keys)]
        receipt = self.s.chain.send_raw(self.s.remove_with_consent_fn(member, target.address, signer), self.s.operator)
        assert receipt["status"] == int(self.status[member] == ACTIVE and len(keys) > 1)
        if receipt["status"]:
            keys.remove(target)

    # -- the operator's key

    @rule(member=st.sampled_from(MEMBERS_UNDER_TEST),
          kind=st.sampled_from(["suspendMember", "reactivateMember", "addAccount", "removeAccount"]))
    def operator_attacks(self, member: str, kind: str) -> None:
        s = self.s
        mid = s.members[member]
        args = {"addAccount": (mid, s.accounts["rogue"].address),
                "removeAccount": (mid, self.keys[member][0].address)}.get(kind, (mid,))
        receipt = s.chain.send_raw(getattr(s.registry.functions, kind)(*args), s.operator)
        assert receipt["status"] == 0

    # -- invariants

    @invariant()
    def registry_matches_model(self) -> None:
        s = self.s
        for member in MEMBERS_UNDER_TEST:
            assert s.status(member) == self.status[member]
            assert sorted(s.accounts_of(member)) == sorted(k.address for k in self.keys[member])
            key = self.keys[member][0]
            error = s.chain.call_error(
                s.registry.address, s.registry.functions.requireActiveMember(key.address)._encode_transaction_data(),
                key.address)
            probe = s.chain.revert_of(s.probe.functions.actAsMember(), key)
            if self.status[member] == SUSPENDED:
                assert error == ("RegistryMemberNotActive", (key.address, s.members[member]))
                assert probe == error
            else:
                assert error is None and probe is None
        assert s.registry.functions.memberOf(s.accounts["rogue"].address).call() == b"\0" * 32


@pytest.mark.slow(seconds=40)
def test_governance_state_machine(rpc_url: str) -> None:
    """Runs {GovernanceMachine} (bounded: a fresh deployment per example)."""
    GovernanceMachine.rpc_url = rpc_url
    run_state_machine_as_test(
        GovernanceMachine,
        settings=settings(max_examples=6, stateful_step_count=12, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
