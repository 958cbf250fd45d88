"""Statement imports and three-way reconciliation runs, stored.

- :func:`import_statement`: keep a provider or bank statement (content-addressed under
  ``$LEDGER_HOME/statements/``), parse it once to count its lines and per-row errors;
- :func:`run_reconciliation`: parse the statement, build the ledger side from the settlements
  store and the chain state of each operation (:func:`ledger_entries`), match them with the
  engine (:func:`settlement.domains.reconciliation.engine.reconcile`), and store the run (summary with totals
  per currency, a bounded sample of row errors) and its exceptions in the queue;
- :func:`report_document` / :func:`report_csv` / :func:`summary_text`: the stored report as JSON,
  the exceptions as CSV, and a short text summary.

Statement kinds (the CLI's ``--provider``): ``alipay`` (Alipay 业务明细 bill), ``wechatpay`` (WeChat
Pay trade bill), ``normalized`` (the normalized CSV), ``camt053`` (ISO 20022 bank statement).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    PayloadTooLargeError,
    ReconciliationRunNotFoundError,
    StatementFormatError,
    StatementNotFoundError,
    ValidationError,
)
from settlement.core.money import Money
from settlement.domains.anchoring import digest_changed
from settlement.domains.reconciliation.engine import (
    BUCKETS,
    MatchConfig,
    ParseResult,
    parse_alipay_bill,
    parse_camt053,
    parse_normalized_csv,
    parse_wechat_bill,
    reconcile,
)
from settlement.domains.reconciliation.exceptions import exception_json, list_exceptions, store_run_exceptions
from settlement.domains.reconciliation.ledger_entries import ledger_entries
from settlement.runtime import Runtime
from settlement.store.models import utcnow
from settlement.store.models.payments import ReconciliationException, ReconciliationRun, StatementImport

__all__ = [
    "STATEMENT_KINDS", "STATEMENT_BYTES_MAX", "Progress", "import_statement", "get_statement", "list_statements",
    "run_reconciliation", "get_run", "list_runs", "report_document", "report_csv", "summary_text",
]

STATEMENT_KINDS = ("alipay", "wechatpay", "normalized", "camt053")
# Provider bills and camt.053 are read whole by their parsers; the normalized CSV streams.
STATEMENT_BYTES_MAX = 2 * 1024 * 1024 * 1024
FILENAME_CHARS_MAX = 255
ROW_ERRORS_STORED_MAX = 10_000
EXCEPTIONS_STORED_MAX = 1_000_000
REPORT_EXCEPTIONS_MAX = 100_000
LIST_MAX = 200
_COPY_CHUNK = 1024 * 1024

Progress = Callable[[str, int, int | None], None]  # (stage, done, total or None)


def _no_progress(_stage: str, _done: int, _total: int | None) -> None:
    return None


_now = utcnow  # one clock for the store: settlement.store.models.utcnow


def _statements_dir(runtime: Runtime) -> Path:
    path = runtime.home / "statements"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _parse(kind: str, path: Path, source: str) -> ParseResult:
    if kind == "normalized":
        return parse_normalized_csv(path, source=source)
    data = path.read_bytes()
    if kind == "alipay":
        return parse_alipay_bill(data, source=source)
    if kind == "wechatpay":
        return parse_wechat_bill(data, source=source)
    return parse_camt053(data, source=source)


def _source(kind: str, sha256: str) -> str:
    # Stable per file content: the engine's exception ids (and so the queue's de-duplication)
    # depend on it.
    return f"{kind}:{sha256[:12]}"


def _check_kind(kind: str) -> str:
    if kind not in STATEMENT_KINDS:
        raise StatementFormatError(f"unknown statement kind {str(kind)[:32]!r}", allowed=list(STATEMENT_KINDS))
    return kind


def import_statement(runtime: Runtime, kind: str, data: bytes | str | os.PathLike, *, filename: str,
                     uploaded_by: str, account: str | None = None,
                     progress: Progress = _no_progress) -> tuple[StatementImport, ParseResult]:
    """Keep a statement (bytes, or a file path that is copied) and parse it once. A file that
    cannot be read at all raises StatementFormatError (nothing is stored); broken rows become
    per-row errors. Returns the stored import and the parse result."""
    _check_kind(kind)
    folder = _statements_dir(runtime)
    tmp = folder / f".upload-{uuid.uuid4().hex}"
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            if isinstance(data, (bytes, bytearray)):
                digest.update(data)
                size = len(data)
                out.write(data)
            else:
                total = os.path.getsize(data)
                with open(data, "rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        size += len(chunk)
                        if size > STATEMENT_BYTES_MAX:
                            raise PayloadTooLargeError(f"statements are limited to {STATEMENT_BYTES_MAX} bytes")
                        digest.update(chunk)
                        out.write(chunk)
                        progress("copy", size, total)
        if size == 0:
            raise StatementFormatError("the statement file is empty")
        sha = digest.hexdigest()
        path = folder / sha
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    progress("parse", 0, None)
    parsed = _parse(kind, path, _source(kind, sha))
    progress("parse", len(parsed.lines), len(parsed.lines))
    row = StatementImport(id=uuid.uuid4().hex, format=parsed.format, provider=kind, account=account,
                          filename=(os.path.basename(filename) or "statement")[:FILENAME_CHARS_MAX],
                          size_bytes=size, sha256=sha, encoding=parsed.encoding, line_count=len(parsed.lines),
                          row_error_count=len(parsed.errors), uploaded_by=uploaded_by[:64])
    with runtime.db.transaction() as session:
        session.add(row)
        digest_changed(session, "reconciliation.statement", row)
    return row, parsed


def get_statement(session: Session, statement_id: str) -> StatementImport:
    row = session.get(StatementImport, statement_id) if isinstance(statement_id, str) and len(statement_id) <= 32 \
        else None
    if row is None:
        raise StatementNotFoundError(f"no statement {str(statement_id)[:40]!r}")
    return row


def list_statements(session: Session, limit: int = 50) -> list[StatementImport]:
    return list(session.scalars(select(StatementImport).order_by(StatementImport.uploaded_at.desc())
                                .limit(max(1, min(limit, LIST_MAX)))))


def run_reconciliation(runtime: Runtime, statement_id: str, *, started_by: str, config: MatchConfig | None = None,
                       parsed: ParseResult | None = None, since: datetime | None = None,
                       until: datetime | None = None, progress: Progress = _no_progress) -> ReconciliationRun:
    """Three-way run of a stored statement against the ledger (journal + chain state). The
    statement's own provider (and account) limits the ledger side, except for ``normalized`` and
    ``camt053`` statements, which may list any provider's money."""
    config = config or MatchConfig()
    with runtime.db.read() as session:
        stmt = get_statement(session, statement_id)
        session.expunge(stmt)
    if parsed is None:
        path = _statements_dir(runtime) / stmt.sha256
        if not path.exists():
            raise StatementNotFoundError(f"the file of statement {statement_id} is gone from {path.parent}")
        progress("parse", 0, None)
        parsed = _parse(stmt.provider or "normalized", path, _source(stmt.provider or "normalized", stmt.sha256))
        progress("parse", len(parsed.lines), len(parsed.lines))
    provider = stmt.provider if stmt.provider in ("alipay", "wechatpay") else None
    progress("ledger", 0, None)
    with runtime.db.read() as session:
        ledger = ledger_entries(session, provider=provider, account=stmt.account if provider else None,
                                since=since, until=until, progress=lambda n: progress("ledger", n, None))
    progress("ledger", len(ledger), len(ledger))
    progress("match", 0, len(parsed.lines) + len(ledger))
    report = reconcile(parsed.lines, ledger, config, statement_errors=parsed.errors)
    progress("match", len(parsed.lines) + len(ledger), len(parsed.lines) + len(ledger))
    summary = report.summary()
    exceptions_total = sum(summary["buckets"][b]["items"] for b in BUCKETS[1:])
    started = _now()
    with runtime.db.transaction() as session:
        new, seen, truncated = store_run_exceptions(
            session, report.run_id, report.exceptions(), limit=EXCEPTIONS_STORED_MAX,
            progress=lambda n: progress("store", n, exceptions_total))
        summary.update(statement={"id": stmt.id, "kind": stmt.provider, "format": stmt.format,
                                  "filename": stmt.filename, "sha256": stmt.sha256},
                       exceptions={"total": exceptions_total, "new": new, "seen_before": seen,
                                   "stored_truncated": truncated},
                       ledger_filter={"provider": provider, "account": stmt.account if provider else None})
        run = ReconciliationRun(
            id=report.run_id, statement_id=stmt.id, provider=stmt.provider, account=stmt.account,
            config=asdict(config), status="completed", summary=summary,
            row_errors=[{"source": e.source, "line_no": e.line_no, "reason": e.reason[:300], "raw": e.raw[:300]}
                        for e in report.statement_errors[:ROW_ERRORS_STORED_MAX]],
            ledger_entries=len(ledger), exception_count=exceptions_total, started_by=started_by[:64],
            started_at=started, finished_at=_now())
        session.add(run)
        digest_changed(session, "reconciliation.run", run)
    progress("store", exceptions_total, exceptions_total)
    return run


def get_run(session: Session, run_id: str) -> ReconciliationRun:
    row = session.get(ReconciliationRun, run_id) if isinstance(run_id, str) and len(run_id) <= 32 else None
    if row is None:
        raise ReconciliationRunNotFoundError(f"no reconciliation run {str(run_id)[:40]!r}")
    return row


def list_runs(session: Session, limit: int = 50) -> list[ReconciliationRun]:
    return list(session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.started_at.desc())
                                .limit(max(1, min(limit, LIST_MAX)))))


def _run_exceptions(session: Session, run_id: str, limit: int) -> tuple[list[ReconciliationException], bool]:
    out: list[ReconciliationException] = []
    after = 0
    while len(out) < limit:
        page = list_exceptions(session, run_id=run_id, after_id=after, limit=500)
        out.extend(page.items)
        if page.next_cursor is None:
            return out[:limit], False
        after = page.next_cursor
    return out[:limit], True


def report_document(session: Session, run_id: str, *, exceptions_max: int = REPORT_EXCEPTIONS_MAX) -> dict[str, Any]:
    """The run's report: summary (buckets, counts, totals per currency), row errors, exceptions
    (with their queue state and resolution)."""
    run = get_run(session, run_id)
    items, truncated = _run_exceptions(session, run_id, exceptions_max)
    doc = dict(run.summary)
    doc.update(status=run.status, started_by=run.started_by,
               finished_at=run.finished_at.isoformat() if run.finished_at else None,
               row_errors=list(run.row_errors), exceptions=[exception_json(r) for r in items])
    if truncated:
        doc["exceptions_truncated"] = True
    return doc


CSV_COLUMNS = ("exception_id", "state", "bucket", "reason", "kind", "reference", "provider_txn_id", "currency",
               "statement_amount_minor", "ledger_amount_minor", "difference_minor", "statement_source",
               "statement_line_nos", "statement_status", "ledger_entry_id", "ledger_status", "chain_state",
               "tx_hash", "booked_at", "resolved_by", "resolved_at", "resolution_note")


def report_csv(session: Session, run_id: str) -> str:
    """The run's exceptions, one CSV row each (amounts in minor units)."""
    get_run(session, run_id)
    items, _ = _run_exceptions(session, run_id, EXCEPTIONS_STORED_MAX)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in items:
        values = {c: getattr(r, c, None) for c in CSV_COLUMNS}
        values["statement_line_nos"] = " ".join(map(str, r.statement_line_nos or []))
        values["resolved_at"] = r.resolved_at.isoformat() if r.resolved_at else None
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def summary_text(summary: dict[str, Any]) -> str:
    """A few lines a person reads: inputs, and per bucket its counts and totals per currency."""
    inputs = summary["inputs"]
    lines = [f"Reconciliation run {summary['run_id']}",
             f"  statement lines: {inputs['statement_lines']} ({inputs['statement_row_errors']} rows rejected)",
             f"  ledger entries:  {inputs['ledger_entries']}",
             f"  {'bucket':<22}{'items':>9}{'lines':>9}{'entries':>9}  statement / ledger totals"]
    for bucket in BUCKETS:
        b = summary["buckets"][bucket]
        st = {t["currency"]: t["value"] for t in b["statement_totals"]}
        lg = {t["currency"]: t["value"] for t in b["ledger_totals"]}
        money = "; ".join(f"{Money(st.get(c, 0), c)} / {Money(lg.get(c, 0), c)}" for c in sorted(set(st) | set(lg)))
        lines.append(f"  {bucket:<22}{b['items']:>9}{b['statement']:>9}{b['ledger']:>9}  {money}")
    exc = summary.get("exceptions")
    if exc:
        lines.append(f"  exceptions queued: {exc['new']} new, {exc['seen_before']} seen before")
    return "\n".join(lines)


def check_tolerances(amount_tolerance_minor: int, date_window_days: int) -> MatchConfig:
    """A MatchConfig from user input; ValidationError (422) rather than ValueError."""
    try:
        return MatchConfig(amount_tolerance_minor=amount_tolerance_minor, date_window_days=date_window_days)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
