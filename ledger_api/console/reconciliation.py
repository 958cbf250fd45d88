"""Console pages for reconciliation (finance members and the operator; auditors read): upload a
provider statement (Alipay, WeChat Pay, normalized CSV, camt.053), which is imported and reconciled
at once; the run's buckets; the exceptions queue, each resolved with a note. Every step calls the
API route's own handler (or, for the upload, the function its handler calls with the body) with
the route's role dependency."""

from __future__ import annotations

import json
from typing import Any

import pydantic
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console.web import (
    BASE,
    Console,
    Ctx,
    authorised_for,
    field_errors_of,
    invoke,
    new_idempotency_key,
    page_router,
    render,
)
from ledger_api.routes import reconciliation as api
from ledger_api.schemas.reconciliation import ResolutionCreate, RunCreate, StatementKind
from settlement.core.errors import LedgerError, ValidationError

router = page_router()

STATEMENT_BYTES_MAX = 1024 * 1024 - 64 * 1024  # under the API's request body bound, as the route's body is
KINDS = ("alipay", "wechatpay", "normalized", "camt053")
ACTIONS = ("accepted", "ledger_adjusted", "provider_claimed", "written_off", "reopened")
_KIND = pydantic.TypeAdapter(StatementKind)


def _page(ctx: Ctx, *, status_code: int = 200, message: str | None = None) -> HTMLResponse:
    statements = invoke(api.list_statements, ctx, owner=None, cursor=None, limit=20)
    runs = invoke(api.list_runs, ctx, owner=None, cursor=None, limit=20)
    exceptions = invoke(api.list_exceptions, ctx, owner=None, state="open", run_id=None, origin=None, bucket=None,
                        cursor=0, limit=100)
    return render(ctx, "reconciliation.html", status_code=status_code, statements=statements.data, runs=runs.data,
                  exceptions=exceptions.data, kinds=KINDS, message=message)


@router.get("/reconciliation")
def reconciliation(ctx: Console) -> HTMLResponse:
    return _page(ctx)


@router.post("/reconciliation/statements")
async def upload(ctx: Console) -> Response:
    """Import the uploaded file as the member's statement, then run the reconciliation on it."""
    who = authorised_for(api.import_statement, ctx)
    upload_ = ctx.form.get("file") if ctx.form is not None else None
    try:
        kind = _KIND.validate_python(ctx.field("kind"))
        if upload_ is None or isinstance(upload_, str):
            raise ValidationError(ctx.t("recon.no_file"), field="file")
        data = await upload_.read(STATEMENT_BYTES_MAX + 1)
        if len(data) > STATEMENT_BYTES_MAX:
            raise ValidationError(ctx.t("recon.too_large", kb=STATEMENT_BYTES_MAX // 1024), field="file")
        account = ctx.field("account").strip() or None
        if account is not None and len(account) > 64:
            raise ValidationError("account is at most 64 characters", field="account")
        filename = (upload_.filename or "statement")[:255]
        statement = await run_in_threadpool(api.import_statement_data, ctx.runtime, who, kind, data,
                                            account=account, filename=filename)
        answer = await run_in_threadpool(invoke, api.start_run, ctx, body=RunCreate(statement_id=statement.id),
                                         idempotency_key=new_idempotency_key())
        run_id = json.loads(answer.body)["id"]
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403):
            raise
        errors, message = field_errors_of(exc)
        text = message or "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        return await run_in_threadpool(lambda: _page(ctx, status_code=getattr(exc, "status", 422), message=text))
    return RedirectResponse(f"{BASE}/reconciliation/runs/{run_id}", status_code=303)


@router.get("/reconciliation/runs/{run_id}")
def run_page(run_id: api.RunIdPath, ctx: Console) -> HTMLResponse:
    return _run(ctx, run_id)


def _run(ctx: Ctx, run_id: str, *, status_code: int = 200, errors: dict | None = None,
         message: str | None = None) -> HTMLResponse:
    run = invoke(api.get_run, ctx, run_id=run_id)
    exceptions = invoke(api.list_exceptions, ctx, owner=None, state=None, run_id=run_id, origin=None, bucket=None,
                        cursor=0, limit=200)
    buckets = run.summary.get("buckets", {})
    return render(ctx, "recon_run.html", status_code=status_code, run=run, exceptions=exceptions.data,
                  buckets=[(b, v, bucket_totals(v)) for b, v in buckets.items()], actions=ACTIONS,
                  errors=errors or {}, message=message)


@router.post("/reconciliation/exceptions/{exception_id}/resolve")
def resolve(exception_id: api.ExceptionIdPath, ctx: Console) -> Response:
    run_id = ctx.field("run_id")
    try:
        body = ResolutionCreate.model_validate({"action": ctx.field("action"), "note": ctx.field("note").strip()})
        invoke(api.resolve_exception, ctx, exception_id=exception_id, body=body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
            raise
        errors, message = field_errors_of(exc)
        if run_id and len(run_id) <= 32 and run_id.isalnum():
            return _run(ctx, run_id, status_code=getattr(exc, "status", 422),
                        errors={exception_id: [m for v in errors.values() for m in v] or [message or ""]})
        return _page(ctx, status_code=getattr(exc, "status", 422), message=message)
    target = f"{BASE}/reconciliation/runs/{run_id}" if run_id and run_id.isalnum() and len(run_id) <= 32 \
        else f"{BASE}/reconciliation"
    return RedirectResponse(target, status_code=303)


def bucket_totals(bucket: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(currency, statement total, ledger total) of a bucket, in minor units."""
    st = {t["currency"]: t["value"] for t in bucket.get("statement_totals", [])}
    lg = {t["currency"]: t["value"] for t in bucket.get("ledger_totals", [])}
    return [(c, st.get(c, 0), lg.get(c, 0)) for c in sorted(set(st) | set(lg))]
