"""The columnar run as a whole: :func:`reconcile_files_columnar` scans both files, numbers the ids,
runs rule 1 on arrays, hands the open rows to the matcher and builds the report."""

from __future__ import annotations

import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from settlement.domains.reconciliation.engine.columnar.common import (
    _CODE_VALUES,
    _CURRENCY_CODES,
    LEDGER,
    STATEMENT,
    columnar_available,
    np,
)
from settlement.domains.reconciliation.engine.columnar.rule_one import _id_indices, rule1_arrays
from settlement.domains.reconciliation.engine.columnar.scan import _Scan, _submit_pieces
from settlement.domains.reconciliation.engine.columnar.tables import (
    LazyLedgerTable,
    LazyStatementTable,
    _known_columns,
    _loader,
    _stamp,
)
from settlement.domains.reconciliation.engine.matcher import MatchConfig, _Run
from settlement.domains.reconciliation.engine.model import LedgerEntry, StatementLine
from settlement.domains.reconciliation.engine.parsers.normalized import parse_ledger_csv, parse_normalized_csv
from settlement.domains.reconciliation.engine.report import BUCKETS, MATCHED, ReconciliationReport

SCAN_THREADS = 2  # threads checking pieces (Arrow and NumPy release the GIL)
COLUMNAR_MIN_BYTES = 16 * 1024 * 1024  # both files together: below this the serial path is as fast



def reconcile_files_columnar(statement_path: str | os.PathLike, ledger_path: str | os.PathLike,
                             config: MatchConfig | None = None, *, statement_source: str = "normalized",
                             ledger_source: str = "ledger") -> ReconciliationReport | None:
    """The report of ``reconcile_files`` for a normalized statement CSV, computed as described in the
    package docstring; None when this path does not apply (the caller then runs the serial path)."""
    if not columnar_available():
        return None
    config = config or MatchConfig()
    s_path, l_path = os.fspath(statement_path), os.fspath(ledger_path)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of array slots, no cycles
    try:
        s_scan, l_scan = _Scan(s_path, STATEMENT, statement_source), _Scan(l_path, LEDGER, ledger_source)
        s_fd = l_fd = -1
        pool = ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="reconcile")
        try:
            try:
                s_fd, l_fd = os.open(s_path, os.O_RDONLY), os.open(l_path, os.O_RDONLY)
                stamps = (_stamp(s_fd), _stamp(l_fd))
                s_futures = _submit_pieces(pool, s_scan, s_fd)
                l_futures = _submit_pieces(pool, l_scan, l_fd) if s_futures is not None else None
                if s_futures is None or l_futures is None:
                    for future in (s_futures or []) + (l_futures or []):
                        future.cancel()
                    return None
                s_scan.assemble([future.result() for future in s_futures])
                timings["statement_scanned"] = time.perf_counter() - t_start
                l_scan.assemble([future.result() for future in l_futures])
                if (_stamp(s_fd), _stamp(l_fd)) != stamps:
                    return None  # a file changed while it was read: the serial path reads it whole
            except (AssertionError, MemoryError):
                raise
            except Exception:  # noqa: BLE001 - header errors, unreadable files, amounts beyond int64:
                return None  # the serial path handles these and raises what it raises
            timings["scanned"] = time.perf_counter() - t_start
            s, l = s_scan.packed, l_scan.packed
            s_id, l_id, id_count = _id_indices(s["txn"], l["txn"], pool if SCAN_THREADS > 1 else None)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for fd in (s_fd, l_fd):
                if fd >= 0:
                    os.close(fd)
        timings["ids_encoded"] = time.perf_counter() - t_start
        r1 = rule1_arrays(s_id, s["kind"], s["amount_minor"], s["currency"], s["status"],
                          l_id, l["kind"], l["amount_minor"], l["currency"], l["status"], l["chain_state"], id_count)
        n_s, n_l = s_scan.n, l_scan.n
        bulk_s = np.flatnonzero(r1.exact)
        bulk_l = r1.pos[bulk_s]
        l_exact = np.zeros(n_l, bool)
        l_exact[bulk_l] = True
        if int(l_exact.sum()) != len(bulk_s):
            raise AssertionError("a ledger entry is paired by id with two statement lines")
        open_s = np.flatnonzero(~r1.exact)
        open_l = np.flatnonzero(~l_exact)
        timings["rule1_done"] = time.perf_counter() - t_start
        s_rows = dict(zip(open_s.tolist(), s_scan.rows(open_s)))
        l_rows = dict(zip(open_l.tolist(), l_scan.rows(open_l)))
        timings["open_rows_built"] = time.perf_counter() - t_start
        run = _Run(config, _open_columns(s_rows, STATEMENT), _open_columns(l_rows, LEDGER))
        run.adopt_rule1(n_s, n_l, bytearray(r1.exact.view(np.uint8)), bytearray(l_exact.view(np.uint8)),
                        dict(zip(open_s.tolist(), r1.pos[open_s].tolist())), bulk_s.tolist(), bulk_l.tolist(),
                        r1.dup_s, r1.dup_l)
        run.finish()
        timings["finish_done"] = time.perf_counter() - t_start
        st = LazyStatementTable(n_s, _known_columns(s, STATEMENT), s_rows,
                                _loader(s_path, parse_normalized_csv, statement_source, n_s, s["amount_minor"],
                                        stamps[0]))
        lt = LazyLedgerTable(n_l, _known_columns(l, LEDGER), l_rows,
                             _loader(l_path, parse_ledger_csv, ledger_source, n_l, l["amount_minor"], stamps[1]))
        report = ReconciliationReport(st, lt, config, run.bulk_s, run.bulk_l, run.records,
                                      s_scan.errors, l_scan.errors)
        report._totals = _totals(report, s, l, bulk_s, bulk_l)
        report.check_counts()
    finally:
        if gc_was_enabled:
            gc.enable()
    timings["report_done"] = time.perf_counter() - t_start
    report.timings.update(timings)
    return report


def _open_columns(rows: dict[int, tuple], side: str) -> tuple:
    """The matcher's columns, as mappings holding just the open rows."""
    if side == STATEMENT:
        fields = ("provider_txn_id", "reference", "kind", "amount_minor", "currency", "status", "booked_at")
        at = [StatementLine._fields.index(f) for f in fields]
    else:
        fields = ("provider_txn_id", "reference", "kind", "amount_minor", "currency", "status", "booked_at",
                  "chain_state")
        at = [LedgerEntry._fields.index(f) for f in fields]
    return tuple({i: row[k] for i, row in rows.items()} for k in at)


def _totals(report: ReconciliationReport, s: dict[str, Any], l: dict[str, Any], bulk_s: Any, bulk_l: Any) -> dict:
    """``report.totals()``, with the exact matches (rows ``bulk_s``/``bulk_l``) summed per currency
    in NumPy; exactly: an int64 sum only where it cannot overflow, Python ints otherwise."""
    out: dict[str, dict[str, dict[str, int]]] = {b: {"statement": {}, "ledger": {}} for b in BUCKETS}
    for side, packed, rows in (("statement", s, bulk_s), ("ledger", l, bulk_l)):
        amounts, currencies = packed["amount_minor"][rows], packed["currency"][rows]
        present = np.flatnonzero(np.bincount(currencies, minlength=len(_CURRENCY_CODES))).tolist()
        for code in present:
            part = amounts if len(present) == 1 else amounts[currencies == code]
            if len(part) * int(part.max()) < 2**63:
                total = int(part.sum())
            else:
                total = sum(part.tolist())
            out[MATCHED][side][_CODE_VALUES["currency"][code]] = total  # type: ignore[index]
    st, lt = report.statement, report.ledger
    for bucket, _reason, s_idx, l_idx in report.records:
        side_totals = out[bucket]["statement"]
        for i in s_idx:
            line = st[i]
            side_totals[line.currency] = side_totals.get(line.currency, 0) + line.amount_minor
        if l_idx >= 0:
            entry = lt[l_idx]
            side_totals = out[bucket]["ledger"]
            side_totals[entry.currency] = side_totals.get(entry.currency, 0) + entry.amount_minor
    return out
