"""Step 1 of the columnar run, the scan: each file cut into pieces that threads read and check,
Arrow's CSV reader and vectorized column checks first, the serial parser's block functions for what
Arrow refuses (see the package docstring)."""

from __future__ import annotations

import csv
import os
from bisect import bisect_right
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import repeat
from typing import Any, NamedTuple

from settlement.domains.reconciliation.engine.columnar.common import (
    _CODE_TEXTS,
    _CODE_VALUES,
    _CODED,
    STATEMENT,
    _call,
    _CastOptions,
    _int64_array,
    _numbers,
    _SetLookupOptions,
    _string_layout,
    _utf8_array,
    np,
    pa,
    pa_csv,
)
from settlement.domains.reconciliation.engine.model import LedgerEntry, RowError, StatementLine
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
    sample_encoding,
)

PIECE_BYTES = 16 * 1024 * 1024  # bytes read and checked as one task; bounds what a bad row costs to redo
BLOCK_BYTES = 4 * 1024 * 1024  # a piece that fails any check is re-read in blocks of this size
ARROW_BLOCK_BYTES = 4 * 1024 * 1024  # Arrow's unit of parsing (cache-sized); a longer line goes to the blocks
ARROW_THREADS = False  # pieces already run in parallel
LINE_SLACK_BYTES = 64 * 1024  # read past a piece's end to finish its last line (more when it runs on)



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
