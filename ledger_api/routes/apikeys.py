"""API keys: issue and rotate (operator), list (operator), revoke (operator, or a member its own)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from ledger_api.conventions import CursorQuery, IdempotencyKey, idempotent, replayed_headers
from ledger_api.deps import CurrentMember, DbSession, OperatorMember, RuntimeDep
from ledger_api.routes.members import MemberIdPath
from ledger_api.schemas import Problem
from ledger_api.schemas.members import ApiKeyCreate, ApiKeyIssued, ApiKeyPublic, ApiKeysPublic
from settlement.domains.members import apikeys as svc
from settlement.domains.members import get_member
from settlement.store.models import ApiKey

router = APIRouter(prefix="/v1", tags=["api-keys"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}})

PrefixPath = Annotated[str, Path(min_length=svc.PREFIX_LEN, max_length=16, pattern=r"^[a-z0-9]+$")]


def key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(prefix=key.prefix, member_id=key.member_id, label=key.label, created_at=key.created_at,
                        revoked_at=key.revoked_at, last_used_at=key.last_used_at, active=svc.is_active(key))


@router.post("/members/{member_id}/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyIssued,
             summary="Issue a key, or rotate (issue + revoke old ones after an overlap); operator only",
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def issue(member_id: MemberIdPath, body: ApiKeyCreate, runtime: RuntimeDep, op: OperatorMember,
          idempotency_key: IdempotencyKey = None) -> ApiKeyIssued:
    shown: list[str] = []

    def work(session: Session) -> tuple[int, dict]:
        get_member(session, member_id)
        revokes: list[str] = []
        revokes_at: datetime | None = None
        if body.rotate or body.replaces:
            key, revokes = svc.rotate_key(session, member_id, old_prefix=body.replaces, overlap_s=body.overlap_s,
                                          label=body.label)
            if revokes:
                revokes_at = svc.get_key(session, revokes[0]).revoked_at
        else:
            key = svc.issue_key(session, member_id, label=body.label)
        shown.append(key.plaintext)
        # What is stored for a replay has no key: it is shown once.
        return status.HTTP_201_CREATED, ApiKeyIssued(
            prefix=key.prefix, key=None, member_id=key.member_id, label=key.label, created_at=key.created_at,
            revokes=revokes, revokes_at=revokes_at).model_dump(mode="json")

    answer = idempotent(runtime, op.member_id, idempotency_key, "POST /v1/members/{id}/api-keys",
                        [member_id, body.model_dump(mode="json")], work, headers={"Cache-Control": "no-store"})
    if shown:
        answer = JSONResponse({**json.loads(answer.body), "key": shown[0]}, status_code=answer.status_code,
                              headers={"Cache-Control": "no-store", **replayed_headers(False)})
    return answer  # type: ignore[return-value]


@router.get("/members/{member_id}/api-keys", response_model=ApiKeysPublic,
            summary="A member's keys, by prefix (operator)", responses={404: {"model": Problem}})
def list_keys(member_id: MemberIdPath, session: DbSession, _op: OperatorMember, cursor: CursorQuery = None,
              limit: Annotated[int, Query(ge=1, le=svc.KEY_LIST_LIMIT_MAX)] = 100) -> ApiKeysPublic:
    get_member(session, member_id)
    rows, next_cursor = svc.list_keys(session, member_id, limit=limit, cursor=cursor)
    data = [key_public(k) for k in rows]
    return ApiKeysPublic(data=data, count=len(data), next_cursor=next_cursor, has_more=next_cursor is not None)


@router.delete("/api-keys/{prefix}", response_model=ApiKeyPublic,
               summary="Revoke a key now (operator: any key; a member: its own)",
               responses={404: {"model": Problem}, 409: {"model": Problem}})
def revoke(prefix: PrefixPath, session: DbSession, member: CurrentMember) -> ApiKeyPublic:
    owner = None if "operator" in member.roles else member.member_id
    key = svc.revoke_key(session, prefix, member_id=owner)
    return key_public(key)
