"""Members: onboarding (the operator in the bootstrap window; a governance proposal after the
seal), governed changes (suspension on the guardians' fast path; reinstatement and roles through
governance), and ``/v1/me`` for any member. A member's own keys: ``routes/keys.py``."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ledger_api.conventions import LOCATION, IdempotencyKey, idempotent, replayed_headers
from ledger_api.deps import CurrentMember, DbSession, OperatorMember, Principal, RuntimeDep
from ledger_api.routes.governance import proposal_at, proposal_public, propose, require_proposer
from ledger_api.schemas import Problem
from ledger_api.schemas.governance import ProposalAccepted
from ledger_api.schemas.members import (
    ApiKeyIssued,
    Me,
    MemberCreate,
    MemberCreated,
    MemberPublic,
    MembersPublic,
    RoleChange,
)
from settlement.core.errors import ForbiddenError, ValidationError
from settlement.domains import governance
from settlement.domains import members as svc
from settlement.runtime import Runtime
from settlement.store.models import Member

router = APIRouter(prefix="/v1", tags=["members"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}})

MemberIdPath = Annotated[str, Path(min_length=1, max_length=svc.MEMBER_ID_LEN_MAX,
                                   pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")]


def member_public(session: Session, member: Member) -> MemberPublic:
    return MemberPublic(id=member.id, onchain_id=member.onchain_id, name=member.name, country=member.country,
                        roles=list(member.roles), status=member.status,
                        accounts=svc.member_accounts(session, member.id),
                        created_at=member.created_at, updated_at=member.updated_at)


def _onboarding_at(body: dict) -> str:
    """An onboarding answer's ``Location``: the member's (201), or the proposal's that decides it
    (202). From the body, not the branch: a key first used in the bootstrap window replays its 201
    after the seal."""
    if "proposal" in body:
        return proposal_at(body["proposal"])
    return f"/v1/members/{body['member']['id']}"


def _forget(request: Request, member_id: str) -> None:
    request.app.state.registry_view.invalidate(member_id)


@router.post("/members", status_code=status.HTTP_201_CREATED, response_model=MemberCreated | ProposalAccepted,
             summary="Onboard a member: in the bootstrap window at once (operator; 201 with the member and its "
                     "first API key, at `Location`), after the seal as a governance proposal (202 with the "
                     "proposal, at `Location`; the member is created only if and when it executes)",
             responses={201: {"headers": LOCATION}, 202: {"model": ProposalAccepted, "headers": LOCATION},
                        409: {"model": Problem}})
def create_member(body: MemberCreate, runtime: RuntimeDep, member: CurrentMember,
                  idempotency_key: IdempotencyKey = None) -> MemberCreated | ProposalAccepted:
    operation, request = "POST /v1/members", body.model_dump(mode="json")
    if not runtime.bootstrap_open():
        require_proposer(runtime, member)
        action = governance.Action("onboard", member_id=body.id, name=body.name, country=body.country,
                                   roles=tuple(body.roles), account=body.account)
        facts: list[governance.GovernanceFacts] = []

        def proposal(session: Session) -> tuple[int, dict]:
            p = governance.propose(runtime, session, facts[0], action, proposed_by=member.member_id)
            made = ProposalAccepted(proposal=proposal_public(runtime, session, p, facts[0]))
            return status.HTTP_202_ACCEPTED, made.model_dump(mode="json")

        # 202, not 201: no member exists yet (nor may ever: the governors decide); the proposal that
        # decides it is what to watch, at Location (docs/api.md, "Creates").
        return idempotent(runtime, member.member_id, idempotency_key, operation, request,  # type: ignore[return-value]
                          proposal, before=lambda: facts.append(governance.read_facts(runtime)),
                          location=_onboarding_at)
    if "operator" not in member.roles:
        raise ForbiddenError("founding members are onboarded by the operator", required_roles=["operator"])
    if body.account is not None:
        raise ValidationError("a founding member gets a custodial account; it adds its own key afterwards with "
                              "POST /v1/members/{id}/keys", field="account")
    shown: list[str] = []

    def onboard(session: Session) -> tuple[int, dict]:
        done = svc.onboard(runtime, session, member_id=body.id, name=body.name, country=body.country,
                           roles=body.roles, key_label=body.key_label)
        key = done.api_key
        shown.append(key.plaintext)
        # What is stored for a replay has no key: it is shown once.
        return status.HTTP_201_CREATED, MemberCreated(
            member=member_public(session, done.member),
            api_key=ApiKeyIssued(prefix=key.prefix, key=None, member_id=key.member_id, label=key.label,
                                 created_at=key.created_at),
            outbox_id=done.outbox_id).model_dump(mode="json")

    answer = idempotent(runtime, member.member_id, idempotency_key, operation, request, onboard,
                        headers={"Cache-Control": "no-store"}, location=_onboarding_at)
    if shown:
        payload = json.loads(answer.body)
        answer = JSONResponse({**payload, "api_key": {**payload["api_key"], "key": shown[0]}},
                              status_code=answer.status_code,
                              headers={"Cache-Control": "no-store", "Location": _onboarding_at(payload),
                                       **replayed_headers(False)})
    return answer  # type: ignore[return-value]


@router.get("/members", response_model=MembersPublic, summary="List members (operator)")
def list_members(session: DbSession, _op: OperatorMember,
                 limit: Annotated[int, Query(ge=1, le=svc.MEMBER_LIST_LIMIT_MAX)] = 100,
                 cursor: Annotated[str | None, Query(max_length=svc.MEMBER_ID_LEN_MAX,
                                                     description="next_cursor of the previous page")] = None,
                 after: Annotated[str | None, Query(max_length=svc.MEMBER_ID_LEN_MAX, deprecated=True,
                                                    description="the former name of cursor")] = None) -> MembersPublic:
    rows = svc.list_members(session, limit=limit, after=cursor or after)
    data = [member_public(session, m) for m in rows]
    # has_more is exact: a full page is followed by a one-row look-ahead
    more = len(rows) == limit and bool(svc.list_members(session, limit=1, after=rows[-1].id))
    return MembersPublic(data=data, count=len(data), next_cursor=rows[-1].id if more else None, has_more=more)


@router.get("/members/{member_id}", response_model=MemberPublic, summary="One member (operator)",
            responses={404: {"model": Problem}})
def get_member(member_id: MemberIdPath, session: DbSession, _op: OperatorMember) -> MemberPublic:
    return member_public(session, svc.get_member(session, member_id))


def _governed(request: Request, runtime: Runtime, member: Principal, action: governance.Action) -> ProposalAccepted:
    require_proposer(runtime, member)
    with runtime.db.read() as session:
        svc.get_member(session, action.member_id or "")
    accepted = ProposalAccepted(proposal=propose(runtime, member, action))
    _forget(request, action.member_id or "")
    return accepted


@router.post("/members/{member_id}/suspend", status_code=status.HTTP_202_ACCEPTED, response_model=ProposalAccepted,
             summary="Propose a suspension: the guardians' fast path (k approvals, no delay)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def suspend(member_id: MemberIdPath, request: Request, runtime: RuntimeDep, member: CurrentMember) -> ProposalAccepted:
    return _governed(request, runtime, member, governance.Action("suspend", member_id=member_id))


@router.post("/members/{member_id}/reactivate", status_code=status.HTTP_202_ACCEPTED, response_model=ProposalAccepted,
             summary="Propose a reinstatement: governance (M approvals and the delay; no fast path)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def reactivate(member_id: MemberIdPath, request: Request, runtime: RuntimeDep,
               member: CurrentMember) -> ProposalAccepted:
    return _governed(request, runtime, member, governance.Action("reactivate", member_id=member_id))


@router.post("/members/{member_id}/roles", status_code=status.HTTP_202_ACCEPTED, response_model=ProposalAccepted,
             summary="Propose granting or revoking a member role: governance (M approvals and the delay)",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def change_role(member_id: MemberIdPath, body: RoleChange, request: Request, runtime: RuntimeDep,
                member: CurrentMember) -> ProposalAccepted:
    kind = "grant_role" if body.action == "grant" else "revoke_role"
    return _governed(request, runtime, member, governance.Action(kind, member_id=member_id, role=body.role))


@router.get("/me", response_model=Me, summary="The calling member, with its effective roles")
def me(session: DbSession, member: CurrentMember) -> Me:
    row = svc.get_member(session, member.member_id)
    return Me(member=member_public(session, row), effective_roles=sorted(member.roles),
              effective_status=member.status, roles_source=member.source, key_prefix=member.key_prefix)
