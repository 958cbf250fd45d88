"""File-to-report entry point for the CLI/API layer: parse both sides, then match."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from settlement.domains.reconciliation.engine import columnar as col
from settlement.domains.reconciliation.engine.matcher import MatchConfig, reconcile
from settlement.domains.reconciliation.engine.parsers import (
    FORMAT_NORMALIZED,
    SNIFF_BYTES,
    parse_ledger_csv,
    parse_statement,
    sniff_format,
)
from settlement.domains.reconciliation.engine.report import ReconciliationReport


def reconcile_files(statement_path: str | os.PathLike, ledger_path: str | os.PathLike, *,
                    statement_format: str | None = None,
                    config: MatchConfig | None = None,
                    columnar: bool | None = None) -> ReconciliationReport:
    """Parse a statement file (format sniffed when None) and a ledger export CSV; reconcile them.

    A normalized statement CSV is reconciled column-wise in Arrow
    (:mod:`settlement.domains.reconciliation.engine.columnar`) when both files together reach
    ``COLUMNAR_MIN_BYTES`` (``columnar=None``), always (``True``) or never (``False``). Same report
    either way; the columnar report's tables read the files again only if someone iterates the
    exact matches.
    """
    fmt = statement_format
    if fmt is None:
        with Path(statement_path).open("rb") as f:
            fmt = sniff_format(f.read(SNIFF_BYTES))
    if fmt == FORMAT_NORMALIZED and columnar is not False:
        gc_was_enabled = gc.isenabled()
        gc.disable()  # importing NumPy and Arrow makes many objects and no garbage worth a collection
        try:
            big = os.path.getsize(statement_path) + os.path.getsize(ledger_path) >= col.COLUMNAR_MIN_BYTES
            report = None
            if col.columnar_available() and (columnar or big):
                report = col.reconcile_files_columnar(statement_path, ledger_path, config)
        finally:
            if gc_was_enabled:
                gc.enable()
        if report is not None:
            return report
    t0 = time.perf_counter()
    statement = parse_statement(statement_path, fmt)
    t1 = time.perf_counter()
    ledger = parse_ledger_csv(ledger_path)
    t2 = time.perf_counter()
    report = reconcile(statement.lines, ledger.lines, config, statement_errors=statement.errors,
                       ledger_errors=ledger.errors)
    report.timings.update(statement_parsed=t1 - t0, ledger_parsed=t2 - t0,
                          report_done=time.perf_counter() - t0)
    return report
