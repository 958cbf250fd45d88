"""Statement imports and three-way reconciliation runs, stored.

- :func:`import_statement`: keep a provider or bank statement (under
  ``$LEDGER_HOME/statements/<statement id>``, 0600), parse it once to count its lines and
  per-row errors;
- :func:`run_reconciliation`: parse the statement, build the ledger side from the settlements
  store and the chain state of each operation (:func:`ledger_entries`, the run owner's own
  entries only), match them with the
  engine (:func:`settlement.domains.reconciliation.engine.reconcile`), and store the run (summary with totals
  per currency, a bounded sample of row errors) and its exceptions in the queue;
- :func:`report_document` / :func:`report_csv` / :func:`summary_text`: the stored report as JSON,
  the exceptions as CSV, and a short text summary.

Tenancy: statements, runs and their exceptions belong to a member (``owner``). Every reader takes
``owner`` explicitly: a member id limits it to that member's rows (another member's row is "not
found", exactly like a missing one), ``None`` reads across members (the roles docs/api.md names).
Runs and imports always act for one owner.

Statement kinds (the CLI's ``--provider``): ``alipay`` (Alipay 业务明细 bill), ``wechatpay`` (WeChat
Pay trade bill), ``normalized`` (the normalized CSV), ``camt053`` (ISO 20022 bank statement).
"""

from __future__ import annotations

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

from settlement.core.csv_safe import safe_writer
from settlement.core.errors import (
    InvalidCursorError,
    PayloadTooLargeError,
    ReconciliationRunNotFoundError,
    StatementFormatError,
    StatementNotFoundError,
    ValidationError,
)
from settlement.core.money import Money
from settlement.core.timestamps import utc_text
from settlement.domains.anchoring import digest_changed
from settlement.store.paging import keyset_page
from settlement.core.private_files import private_dir, private_file
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
OWNER_CHARS_MAX = 64
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
    return private_dir(runtime.home / "statements")


def _statement_path(runtime: Runtime, stmt: StatementImport) -> Path:
    """Where the statement's bytes are: one file per import (named by its id, never by its
    content, so two members' identical files stay two files); imports made before tenancy were
    kept by content hash."""
    folder = _statements_dir(runtime)
    path = folder / stmt.id
    return path if path.exists() else folder / stmt.sha256


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
    # depend on it. The queue namespaces them per owner (store_run_exceptions).
    return f"{kind}:{sha256[:12]}"


def _check_kind(kind: str) -> str:
    if kind not in STATEMENT_KINDS:
        raise StatementFormatError(f"unknown statement kind {str(kind)[:32]!r}", allowed=list(STATEMENT_KINDS))
    return kind


def import_statement(runtime: Runtime, kind: str, data: bytes | str | os.PathLike, *, owner: str, filename: str,
                     uploaded_by: str, account: str | None = None,
                     progress: Progress = _no_progress) -> tuple[StatementImport, ParseResult]:
    """Keep a statement of ``owner`` (bytes, or a file path that is copied) and parse it once. A
    file that cannot be read at all raises StatementFormatError (nothing is stored); broken rows
    become per-row errors. Returns the stored import and the parse result."""
    _check_kind(kind)
    _check_owner(owner)
    folder = _statements_dir(runtime)
    statement_id = uuid.uuid4().hex
    tmp = folder / f".upload-{statement_id}"
    digest, size = hashlib.sha256(), 0
    try:
        with private_file(tmp) as out:
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
        path = folder / statement_id
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    progress("parse", 0, None)
    parsed = _parse(kind, path, _source(kind, sha))
    progress("parse", len(parsed.lines), len(parsed.lines))
    row = StatementImport(id=statement_id, owner=owner, format=parsed.format, provider=kind, account=account,
                          filename=(os.path.basename(filename) or "statement")[:FILENAME_CHARS_MAX],
                          size_bytes=size, sha256=sha, encoding=parsed.encoding, line_count=len(parsed.lines),
                          row_error_count=len(parsed.errors), uploaded_by=uploaded_by[:64])
    with runtime.db.transaction() as session:
        session.add(row)
        digest_changed(session, "reconciliation.statement", row)
    return row, parsed


def _check_owner(owner: str) -> None:
    if not isinstance(owner, str) or not 1 <= len(owner) <= OWNER_CHARS_MAX:
        raise ValueError(f"an owner is a member id of 1..{OWNER_CHARS_MAX} characters, got {str(owner)[:80]!r}")


def _visible(row_owner: str, owner: str | None) -> bool:
    return owner is None or row_owner == owner


def get_statement(session: Session, statement_id: str, *, owner: str | None) -> StatementImport:
    """The statement, if ``owner`` may see it (``None``: any owner's); otherwise not found."""
    row = session.get(StatementImport, statement_id) if isinstance(statement_id, str) and len(statement_id) <= 32 \
        else None
    if row is None or not _visible(row.owner, owner):
        raise StatementNotFoundError(f"no statement {str(statement_id)[:40]!r}")
    return row


def _page(session: Session, q: Any, time_col: Any, id_col: Any, limit: int,
          cursor: str | None) -> tuple[list[Any], str | None]:
    """One page, newest first, and the next page's cursor (``settlement.store.paging``)."""
    return keyset_page(session, q, time_col, id_col, limit, cursor, limit_max=LIST_MAX)


def list_statements(session: Session, limit: int = 50, *, owner: str | None,
                    cursor: str | None = None) -> tuple[list[StatementImport], str | None]:
    """A page of statements, newest first, and the next page's cursor."""
    q = select(StatementImport)
    if owner is not None:
        q = q.where(StatementImport.owner == owner)
    return _page(session, q, StatementImport.uploaded_at, StatementImport.id, limit, cursor)


def run_reconciliation(runtime: Runtime, statement_id: str, *, owner: str, started_by: str,
                       config: MatchConfig | None = None, parsed: ParseResult | None = None,
                       since: datetime | None = None, until: datetime | None = None,
                       progress: Progress = _no_progress) -> ReconciliationRun:
    """Three-way run, for ``owner``, of one of its stored statements against its own ledger
    entries (journal + chain state; see :func:`ledger_entries`). The statement's own provider (and
    account) limits the ledger side further, except for ``normalized`` and ``camt053``
    statements, which may list any provider's money."""
    _check_owner(owner)
    config = config or MatchConfig()
    with runtime.db.read() as session:
        stmt = get_statement(session, statement_id, owner=owner)
        session.expunge(stmt)
    if parsed is None:
        path = _statement_path(runtime, stmt)
        if not path.exists():
            raise StatementNotFoundError(f"the file of statement {statement_id} is gone from {path.parent}")
        progress("parse", 0, None)
        parsed = _parse(stmt.provider or "normalized", path, _source(stmt.provider or "normalized", stmt.sha256))
        progress("parse", len(parsed.lines), len(parsed.lines))
    provider = stmt.provider if stmt.provider in ("alipay", "wechatpay") else None
    progress("ledger", 0, None)
    with runtime.db.read() as session:
        ledger = ledger_entries(session, member=owner, provider=provider, account=stmt.account if provider else None,
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
            session, report.run_id, report.exceptions(), owner=owner, limit=EXCEPTIONS_STORED_MAX,
            progress=lambda n: progress("store", n, exceptions_total))
        summary.update(statement={"id": stmt.id, "kind": stmt.provider, "format": stmt.format,
                                  "filename": stmt.filename, "sha256": stmt.sha256},
                       exceptions={"total": exceptions_total, "new": new, "seen_before": seen,
                                   "stored_truncated": truncated},
                       ledger_filter={"member": owner, "provider": provider,
                                      "account": stmt.account if provider else None})
        run = ReconciliationRun(
            id=report.run_id, owner=owner, statement_id=stmt.id, provider=stmt.provider, account=stmt.account,
            config=asdict(config), status="completed", summary=summary,
            row_errors=[{"source": e.source, "line_no": e.line_no, "reason": e.reason[:300], "raw": e.raw[:300]}
                        for e in report.statement_errors[:ROW_ERRORS_STORED_MAX]],
            ledger_entries=len(ledger), exception_count=exceptions_total, started_by=started_by[:64],
            started_at=started, finished_at=_now())
        session.add(run)
        digest_changed(session, "reconciliation.run", run)
    progress("store", exceptions_total, exceptions_total)
    return run


def get_run(session: Session, run_id: str, *, owner: str | None) -> ReconciliationRun:
    """The run, if ``owner`` may see it (``None``: any owner's); otherwise not found."""
    row = session.get(ReconciliationRun, run_id) if isinstance(run_id, str) and len(run_id) <= 32 else None
    if row is None or not _visible(row.owner, owner):
        raise ReconciliationRunNotFoundError(f"no reconciliation run {str(run_id)[:40]!r}")
    return row


def list_runs(session: Session, limit: int = 50, *, owner: str | None,
              cursor: str | None = None) -> tuple[list[ReconciliationRun], str | None]:
    """A page of runs, newest first, and the next page's cursor."""
    q = select(ReconciliationRun)
    if owner is not None:
        q = q.where(ReconciliationRun.owner == owner)
    return _page(session, q, ReconciliationRun.started_at, ReconciliationRun.id, limit, cursor)


def _run_exceptions(session: Session, run: ReconciliationRun, limit: int) -> tuple[list[ReconciliationException], bool]:
    # The run's owner's items only: an item another member's run happened to note is not in it.
    out: list[ReconciliationException] = []
    after = 0
    while len(out) < limit:
        page = list_exceptions(session, owner=run.owner, run_id=run.id, after_id=after, limit=500)
        out.extend(page.items)
        if page.next_cursor is None:
            return out[:limit], False
        after = page.next_cursor
    return out[:limit], True


def report_document(session: Session, run_id: str, *, owner: str | None,
                    exceptions_max: int = REPORT_EXCEPTIONS_MAX) -> dict[str, Any]:
    """The run's report: summary (buckets, counts, totals per currency), row errors, exceptions
    (with their queue state and resolution)."""
    run = get_run(session, run_id, owner=owner)
    items, truncated = _run_exceptions(session, run, exceptions_max)
    doc = dict(run.summary)
    doc.update(status=run.status, owner=run.owner, started_by=run.started_by,
               finished_at=utc_text(run.finished_at),
               row_errors=list(run.row_errors), exceptions=[exception_json(r) for r in items])
    if truncated:
        doc["exceptions_truncated"] = True
    return doc


CSV_COLUMNS = ("exception_id", "state", "bucket", "reason", "kind", "reference", "provider_txn_id", "currency",
               "statement_amount_minor", "ledger_amount_minor", "difference_minor", "statement_source",
               "statement_line_nos", "statement_status", "ledger_entry_id", "ledger_status", "chain_state",
               "tx_hash", "booked_at", "resolved_by", "resolved_at", "resolution_note")


def report_csv(session: Session, run_id: str, *, owner: str | None) -> str:
    """The run's exceptions, one CSV row each (amounts in minor units; cells a spreadsheet would
    run as formulas neutralized, see :mod:`.safe_csv`)."""
    run = get_run(session, run_id, owner=owner)
    items, _ = _run_exceptions(session, run, EXCEPTIONS_STORED_MAX)
    buf = io.StringIO()
    writer = safe_writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in items:
        values = {c: getattr(r, c, None) for c in CSV_COLUMNS}
        values["statement_line_nos"] = " ".join(map(str, r.statement_line_nos or []))
        values["resolved_at"] = utc_text(r.resolved_at)
        writer.writerow(values[c] for c in CSV_COLUMNS)
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
