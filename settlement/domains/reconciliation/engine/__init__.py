"""Reconciliation: provider/bank statements against the ledger journal and its chain facts.

No I/O beyond reading the files it is given. Inputs are :class:`StatementLine` s (from the
parsers) and :class:`LedgerEntry` s (exported by the store layer), output is a
:class:`ReconciliationReport` whose non-matched items are :class:`ExceptionRecord` s. Large
normalized CSV files are reconciled column-wise with Arrow and NumPy
(:mod:`settlement.domains.reconciliation.engine.columnar`), with the same report as the pure-Python path.
"""

from settlement.domains.reconciliation.engine.matcher import MatchConfig, reconcile
from settlement.domains.reconciliation.engine.model import (
    CHAIN_STATES,
    KINDS,
    STATUSES,
    LedgerEntry,
    LedgerTable,
    ParseResult,
    RowError,
    StatementLine,
    StatementTable,
    make_ledger_entry,
    make_statement_line,
)
from settlement.domains.reconciliation.engine.parsers import (
    parse_alipay_bill,
    parse_camt053,
    parse_ledger_csv,
    parse_normalized_csv,
    parse_statement,
    parse_wechat_bill,
    sniff_format,
    write_ledger_csv,
    write_normalized_csv,
)
from settlement.domains.reconciliation.engine.report import (
    BUCKETS,
    EXCEPTION_BUCKETS,
    ExceptionRecord,
    ExceptionResolution,
    ReconciliationReport,
    ReconItem,
    ResolutionAction,
)
from settlement.domains.reconciliation.engine.runner import reconcile_files

__all__ = [
    "BUCKETS", "CHAIN_STATES", "EXCEPTION_BUCKETS", "KINDS", "STATUSES", "ExceptionRecord",
    "ExceptionResolution", "LedgerEntry", "LedgerTable", "MatchConfig", "ParseResult", "ReconItem",
    "ReconciliationReport", "ResolutionAction", "RowError", "StatementLine", "StatementTable",
    "make_ledger_entry", "make_statement_line", "parse_alipay_bill", "parse_camt053", "parse_ledger_csv",
    "parse_normalized_csv", "parse_statement", "parse_wechat_bill", "reconcile", "reconcile_files",
    "sniff_format", "write_ledger_csv", "write_normalized_csv",
]
