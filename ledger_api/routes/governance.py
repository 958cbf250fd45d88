"""Consortium governance: propose, approve, execute, and list pending actions with their earliest
execution time.

Who may do what over the API (the chain enforces the rest: quorum, delay, Safe ownership):

- any member: read the governance set-up; list the proposals *about itself* (its pending
  suspension, reinstatement, role or account change);
- the operator and the governors' members: propose, list every proposal, execute an approved one
  (execution is open on chain; the service relays it with the operator's key);
- a governor's member: approve as that governor (its own signature over the proposal's typed
  data, or, for the demo governors only, the key the service holds).

Commands read the chain first and write in one short transaction afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy.orm import Session

from ledger_api.conventions import LOCATION, CursorQuery, IdempotencyKey, idempotent
from ledger_api.deps import CurrentMember, Principal, RuntimeDep
from ledger_api.schemas import Problem
from ledger_api.schemas.governance import (
    ApprovalCreate,
    ApprovalPublic,
    CallPublic,
    GovernancePublic,
    GovernorPublic,
    ProposalAccepted,
    ProposalCreate,
    ProposalPublic,
    ProposalsPublic,
    TypedDataPublic,
)
from settlement.chain.describe import describe_call, describe_typed_data
from settlement.core.errors import ConfigurationError, NotAGovernorError, ProposalNotFoundError
from settlement.domains import governance as gov
from settlement.runtime import Runtime
from settlement.store.models.governance import GovernanceProposal

router = APIRouter(prefix="/v1/governance", tags=["governance"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem},
                              409: {"model": Problem}, 422: {"model": Problem}})

ProposalIdPath = Annotated[str, Path(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")]


# -- who -----------------------------------------------------------------------------------------------


def _params(runtime: Runtime):  # type: ignore[no-untyped-def]
    params = runtime.governance
    if params is None:
        raise ConfigurationError("no governance is deployed")
    return params


def is_governor_member(runtime: Runtime, member: Principal) -> bool:
    return bool(_params(runtime).governors_of(member.member_id))


def sees_all(runtime: Runtime, member: Principal) -> bool:
    return "operator" in member.roles or is_governor_member(runtime, member)


def require_proposer(runtime: Runtime, member: Principal) -> None:
    if not sees_all(runtime, member):
        raise NotAGovernorError("only the operator or a governor's member may propose or execute governance actions",
                                member_id=member.member_id)


# -- mapping -------------------------------------------------------------------------------------------


def _names(runtime: Runtime, session: Session, p: GovernanceProposal | None = None) -> dict[str, str]:
    names = {address.lower(): name for name, address in (runtime.manifest.addresses.items()
                                                         if runtime.manifest else [])}
    if p is not None and p.member_onchain_id and p.member_id:
        names[p.member_onchain_id.lower()] = f"member {p.member_id}"
    return names


def _stamp(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def proposal_public(runtime: Runtime, session: Session, p: GovernanceProposal,
                    facts: gov.GovernanceFacts | None = None) -> ProposalPublic:
    params = runtime.governance
    names = _names(runtime, session, p)
    owners = {g.address: g.member_id for g in params.governors} if params else {}
    approvals = [ApprovalPublic(governor=a.governor, governor_member_id=owners.get(a.governor),
                                method="signature" if a.signature is not None else "on_chain", status=a.status,
                                tx_hash=a.tx_hash, created_at=a.created_at)
                 for a in gov.approvals_of(session, p.id)]
    needed = None
    if facts is not None:
        needed = facts.thresholds.get(p.safe)
    elif params is not None:
        needed = params.threshold if p.safe == gov.GOVERNANCE else params.guardian_threshold
    calls = [CallPublic(target=c[0], value=int(c[1]), data=c[2], summary=describe_call(bytes.fromhex(c[2][2:]), names))
             for c in p.calls or []]
    summary = describe_call(p.data, names) if p.data else ["an empty Safe transaction (rejects the proposal at its "
                                                          "nonce)"]
    return ProposalPublic(
        id=p.id, safe=p.safe, safe_address=p.safe_address, safe_nonce=int(p.safe_nonce), action=p.action,
        member_id=p.member_id, description=p.description, params=p.params or {}, status=p.status,
        approvals=approvals, approvals_needed=needed, delay_s=p.delay_s,
        earliest_execution_at=_stamp(gov.earliest_execution(p, facts)), op_id=p.op_id, calls=calls,
        summary=summary[:200], proposed_by=p.proposed_by, proposer=p.proposer,
        published_tx_hash=p.published_tx_hash, scheduled_tx_hash=p.scheduled_tx_hash,
        executed_tx_hash=p.executed_tx_hash, error=p.error, created_at=p.created_at, updated_at=p.updated_at)


def read_proposal(runtime: Runtime, proposal_id: str) -> ProposalPublic:
    """One proposal, with the timelock's own earliest execution time when it is scheduled."""
    with runtime.db.read() as session:
        op_id = gov.get_proposal(session, proposal_id).op_id
    facts = gov.read_facts(runtime, (op_id,) if op_id else ())
    with runtime.db.read() as session:
        return proposal_public(runtime, session, gov.get_proposal(session, proposal_id), facts)


def _visible(runtime: Runtime, member: Principal, p: GovernanceProposal) -> GovernanceProposal:
    if sees_all(runtime, member) or (p.member_id is not None and p.member_id == member.member_id):
        return p
    raise ProposalNotFoundError(f"no governance proposal {p.id}")  # not about you: as if absent


# -- routes --------------------------------------------------------------------------------------------


@router.get("", response_model=GovernancePublic, summary="The consortium's governance: Safes, timelock, governors")
def governance(runtime: RuntimeDep, member: CurrentMember) -> GovernancePublic:
    params = _params(runtime)
    a = runtime.manifest.addresses  # type: ignore[union-attr]
    return GovernancePublic(
        governance_safe=a["GovernanceSafe"], guardian_safe=a["GuardianSafe"], timelock=a["ConsortiumTimelock"],
        proposal_log=a["GovernanceProposals"], forwarder=a["LedgerForwarder"], threshold=params.threshold,
        guardian_threshold=params.guardian_threshold, delay_s=params.delay_s,
        governors=[GovernorPublic(member_id=g.member_id, address=g.address, custodial=g.address in runtime.governors)
                   for g in params.governors],
        bootstrap_sealed=not runtime.bootstrap_open(), demo=params.demo)


def proposal_at(body: dict) -> str:
    """A proposal answer's ``Location``."""
    return f"/v1/governance/proposals/{body['id']}"


@router.post("/proposals", status_code=status.HTTP_201_CREATED, response_model=ProposalPublic,
             responses={201: {"headers": LOCATION}},
             summary="Propose a governance action (operator or a governor's member): 201 with the proposal (at "
                     "`Location`); nothing changes until its quorum (and delay) and its execution")
def create_proposal(body: ProposalCreate, runtime: RuntimeDep, member: CurrentMember,
                    idempotency_key: IdempotencyKey = None) -> ProposalPublic:
    require_proposer(runtime, member)
    action = gov.Action(body.action, member_id=body.member_id, name=body.name, country=body.country,
                        roles=tuple(body.roles), role=body.role, account=body.account, proposal_id=body.proposal_id)
    facts: list[gov.GovernanceFacts] = []

    def work(session: Session) -> tuple[int, dict]:
        p = gov.propose(runtime, session, facts[0], action, proposed_by=member.member_id, description=body.description)
        return status.HTTP_201_CREATED, proposal_public(runtime, session, p, facts[0]).model_dump(mode="json")

    return idempotent(runtime, member.member_id, idempotency_key,  # type: ignore[return-value]
                      "POST /v1/governance/proposals", body.model_dump(mode="json"), work,
                      before=lambda: facts.append(gov.read_facts(runtime)), location=proposal_at)


def propose(runtime: Runtime, member: Principal, action: gov.Action, description: str | None = None) -> ProposalPublic:
    facts = gov.read_facts(runtime)
    with runtime.db.transaction() as session:
        p = gov.propose(runtime, session, facts, action, proposed_by=member.member_id, description=description)
        return proposal_public(runtime, session, p, facts)


@router.get("/proposals", response_model=ProposalsPublic,
            summary="Proposals, newest first (pending: proposed or scheduled); a member sees those about itself")
def list_proposals(runtime: RuntimeDep, member: CurrentMember,
                   pending: Annotated[bool, Query()] = False,
                   member_id: Annotated[str | None, Query(alias="member", max_length=64)] = None,
                   limit: Annotated[int, Query(ge=1, le=gov.LIST_LIMIT_MAX)] = 50,
                   cursor: CursorQuery = None) -> ProposalsPublic:
    scope = member_id if sees_all(runtime, member) else member.member_id
    with runtime.db.read() as session:  # a read session: the node calls below hold no write lock
        rows, next_cursor = gov.list_proposals(session, pending=pending, member_id=scope, limit=limit,
                                               cursor=cursor)
        facts = gov.read_facts(runtime, tuple(p.op_id for p in rows if p.status == "scheduled" and p.op_id))
        data = [proposal_public(runtime, session, p, facts) for p in rows]
    return ProposalsPublic(data=data, count=len(data), next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/proposals/{proposal_id}", response_model=ProposalPublic, summary="One proposal")
def get_proposal(proposal_id: ProposalIdPath, runtime: RuntimeDep, member: CurrentMember) -> ProposalPublic:
    with runtime.db.read() as session:
        _visible(runtime, member, gov.get_proposal(session, proposal_id))
    return read_proposal(runtime, proposal_id)


@router.get("/proposals/{proposal_id}/typed-data", response_model=TypedDataPublic,
            summary="The Safe transaction as EIP-712 typed data: what a governor signs to approve")
def typed_data(proposal_id: ProposalIdPath, runtime: RuntimeDep, member: CurrentMember) -> TypedDataPublic:
    require_proposer(runtime, member)
    facts = gov.read_facts(runtime)
    with runtime.db.read() as session:
        p = gov.get_proposal(session, proposal_id)
        typed = gov.typed_data_of(facts, p)
        names = _names(runtime, session, p)
    return TypedDataPublic(typed_data=typed, summary=describe_typed_data(typed, names)[:200])


@router.post("/proposals/{proposal_id}/approvals", status_code=status.HTTP_202_ACCEPTED,
             response_model=ProposalAccepted, summary="Approve as one of your governors")
def approve(proposal_id: ProposalIdPath, body: ApprovalCreate, runtime: RuntimeDep,
            member: CurrentMember) -> ProposalAccepted:
    facts = gov.read_facts(runtime)
    with runtime.db.transaction() as session:
        gov.approve(runtime, session, facts, proposal_id, governor=body.governor, signature=body.signature,
                    by_member=member.member_id)
        return ProposalAccepted(proposal=proposal_public(runtime, session, gov.get_proposal(session, proposal_id),
                                                         facts))


@router.post("/proposals/{proposal_id}/execute", status_code=status.HTTP_202_ACCEPTED,
             response_model=ProposalAccepted,
             summary="Execute the next step: the Safe transaction once approved, the timelock batch once the delay "
                     "has passed")
def execute(proposal_id: ProposalIdPath, runtime: RuntimeDep, member: CurrentMember) -> ProposalAccepted:
    require_proposer(runtime, member)
    with runtime.db.read() as session:
        op_id = gov.get_proposal(session, proposal_id).op_id
    facts = gov.read_facts(runtime, (op_id,) if op_id else ())
    with runtime.db.transaction() as session:
        p = gov.execute(runtime, session, facts, proposal_id)
        return ProposalAccepted(proposal=proposal_public(runtime, session, p, facts))


__all__ = ["router", "proposal_public", "propose", "read_proposal", "sees_all", "require_proposer"]
