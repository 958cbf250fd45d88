"""Reconciliation: statement imports, three-way runs, reports and the exceptions queue.

A statement is uploaded as the raw file body (``POST /v1/reconciliation/statements?kind=...``;
bounded by the API's request body limit: larger files go through ``ledger reconcile``). Finance
members and the operator import, run and resolve, each its own; auditors read.

Tenancy (docs/api.md): statements, runs, reports and exceptions belong to the member that uploaded
or ran them (callback exceptions to the provider account's owner). A finance member sees and acts
on its own only; another member's by id is 404. The operator and auditors read every member's
(``?owner=`` narrows the lists), and act on none but their own.
"""

from __future__ import annotations

import hashlib

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ledger_api.conventions import LOCATION, CursorQuery, IdempotencyKey, idempotent_outside
from ledger_api.deps import DbSession, Principal, RuntimeDep, require_roles
from ledger_api.schemas import Problem
from ledger_api.schemas.reconciliation import (
    ExceptionsPublic,
    ReconciliationStatementPublic,
    ResolutionCreate,
    ResolutionPublic,
    RunCreate,
    RunPublic,
    RunsPublic,
    StatementKind,
    StatementsPublic,
)
from ledger_api.tenancy import OwnerQuery, read_scope
from settlement.domains import reconciliation as rs
from settlement.runtime import Runtime
from settlement.store.models.payments import ReconciliationRun, StatementImport

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"],
                   responses={400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": Problem},
                              404: {"model": Problem}, 422: {"model": Problem}})

Writer = Annotated[Principal, Depends(require_roles("finance", "operator"))]
Reader = Annotated[Principal, Depends(require_roles("finance", "operator", "auditor"))]
RunIdPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]
ExceptionIdPath = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9a-z-]+$")]
ROW_ERRORS_SHOWN_MAX = 100
# Who reads every member's reconciliation data (docs/api.md, Tenancy).
READ_ACROSS = frozenset({"operator", "auditor"})


def _statement_public(row: StatementImport, parsed: rs.ParseResult | None = None) -> ReconciliationStatementPublic:
    errors = [] if parsed is None else [
        {"line_no": e.line_no, "reason": e.reason[:300]} for e in parsed.errors[:ROW_ERRORS_SHOWN_MAX]]
    return ReconciliationStatementPublic(id=row.id, owner=row.owner, kind=row.provider or "", format=row.format,
                                         account=row.account,
                           filename=row.filename, size_bytes=row.size_bytes, sha256=row.sha256, encoding=row.encoding,
                           line_count=row.line_count, row_error_count=row.row_error_count, row_errors=errors,
                           uploaded_by=row.uploaded_by, uploaded_at=row.uploaded_at)


def _run_public(row: ReconciliationRun) -> RunPublic:
    return RunPublic(id=row.id, owner=row.owner, statement_id=row.statement_id, status=row.status, config=row.config,
                     summary=row.summary, ledger_entries=row.ledger_entries, exception_count=row.exception_count,
                     row_error_count=int(row.summary.get("inputs", {}).get("statement_row_errors", 0)),
                     started_by=row.started_by, started_at=row.started_at, finished_at=row.finished_at)


@router.post("/statements", response_model=ReconciliationStatementPublic, status_code=status.HTTP_201_CREATED,
             summary="Import a statement (the raw file as the body)")
async def import_statement(request: Request, runtime: RuntimeDep, who: Writer,
                           kind: Annotated[StatementKind, Query()],
                           account: Annotated[str | None, Query(max_length=64)] = None,
                           filename: Annotated[str, Query(max_length=255)] = "statement",
                           idempotency_key: IdempotencyKey = None) -> ReconciliationStatementPublic:
    data = await request.body()
    # the raw file is hashed, not stored again: a retry of the same upload with its key replays
    selects = [kind, account, filename, hashlib.sha256(data).hexdigest()]

    def work() -> tuple[int, dict]:
        made = import_statement_data(runtime, who, kind, data, account=account, filename=filename)
        return status.HTTP_201_CREATED, made.model_dump(mode="json")

    return await run_in_threadpool(  # type: ignore[no-any-return]
        idempotent_outside, runtime, who.member_id, idempotency_key, "POST /v1/reconciliation/statements",
        selects, work)


def import_statement_data(runtime: Runtime, who: Principal, kind: str, data: bytes, *, account: str | None,
                          filename: str) -> ReconciliationStatementPublic:
    """Import ``data`` as ``who``'s statement (the route's body; the web console's upload)."""
    row, parsed = rs.import_statement(runtime, kind, data, owner=who.member_id, filename=filename,
                                      uploaded_by=who.member_id, account=account)
    return _statement_public(row, parsed)


@router.get("/statements", response_model=StatementsPublic)
def list_statements(session: DbSession, who: Reader, owner: OwnerQuery = None, cursor: CursorQuery = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> StatementsPublic:
    rows, next_cursor = rs.list_statements(session, limit, owner=read_scope(who, READ_ACROSS, owner), cursor=cursor)
    return StatementsPublic(data=[_statement_public(r) for r in rows], next_cursor=next_cursor,
                            has_more=next_cursor is not None)


@router.post("/runs", response_model=RunPublic, status_code=status.HTTP_201_CREATED, responses={201: {"headers": LOCATION}},
             summary="Run a three-way reconciliation of a statement against the journal and the chain")
def start_run(body: RunCreate, runtime: RuntimeDep, who: Writer, idempotency_key: IdempotencyKey = None) -> RunPublic:
    config = rs.check_tolerances(body.amount_tolerance_minor, body.date_window_days)

    def work() -> tuple[int, dict]:
        run = rs.run_reconciliation(runtime, body.statement_id, owner=who.member_id, started_by=who.member_id,
                                    config=config)
        return status.HTTP_201_CREATED, _run_public(run).model_dump(mode="json")

    # a run is several transactions (and may be long): its answer is stored right after it
    return idempotent_outside(runtime, who.member_id, idempotency_key,  # type: ignore[return-value]
                              "POST /v1/reconciliation/runs", body.model_dump(mode="json"), work,
                              location=lambda run: f"/v1/reconciliation/runs/{run['id']}")


@router.get("/runs", response_model=RunsPublic)
def list_runs(session: DbSession, who: Reader, owner: OwnerQuery = None, cursor: CursorQuery = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> RunsPublic:
    rows, next_cursor = rs.list_runs(session, limit, owner=read_scope(who, READ_ACROSS, owner), cursor=cursor)
    return RunsPublic(data=[_run_public(r) for r in rows], next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/runs/{run_id}", response_model=RunPublic)
def get_run(run_id: RunIdPath, session: DbSession, who: Reader) -> RunPublic:
    return _run_public(rs.get_run(session, run_id, owner=read_scope(who, READ_ACROSS)))


@router.get("/runs/{run_id}/report", summary="The run's report: json (default), csv (exceptions) or text",
            responses={200: {"content": {"application/json": {}, "text/csv": {}, "text/plain": {}}}})
def get_report(run_id: RunIdPath, session: DbSession, who: Reader,
               format: Annotated[str, Query(pattern=r"^(json|csv|text)$")] = "json") -> Response:
    scope = read_scope(who, READ_ACROSS)
    if format == "csv":
        return PlainTextResponse(rs.report_csv(session, run_id, owner=scope), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="recon-{run_id}.csv"'})
    if format == "text":
        return PlainTextResponse(rs.summary_text(rs.get_run(session, run_id, owner=scope).summary))
    return JSONResponse(rs.report_document(session, run_id, owner=scope))


@router.get("/exceptions", response_model=ExceptionsPublic)
def list_exceptions(session: DbSession, who: Reader, owner: OwnerQuery = None,
                    state: Annotated[str | None, Query(pattern=r"^(open|resolved)$")] = None,
                    run_id: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9a-f]+$")] = None,
                    origin: Annotated[str | None, Query(pattern=r"^(run|callback)$")] = None,
                    bucket: Annotated[str | None, Query(max_length=32)] = None,
                    cursor: Annotated[int, Query(ge=0, le=(1 << 63) - 1)] = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> ExceptionsPublic:
    page = rs.list_exceptions(session, owner=read_scope(who, READ_ACROSS, owner), state=state, run_id=run_id,
                              origin=origin, bucket=bucket, after_id=cursor,
                              limit=limit)
    return ExceptionsPublic(data=[rs.exception_json(r) for r in page.items], has_more=page.next_cursor is not None,
                            next_cursor=None if page.next_cursor is None else str(page.next_cursor))


def _history(session, exception_id: str) -> list[ResolutionPublic]:  # type: ignore[no-untyped-def]
    return [ResolutionPublic(action=h.action, note=h.note, resolved_by=h.resolved_by, resolved_at=h.resolved_at,
                             adjustment_entry_id=h.adjustment_entry_id)
            for h in rs.resolutions_of(session, exception_id)]


@router.get("/exceptions/{exception_id}")
def get_exception(exception_id: ExceptionIdPath, session: DbSession, who: Reader) -> JSONResponse:
    row = rs.get_exception(session, exception_id, owner=read_scope(who, READ_ACROSS))
    doc = rs.exception_json(row)
    doc["history"] = [h.model_dump(mode="json") for h in _history(session, exception_id)]
    return JSONResponse(doc)


@router.post("/exceptions/{exception_id}/resolve", summary="Resolve (or reopen) an exception with a note")
def resolve_exception(exception_id: ExceptionIdPath, body: ResolutionCreate, session: DbSession,
                      who: Writer) -> JSONResponse:
    row, _ = rs.resolve_exception(session, exception_id, body.action, body.note, who.member_id,
                                  owner=who.member_id, adjustment_entry_id=body.adjustment_entry_id)
    doc = rs.exception_json(row)
    doc["history"] = [h.model_dump(mode="json") for h in _history(session, exception_id)]
    return JSONResponse(doc)
