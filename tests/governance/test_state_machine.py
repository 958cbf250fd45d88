"""A hypothesis state machine over governance and membership, driven through the service: random
proposals (suspend, reactivate, grant and revoke roles, onboard), approvals by random governors,
executions at random times and clock moves, in any order.

Invariants after every step:

- the registry on chain equals a model that applies a decision only when the service reports it
  executed, so nothing reaches the registry without a proposal that executed;
- every executed proposal had at least its Safe's threshold of approvals, and a slow-path one ran
  no earlier than its scheduling plus the timelock's delay (read from the chain's blocks);
- the service's mirror of every member equals the registry, after the follower ran;
- a refused execution is refused for a reason the model predicts (quorum, delay, nonce order).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
import pytest

from settlement.core.errors import (
    DuplicateError,
    GovernanceDelayError,
    InvalidStateError,
    ProposalStateError,
    QuorumNotMetError,
    UnknownMemberError,
)
from settlement.domains import governance as gov
from settlement.domains import members as members_svc
from settlement.store.models import Member
from settlement.store.models.governance import GovernanceApproval, GovernanceProposal
from tests.api.support import build_runtime, onboard_direct
from tests.conftest import start_anvil
from tests.governance.support import drive, seal, warp

MEMBERS = ("m1", "m2", "m3")
ROLES = ("finance", "buyer", "auditor")
NODE = None


def node_url() -> str:
    global NODE
    if NODE is None:
        NODE = start_anvil()
    return NODE.rpc_url


def teardown_module() -> None:
    if NODE is not None:
        NODE.stop()


class GovernanceMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="gov-sm-"))
        self.rt = build_runtime(self.tmp / "home", f"sqlite:///{self.tmp / 'ledger.db'}", node_url())
        onboard_direct(self.rt, "ops", ["operator"])
        for m in MEMBERS[:2]:
            onboard_direct(self.rt, m, ["finance"])
        seal(self.rt)
        self.params = self.rt.governance
        # The model: what the registry must say, changed only by executed proposals.
        self.model = {m: ("active", {"finance"}) for m in MEMBERS[:2]}
        self.proposals: list[tuple[str, gov.Action]] = []

    def teardown(self) -> None:
        if hasattr(self, "rt"):
            self.rt.db.dispose()
        if hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- rules ---------------------------------------------------------------------------------------

    @rule(kind=st.sampled_from(["suspend", "reactivate", "grant_role", "revoke_role", "onboard"]),
          member=st.sampled_from(MEMBERS), role=st.sampled_from(ROLES))
    def propose(self, kind: str, member: str, role: str) -> None:
        action = gov.Action(kind, member_id=member, role=role if "role" in kind else None,
                            name=member if kind == "onboard" else None, country="SG" if kind == "onboard" else None,
                            roles=("finance",) if kind == "onboard" else ())
        try:
            with self.rt.db.transaction() as s:
                p = gov.propose(self.rt, s, gov.read_facts(self.rt), action, proposed_by="ops")
                self.proposals.append((p.id, action))
        except (InvalidStateError, ProposalStateError, DuplicateError, UnknownMemberError) as exc:
            self._expect_refusal(action, exc)
        drive(self.rt)

    @rule(data=st.data(), governors=st.permutations([0, 1, 2]), count=st.integers(1, 3))
    def approve(self, data: st.DataObject, governors: list[int], count: int) -> None:
        """``count`` governors approve one proposal (often its threshold: decisions are reached)."""
        if not self.proposals:
            return
        self._approve(data.draw(st.sampled_from(self.proposals))[0], governors[:count])

    def _approve(self, pid: str, governors: list[int]) -> None:
        facts = gov.read_facts(self.rt)
        for governor in governors:
            try:
                with self.rt.db.transaction() as s:
                    gov.approve(self.rt, s, facts, pid, governor=self.params.governors[governor].address)
            except ProposalStateError:
                with self.rt.db.read() as s:
                    assert s.get(GovernanceProposal, pid).status != "proposed"
        drive(self.rt)

    @rule(data=st.data())
    def reject(self, data: st.DataObject) -> None:
        """Unblock a Safe: an empty transaction at a waiting proposal's nonce, decided like any other."""
        if not self.proposals:
            return
        pid, _action = data.draw(st.sampled_from(self.proposals))
        try:
            with self.rt.db.transaction() as s:
                r = gov.propose(self.rt, s, gov.read_facts(self.rt), gov.Action("reject", proposal_id=pid),
                                proposed_by="ops")
                self.proposals.append((r.id, gov.Action("reject", proposal_id=pid)))
        except ProposalStateError:
            pass
        drive(self.rt)

    @rule(data=st.data())
    def execute(self, data: st.DataObject) -> None:
        if not self.proposals:
            return
        self._execute(*data.draw(st.sampled_from(self.proposals)))

    def _execute(self, pid: str, action: gov.Action) -> None:
        with self.rt.db.read() as s:
            before = s.get(GovernanceProposal, pid)
            status, op_id = before.status, before.op_id
            approved = len([a for a in gov.approvals_of(s, pid) if a.status == "approved"])
        facts = gov.read_facts(self.rt, (op_id,) if op_id else ())
        try:
            with self.rt.db.transaction() as s:
                gov.execute(self.rt, s, facts, pid)
        except QuorumNotMetError:
            event("refused: quorum")
            assert status == "proposed" and approved < facts.thresholds[before.safe]
            return
        except GovernanceDelayError:
            event("refused: delay")
            assert status == "scheduled" and facts.now_s < facts.op_timestamps[op_id]
            return
        except ProposalStateError as exc:
            event(f"refused: {status} proposal out of turn or over")
            # Over already, or not its Safe's turn (nonce order), or a timelock op that is gone.
            assert status in ("executed", "cancelled", "stale", "failed") \
                or int(before.safe_nonce) != facts.safe_nonces[before.safe] \
                or (status == "scheduled" and facts.op_timestamps.get(op_id, 0) <= 1), (status, before.safe_nonce)
            return
        drive(self.rt)
        with self.rt.db.read() as s:
            after = s.get(GovernanceProposal, pid)
            if after.status == "executed" and status != "executed":
                event(f"executed {action.kind}")
                self._apply(action)

    @rule(data=st.data())
    def decide(self, data: st.DataObject) -> None:
        """A waiting proposal taken all the way, as the governors would: every governor approves,
        it is executed, the delay passes, it is executed again (each step may be refused)."""
        if not self.proposals:
            return
        pid, action = data.draw(st.sampled_from(self.proposals))
        self._approve(pid, [0, 1, 2])
        self._execute(pid, action)
        self.wait(self.params.delay_s + 1)
        self._execute(pid, action)

    @rule(seconds=st.sampled_from([1, 15, 31, 120]))
    def wait(self, seconds: int) -> None:
        warp(self.rt, seconds)

    # -- the model -------------------------------------------------------------------------------------

    def _apply(self, action: gov.Action) -> None:
        if action.kind == "reject":
            return  # an empty Safe transaction: the registry does not change
        m = action.member_id
        if action.kind == "onboard":
            self.model[m] = ("active", {"finance"})
            return
        status, roles = self.model[m]
        if action.kind == "suspend":
            self.model[m] = ("suspended", roles)
        elif action.kind == "reactivate":
            self.model[m] = ("active", roles)
        elif action.kind == "grant_role":
            self.model[m] = (status, roles | {action.role})
        elif action.kind == "revoke_role":
            self.model[m] = (status, roles - {action.role})

    def _expect_refusal(self, action: gov.Action, exc: Exception) -> None:
        """A proposal the service refused up front must be one the model says is impossible."""
        m = action.member_id
        if action.kind == "onboard":
            return  # member exists, or is proposed already: duplicates
        with self.rt.db.read() as s:
            known = s.get(Member, m)
        if known is None:
            return
        assert action.kind in ("suspend", "reactivate", "revoke_role"), exc

    # -- invariants ------------------------------------------------------------------------------------

    @invariant()
    def registry_equals_model_and_mirror(self) -> None:
        if not hasattr(self, "rt"):
            return
        for m in MEMBERS:
            chain = members_svc.read_onchain_member(self.rt, members_svc.onchain_id(m))
            if m not in self.model:
                assert chain.status == "none", (m, chain)
                continue
            status, roles = self.model[m]
            assert (chain.status, set(chain.roles)) == (status, roles), (m, chain, self.model[m])
            with self.rt.db.read() as s:
                mirror = s.get(Member, m)
                assert (mirror.status, set(mirror.roles)) == (status, roles), (m, mirror.status, mirror.roles)

    @invariant()
    def executed_means_quorum_and_delay(self) -> None:
        if not hasattr(self, "rt"):
            return
        with self.rt.db.read() as s:
            for p in s.query(GovernanceProposal).filter(GovernanceProposal.status == "executed"):
                approvals = s.query(GovernanceApproval).filter(GovernanceApproval.proposal_id == p.id,
                                                               GovernanceApproval.status == "approved").count()
                threshold = self.params.threshold if p.safe == "governance" else self.params.guardian_threshold
                assert approvals >= threshold, (p.id, approvals)
                if p.op_id:
                    executed_at = self.rt.chain.get_block(int(p.executed_block))["timestamp"]
                    assert p.eta_s is not None and executed_at >= p.eta_s, (p.id, executed_at, p.eta_s)


GovernanceMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=30, deadline=None,
                                               suppress_health_check=[HealthCheck.too_slow])
TestGovernanceMachine = GovernanceMachine.TestCase
TestGovernanceMachine.pytestmark = [pytest.mark.slow(seconds=40)]  # run first (make test is parallel)
