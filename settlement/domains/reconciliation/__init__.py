"""Reconciliation, stored: statement imports, three-way runs, reports and the exceptions queue.

The matching itself is :mod:`settlement.domains.reconciliation.engine` (pure); this package feeds it from the
store (statement files kept under ``$LEDGER_HOME/statements``, ledger entries built from the
settlements store and the chain state of each operation) and keeps what it found: runs with their
summaries, and an exceptions queue that also receives the verified callbacks the ledger could not
apply. A person resolves an item with a note; who and when are kept, append-only, and each
resolution's digest is journaled for anchoring (``reconciliation.resolution``).
"""

from settlement.domains.reconciliation.engine import ParseResult
from settlement.domains.reconciliation.exceptions import (
    ORIGIN_CALLBACK,
    ORIGIN_RUN,
    ExceptionPage,
    add_callback_exception,
    callback_exception_id,
    exception_json,
    get_exception,
    list_exceptions,
    resolutions_of,
    resolve_exception,
    store_run_exceptions,
)
from settlement.domains.reconciliation.ledger_entries import ledger_entries
from settlement.domains.reconciliation.runs import (
    STATEMENT_BYTES_MAX,
    STATEMENT_KINDS,
    check_tolerances,
    get_run,
    get_statement,
    import_statement,
    list_runs,
    list_statements,
    report_csv,
    report_document,
    run_reconciliation,
    summary_text,
)

__all__ = [
    "ParseResult",
    "ORIGIN_CALLBACK", "ORIGIN_RUN", "STATEMENT_BYTES_MAX", "STATEMENT_KINDS", "ExceptionPage",
    "add_callback_exception", "callback_exception_id", "check_tolerances", "exception_json", "get_exception",
    "get_run", "get_statement", "import_statement", "ledger_entries", "list_exceptions", "list_runs",
    "list_statements", "report_csv", "report_document", "resolutions_of", "resolve_exception",
    "run_reconciliation", "store_run_exceptions", "summary_text",
]
