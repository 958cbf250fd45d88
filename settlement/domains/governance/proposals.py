"""Governance proposals: propose, approve, execute, cancel, and list what is pending.

A proposal is one Safe transaction (its hash is the proposal's id):

- slow path (every registry change): the governors' Safe calls ``timelock.scheduleBatch`` of the
  registry calls; once M governors approved, anyone executes it (``execute`` step 1: it is
  *scheduled*, with an earliest execution time); after the timelock's delay anyone executes the
  batch (``execute`` step 2: *executed*, and the registry's own events follow);
- fast path (suspension only): the guardian Safe calls ``registry.suspendMember`` itself; k
  approvals and one execution, no delay.

Every step is an outbox row: publishing in the ``GovernanceProposals`` log and ``approveHash`` are
signed by a governor's key, which the service holds only for the demo governors of a dev chain; an
own-key governor approves by signing the Safe transaction's typed data (or by its own
``approveHash``, which the follower picks up). The executions are relayed by the operator's key,
which needs no authority for them: the Safe checks the approvals and the timelock the delay.
The follower moves proposals along from the Safes', the timelock's and the proposal log's events
(``events.py``), including proposals made and approved around the API.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.store.paging import keyset_page
from settlement.chain.contracts import catalogue
from settlement.chain.deploy import PROPOSALS, REGISTRY, TIMELOCK
from settlement.chain.governance import GovernanceParams, approval_signatures, safe_tx_hash, safe_tx_typed_data
from settlement.chain.signing import recover_typed_data
from settlement.core.errors import (
    ConfigurationError,
    GovernanceDelayError,
    InvalidStateError,
    NoCustodialGovernorError,
    NotAGovernorError,
    ProposalNotFoundError,
    ProposalStateError,
    QuorumNotMetError,
    SignatureInvalidError,
    ValidationError,
)
from settlement.domains import members
from settlement.domains.anchoring.digests import digest_changed
from settlement.domains.governance.actions import (
    DESCRIPTION_BYTES_MAX,
    GOVERNANCE,
    GUARDIAN,
    SAFE_NAMES,
    Action,
    Plan,
    registry_function,
    registry_payload,
    timelock_schedule,
)
from settlement.pipeline.outbox import PENDING_STATUSES, enqueue
from settlement.runtime import Runtime
from settlement.store.models import Member, OutboxRow
from settlement.store.models.governance import GovernanceApproval, GovernanceProposal, MemberOnboarding

__all__ = ["APPROVAL_KIND", "PROPOSAL_KIND", "OPEN_STATUSES", "LIST_LIMIT_MAX", "GovernanceFacts", "read_facts",
           "propose", "approve", "approve_custodially", "execute", "get_proposal", "list_proposals", "approvals_of", "typed_data_of",
           "earliest_execution", "drop_onboarding"]

log = logging.getLogger("ledger.governance")

OPEN_STATUSES = ("proposed", "scheduled")
# Record kinds of the journal (settlement.domains.anchoring.kinds): every change of a proposal or an
# approval is digested in its transaction (docs/anchors.md).
PROPOSAL_KIND = "governance.proposal"
APPROVAL_KIND = "governance.approval"
LIST_LIMIT_MAX = 200
NONCE_AHEAD_MAX = 64  # GovernanceProposals.NONCE_AHEAD_MAX: how far past the Safe's nonce one may propose
GAS_APPROVE = 100_000
GAS_PROPOSE_BASE = 200_000
GAS_EXEC_BASE = 300_000
GAS_PER_DATA_BYTE = 64  # calldata and event data of the governance transactions grow with the call
GAS_EXECUTE_BATCH = 800_000


@dataclass(frozen=True)
class GovernanceFacts:
    """The chain's state a governance command decides on, read before the write transaction."""

    chain_id: int
    addresses: dict[str, str]
    params: GovernanceParams
    safe_nonces: dict[str, int]  # governance | guardian -> the Safe's nonce
    thresholds: dict[str, int]  # governance | guardian -> the Safe's threshold (owners may change it)
    now_s: int
    op_timestamps: dict[str, int]  # op id -> TimelockController.getTimestamp (0: unknown, 1: done)


def read_facts(runtime: Runtime, op_ids: tuple[str, ...] = ()) -> GovernanceFacts:
    params = runtime.governance
    if params is None or runtime.manifest is None:
        raise ConfigurationError("no governance is deployed")
    addresses = runtime.manifest.addresses
    nonces, thresholds = {}, {}
    for kind, name in SAFE_NAMES.items():
        (nonces[kind],) = runtime.chain.call(name, addresses[name], "nonce")
        (thresholds[kind],) = runtime.chain.call(name, addresses[name], "getThreshold")
    stamps = {}
    for op_id in op_ids:
        (stamps[op_id],) = runtime.chain.call(TIMELOCK, addresses[TIMELOCK], "getTimestamp", [op_id])
    return GovernanceFacts(chain_id=runtime.chain.chain_id, addresses=addresses, params=params,
                           safe_nonces={k: int(v) for k, v in nonces.items()},
                           thresholds={k: int(v) for k, v in thresholds.items()}, now_s=runtime.chain.chain_time(),
                           op_timestamps={k: int(v) for k, v in stamps.items()})


# -- propose ------------------------------------------------------------------------------------------------


def get_proposal(session: Session, proposal_id: str, *, for_update: bool = False) -> GovernanceProposal:
    p = session.get(GovernanceProposal, proposal_id.lower()) if isinstance(proposal_id, str) and \
        len(proposal_id) == 66 else None
    if p is None:
        raise ProposalNotFoundError(f"no governance proposal {str(proposal_id)[:66]!r}")
    return p


def _member(session: Session, member_id: str | None) -> Member:
    if member_id is None:
        raise ValidationError("this action needs member_id", field="member_id")
    return members.get_member(session, member_id)


def _plan(runtime: Runtime, session: Session, facts: GovernanceFacts, action: Action) -> tuple[Plan, str | None, str | None]:
    """The Safe transaction for ``action``, and the member (id, on-chain id) it is about."""
    a, delay = facts.addresses, facts.params.delay_s
    salt = "0x" + secrets.token_hex(32)
    if action.kind == "onboard":
        onboarding, args = members.prepare_onboarding(
            runtime, session, member_id=action.member_id or "", name=action.name or "", country=action.country or "",
            roles=action.roles, own_account=action.account)
        plan = timelock_schedule(a, [registry_payload("onboardMember", args)], salt, delay)
        return plan, onboarding.member_id, onboarding.onchain_id
    if action.kind in ("cancel", "reject"):
        target = get_proposal(session, action.proposal_id or "")
        if target.status not in OPEN_STATUSES:
            raise ProposalStateError(f"proposal {target.id} is {target.status}", proposal_id=target.id)
        if action.kind == "cancel":
            if target.status != "scheduled" or target.op_id is None:
                raise ProposalStateError(f"only a scheduled proposal can be cancelled; {target.id} is {target.status}",
                                         proposal_id=target.id)
            data = catalogue().function(TIMELOCK, "cancel").encode([target.op_id])
            return Plan(safe=GOVERNANCE, to=a[TIMELOCK], data=data), target.member_id, target.member_onchain_id
        if target.status != "proposed":
            raise ProposalStateError(f"only a proposal not yet executed by its Safe can be rejected; {target.id} is "
                                     f"{target.status}", proposal_id=target.id)
        return Plan(safe=target.safe, to=target.safe_address, data=b""), target.member_id, target.member_onchain_id
    member = _member(session, action.member_id)
    oid = member.onchain_id
    if action.kind == "suspend":
        if member.status != members.STATUS_ACTIVE:
            raise InvalidStateError(f"member {member.id} is not active", member_id=member.id, status=member.status)
        return Plan(safe=GUARDIAN, to=a[REGISTRY], data=registry_payload("suspendMember", [oid])), member.id, oid
    if action.kind == "reactivate":
        if member.status != members.STATUS_SUSPENDED:
            raise InvalidStateError(f"member {member.id} is not suspended", member_id=member.id, status=member.status)
        args: list = [oid]
    elif action.kind in ("grant_role", "revoke_role"):
        role = action.role or ""
        role_hash = members.role_hash(role)
        if action.kind == "revoke_role" and [r for r in member.roles if r != role] == []:
            raise InvalidStateError(f"member {member.id} would be left without roles; suspend it instead",
                                    member_id=member.id)
        args = [oid, role_hash]
    elif action.kind == "set_country":
        args = [oid, members.country_hex(members.validate_country(action.country or ""))]
    else:  # add_account / remove_account
        if not action.account or len(action.account) != 42 or not action.account.startswith("0x"):
            raise ValidationError("account must be a 0x address", field="account")
        args = [oid, action.account]
    payload = registry_payload(registry_function(action.kind), args)
    return timelock_schedule(a, [payload], salt, delay), member.id, oid


def _next_nonce(session: Session, facts: GovernanceFacts, plan: Plan, action: Action) -> int:
    if action.kind == "reject":
        return int(get_proposal(session, action.proposal_id or "").safe_nonce)
    address = facts.addresses[SAFE_NAMES[plan.safe]]
    chain_nonce = facts.safe_nonces[plan.safe]
    highest = session.scalar(select(func.max(GovernanceProposal.safe_nonce)).where(
        GovernanceProposal.safe_address == address, GovernanceProposal.status == "proposed",
        GovernanceProposal.safe_nonce >= chain_nonce))
    nonce = chain_nonce if highest is None else max(chain_nonce, int(highest) + 1)
    if nonce > chain_nonce + NONCE_AHEAD_MAX:
        raise ProposalStateError(f"{nonce - chain_nonce} proposals are waiting on the {plan.safe} Safe; execute or "
                                 f"reject some first (at most {NONCE_AHEAD_MAX})")
    return nonce


def _custodial_governor(runtime: Runtime, params: GovernanceParams, member_id: str | None) -> str | None:
    """A governor key the service holds to publish with: the caller's own governor first."""
    for g in params.governors:
        if g.member_id == member_id and g.address in runtime.governors:
            return g.address
    return next((g.address for g in params.governors if g.address in runtime.governors), None)


def propose(runtime: Runtime, session: Session, facts: GovernanceFacts, action: Action, *, proposed_by: str,
            description: str | None = None) -> GovernanceProposal:
    """Records the proposal (and, for an onboarding, the member in waiting) and, when the service
    holds a governor key (the demo), publishes it in the proposal log."""
    plan, member_id, member_oid = _plan(runtime, session, facts, action)
    nonce = _next_nonce(session, facts, plan, action)
    safe_address = facts.addresses[SAFE_NAMES[plan.safe]]
    pid = safe_tx_hash(facts.chain_id, safe_address, plan.to, plan.data, nonce)
    if session.get(GovernanceProposal, pid) is not None:
        raise ProposalStateError(f"proposal {pid} exists already", proposal_id=pid)
    text = description or f"{action.kind} {member_id or action.proposal_id or ''}".strip()
    if len(text.encode()) > DESCRIPTION_BYTES_MAX:
        raise ValidationError(f"description is longer than {DESCRIPTION_BYTES_MAX} bytes", field="description")
    params = {k: v for k, v in {"name": action.name, "country": action.country, "roles": list(action.roles) or None,
                                "role": action.role, "account": action.account,
                                "proposal_id": action.proposal_id}.items() if v}
    p = GovernanceProposal(id=pid, safe=plan.safe, safe_address=safe_address, safe_nonce=nonce, to=plan.to,
                           data=plan.data, description=text, action=action.kind, member_id=member_id,
                           member_onchain_id=member_oid, params=params, calls=plan.calls, salt=plan.salt,
                           op_id=plan.op_id, delay_s=plan.delay_s, status="proposed", proposed_by=proposed_by)
    session.add(p)
    session.flush()
    digest_changed(session, PROPOSAL_KIND, p)
    if action.kind == "onboard":
        onboarding = session.get(MemberOnboarding, member_oid)
        onboarding.proposal_id = pid
    publisher = _custodial_governor(runtime, facts.params, proposed_by)
    if publisher is not None:
        enqueue(session, kind="governance.propose", contract=PROPOSALS, function="propose",
                args=[safe_address, plan.to, 0, "0x" + plan.data.hex(), nonce, text], signer=publisher,
                gas_limit=GAS_PROPOSE_BASE + GAS_PER_DATA_BYTE * (len(plan.data) + len(text)), aggregate_id=pid)
        p.proposer = publisher
    log.info("governance proposal %s: %s %s on the %s Safe at nonce %d (by %s)", pid, action.kind,
             member_id or action.proposal_id, plan.safe, nonce, proposed_by)
    return p


# -- approve ------------------------------------------------------------------------------------------------


def approvals_of(session: Session, proposal_id: str) -> list[GovernanceApproval]:
    return list(session.scalars(select(GovernanceApproval).where(GovernanceApproval.proposal_id == proposal_id)
                                .order_by(GovernanceApproval.id)))


def typed_data_of(facts: GovernanceFacts, p: GovernanceProposal) -> dict:
    """The Safe transaction as EIP-712 typed data: what an own-key governor signs to approve."""
    return safe_tx_typed_data(facts.chain_id, p.safe_address, p.to, p.data, int(p.safe_nonce))


def approve(runtime: Runtime, session: Session, facts: GovernanceFacts, proposal_id: str, *, governor: str,
            signature: str | None = None, by_member: str | None = None) -> GovernanceApproval:
    """One governor's approval: its signature over the Safe transaction's typed data, or (no
    signature) ``approveHash`` sent with its key, which the service must hold (demo governors).
    ``by_member``: the calling member, which must be the governor's member (None: the service's own
    tooling, e.g. the demo)."""
    p = get_proposal(session, proposal_id, for_update=True)
    if p.status != "proposed":
        raise ProposalStateError(f"proposal {p.id} is {p.status}: approvals are over", proposal_id=p.id,
                                 status=p.status)
    g = facts.params.governor(governor) if isinstance(governor, str) else None
    if g is None:
        raise NotAGovernorError(f"{str(governor)[:42]} is not a governor", governor=str(governor)[:42])
    if by_member is not None and g.member_id != by_member:
        raise NotAGovernorError(f"governor {g.address} belongs to {g.member_id}, not to {by_member}",
                                governor=g.address)
    existing = session.scalar(select(GovernanceApproval).where(GovernanceApproval.proposal_id == p.id,
                                                               GovernanceApproval.governor == g.address))
    if existing is not None and existing.status != "failed":
        return existing  # approving twice is one approval
    if existing is not None:
        digest_changed(session, APPROVAL_KIND, existing.id)  # its last version: a tombstone
        session.delete(existing)
        session.flush()
    if signature is not None:
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
            signer = recover_typed_data(typed_data_of(facts, p), raw)
        except ValueError as exc:
            raise SignatureInvalidError(f"the approval signature does not recover: {exc}", field="signature") from None
        if signer != g.address or raw[64] not in (27, 28):
            raise SignatureInvalidError(f"the signature recovers to {signer}, not to governor {g.address} (or is not "
                                        "over this proposal's Safe transaction)", field="signature")
        approval = GovernanceApproval(proposal_id=p.id, governor=g.address, signature=raw, status="approved")
    else:
        if g.address not in runtime.governors:
            raise NoCustodialGovernorError(f"the service holds no key of governor {g.address}: sign the proposal's "
                                           "typed data with it and send the signature", governor=g.address)
        row = enqueue(session, kind="governance.approve", contract=SAFE_NAMES[p.safe], function="approveHash",
                      args=[p.id], signer=g.address, gas_limit=GAS_APPROVE, aggregate_id=p.id)
        approval = GovernanceApproval(proposal_id=p.id, governor=g.address, status="pending", outbox_id=row.id)
    session.add(approval)
    session.flush()
    digest_changed(session, APPROVAL_KIND, approval)
    log.info("governance proposal %s approved by %s (%s)", p.id, g.address,
             "signature" if signature is not None else "approveHash")
    return approval


def approve_custodially(runtime: Runtime, session: Session, facts: GovernanceFacts, proposal_id: str,
                        count: int | None = None) -> list[GovernanceApproval]:
    """Approvals by the governor keys the service holds (demo only), up to the Safe's threshold (or
    ``count``), skipping governors that approved already."""
    p = get_proposal(session, proposal_id)
    wanted = facts.thresholds[p.safe] if count is None else count
    done = {a.governor for a in approvals_of(session, p.id) if a.status != "failed"}
    out = []
    for g in facts.params.governors:
        if len(done) >= wanted:
            break
        if g.address in runtime.governors and g.address not in done:
            out.append(approve(runtime, session, facts, p.id, governor=g.address))
            done.add(g.address)
    return out


# -- execute ------------------------------------------------------------------------------------------------


def _in_flight(session: Session, outbox_id: int | None) -> bool:
    if outbox_id is None:
        return False
    return session.scalar(select(OutboxRow.status).where(OutboxRow.id == outbox_id)) in PENDING_STATUSES


def execute(runtime: Runtime, session: Session, facts: GovernanceFacts, proposal_id: str) -> GovernanceProposal:
    """The next step of an approved proposal, relayed by the operator's key: the Safe transaction
    (once the threshold approved, at the Safe's current nonce), or, for a scheduled timelock
    operation, the batch itself (once the delay has passed). Raises QuorumNotMetError,
    GovernanceDelayError (with ``earliest_execution_at``), ProposalStateError."""
    p = get_proposal(session, proposal_id, for_update=True)
    if p.status == "proposed":
        if _in_flight(session, p.schedule_outbox_id):
            raise ProposalStateError(f"proposal {p.id}'s Safe transaction is being sent", proposal_id=p.id)
        nonce = facts.safe_nonces[p.safe]
        if int(p.safe_nonce) < nonce:
            raise ProposalStateError(f"proposal {p.id}'s nonce {p.safe_nonce} was used by another Safe transaction; "
                                     "propose it again", proposal_id=p.id, status="stale")
        if int(p.safe_nonce) > nonce:
            raise ProposalStateError(f"the {p.safe} Safe executes in nonce order: the proposal at nonce {nonce} comes "
                                     "first (execute or reject it)", proposal_id=p.id, safe_nonce=nonce)
        approved = [(a.governor, a.signature) for a in approvals_of(session, p.id) if a.status == "approved"]
        threshold = facts.thresholds[p.safe]
        if len(approved) < threshold:
            raise QuorumNotMetError(f"{len(approved)} of the {threshold} approvals needed", proposal_id=p.id,
                                    approvals=len(approved), threshold=threshold)
        signatures = approval_signatures(approved[:threshold] if len(approved) > threshold else approved)
        data = "0x" + p.data.hex()
        zero = "0x" + "00" * 20
        row = enqueue(session, kind="governance.schedule" if p.op_id else "governance.execute",
                      contract=SAFE_NAMES[p.safe], function="execTransaction",
                      args=[p.to, 0, data, 0, 0, 0, 0, zero, zero, "0x" + signatures.hex()],
                      signer=runtime.operator.address, gas_limit=GAS_EXEC_BASE + GAS_PER_DATA_BYTE * len(p.data),
                      aggregate_id=p.id)
        p.schedule_outbox_id, p.error = row.id, None
        digest_changed(session, PROPOSAL_KIND, p)
        return p
    if p.status == "scheduled":
        if _in_flight(session, p.execute_outbox_id):
            raise ProposalStateError(f"proposal {p.id}'s execution is being sent", proposal_id=p.id)
        eta = facts.op_timestamps.get(p.op_id or "", p.eta_s or 0)
        if eta <= 1:
            raise ProposalStateError(f"the timelock has no pending operation {p.op_id}", proposal_id=p.id)
        if facts.now_s < eta:
            raise GovernanceDelayError(f"the governance delay runs until {eta} (chain time {facts.now_s})",
                                       proposal_id=p.id, earliest_execution_at=eta, chain_time=facts.now_s)
        targets = [c[0] for c in p.calls]
        values = [int(c[1]) for c in p.calls]
        payloads = [c[2] for c in p.calls]
        row = enqueue(session, kind="governance.execute", contract=TIMELOCK, function="executeBatch",
                      args=[targets, values, payloads, "0x" + "00" * 32, p.salt], signer=runtime.operator.address,
                      gas_limit=GAS_EXECUTE_BATCH, aggregate_id=p.id)
        p.execute_outbox_id, p.error = row.id, None
        digest_changed(session, PROPOSAL_KIND, p)
        return p
    raise ProposalStateError(f"proposal {p.id} is {p.status}", proposal_id=p.id, status=p.status)


# -- reading ------------------------------------------------------------------------------------------------


def list_proposals(session: Session, *, pending: bool = False, member_id: str | None = None,
                   limit: int = 50, cursor: str | None = None) -> tuple[list[GovernanceProposal], str | None]:
    """A page, newest first, and the next page's cursor (``store.paging``); ``pending``: proposed
    or scheduled only; ``member_id``: about that member."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be within 1..{LIST_LIMIT_MAX}", field="limit")
    q = select(GovernanceProposal)
    if pending:
        q = q.where(GovernanceProposal.status.in_(OPEN_STATUSES))
    if member_id is not None:
        q = q.where(GovernanceProposal.member_id == member_id)
    return keyset_page(session, q, GovernanceProposal.created_at, GovernanceProposal.id, limit, cursor,
                       limit_max=LIST_LIMIT_MAX)


def earliest_execution(p: GovernanceProposal, facts: GovernanceFacts | None = None) -> int | None:
    """Unix seconds from which the proposal's call can run: the timelock's timestamp once it is
    scheduled; for a guardian proposal, now (no delay); None while the delay has not started."""
    if p.status == "scheduled":
        if facts is not None and p.op_id in facts.op_timestamps and facts.op_timestamps[p.op_id] > 1:
            return facts.op_timestamps[p.op_id]
        return p.eta_s
    if p.status == "proposed" and p.safe == GUARDIAN:
        return int(p.created_at.timestamp())
    return None


def drop_onboarding(session: Session, p: GovernanceProposal) -> None:
    """An onboarding whose proposal will never execute frees its member id."""
    if p.action == "onboard" and p.member_onchain_id:
        waiting = session.get(MemberOnboarding, p.member_onchain_id)
        if waiting is not None and waiting.proposal_id == p.id and waiting.status == "proposed":
            waiting.status = "dropped"
