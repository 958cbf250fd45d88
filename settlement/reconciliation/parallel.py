"""Two-process reconciliation of a normalized statement CSV against a ledger export CSV.

What the serial path (:func:`parse_normalized_csv` + :func:`parse_ledger_csv` + :func:`reconcile`)
does, on two cores and without building a million-row table in the parent:

1. **Scan.** One forked worker per file reads it as bytes and checks every row exactly as the
   parsers do (same blocks-of-lines logic: a clean block is split on ``b","`` and validated column by
   column, anything else goes row by row through the parsers' own slow path). It sends back only
   what rule 1 needs, packed: the provider ids as one ``\\n``-joined UTF-8 blob, kind / currency /
   status / chain state as one byte code per row, amounts as an ``array('q')``, plus the row errors.
2. **Rule 1** (ids, duplicates, exact matches) runs in the parent on those columns.
3. **Open rows.** The parent asks each worker for the full rows it did not match exactly (about 1.5%
   in a typical run); the workers still hold their split fields and build just those rows. Rule 2,
   the pairings and every exception record only ever look at those rows.
4. **Report.** The report's tables are :class:`LazyStatementTable` / :class:`LazyLedgerTable`: their
   length, the open rows and the amount/currency/id/kind/status columns are there at once (counts,
   totals and exceptions cost nothing more); anything else (iterating the exact matches, ``columns``)
   parses the file once with the ordinary parser, after checking the file has not changed.

The result is the serial path's report, bucket for bucket and record for record
(tests/reconciliation/test_parallel.py checks that on random files). The path is only taken for
UTF-8 files whose header line is plain; anything else (GB18030, a worker failing, a header error)
makes :func:`reconcile_files_parallel` return None and the caller runs the serial path, which
raises the same errors it always did.
"""

from __future__ import annotations

import csv
import gc
import multiprocessing
import os
import sys
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from settlement.money import AMOUNT_MINOR_MAX, CURRENCY_EXPONENTS
from settlement.reconciliation.matcher import MatchConfig, _Run
from settlement.reconciliation.model import (
    CHAIN_STATES,
    KINDS,
    STATUSES,
    LedgerEntry,
    LedgerTable,
    StatementLine,
    StatementTable,
)
from settlement.reconciliation.parsers.normalized import (
    _CONVERTERS,
    _LEDGER_REQUIRED,
    DATETIME_CACHE_MAX,
    ENCODING_SAMPLE_BYTES,
    LEDGER_COLUMNS,
    STATEMENT_COLUMNS,
    _Layout,
    _RowFault,
    _slow_block,
    parse_ledger_csv,
    parse_normalized_csv,
    sample_encoding,
)
from settlement.reconciliation.report import ReconciliationReport

SCAN_BLOCK_BYTES = 4 * 1024 * 1024  # bytes split per step in a worker
PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # both files together: below this the serial path is faster
WORKER_TIMEOUT_S = 3600.0  # a worker silent this long is treated as failed

STATEMENT = "statement"
LEDGER = "ledger"

# byte codes of the packed columns; 0 is "None" (chain state) and never a valid kind/status/currency
_KIND_CODES = (None, *KINDS)
_STATUS_CODES = (None, *STATUSES)
_CHAIN_CODES = (None, *CHAIN_STATES)
_CURRENCY_CODES = (None, *sorted(CURRENCY_EXPONENTS))
if len(_CURRENCY_CODES) > 256:
    raise AssertionError("currency codes must fit in one byte")


def _code_table(values: tuple, empty_is_none: bool = False) -> dict:
    """value (str and ASCII bytes) -> byte code; the keys double as the validation set."""
    table: dict = {}
    for code, value in enumerate(values):
        if value is None:
            if empty_is_none:
                table[""] = table[b""] = code
            continue
        table[value] = table[value.encode("ascii")] = code
    return table


_CODE_TABLES: dict[str, dict] = {
    "kind": _code_table(_KIND_CODES),
    "status": _code_table(_STATUS_CODES),
    "currency": _code_table(_CURRENCY_CODES),
    "chain_state": _code_table(_CHAIN_CODES, empty_is_none=True),
}
_CODE_VALUES: dict[str, tuple] = {"kind": _KIND_CODES, "status": _STATUS_CODES, "currency": _CURRENCY_CODES,
                                  "chain_state": _CHAIN_CODES}


# ---- worker side ---------------------------------------------------------------------------------

class _Scanner:
    """One file, scanned in a worker: packed match columns now, full rows on request later."""

    def __init__(self, path: str, side: str, source: str) -> None:
        self.path, self.side, self.source = path, side, source
        if side == STATEMENT:
            self.wanted, self.required = STATEMENT_COLUMNS, STATEMENT_COLUMNS
        else:
            self.wanted, self.required = LEDGER_COLUMNS, _LEDGER_REQUIRED
        self.n = 0
        self.block_first_row: list[int] = []  # per block that produced rows
        self.blocks: list[tuple] = []  # ("fast", fields, first_line_no, block bytes) | ("slow", rows, names)
        self.ctx: dict = {"dt_cache": {}}
        self.dt_valid: set = set()
        self.lines_of: dict[int, list] = {}  # block -> its lines (statement rows' raw text)
        self.seen_ids: set[bytes] = set()
        self.repeated_ids: set[bytes] | None = set()  # provider ids on two rows or more; None: unknown

    # -- phase 1 -----------------------------------------------------------------------------------
    def scan(self) -> dict | None:
        data = Path(self.path).read_bytes()
        encoding, had_bom = sample_encoding(data[:ENCODING_SAMPLE_BYTES])
        if encoding != "utf-8":
            return None
        start = 3 if had_bom else 0
        nl = data.find(b"\n", start)
        if nl < 0:
            nl = len(data)  # a header and nothing else
        header = data[start:nl]
        if b"\r" in header[:-1]:
            return None  # the text reader would end the header line at that \r
        header_text = header.decode("utf-8", "surrogateescape")
        if not header_text.strip():
            return None
        self.layout = _Layout(next(csv.reader([header_text.rstrip("\r\n")])), self.wanted, self.required,
                              self.source, self.side == STATEMENT)
        layout = self.layout
        names = [name for name, _ in layout.columns]
        packed = [name for name in ("kind", "currency", "status", "chain_state") if name in names]
        codes: dict[str, bytearray] = {name: bytearray() for name in packed}
        amounts: list = []  # per block: array('q') or a list of ints
        txn_parts: list[bytes] = []
        errors: list = []
        line_no = 2
        end = len(data) - 1 if data.endswith(b"\n") else len(data)
        pos = nl + 1
        while pos < end:
            limit = pos + SCAN_BLOCK_BYTES
            if limit >= end:
                cut = end
            else:
                cut = data.rfind(b"\n", pos, limit)
                if cut < 0:  # one line longer than a block
                    cut = data.find(b"\n", limit, end)
                    if cut < 0:
                        cut = end
            block = data[pos:cut]
            pos = cut + 1
            count = block.count(b"\n") + 1
            fast = self._fast(block, count, codes, amounts, txn_parts, line_no)
            if not fast:
                self._slow(block, line_no, codes, amounts, txn_parts, errors)
            line_no += count
        del data
        out: dict[str, Any] = {"n": self.n, "errors": errors, "encoding": encoding,
                               "txn": b"\n".join(txn_parts),
                               "repeated": None if self.repeated_ids is None else
                               [v.decode("utf-8", "surrogateescape") for v in self.repeated_ids]}
        self.seen_ids = set()
        for name in packed:
            out[name] = bytes(codes[name])
        if all(type(part) is array for part in amounts):
            out["amount_minor"] = b"".join(part.tobytes() for part in amounts)
        else:  # some block has an amount >= 2**63 (or came row by row): plain ints
            merged: list[int] = []
            for part in amounts:
                merged += part
            if max(merged, default=0) < 2**63:
                out["amount_minor"] = array("q", merged).tobytes()
            else:
                out["amount_minor"] = merged
        return out

    def _fast(self, block: bytes, count: int, codes: dict, amounts: list, txn_parts: list,
              line_no: int) -> bool:
        if b'"' in block or b"\r" in block:
            return False
        fields: list
        if block.isascii():
            fields = block.replace(b"\n", b",").split(b",")
            empty: bytes | str = b""
        else:
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                return False
            fields = text.replace("\n", ",").split(",")
            empty = ""
        width = self.layout.width
        if len(fields) != width * count:
            return False
        checked: dict[str, Any] = {}
        for name, index in self.layout.columns:
            col = fields[index::width]
            if name in ("provider_txn_id", "reference", "tx_hash"):
                if name == "provider_txn_id":
                    checked[name] = col
                continue
            if name == "entry_id":
                if empty in col:
                    return False
            elif name in _CODE_TABLES:
                table = _CODE_TABLES[name]
                distinct = set(col)
                if not distinct <= table.keys():
                    return False
                if len(distinct) == 1:
                    checked[name] = bytes((table[distinct.pop()],)) * count
                else:
                    checked[name] = bytes(map(table.__getitem__, col))
            elif name == "amount_minor":
                joined = empty.join(col)
                if not (joined.isascii() and joined.isdigit()):
                    return False
                try:  # int() refuses an empty field; array('q') anything >= 2**63 (< AMOUNT_MINOR_MAX)
                    checked[name] = array("q", map(int, col))
                except ValueError:
                    return False
                except OverflowError:
                    values = list(map(int, col))
                    if max(values) > AMOUNT_MINOR_MAX:
                        return False
                    checked[name] = values
            elif name == "booked_at":
                if not self._dates_valid(col):
                    return False
            else:  # pragma: no cover - every column of both formats is handled above
                raise AssertionError(f"unhandled column {name}")
        # the block is good: commit it
        for name, packed in codes.items():
            packed += checked[name] if name in checked else bytes(count)  # absent chain_state: None
        amounts.append(checked["amount_minor"])
        txn = checked.get("provider_txn_id")
        if txn is None:
            txn_parts.append(b"\n" * (count - 1))
        elif empty == b"":
            txn_parts.append(b"\n".join(txn))
            self._note_ids(txn)
        else:
            joined = "\n".join(txn).encode("utf-8")
            txn_parts.append(joined)
            self._note_ids(joined.split(b"\n"))
        self.block_first_row.append(self.n)
        # statement rows carry their source line; the ledger's raw block is not kept
        self.blocks.append(("fast", fields, line_no, block if self.side == STATEMENT else None))
        self.n += count
        return True

    def _note_ids(self, ids: list[bytes]) -> None:
        """Track the provider ids (UTF-8 bytes, b"" = none) that occur on more than one row: one
        set update per block; a block that adds fewer ids than it has is looked at closely. When
        that does not explain it (an id repeating across blocks), the hint is dropped (None) and
        the parent finds the repeats itself."""
        if self.repeated_ids is None:
            return
        seen = self.seen_ids
        before = len(seen)
        seen.update(ids)
        expected = len(ids)
        if b"" in seen:
            seen.discard(b"")
            expected -= ids.count(b"")
        missing = expected - (len(seen) - before)
        if missing:
            counts: dict[bytes, int] = {}
            for v in ids:
                if v:
                    counts[v] = counts.get(v, 0) + 1
            in_block = {v: c for v, c in counts.items() if c > 1}
            if sum(in_block.values()) - len(in_block) == missing:
                self.repeated_ids.update(in_block)
            else:
                self.repeated_ids = None

    def _dates_valid(self, col: list) -> bool:
        valid = self.dt_valid
        if len(valid) > DATETIME_CACHE_MAX:
            valid.clear()
        if valid.issuperset(col):
            return True
        fromiso = datetime.fromisoformat
        new = set(col).difference(valid)
        try:
            for text in new:
                fromiso(text.decode("ascii") if type(text) is bytes else text)
        except ValueError:
            return False
        valid.update(new)
        return True

    def _slow(self, block: bytes, first_line_no: int, codes: dict, amounts: list, txn_parts: list,
              errors: list) -> None:
        rows: list[tuple[int, list, str]] = []
        _slow_block(block.decode("utf-8", "surrogateescape"), first_line_no, self.layout, self.ctx, self.source,
                    lambda n, values, text: rows.append((n, values, text)), errors)
        if not rows:
            return
        names = [name for name, _ in self.layout.columns] + self.layout.absent
        at = {name: k for k, name in enumerate(names)}
        for name, packed in codes.items():
            table, k = _CODE_TABLES[name], at[name]
            packed += bytes(table[values[k] if values[k] is not None else ""] for _, values, _ in rows)
        k = at["amount_minor"]
        amounts.append([values[k] for _, values, _ in rows])
        k = at["provider_txn_id"]
        joined = "\n".join(values[k] or "" for _, values, _ in rows).encode("utf-8", "surrogateescape")
        txn_parts.append(joined)
        self._note_ids(joined.split(b"\n"))
        self.block_first_row.append(self.n)
        self.blocks.append(("slow", rows, names))
        self.n += len(rows)

    # -- phase 2 -----------------------------------------------------------------------------------
    def prepare_rows(self) -> None:
        """Statement rows carry their source line: split the fast blocks into lines now."""
        if self.side != STATEMENT:
            return
        for b, block in enumerate(self.blocks):
            if block[0] == "fast" and b not in self.lines_of:
                self.lines_of[b] = block[3].split(b"\n")

    def rows(self, wanted: list[int]) -> list[tuple]:
        """The full rows (plain tuples in the table's field order) at positions ``wanted``."""
        out = []
        lines_of = self.lines_of
        one = {name: conv[1] for name, conv in _CONVERTERS.items()}
        layout, width = self.layout, self.layout.width
        statement = self.side == STATEMENT
        for r in wanted:
            b = bisect_right(self.block_first_row, r) - 1
            k = r - self.block_first_row[b]
            block = self.blocks[b]
            if block[0] == "slow":
                line_no, values, text = block[1][k]
                by_name = dict(zip(block[2], values))
            else:
                _, fields, first_line_no, raw_block = block
                line_no = first_line_no + k
                by_name = {}
                for name, index in layout.columns:
                    v = fields[k * width + index]
                    if type(v) is bytes:
                        v = v.decode("utf-8")
                    try:
                        by_name[name] = one[name](v, self.ctx)
                    except _RowFault as exc:  # pragma: no cover - the block was validated
                        raise AssertionError(f"row {r}: {exc}") from None
                for name in layout.absent:
                    by_name[name] = None
                text = ""
                if statement:
                    if b not in lines_of:
                        lines_of[b] = raw_block.split(b"\n")
                    text = lines_of[b][k].decode("utf-8")
            values = [by_name[name] for name in self.wanted]
            out.append((self.source, line_no, *values, text) if statement else tuple(values))
        return out


def _worker(conn: Any, path: str, side: str, source: str) -> None:
    try:
        gc.disable()
        t0 = time.perf_counter()
        scanner = _Scanner(path, side, source)
        try:
            payload = scanner.scan()
        except Exception:  # header errors and the like: the serial path raises them properly
            payload = None
        if payload is not None:
            payload["scan_s"] = time.perf_counter() - t0
        conn.send(payload)
        if payload is None:
            return
        scanner.prepare_rows()  # while the parent runs rule 1
        wanted = conn.recv()
        t0 = time.perf_counter()
        rows = scanner.rows(wanted) if wanted is not None else None
        conn.send(None if rows is None else (rows, time.perf_counter() - t0))
    except BaseException:  # noqa: BLE001 - reported as a failed worker; the parent falls back
        try:
            conn.send(None)
        except Exception:  # noqa: BLE001
            pass
    finally:
        try:
            conn.close()
        finally:
            os._exit(0)  # skip freeing millions of objects one by one


# ---- parent side ---------------------------------------------------------------------------------

def _unpack(payload: dict, side: str) -> dict[str, list]:
    n = payload["n"]
    cols: dict[str, list] = {}
    txn = payload["txn"].decode("utf-8", "surrogateescape").split("\n") if n else []
    if "" in txn:
        txn = [t or None for t in txn]
    cols["provider_txn_id"] = txn
    for name in ("kind", "currency", "status", "chain_state"):
        if name in payload:
            codes: bytes = payload[name]
            if n and codes.count(codes[:1]) == n:  # one value throughout
                cols[name] = [_CODE_VALUES[name][codes[0]]] * n
            else:
                cols[name] = list(map(_CODE_VALUES[name].__getitem__, codes))
    if side == LEDGER and "chain_state" not in cols:
        cols["chain_state"] = [None] * n
    amounts = payload["amount_minor"]
    cols["amount_minor"] = amounts if isinstance(amounts, list) else array("q", amounts).tolist()
    for name, values in cols.items():
        if len(values) != n:
            raise AssertionError(f"{side} column {name}: {len(values)} values for {n} rows")
    return cols


class _Lazy:
    """Shared part of the lazy tables (a mixin; the concrete classes add the row type)."""

    __slots__ = ()
    _n: int
    _known: dict[str, list]
    _rows: dict[int, tuple]
    _load: Callable[[], list[list]]
    _cols: list[list] | None

    def _init(self, n: int, known: dict[str, list], rows: dict[int, tuple], load: Callable[[], list[list]]) -> None:
        self._n, self._known, self._rows, self._load, self._cols = n, known, rows, load, None

    @property
    def columns(self) -> list[list]:  # type: ignore[override]
        if self._cols is None:
            self._cols = self._load()
            self._rows = {}
        return self._cols

    @columns.setter
    def columns(self, value: list[list]) -> None:
        self._cols = value

    @property
    def materialized(self) -> bool:
        return self._cols is not None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int):  # type: ignore[no-untyped-def]
        if self._cols is None:
            row = self._rows.get(index)
            if row is not None:
                return row
        return super().__getitem__(index)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        """Equal to an eager table of the same rows (as a subclass, this runs for either operand order)."""
        base = type(self).__mro__[2]  # StatementTable / LedgerTable
        return isinstance(other, base) and self.columns == other.columns  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def column(self, name: str) -> list:
        if self._cols is None and name in self._known:
            return self._known[name]
        return super().column(name)  # type: ignore[misc]


class LazyStatementTable(_Lazy, StatementTable):
    """A :class:`StatementTable` of a parallel run: see the module docstring."""

    __slots__ = ("_n", "_known", "_rows", "_load", "_cols")

    def __init__(self, n: int, known: dict[str, list], rows: dict[int, tuple], load: Callable[[], list[list]]):
        self._init(n, known, rows, load)


class LazyLedgerTable(_Lazy, LedgerTable):
    """A :class:`LedgerTable` of a parallel run: see the module docstring."""

    __slots__ = ("_n", "_known", "_rows", "_load", "_cols")

    def __init__(self, n: int, known: dict[str, list], rows: dict[int, tuple], load: Callable[[], list[list]]):
        self._init(n, known, rows, load)


def _loader(path: str, parse: Callable, source: str, n: int, known: dict[str, list]) -> Callable[[], list[list]]:
    st = os.stat(path)
    stamp = (st.st_size, st.st_mtime_ns)

    def load() -> list[list]:
        now = os.stat(path)
        if (now.st_size, now.st_mtime_ns) != stamp:
            raise RuntimeError(f"{path} changed after the reconciliation run; re-run it")
        table = parse(path, source=source).lines
        if len(table) != n or table.column("amount_minor") != known["amount_minor"]:
            raise RuntimeError(f"{path} no longer parses to the rows of the run")
        return table.columns

    return load


def parallel_available() -> bool:
    return sys.platform != "win32" and "fork" in multiprocessing.get_all_start_methods() and \
        (os.cpu_count() or 1) >= 2


def reconcile_files_parallel(statement_path: str | os.PathLike, ledger_path: str | os.PathLike,
                             config: MatchConfig | None = None, *, statement_source: str = "normalized",
                             ledger_source: str = "ledger") -> ReconciliationReport | None:
    """The report of ``reconcile_files`` for a normalized statement CSV, computed as described in the
    module docstring; None when this path does not apply (the caller then runs the serial path)."""
    config = config or MatchConfig()
    s_path, l_path = os.fspath(statement_path), os.fspath(ledger_path)
    mp = multiprocessing.get_context("fork")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    procs, conns = [], []
    try:
        for path, side, source in ((s_path, STATEMENT, statement_source), (l_path, LEDGER, ledger_source)):
            parent_end, child_end = mp.Pipe()
            proc = mp.Process(target=_worker, args=(child_end, path, side, source), daemon=True)
            proc.start()
            child_end.close()
            procs.append(proc)
            conns.append(parent_end)
        s_conn, l_conn = conns
        s_pay = _recv(s_conn)
        if s_pay is None:
            return None
        timings["statement_scan_worker"] = s_pay["scan_s"]
        timings["statement_received"] = time.perf_counter() - t_start
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            s_cols = _unpack(s_pay, STATEMENT)
            s_ref: dict[int, Any] = {}
            s_booked: dict[int, Any] = {}
            l_ref: dict[int, Any] = {}
            l_booked: dict[int, Any] = {}
            s_side = (s_cols["provider_txn_id"], s_ref, s_cols["kind"], s_cols["amount_minor"],
                      s_cols["currency"], s_cols["status"], s_booked)
            run = _Run(config, s_side, ([], {}, [], [], [], [], {}, []))
            run.prepare_statement(_as_set(s_pay["repeated"]))  # while the ledger worker is still reading
            timings["statement_unpacked"] = time.perf_counter() - t_start
            l_pay = _recv(l_conn)
            if l_pay is None:
                return None
            timings["ledger_scan_worker"] = l_pay["scan_s"]
            timings["ledger_received"] = time.perf_counter() - t_start
            l_cols = _unpack(l_pay, LEDGER)
            timings["ledger_unpacked"] = time.perf_counter() - t_start
            run.set_ledger((l_cols["provider_txn_id"], l_ref, l_cols["kind"], l_cols["amount_minor"],
                            l_cols["currency"], l_cols["status"], l_booked, l_cols["chain_state"]),
                           _as_set(l_pay["repeated"]))
            run.rule1()
            open_s, open_l = run.open_rows()
            timings["rule1_done"] = time.perf_counter() - t_start
            s_conn.send(open_s)
            l_conn.send(open_l)
            s_got = _recv(s_conn)
            l_got = _recv(l_conn)
            if s_got is None or l_got is None:
                return None
            (s_rows, timings["statement_rows_worker"]), (l_rows, timings["ledger_rows_worker"]) = s_got, l_got
            if len(s_rows) != len(open_s) or len(l_rows) != len(open_l):
                return None
            timings["open_rows_received"] = time.perf_counter() - t_start
            new = tuple.__new__
            s_cache = {i: new(StatementLine, row) for i, row in zip(open_s, s_rows)}
            l_cache = {j: new(LedgerEntry, row) for j, row in zip(open_l, l_rows)}
            for i, row in s_cache.items():
                s_ref[i], s_booked[i] = row.reference, row.booked_at
            for j, row in l_cache.items():
                l_ref[j], l_booked[j] = row.reference, row.booked_at
            run.finish()
            timings["finish_done"] = time.perf_counter() - t_start
        finally:
            if gc_was_enabled:
                gc.enable()
        n_s, n_l = s_pay["n"], l_pay["n"]
        st = LazyStatementTable(n_s, s_cols, s_cache,
                                _loader(s_path, parse_normalized_csv, statement_source, n_s, s_cols))
        lt = LazyLedgerTable(n_l, l_cols, l_cache, _loader(l_path, parse_ledger_csv, ledger_source, n_l, l_cols))
        report = ReconciliationReport(st, lt, config, run.bulk_s, run.bulk_l, run.records,
                                      list(s_pay["errors"]), list(l_pay["errors"]))
        report.check_counts()
        timings["report_done"] = time.perf_counter() - t_start
        report.timings.update(timings)
        return report
    finally:
        for conn in conns:
            conn.close()
        for proc in procs:
            proc.join(timeout=1)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _as_set(values: list | None) -> set | None:
    return None if values is None else set(values)


def _recv(conn: Any) -> Any:
    if not conn.poll(WORKER_TIMEOUT_S):
        return None
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None
