"""The governance page: the consortium's proposals (onboarding, suspension, roles, keys) with
their approvals, delay and transactions; a member sees those about itself, the operator, auditors
and governors all (the API's own rule: ``GET /v1/governance/proposals``)."""

from __future__ import annotations


from fastapi.responses import HTMLResponse

from ledger_api.console.web import Console, invoke, page_router, render
from ledger_api.routes import governance as api

router = page_router()

PROPOSALS_SHOWN = 50


@router.get("/governance")
def governance(ctx: Console) -> HTMLResponse:
    pending = ctx.request.query_params.get("pending") == "1"
    proposals = invoke(api.list_proposals, ctx, pending=pending, member_id=None, limit=PROPOSALS_SHOWN)
    return render(ctx, "governance.html", proposals=proposals.data, pending=pending)
