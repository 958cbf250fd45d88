"""Console pages for auditors (and the operator): provenance search by lot, product or event id, the
proof page that verifies a ledger-anchor-proof-v1 document in the browser against the chain's
JSON-RPC (``static/console/verify.js``), journal record proofs, anchor batches and the trial
balance. Every page calls the API route's own handler with its ``auditor | operator`` dependency.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote
from typing import Any

from anchors import LEAF_FIELD_NAMES_V1
from anchors.journal import JOURNAL_LEAF_FIELD_NAMES
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console.web import BASE, Console, Ctx, authorised_for, invoke, page_router, render
from ledger_api.routes import anchors as api
from settlement.core.errors import ConflictError, LedgerError, ValidationError
from settlement.domains.anchoring.audit_store import audit_store

router = page_router()

QUERY_LEN_MAX = 128
PRODUCT_LOTS_SHOWN = 200
BATCHES_SHOWN = 50
KIND_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
FINDINGS_SHOWN = 200  # the page lists this many findings; all are counted
# One journal audit at a time per process: it reads the whole store and asks the chain.
_AUDIT_RUNNING = threading.Lock()


@router.get("/provenance")
def provenance(ctx: Console) -> HTMLResponse:
    """Search by lot id (the lot's events in order, each with its status and proof link), by
    product (gtin:/sku:, the lots it was seen in) or by event id (straight to its proof)."""
    authorised_for(api.lot_trace, ctx)
    q = ctx.request.query_params.get("q", "").strip()
    by = ctx.request.query_params.get("by", "lot")
    trace, lots, error = None, None, None
    if q:
        if len(q) > QUERY_LEN_MAX:
            error = ctx.t("provenance.too_long", max=QUERY_LEN_MAX)
        elif by == "product":
            try:
                lots = invoke(api.product_lots, ctx, product=q, cursor=None, limit=PRODUCT_LOTS_SHOWN)
            except LedgerError as exc:
                if exc.status in (401, 403):
                    raise
                error = exc.detail
        elif by == "event":
            try:
                doc = invoke(api.event_proof, ctx, event_id=q)
                return _proof_page(ctx, doc, title=q)
            except LedgerError as exc:
                if exc.status in (401, 403):
                    raise
                error = exc.detail
        else:
            try:
                trace = invoke(api.lot_trace, ctx, lot_id=q, after=None)
            except LedgerError as exc:
                if exc.status in (401, 403):
                    raise
                error = exc.detail
    return render(ctx, "provenance.html", q=q, by=by, trace=trace, lots=lots, error=error)


def _proof_page(ctx: Ctx, doc: Any, *, title: str) -> HTMLResponse:
    data = doc.model_dump(mode="json")
    fields: list[tuple[str, str, str]] = []
    names = _leaf_names(data)
    for i, (kind, value) in enumerate(zip(data["leaf_encoding"], data["value"])):
        fields.append((names[i] if i < len(names) else str(i), kind, str(value)))
    return render(ctx, "proof.html", doc=doc, fields=fields, title=title, doc_json=json.dumps(data),
                  rpc_url=ctx.runtime.chain.rpc_url, needs_rpc=True)


def _leaf_names(data: dict[str, Any]) -> list[str]:
    """The leaf's field names, for the page (the verification uses types and values only)."""
    if data.get("event") is not None:
        return list(LEAF_FIELD_NAMES_V1)
    if len(data["value"]) == len(JOURNAL_LEAF_FIELD_NAMES):
        return list(JOURNAL_LEAF_FIELD_NAMES)
    return list(JOURNAL_LEAF_FIELD_NAMES[:5]) + ["digest"]


@router.get("/proofs/events/{event_id:path}")
def event_proof(event_id: api.EventIdPath, ctx: Console) -> HTMLResponse:
    return _proof_page(ctx, invoke(api.event_proof, ctx, event_id=event_id), title=event_id)


@router.get("/proofs/records/{kind}/{record_id}")
def record_proof(kind: api.KindPath, record_id: api.RecordIdPath, ctx: Console) -> HTMLResponse:
    doc = invoke(api.record_proof, ctx, kind=kind, record_id=record_id, version=None)
    return _proof_page(ctx, doc, title=f"{kind} {record_id}")


@router.get("/audit/record")
def record_proof_search(ctx: Console) -> Response:
    kind = ctx.request.query_params.get("kind", "").strip()
    record_id = ctx.request.query_params.get("record_id", "").strip()
    if not KIND_RE.match(kind) or not 1 <= len(record_id) <= QUERY_LEN_MAX:
        raise ValidationError("give a record kind (e.g. settlement) and its id", field="record_id")
    return RedirectResponse(f"{BASE}/proofs/records/{quote(kind, safe='')}/{quote(record_id, safe='')}",
                            status_code=303)


@router.get("/audit")
def audit(ctx: Console) -> HTMLResponse:
    """Anchor batches (newest last page first), the trial balance as of the latest anchored
    journal batch, and a form to open a journal record's proof."""
    batches = invoke(api.list_batches, ctx, kind=None, cursor=None, after=0, limit=200)
    trial, trial_error = None, None
    try:
        trial = invoke(api.trial_balance, ctx, as_of=None)
    except ValidationError:
        raise
    except LedgerError as exc:  # nothing anchored yet: 409
        if exc.status in (401, 403):
            raise
        trial_error = exc.detail
    return render(ctx, "audit.html", batches=batches.data[-BATCHES_SHOWN:], trial=trial, trial_error=trial_error)


@router.get("/audit/journal")
def journal_audit_form(ctx: Console) -> HTMLResponse:
    authorised_for(api.journal_export, ctx)
    return render(ctx, "audit_journal.html", report=None)


@router.post("/audit/journal")
def journal_audit(ctx: Console) -> HTMLResponse:
    """Run ``ledger anchors audit``'s audit (:func:`audit_store`, the same function) over the
    service's own store, opened read-only, against the chain's TraceAnchor; show its verdict,
    counts and findings (each naming its record ``kind/id`` or batch, and the batch that proves
    it). Auditors and the operator, like the export the API gives them."""
    authorised_for(api.journal_export, ctx)
    offline = ctx.field("offline") == "1"
    runtime = ctx.runtime
    if not _AUDIT_RUNNING.acquire(blocking=False):
        raise ConflictError("a journal audit is already running; try again when it is done")
    try:
        report = audit_store(runtime.db.url, rpc=None if offline else runtime.chain.rpc_url,
                             contract=None if offline else runtime.address("TraceAnchor"),
                             chain_id=runtime.manifest.chain_id if runtime.manifest else None,
                             out=lambda _line: None)
    finally:
        _AUDIT_RUNNING.release()
    findings = [(f, _record_of(f.subject)) for f in report.findings[:FINDINGS_SHOWN]]
    return render(ctx, "audit_journal.html", report=report, findings=findings, offline=offline,
                  counts=sorted(report.counts.items()))


def _record_of(subject: str) -> tuple[str, str] | None:
    """(kind, id) of a finding about a record (``kind/id``), None for a batch or the chain."""
    kind, _, record_id = subject.partition("/")
    return (kind, record_id) if record_id and KIND_RE.match(kind) else None
