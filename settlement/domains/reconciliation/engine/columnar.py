"""Reconciliation of a normalized statement CSV against a ledger export CSV, column-wise in Arrow.

What the serial path (:func:`parse_normalized_csv` + :func:`parse_ledger_csv` + :func:`reconcile`)
does, without a Python object per field:

1. **Scan.** Each file is cut into pieces of about ``PIECE_BYTES`` that a pool of threads reads
   (``pread``) and checks in parallel; Arrow and NumPy release the GIL. A piece owns the lines that
   start in it. A piece with no quote and no CR outside a CRLF pair goes to Arrow's CSV reader with
   every column read as a string (one row per line: an empty line becomes a row of empty fields,
   which the kind check refuses), then each column is checked with the serial parser's rules,
   vectorized: byte codes for kind, status, currency and chain state (``index_in``, or one byte
   compare when a column holds one value), ASCII digits then ``cast`` for amounts, and for
   timestamps a NumPy check of the common ISO 8601 shapes and field ranges, with
   ``datetime.fromisoformat`` once per distinct value for anything else. A piece that fails any
   check is redone in blocks of ``BLOCK_BYTES``, each again through Arrow and, when that fails
   too, through the serial parser's own block functions (:func:`_fast_block`, then
   :func:`_slow_block` row by row), so row errors, line numbers and raw text are the serial
   parser's, and so is the known limit of its fast path (a block is checked for its total field
   count). Out come, per file: provider ids (Arrow strings), kind / currency / status / chain
   state as byte codes, amounts as int64 (NumPy).
2. **Ids.** Both files' provider ids are numbered together (equal ids, equal numbers). Ids of one
   length that share all but their last few bytes (a date and a sequence, say) are read as exact
   integers (up to 19 digits, or 8 bytes) and numbered by one sort; any other ids by Arrow's
   dictionary encoding.
3. **Rule 1** (:func:`rule1_arrays`) is the matcher's general path on those arrays: (id, kind)
   first occurrences, duplicates, pairs and the exact test in a few array passes. It is
   property-tested against ``_Run(fast=False)``.
4. **Open rows.** Only rows outside the exact matches (about 1.5% in a typical run) become
   :class:`StatementLine` / :class:`LedgerEntry` tuples, with the serial parser's converters; rule 2
   and every record run on those, in the matcher's own :meth:`_Run.finish`.
5. **Report.** Its tables are :class:`LazyStatementTable` / :class:`LazyLedgerTable`: their length,
   the open rows and the id/kind/amount/currency/status/chain columns are there at once (totals
   are summed in NumPy), so counts, totals and exceptions never read the files again; anything
   else (iterating the exact matches, ``columns``) parses the file once with the ordinary parser,
   after checking the file has not changed.

The path is taken only for UTF-8 files whose header line is plain and whose amounts fit in int64;
anything else (GB18030, a header error, pyarrow missing) makes :func:`reconcile_files_columnar`
return None and the caller runs the serial path, which raises the errors it always did.

pyarrow imports pandas when ``pa.array``/``pa.scalar`` convert Python or NumPy values or when
``to_numpy`` is called (0.3 s); this module builds its small arrays from buffers instead.
"""

from __future__ import annotations

import csv
import gc
import os
import time
from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import repeat
from typing import Any, NamedTuple

from settlement.core.money import CURRENCY_EXPONENTS
from settlement.domains.reconciliation.engine.matcher import MatchConfig, _Run
from settlement.domains.reconciliation.engine.model import (
    CHAIN_CONFIRMED,
    CHAIN_STATES,
    KINDS,
    STATUS_SUCCEEDED,
    STATUSES,
    LedgerEntry,
    LedgerTable,
    RowError,
    StatementLine,
    StatementTable,
)
from settlement.domains.reconciliation.engine.parsers.normalized import (
    _CONVERTERS,
    _LEDGER_REQUIRED,
    DATETIME_CACHE_MAX,
    ENCODING_SAMPLE_BYTES,
    LEDGER_COLUMNS,
    STATEMENT_COLUMNS,
    _fast_block,
    _Layout,
    _slow_block,
    parse_ledger_csv,
    parse_normalized_csv,
    sample_encoding,
)
from settlement.domains.reconciliation.engine.report import BUCKETS, MATCHED, ReconciliationReport

try:  # a declared dependency; without it the serial path still works
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
except ImportError:  # pragma: no cover - exercised only on an incomplete install
    np = pa = pa_csv = None  # type: ignore[assignment]

# The few compute kernels this module calls, through pyarrow's kernel module: importing
# pyarrow.compute builds a Python wrapper for every kernel (about 70 ms of the run).
_call: Callable[..., Any] | None = None
_CastOptions = _SetLookupOptions = None
if pa is not None:
    try:
        from pyarrow import _compute

        _call, _CastOptions, _SetLookupOptions = (_compute.call_function, _compute.CastOptions,
                                                  _compute.SetLookupOptions)
    except (ImportError, AttributeError):  # pragma: no cover - the public module has the same names
        import pyarrow.compute as _public

        _call, _CastOptions, _SetLookupOptions = _public.call_function, _public.CastOptions, _public.SetLookupOptions

PIECE_BYTES = 16 * 1024 * 1024  # bytes read and checked as one task; bounds what a bad row costs to redo
BLOCK_BYTES = 4 * 1024 * 1024  # a piece that fails any check is re-read in blocks of this size
ARROW_BLOCK_BYTES = 4 * 1024 * 1024  # Arrow's unit of parsing (cache-sized); a longer line goes to the blocks
ARROW_THREADS = False  # pieces already run in parallel
LINE_SLACK_BYTES = 64 * 1024  # read past a piece's end to finish its last line (more when it runs on)
SCAN_THREADS = 2  # threads checking pieces (Arrow and NumPy release the GIL)
COLUMNAR_MIN_BYTES = 16 * 1024 * 1024  # both files together: below this the serial path is as fast

STATEMENT = "statement"
LEDGER = "ledger"

# Byte codes of the packed columns; 0 is "None" (chain state) and never a valid kind/status/currency.
_KIND_CODES: tuple[str | None, ...] = (None, *KINDS)
_STATUS_CODES: tuple[str | None, ...] = (None, *STATUSES)
_CHAIN_CODES: tuple[str | None, ...] = (None, *CHAIN_STATES)
_CURRENCY_CODES: tuple[str | None, ...] = (None, *sorted(CURRENCY_EXPONENTS))
_CODE_VALUES: dict[str, tuple[str | None, ...]] = {
    "kind": _KIND_CODES, "status": _STATUS_CODES, "currency": _CURRENCY_CODES, "chain_state": _CHAIN_CODES}
_CODED = tuple(_CODE_VALUES)
if len(_CURRENCY_CODES) > 256:
    raise AssertionError("currency codes must fit in one byte")
# the text of each code in a file ("" is how the file writes a None chain state), code order
_CODE_TEXTS: dict[str, list[str]] = {name: ["" if v is None else v for v in values]
                                     for name, values in _CODE_VALUES.items()}
_KIND_SPACE = len(_KIND_CODES)  # (id, kind) keys are id_index * _KIND_SPACE + kind code
_SUCCEEDED = _STATUS_CODES.index(STATUS_SUCCEEDED)
_CONFIRMED = _CHAIN_CODES.index(CHAIN_CONFIRMED)


def columnar_available() -> bool:
    return pa is not None


# ---- scanning one file ---------------------------------------------------------------------------

class _Unsupported(Exception):
    """The file is valid but outside this path (e.g. an amount beyond int64): run the serial path."""


class _Segment(NamedTuple):
    """Rows ``[first_row, first_row + n)`` of a file. Either Arrow record batches with every field
    of every line as a string (one row per line, from ``first_line_no``), or the serial parser's
    rows ``(line_no, values in names order, text)``."""

    first_row: int
    n: int
    table: Any  # list[pa.RecordBatch] | None
    first_line_no: int
    rows: list[tuple[int, list, str]] | None
    names: list[str] | None


class _Part:
    """What one piece of a file gave: segments, row errors and packed rule-1 columns. Line
    numbers count from the piece's first line (0) until :meth:`_Scan.assemble` shifts them."""

    def __init__(self, coded: list[str]) -> None:
        self.n = 0
        self.lines = 0
        self.errors: list[RowError] = []
        self.segments: list[_Segment] = []
        self.txn: list = []  # pa.StringArray per segment, "" = no id
        self.codes: dict[str, list] = {name: [] for name in coded}
        self.amounts: list = []
        self.ctx: dict = {"dt_cache": {}}  # per piece: pieces run in parallel threads
        self.dt_valid: set[str] = set()

    def commit(self, checked: dict[str, Any], count: int, segment: _Segment) -> None:
        txn = checked.get("provider_txn_id")
        self.txn.append(_utf8_array([""] * count) if txn is None else txn)  # no such column: no ids
        for name, parts in self.codes.items():
            parts.append(checked[name])
        self.amounts.append(checked["amount_minor"])
        self.segments.append(segment)
        self.n += count


class _Scan:
    """One file: its layout, its pieces' results in file order, and the rows on request. The
    per-piece methods only read ``self``, so pieces can be checked in parallel threads."""

    def __init__(self, path: str, side: str, source: str) -> None:
        self.path, self.side, self.source = path, side, source
        self.statement = side == STATEMENT
        self.wanted = STATEMENT_COLUMNS if self.statement else LEDGER_COLUMNS
        self.required = STATEMENT_COLUMNS if self.statement else _LEDGER_REQUIRED
        self.n = 0
        self.errors: list[RowError] = []
        self.segments: list[_Segment] = []
        self.starts: list[int] = []  # first_row of each segment
        self.ctx: dict = {"dt_cache": {}}
        self.packed: dict[str, Any] = {}

    # -- phase 1 -----------------------------------------------------------------------------------
    def header(self, first: bytes, whole: bool) -> int:
        """Take the layout from the first bytes of the file (``whole``: that is all of it);
        the offset of the body, or -1 when the file is outside this path (the serial path then
        reads it, and raises what it raises)."""
        encoding, had_bom = sample_encoding(first[:ENCODING_SAMPLE_BYTES])
        if encoding != "utf-8":
            return -1
        start = 3 if had_bom else 0
        nl = first.find(b"\n", start)
        if nl < 0:
            if not whole:
                return -1  # a header line longer than a piece
            nl = len(first)  # a header and nothing else
        header = first[start:nl]
        if b"\r" in header[:-1]:
            return -1  # the text reader would end the header line at that \r
        header_text = header.decode("utf-8", "surrogateescape")
        if not header_text.strip():
            return -1
        self.layout = _Layout(next(csv.reader([header_text.rstrip("\r\n")])), self.wanted, self.required,
                              self.source, self.statement)
        self.names = [name for name, _ in self.layout.columns]
        self.coded = [name for name in _CODED if name in self.names]
        self.arrow_names = [f"f{k}" for k in range(self.layout.width)]
        return nl + 1

    def piece_at(self, fd: int, lo: int, hi: int, first: bool, size: int) -> _Part:
        """The lines that start in bytes ``[lo, hi)`` of the file (``first``: ``lo`` is where the
        body starts), read with ``pread``, so pieces need no reader between them."""
        base = lo if first else lo - 1  # a line starts at the body or just after a "\n"
        data = os.pread(fd, hi - base + LINE_SLACK_BYTES, base)
        start = 0 if first else data.find(b"\n", 0, hi - base) + 1  # 0: no line starts here
        if not first and start == 0:
            return _Part(self.coded)
        end = data.find(b"\n", hi - 1 - base) + 1
        while end == 0 and base + len(data) < size:  # the piece's last line runs on
            more = os.pread(fd, max(len(data), LINE_SLACK_BYTES), base + len(data))
            if not more:
                break
            data += more
            end = data.find(b"\n", hi - 1 - base) + 1
        if end == 0:  # the file's last line, without a final newline
            end = len(data)
        return self.piece(data, start, end)

    def piece(self, data: bytes, start: int, end: int) -> _Part:
        """Lines ``data[start:end]`` (each ending in "\\n" but maybe the file's last)."""
        part = _Part(self.coded)
        if start >= end:
            return part
        buffer = pa.py_buffer(data)
        check_utf8 = not data.isascii()
        part.lines = self._chunk(part, data, buffer, start, end, 0, check_utf8)
        return part

    def _chunk(self, part: _Part, data: bytes, buffer: Any, pos: int, cut: int, line_no: int, check_utf8: bool,
               *, split: bool = True) -> int:
        """Returns the line number after the lines ``data[pos:cut]``. A run Arrow cannot take is
        split into blocks (``split``), and a block Arrow cannot take goes through the serial
        parser's block functions."""
        rows = self._arrow(part, data, buffer, pos, cut, line_no, check_utf8)
        if rows >= 0:
            return line_no + rows
        if split and cut - pos > BLOCK_BYTES:  # find the bad rows in small blocks
            while pos < cut:
                block_cut = _cut(data, pos, cut, BLOCK_BYTES)
                line_no = self._chunk(part, data, buffer, pos, block_cut, line_no, check_utf8, split=False)
                pos = block_cut
            return line_no
        count = data.count(b"\n", pos, cut) + (data[cut - 1] != 0x0A)
        block = data[pos:cut - 1] if data[cut - 1] == 0x0A else data[pos:cut]
        self._python(part, block.decode("utf-8", "surrogateescape"), line_no, count)
        return line_no + count

    def _arrow(self, part: _Part, data: bytes, buffer: Any, pos: int, cut: int, line_no: int,
               check_utf8: bool) -> int:
        """Split and check lines ``data[pos:cut]`` with Arrow; their count, or -1 (nothing kept)
        when any line is not one the serial parser's fast path takes as it is.

        One Arrow row per line: quotes are refused (the serial parser would read them as CSV
        quoting) and so is a CR outside a CRLF pair (it ends a line for Arrow, not for the serial
        reader). An empty line becomes a row of empty fields, which fails the kind check (kind is
        required in both layouts), so it needs no search of its own."""
        if data.find(b'"', pos, cut) >= 0:
            return -1
        if data.find(b"\r", pos, cut) >= 0 and data.count(b"\r", pos, cut) != data.count(b"\r\n", pos, cut):
            return -1
        try:
            table = pa_csv.read_csv(
                pa.BufferReader(buffer[pos:cut]),
                read_options=pa_csv.ReadOptions(column_names=self.arrow_names, block_size=ARROW_BLOCK_BYTES,
                                                use_threads=ARROW_THREADS),
                parse_options=pa_csv.ParseOptions(quote_char=False, double_quote=False, escape_char=False,
                                                  newlines_in_values=False, ignore_empty_lines=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(self.arrow_names, pa.string()), strings_can_be_null=False,
                    quoted_strings_can_be_null=False, null_values=[], check_utf8=check_utf8))
        except (pa.ArrowInvalid, pa.ArrowException):
            return -1  # a line with another field count, invalid UTF-8, a line longer than a block
        count = table.num_rows
        checked: dict[str, Any] = {}
        for name, index in self.layout.columns:
            col = table.column(index)
            if name == "provider_txn_id":
                checked[name] = col
            elif name == "entry_id":
                if not _all_nonempty(col):
                    return -1
            elif name in part.codes:
                codes = _codes(col, name)
                if codes is None:
                    return -1
                checked[name] = codes
            elif name == "amount_minor":
                amounts = _amounts(col)
                if amounts is None:
                    return -1
                checked[name] = amounts
            elif name == "booked_at" and not _dates_valid(col, part.dt_valid):
                return -1
            # reference, tx_hash: any text
        part.commit(checked, count, _Segment(part.n, count, table.to_batches(), line_no, None, None))
        return count

    def _python(self, part: _Part, block: str, first_line_no: int, count: int) -> None:
        """The serial parser's own handling of one block: its fast path, else row by row."""
        names = self.names + self.layout.absent
        rows: list[tuple[int, list, str]] = []
        fast = _fast_block(block, self.layout, part.ctx)
        if fast is not None:
            lines, cols = fast
            texts = lines if self.statement else [""] * count
            rows = [(first_line_no + k, list(values), texts[k]) for k, values in enumerate(zip(*cols))]
        else:
            _slow_block(block, first_line_no, self.layout, part.ctx, self.source,
                        lambda n, values, text: rows.append((n, values, text)), part.errors)
        if not rows:
            return
        at = {name: k for k, name in enumerate(names)}
        checked: dict[str, Any] = {}
        k = at["provider_txn_id"]
        checked["provider_txn_id"] = _utf8_array([values[k] or "" for _, values, _ in rows])
        for name in part.codes:
            index = {v: code for code, v in enumerate(_CODE_VALUES[name])}
            k = at[name]
            checked[name] = np.frombuffer(bytes(index[values[k]] for _, values, _ in rows), np.uint8)
        k = at["amount_minor"]
        try:
            checked["amount_minor"] = np.array([values[k] for _, values, _ in rows], np.int64)
        except OverflowError:
            raise _Unsupported("an amount beyond int64") from None
        part.commit(checked, len(rows), _Segment(part.n, len(rows), None, 0, rows, names))

    def assemble(self, parts: list[_Part]) -> None:
        """The pieces' results in file order: rows numbered across the file, lines from line 2."""
        line_no = 2
        txn: list = []
        codes: dict[str, list] = {name: [] for name in self.coded}
        amounts: list = []
        for part in parts:
            for seg in part.segments:
                rows = seg.rows
                if rows is not None:
                    rows = [(n + line_no, values, text) for n, values, text in rows]
                self.starts.append(self.n + seg.first_row)
                self.segments.append(seg._replace(first_row=self.n + seg.first_row,
                                                  first_line_no=seg.first_line_no + line_no, rows=rows))
            self.errors += [e._replace(line_no=e.line_no + line_no) for e in part.errors]
            txn += part.txn
            for name in self.coded:
                codes[name] += part.codes[name]
            amounts += part.amounts
            self.n += part.n
            line_no += part.lines
        packed: dict[str, Any] = {"txn": pa.chunked_array(_chunks(txn), pa.string())}
        for name in _CODED:
            packed[name] = np.concatenate(codes[name]) if codes.get(name) else np.zeros(self.n, np.uint8)
        packed["amount_minor"] = np.concatenate(amounts) if amounts else np.zeros(0, np.int64)
        for name, values in packed.items():
            if len(values) != self.n:
                raise AssertionError(f"{self.side} column {name}: {len(values)} values for {self.n} rows")
        self.packed = packed

    # -- phase 2 -----------------------------------------------------------------------------------
    def rows(self, wanted: Any) -> list[tuple]:
        """The full rows (StatementLine / LedgerEntry tuples) at ascending positions ``wanted`` (NumPy)."""
        out: list[tuple] = []
        row_type = StatementLine if self.statement else LedgerEntry
        bounds = np.searchsorted(wanted, self.starts + [self.n])
        for seg, lo, hi in zip(self.segments, bounds[:-1].tolist(), bounds[1:].tolist()):
            if lo == hi:
                continue
            local = (wanted[lo:hi] - seg.first_row).tolist()
            if seg.rows is not None:
                for k in local:
                    line_no, values, text = seg.rows[k]
                    by_name = dict(zip(seg.names, values))  # type: ignore[arg-type]
                    values = [by_name[name] for name in self.wanted]
                    out.append(tuple.__new__(row_type, (self.source, line_no, *values, text) if self.statement
                                             else values))
                continue
            # the serial parser's column converters: the values its fast path would give
            fields = _take(seg.table, local)
            by_name = {}
            for name, index in self.layout.columns:
                converted = _CONVERTERS[name][0](fields[index], self.ctx)
                if converted is None:  # pragma: no cover - the chunk was validated
                    raise AssertionError(f"{self.side} column {name} no longer converts")
                by_name[name] = converted
            for name in self.layout.absent:
                by_name[name] = [None] * len(local)
            columns = [by_name[name] for name in self.wanted]
            if self.statement:
                columns = [[self.source] * len(local), [seg.first_line_no + k for k in local], *columns,
                           list(map(",".join, zip(*fields)))]
            out.extend(map(tuple.__new__, repeat(row_type), zip(*columns)))
        return out


# pa.array() and pa.scalar() on Python or NumPy values ask whether pandas is installed, which imports
# it (about 0.3 s); these build the few small arrays this module needs from buffers instead.
def _utf8_array(values: list[str]) -> Any:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    np.cumsum(np.fromiter(map(len, encoded), np.int32, len(encoded)), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _int64_array(values: Any) -> Any:
    values = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _numbers(col: Any, dtype: Any) -> Any:
    """A numeric Arrow array or chunked array without nulls as one NumPy array (``to_numpy`` too
    asks after pandas)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if any(c.null_count for c in chunks):
        raise AssertionError("nulls in a column checked to have none")
    size = np.dtype(dtype).itemsize
    parts = [np.frombuffer(c.buffers()[1], dtype, count=len(c), offset=c.offset * size) for c in chunks if len(c)]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _take(batches: list, local: list[int]) -> list[list]:
    """Per column, the values (str) at ascending positions ``local`` of a run of record batches."""
    fields: list[list] = []
    start = k = 0
    for batch in batches:
        end = start + batch.num_rows
        upto = bisect_right(local, end - 1, k)
        if upto > k:
            taken = _call("take", [batch, _int64_array(np.asarray(local[k:upto], np.int64) - start)])
            part = [col.to_pylist() for col in taken.columns]
            if fields:
                for column, values in zip(fields, part):
                    column.extend(values)
            else:
                fields = part
            k = upto
        start = end
    return fields


def _cut(data: bytes, pos: int, end: int, size: int) -> int:
    """The end (just past a "\\n", or ``end``) of a run of whole lines from ``pos`` of about ``size``."""
    if pos + size >= end:
        return end
    cut = data.rfind(b"\n", pos, pos + size)
    if cut < 0:  # one line longer than size
        cut = data.find(b"\n", pos + size, end)
        if cut < 0:
            return end
    return cut + 1


def _chunks(parts: list) -> list:
    out = []
    for part in parts:
        out.extend(part.chunks if isinstance(part, pa.ChunkedArray) else [part])
    return out


def _string_layout(col: Any) -> list[tuple[Any, Any]]:
    """Per chunk: (offsets, value bytes) of a string column without nulls, as NumPy views."""
    return [_array_layout(chunk) for chunk in col.chunks]


def _array_layout(chunk: Any) -> tuple[Any, Any]:
    """(offsets, value bytes) of a string array without nulls, as NumPy views."""
    _, offsets_buf, data_buf = chunk.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    if data_buf is None or not len(chunk):
        return offsets, np.zeros(0, np.uint8)
    return offsets, np.frombuffer(data_buf, np.uint8, count=int(offsets[-1]) - int(offsets[0]), offset=int(offsets[0]))


def _all_nonempty(col: Any) -> bool:
    return all(len(offsets) < 2 or int(np.diff(offsets).min()) > 0 for offsets, _ in _string_layout(col))


def _amounts(col: Any) -> Any:
    """int64 amounts, or None when any value is not what ``_amount_one`` takes (non-empty ASCII
    digits; anything beyond int64 goes to the serial parser's path, which keeps Python ints)."""
    for offsets, values in _string_layout(col):
        if len(offsets) > 1 and int(np.diff(offsets).min()) <= 0:
            return None
        if len(values) and int(np.subtract(values, 48, dtype=np.uint8).max()) > 9:
            return None
    try:
        return _numbers(_call("cast", [col], _CastOptions.safe(pa.int64())), np.int64)
    except (pa.ArrowInvalid, pa.ArrowException):
        return None  # beyond int64


def _codes(col: Any, name: str) -> Any:
    """One byte code per value (see ``_CODE_VALUES``), or None when a value is not allowed."""
    first = 0 if name == "chain_state" else 1  # "" (code 0) stands for None, only a chain state's
    texts = _CODE_TEXTS[name]
    layout = _string_layout(col)
    n = len(col)
    if n and len(layout[0][0]) > 1:  # one value throughout (common for currency, status, chain)?
        offsets, values = layout[0]
        value = values[: int(offsets[1] - offsets[0])].tobytes().decode("utf-8", "replace")
        if value in texts[first:] and all(_all_equal(o, v, value.encode()) for o, v in layout):
            return np.full(n, texts.index(value), np.uint8)
    index = _call("index_in", [col], _SetLookupOptions(_utf8_array(texts[first:])))
    if index.null_count:
        return None
    codes = _numbers(index, np.int32).astype(np.uint8)
    if first:
        codes += np.uint8(first)
    return codes


def _all_equal(offsets: Any, values: Any, value: bytes) -> bool:
    """Every string of one chunk (its offsets and value bytes) is ``value``."""
    count, width = len(offsets) - 1, len(value)
    if len(values) != count * width or (count and int(offsets[-1]) - int(offsets[0]) != count * width):
        return False
    if count > 1 and not np.all(np.diff(offsets) == width):
        return False
    return not width or bool(np.all(values.reshape(count, width) == np.frombuffer(value, np.uint8)))


# Shapes of ISO 8601 text the NumPy check knows, by length: what each byte must be. "d" a digit,
# "T" the date/time separator (T or a space), "s" a UTC offset's sign; anything else literally.
_DATE = "dddd-dd-dd"
_TIME = _DATE + "Tdd:dd:dd"
_ISO_SHAPES: dict[int, str] = {10: _DATE, 19: _TIME, 20: _TIME + "Z", 25: _TIME + "sdd:dd",
                               26: _TIME + ".dddddd", 32: _TIME + ".ddddddsdd:dd"}
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64) if np is not None else None


def _iso_certainly_valid(offsets: Any, values: Any) -> bool:
    """True when every value has one of ``_ISO_SHAPES`` and in-range fields (a subset of what
    ``datetime.fromisoformat`` takes on Python >= 3.11); False means "not known", not "invalid"."""
    n = len(offsets) - 1
    if n == 0:
        return True
    width = int(offsets[1]) - int(offsets[0])
    shape = _ISO_SHAPES.get(width)
    if shape is None or len(values) != n * width or int(np.diff(offsets).min()) != width:
        return False
    grid = values.reshape(n, width)
    digits, literal, maxima, minima = _ISO_LAYOUT[width]
    d = np.subtract(grid[:, digits], 48, dtype=np.uint8)  # a non-digit wraps past 9
    if int(d.max()) > 9:
        return False
    fixed = grid[:, [k for k, _ in literal]]
    for m, (_, allowed) in enumerate(literal):
        column = fixed[:, m]
        if not (np.all(column == allowed[0]) if len(allowed) == 1 else np.all(np.isin(column, allowed))):
            return False
    pairs = d[:, 0::2] * np.uint8(10) + d[:, 1::2]  # two digits at a time: 00..99
    if np.any(pairs > maxima) or np.any(pairs < minima):
        return False
    year = pairs[:, 0].astype(np.int16) * 100 + pairs[:, 1]
    month, day = pairs[:, 2], pairs[:, 3]
    if year.min() < 1:
        return False
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return not np.any(day > _DAYS_IN_MONTH[month] - ((month == 2) & ~leap))


def _iso_layout(shape: str) -> tuple[list[int], list[tuple[int, bytes]], Any, Any]:
    """Digit positions, (position, allowed bytes) of the other characters, and the largest and
    smallest value of each two-digit pair (year halves, month, day, hour, minute, second,
    microsecond pairs, offset hour, offset minute) for one of ``_ISO_SHAPES``."""
    digits = [k for k, c in enumerate(shape) if c == "d"]
    literal = [(k, {"T": b"T ", "s": b"+-"}.get(c, c.encode())) for k, c in enumerate(shape) if c != "d"]
    highs = [99, 99, 12, 31] + [23, 59, 59][: (len(digits) - 8) // 2]
    lows = [0, 0, 1, 1] + [0, 0, 0][: (len(digits) - 8) // 2]
    if "." in shape:
        highs, lows = highs + [99, 99, 99], lows + [0, 0, 0]
    if shape.endswith("sdd:dd"):
        highs, lows = highs + [23, 59], lows + [0, 0]
    return (digits, [(k, np.frombuffer(a, np.uint8)) for k, a in literal],
            np.array(highs, np.uint8), np.array(lows, np.uint8))


_ISO_LAYOUT = {width: _iso_layout(shape) for width, shape in _ISO_SHAPES.items()} if np is not None else {}


# ---- rule 1, vectorized --------------------------------------------------------------------------

class Rule1(NamedTuple):
    """Rule 1's outcome, in the matcher's terms (see ``_Run`` and its general path)."""

    pos: Any  # per statement row: its ledger entry by (id, kind), n_l when none or a duplicate
    exact: Any  # per statement row: bool, paired by id and equal in amount, currency, status, kind
    dup_s: list[int]  # statement rows repeating an earlier (id, kind), ascending
    dup_l: list[int]  # ledger rows repeating an earlier (id, kind), ascending


def rule1_arrays(s_id: Any, s_kind: Any, s_amt: Any, s_cur: Any, s_st: Any, l_id: Any, l_kind: Any, l_amt: Any,
                 l_cur: Any, l_st: Any, l_chain: Any, id_count: int) -> Rule1:
    """Rule 1 on NumPy columns. ``*_id``: the provider id as an index into one dictionary of both
    sides' ids (``id_count`` entries), -1 for none; the rest are byte codes and int64 amounts.

    The general path: the first ledger entry of each (id, kind) is the one paired; later entries
    and later statement lines with the same (id, kind) are duplicates; a line is paired with the
    first entry of its (id, kind); the pair is exact when amount, currency, the entry's effective
    status (none for a succeeded entry whose chain record is not confirmed) and kind agree.

    Most ids are on one row per side; only the rows of ids that repeat on their side are keyed on
    (id, kind) and sorted."""
    n_l = len(l_id)
    s_with, l_with = np.flatnonzero(s_id >= 0), np.flatnonzero(l_id >= 0)
    s_repeats = np.bincount(s_id[s_with], minlength=id_count)[s_id[s_with]] > 1
    l_repeats = np.bincount(l_id[l_with], minlength=id_count)
    l_repeated_id = np.append(l_repeats > 1, False)  # index id_count: "no id"
    l_repeats = l_repeats[l_id[l_with]] > 1
    # ledger ids on one row: that row, if the kind agrees
    l_row_of = np.full(id_count + 1, n_l, np.int64)
    once = l_with[~l_repeats]
    l_row_of[l_id[once]] = once
    s_index = np.where(s_id >= 0, s_id, id_count)
    pos = l_row_of[s_index]
    pos[np.append(l_kind, np.uint8(0))[pos] != s_kind] = n_l
    # ledger ids on several rows: the first row of each (id, kind); the others are duplicates
    l_keys, l_first, dup_l = _first_by_key(l_with[l_repeats], l_id, l_kind)
    s_rows = np.flatnonzero(l_repeated_id[s_index])
    if len(s_rows):
        key = s_id[s_rows] * _KIND_SPACE + s_kind[s_rows]
        at = np.minimum(np.searchsorted(l_keys, key), len(l_keys) - 1)  # l_keys: not empty here
        pos[s_rows] = np.where(l_keys[at] == key, l_first[at], n_l)
    # statement ids on several rows: later rows of an (id, kind) are duplicates, paired with nothing
    _, _, dup_s = _first_by_key(s_with[s_repeats], s_id, s_kind)
    pos[dup_s] = n_l
    # the effective status of each entry, code 0 (never a line's status) when the chain disagrees
    l_eff = np.where((l_st == _SUCCEEDED) & (l_chain != 0) & (l_chain != _CONFIRMED), 0, l_st).astype(np.uint8)
    zero = np.zeros(1, np.uint8)
    exact = (pos != n_l) & (s_amt == np.append(l_amt, -1)[pos]) & (s_cur == np.append(l_cur, zero)[pos]) & \
        (s_st == np.append(l_eff, zero)[pos]) & (s_kind == np.append(l_kind, zero)[pos])
    return Rule1(pos, exact, dup_s.tolist(), dup_l.tolist())


def _first_by_key(rows: Any, ids: Any, kinds: Any) -> tuple[Any, Any, Any]:
    """For ascending ``rows``: their sorted distinct (id, kind) keys, the first row of each, and
    the rows repeating an earlier key (ascending)."""
    key = ids[rows].astype(np.int64) * _KIND_SPACE + kinds[rows]
    keys, first_at = np.unique(key, return_index=True)  # first occurrences (a stable sort)
    later = np.ones(len(rows), bool)
    later[first_at] = False
    return keys, rows[first_at], rows[later]


def _id_indices(s_txn: Any, l_txn: Any, pool: ThreadPoolExecutor | None = None) -> tuple[Any, Any, int]:
    """Both sides' provider ids numbered (equal ids, equal numbers, from 0; -1: no id), and how
    many numbers there are; ``pool`` lends a second thread to the array work."""
    chunks = s_txn.chunks + l_txn.chunks
    keyed = _short_id_keys(chunks, pool.map if pool is not None else map)
    ids, count = _dictionary_ids(chunks) if keyed is None else _number_keys(*keyed)
    return ids[:len(s_txn)], ids[len(s_txn):], count


def _short_id_keys(chunks: list, mapper: Callable = map) -> tuple[Any, Any] | None:
    """Exact integer keys when every id has one byte length and all share their first bytes but a
    few: those read as a decimal number (up to 19 ASCII digits) or as raw bytes (up to 8) give a
    key that is equal exactly when the ids are. Common for provider ids (a date and a sequence);
    None otherwise. Returns (key per row, True where the row has an id). The chunks are worked on
    in two halves through ``mapper`` (a thread pool's ``map``: NumPy releases the GIL)."""
    layout = [_array_layout(c) for c in chunks]
    lengths = [np.diff(offsets) for offsets, _ in layout]
    width = max((int(x.max()) for x in lengths if len(x)), default=0)
    if width == 0 or width > 64 or not all(np.all((x == width) | (x == 0)) for x in lengths):
        return None
    present = np.concatenate(lengths) > 0
    # ids right-aligned in whole little-endian words; every id is compared with the first one
    span = -(-width // 8) * 8
    first = next(values[:width] for _, values in layout if len(values))
    reference = np.zeros(span, np.uint8)
    reference[span - width:] = first
    halves = [layout[: len(layout) // 2], layout[len(layout) // 2:]]
    built = list(mapper(lambda half: _id_words(half, width, span, reference.view("<u8")), halves))
    differ = [a | b for a, b in zip(built[0][1], built[1][1])]
    rest = width - _shared_prefix(differ, span, width)
    if rest == 0:  # one id throughout
        return np.zeros(len(present), np.uint64), present
    tails = list(mapper(lambda grids: _tails(grids, span, rest), [built[0][0], built[1][0]]))
    if rest <= 19 and all(digits for _, digits in tails):
        parts = [key for half, _ in tails for key in mapper(_decimal_keys, half)]
    elif rest <= 8:
        parts = [tail[:, 0] for half, _ in tails for tail in half]  # the raw bytes, equal when the tails are
    else:
        return None
    keys = np.concatenate(parts)
    if len(keys) != len(present):
        spread = np.zeros(len(present), np.uint64)
        spread[present] = keys
        keys = spread
    return keys, present


def _id_words(layout: list, width: int, span: int, reference: Any) -> tuple[list, list[int]]:
    """The ids of some chunks as rows of words, and per word the bits any id has that the
    reference has not (or lacks)."""
    grids, differ = [], [0] * (span // 8)
    for _, values in layout:
        grid = np.zeros((len(values) // width, span), np.uint8)
        grid[:, span - width:] = values.reshape(-1, width)
        words = grid.view("<u8")
        grids.append(words)
        if len(words):
            for k in range(span // 8):
                differ[k] |= int(np.bitwise_or.reduce(words[:, k] ^ reference[k]))
    return grids, differ


def _shared_prefix(differ: list[int], span: int, width: int) -> int:
    """How many leading bytes all ids share, from the per-word bits in which some id differs."""
    for word, bits in enumerate(differ):
        if bits:
            byte = next(k for k in range(8) if bits >> (8 * k) & 0xFF)  # little-endian: byte k first
            return max(0, word * 8 + byte - (span - width))
    return width


def _tails(grids: list, span: int, rest: int) -> tuple[list, bool]:
    """Per grid, each id's last ``rest`` bytes, right-aligned in little-endian words with the bytes
    before them cleared to ASCII "0"; and whether every one of those bytes is an ASCII digit."""
    first_word = (span - rest) // 8
    used = (rest - 1) % 8 + 1  # tail bytes in the first tail word: its high (last) bytes
    keep = np.uint64(((1 << (8 * used)) - 1) << (64 - 8 * used))
    tails, digits = [], True
    for words in grids:
        tail = words[:, first_word:].copy()
        tail[:, 0] = (tail[:, 0] & keep) | (_SWAR_ZEROS & ~keep)
        digits = digits and not (tail.size and int(np.subtract(tail.view(np.uint8), 48, dtype=np.uint8).max()) > 9)
        tails.append(tail)
    return tails, digits


_SWAR_ZEROS = np.uint64(0x3030303030303030) if np is not None else None


def _decimal_keys(tail: Any) -> Any:
    """Rows of ASCII digits (little-endian words, 8 digits a word) as their decimal number, in a
    few multiplications a word (the SWAR method of simdjson); at most 19 digits, so no overflow."""
    key = np.zeros(len(tail), np.uint64)
    for g in range(tail.shape[1]):
        v = tail[:, g] - _SWAR_ZEROS
        v = v * np.uint64(10) + (v >> np.uint64(8))
        v = ((v & np.uint64(0x000000FF000000FF)) * np.uint64(100 + (1000000 << 32))
             + ((v >> np.uint64(16)) & np.uint64(0x000000FF000000FF)) * np.uint64(1 + (10000 << 32))) >> np.uint64(32)
        key = key * np.uint64(10**8) + v
    return key


def _number_keys(keys: Any, present: Any) -> tuple[Any, int]:
    """Dense numbers for integer keys (-1 where ``present`` is False). When the keys' span and the
    row count fit in 64 bits together, one plain sort of (key, row) does it; else ``np.unique``."""
    everywhere = bool(present.all())
    wanted = keys if everywhere else keys[present]
    if not len(wanted):
        return np.full(len(keys), -1, np.int64), 0
    low = wanted.min()
    span_bits = int(wanted.max() - low).bit_length()
    row_bits = max((len(wanted) - 1).bit_length(), 1)
    if span_bits + row_bits <= 64:
        packed = wanted - low
        packed <<= np.uint64(row_bits)
        packed |= np.arange(len(wanted), dtype=np.uint64)
        packed.sort()
        new = np.empty(len(wanted), bool)
        new[0] = True
        in_order = packed >> np.uint64(row_bits)
        np.not_equal(in_order[1:], in_order[:-1], out=new[1:])
        packed &= np.uint64((1 << row_bits) - 1)  # now the rows, in key order
        ranks = np.cumsum(new)
        numbers = np.empty(len(wanted), np.int64)
        numbers[packed.view(np.int64)] = ranks
        numbers -= 1
        count = int(ranks[-1])
    else:
        distinct, numbers = np.unique(wanted, return_inverse=True)
        count = len(distinct)
    if everywhere:
        return numbers, count
    ids = np.full(len(keys), -1, np.int64)
    ids[present] = numbers
    return ids, count


def _dictionary_ids(chunks: list) -> tuple[Any, int]:
    """The ids of ``chunks`` (in order) as indices into their dictionary (-1: no id), and its size."""
    encoded = _call("dictionary_encode", [pa.chunked_array(chunks, pa.string())])
    parts = encoded.chunks
    if not parts:
        return np.zeros(0, np.int64), 0
    # the chunks of a chunked encoding share one dictionary; check that instead of assuming it
    dictionary = parts[-1].dictionary
    address = dictionary.buffers()[1].address
    if any(len(c.dictionary) != len(dictionary) or c.dictionary.buffers()[1].address != address for c in parts):
        combined = _call("dictionary_encode", [pa.chunked_array(chunks, pa.string()).combine_chunks()])
        parts, dictionary = [combined], combined.dictionary
    ids = np.concatenate([_numbers(c.indices, np.int32) for c in parts]).astype(np.int64)
    (offsets, _), = _string_layout(pa.chunked_array([dictionary]))
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if len(empty):
        ids[ids == empty[0]] = -1
    return ids, len(dictionary)


# ---- the report's tables -------------------------------------------------------------------------

class _Lazy:
    """Shared part of the lazy tables (a mixin; the concrete classes add the row type)."""

    __slots__ = ()
    _n: int
    _known: dict[str, Callable[[], list]]
    _made: dict[str, list]
    _rows: dict[int, tuple]
    _load: Callable[[], list[list]]
    _cols: list[list] | None

    def _init(self, n: int, known: dict[str, Callable[[], list]], rows: dict[int, tuple],
              load: Callable[[], list[list]]) -> None:
        self._n, self._known, self._made, self._rows, self._load, self._cols = n, known, {}, rows, load, None

    @property
    def columns(self) -> list[list]:  # type: ignore[override]
        if self._cols is None:
            self._cols = self._load()
            self._rows, self._made = {}, {}
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
            made = self._made.get(name)
            if made is None:
                made = self._made[name] = self._known[name]()
            return made
        return super().column(name)  # type: ignore[misc]


class LazyStatementTable(_Lazy, StatementTable):
    """A :class:`StatementTable` of a columnar run: see the module docstring."""

    __slots__ = ("_cols", "_known", "_load", "_made", "_n", "_rows")

    def __init__(self, n: int, known: dict[str, Callable[[], list]], rows: dict[int, tuple],
                 load: Callable[[], list[list]]):
        self._init(n, known, rows, load)


class LazyLedgerTable(_Lazy, LedgerTable):
    """A :class:`LedgerTable` of a columnar run: see the module docstring."""

    __slots__ = ("_cols", "_known", "_load", "_made", "_n", "_rows")

    def __init__(self, n: int, known: dict[str, Callable[[], list]], rows: dict[int, tuple],
                 load: Callable[[], list[list]]):
        self._init(n, known, rows, load)


def _known_columns(packed: dict[str, Any], side: str) -> dict[str, Callable[[], list]]:
    """Column name -> a function building that column as a list (on first use) from the packed arrays."""

    def txn() -> list:
        values = packed["txn"].to_pylist()
        return [v or None for v in values] if "" in values else values

    def coded(name: str) -> Callable[[], list]:
        def make() -> list:
            codes = packed[name]
            present = np.unique(codes)
            if len(present) == 1:
                return [_CODE_VALUES[name][int(present[0])]] * len(codes)
            return list(map(_CODE_VALUES[name].__getitem__, codes.tobytes()))
        return make

    known = {"provider_txn_id": txn, "amount_minor": lambda: packed["amount_minor"].tolist(),
             "kind": coded("kind"), "currency": coded("currency"), "status": coded("status")}
    if side == LEDGER:
        known["chain_state"] = coded("chain_state")
    return known


def _stamp(fd_or_path: int | str) -> tuple[int, int]:
    st = os.stat(fd_or_path)
    return st.st_size, st.st_mtime_ns


def _loader(path: str, parse: Callable, source: str, n: int, amounts: Any,
            stamp: tuple[int, int]) -> Callable[[], list[list]]:
    """Parses the file again (with ``parse``), if it still has the size and mtime of the run."""

    def load() -> list[list]:
        if _stamp(path) != stamp:
            raise RuntimeError(f"{path} changed after the reconciliation run; re-run it")
        table = parse(path, source=source).lines
        if len(table) != n or table.column("amount_minor") != amounts.tolist():
            raise RuntimeError(f"{path} no longer parses to the rows of the run")
        return table.columns

    return load


# ---- the run -------------------------------------------------------------------------------------

def _dates_valid(col: Any, valid: set[str]) -> bool:
    """Every value is one ``datetime.fromisoformat`` takes: by shape and range in NumPy for the
    common ISO shapes, else by calling it once per distinct value (``valid``: those seen so far)."""
    if all(_iso_certainly_valid(offsets, values) for offsets, values in _string_layout(col)):
        return True
    if len(valid) > DATETIME_CACHE_MAX:
        valid.clear()
    new = set(_call("unique", [col]).to_pylist()).difference(valid)
    fromiso = datetime.fromisoformat
    try:
        for text in new:
            fromiso(text)
    except ValueError:
        return False
    valid.update(new)
    return True


def _submit_pieces(pool: ThreadPoolExecutor, scan: _Scan, fd: int) -> list[Future] | None:
    """Hand the file's pieces to ``pool`` (each reads its own bytes); None when the file is outside
    this path (see :meth:`_Scan.header`)."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, ENCODING_SAMPLE_BYTES, 0)
    body = scan.header(head, len(head) >= size)
    if body < 0:
        return None
    return [pool.submit(scan.piece_at, fd, lo, min(lo + PIECE_BYTES, size), lo == body, size)
            for lo in range(body, size, PIECE_BYTES)]


def reconcile_files_columnar(statement_path: str | os.PathLike, ledger_path: str | os.PathLike,
                             config: MatchConfig | None = None, *, statement_source: str = "normalized",
                             ledger_source: str = "ledger") -> ReconciliationReport | None:
    """The report of ``reconcile_files`` for a normalized statement CSV, computed as described in the
    module docstring; None when this path does not apply (the caller then runs the serial path)."""
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


__all__ = ["COLUMNAR_MIN_BYTES", "LazyLedgerTable", "LazyStatementTable", "Rule1",
           "columnar_available", "reconcile_files_columnar", "rule1_arrays"]
