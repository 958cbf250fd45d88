"""The governance page: the consortium's proposals (onboarding, suspension, roles, keys) with
their approvals, delay and transactions; a member sees those about itself, the operator, auditors
and governors all (the API's own rule: ``GET /v1/governance/proposals``).

The operator and the governors' members propose here, and a governor's member approves as its
governor (with the key the service holds for the demo governors, or with the governor's own
signature over the proposal's typed data: a browser wallet's on the signing page, or one pasted
from ``ledger sign``), and executes the next step:
each through the ``/v1/governance`` route's own handler (:func:`~ledger_api.console.web.invoke`),
so who may propose, approve and execute is the API's rule, and the chain's (quorum, delay).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console.web import (
    BASE,
    Console,
    Ctx,
    FieldErrors,
    field_errors_of,
    invoke,
    new_idempotency_key,
    page_router,
    render,
    shown_on_form,
    signature_errors_of,
    typed_json,
)
from ledger_api.routes import governance as api
from ledger_api.schemas.governance import ApprovalCreate, ProposalCreate
from settlement.core.errors import LedgerError, ValidationError
from settlement.domains.governance.actions import ACTIONS

router = page_router()

PROPOSALS_SHOWN = 50
PROPOSAL_FIELDS = ("action", "member_id", "role", "roles", "name", "country", "account", "proposal_id",
                   "description")
_ROLES_SPLIT = re.compile(r"[\s,]+")


def _page(ctx: Ctx, *, status_code: int = 200, errors: FieldErrors | None = None, message: str | None = None,
          values: dict[str, str] | None = None, failed: str | None = None) -> HTMLResponse:
    pending = ctx.request.query_params.get("pending") == "1"
    proposals = invoke(api.list_proposals, ctx, pending=pending, member_id=None, limit=PROPOSALS_SHOWN)
    assert ctx.member is not None
    params = ctx.runtime.governance
    mine = [g.address for g in params.governors_of(ctx.member.member_id)] if params is not None else []
    return render(ctx, "governance.html", status_code=status_code, proposals=proposals.data, pending=pending,
                  proposer=params is not None and api.sees_all(ctx.runtime, ctx.member), my_governors=mine,
                  custodial=set(ctx.runtime.governors), actions=ACTIONS, errors=errors or {}, message=message,
                  values=values or {}, failed=failed, done=ctx.request.query_params.get("done"))


@router.get("/governance")
def governance(ctx: Console) -> HTMLResponse:
    return _page(ctx)


@router.post("/governance/proposals")
def propose(ctx: Console) -> Response:
    values = {name: ctx.field(name).strip() for name in PROPOSAL_FIELDS}
    data: dict[str, Any] = {k: v for k, v in values.items() if v and k != "roles"}
    data["roles"] = [r for r in _ROLES_SPLIT.split(values["roles"]) if r]
    try:
        answer = invoke(api.create_proposal, ctx, body=ProposalCreate.model_validate(data),
                        idempotency_key=new_idempotency_key())
        proposal_id = json.loads(answer.body)["id"]  # the stored (replayable) answer: 201 with the proposal
    except (LedgerError, pydantic.ValidationError) as exc:
        if not shown_on_form(exc):
            raise
        errors, message = field_errors_of(exc)
        return _page(ctx, status_code=getattr(exc, "status", 422), errors=errors, message=message, values=values,
                     failed="propose")
    return RedirectResponse(f"{BASE}/governance?done=proposed#p-{proposal_id}", status_code=303)


@router.post("/governance/proposals/{proposal_id}/approve")
def approve(proposal_id: api.ProposalIdPath, ctx: Console) -> Response:
    """Approve as one of the member's governors: its own signature when given (pasted, or made by
    a browser wallet on the signing page), else the key the service holds (demo governors only;
    the API refuses otherwise)."""
    try:
        body = ApprovalCreate.model_validate({"governor": ctx.field("governor").strip(),
                                              "signature": ctx.field("signature").strip() or None})
        invoke(api.approve, ctx, proposal_id=proposal_id, body=body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if not shown_on_form(exc):
            raise
        if ctx.field("from") == "sign":
            errors, message = signature_errors_of(exc)
            return _sign_page(ctx, proposal_id, ctx.field("governor").strip(), status_code=getattr(exc, "status", 422),
                              errors=errors, message=message)
        errors, message = field_errors_of(exc)
        return _page(ctx, status_code=getattr(exc, "status", 422), errors=errors, message=message,
                     failed=proposal_id)
    return RedirectResponse(f"{BASE}/governance?done=approved#p-{proposal_id}", status_code=303)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _sign_page(ctx: Ctx, proposal_id: str, governor: str, *, status_code: int = 200,
               errors: FieldErrors | None = None, message: str | None = None) -> HTMLResponse:
    """The proposal's Safe transaction (``GET /v1/governance/proposals/{id}/typed-data``) in human
    terms, to be signed with one of the member's governors' own key: a browser wallet (wallet.js,
    EIP-1193 ``eth_signTypedData_v4``) or ``ledger sign`` and paste. Submitted to the approve page."""
    assert ctx.member is not None
    params = ctx.runtime.governance
    mine = {g.address.lower(): g.address for g in params.governors_of(ctx.member.member_id)} \
        if params is not None else {}
    if not _ADDRESS.fullmatch(governor) or governor.lower() not in mine:
        raise ValidationError("governor must be one of your member's governors", field="governor")
    proposal = invoke(api.get_proposal, ctx, proposal_id=proposal_id)
    typed = invoke(api.typed_data, ctx, proposal_id=proposal_id)
    return render(ctx, "governance_sign.html", status_code=status_code, p=proposal, typed=typed.typed_data,
                  summary=typed.summary, typed_json=typed_json(typed.typed_data), governor=mine[governor.lower()],
                  errors=errors or {}, message=message)


@router.get("/governance/proposals/{proposal_id}/sign")
def sign_page(proposal_id: api.ProposalIdPath, ctx: Console) -> HTMLResponse:
    return _sign_page(ctx, proposal_id, ctx.request.query_params.get("governor", "").strip())


@router.post("/governance/proposals/{proposal_id}/execute")
def execute(proposal_id: api.ProposalIdPath, ctx: Console) -> Response:
    try:
        invoke(api.execute, ctx, proposal_id=proposal_id)
    except LedgerError as exc:
        if not shown_on_form(exc):
            raise
        return _page(ctx, status_code=exc.status, message=exc.detail, failed=proposal_id)
    return RedirectResponse(f"{BASE}/governance?done=executed#p-{proposal_id}", status_code=303)
