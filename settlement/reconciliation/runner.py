"""File-to-report entry point for the CLI/API layer: parse both sides, then match."""

from __future__ import annotations

import os

from settlement.reconciliation.matcher import MatchConfig, reconcile
from settlement.reconciliation.parsers import parse_ledger_csv, parse_statement
from settlement.reconciliation.report import ReconciliationReport


def reconcile_files(statement_path: str | os.PathLike, ledger_path: str | os.PathLike, *,
                    statement_format: str | None = None,
                    config: MatchConfig | None = None) -> ReconciliationReport:
    """Parse a statement file (format sniffed when None) and a ledger export CSV; reconcile them."""
    statement = parse_statement(statement_path, statement_format)
    ledger = parse_ledger_csv(ledger_path)
    return reconcile(statement.lines, ledger.lines, config, statement_errors=statement.errors,
                     ledger_errors=ledger.errors)
