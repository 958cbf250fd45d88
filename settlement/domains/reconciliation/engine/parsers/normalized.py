"""The normalized statement CSV and the ledger export CSV, parsed column-wise in C.

Statement header (documented in docs/reconciliation.md)::

    provider_txn_id,reference,kind,amount_minor,currency,status,booked_at

Ledger export header (what the store layer writes for a run)::

    entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,booked_at,chain_state,tx_hash

Columns may come in any order; extra columns are ignored. Files are read in bounded blocks. A
block with no quotes, the right number of fields and only valid values is converted column by
column with builtins (``str.split``, ``map``, ``zip``), which is what lets a million rows parse in
about a second; any block that fails a check is re-read line by line, so a bad row costs only
its own block the fast path and becomes a :class:`RowError`, never an exception.
"""

from __future__ import annotations

import csv
import gc
import io
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import repeat
from typing import IO

from settlement.core.csv_safe import safe_writer
from settlement.core.errors import StatementFormatError
from settlement.core.money import AMOUNT_MINOR_MAX
from settlement.domains.reconciliation.engine._text import ENCODING_UTF8, detect_encoding, strip_bom
from settlement.domains.reconciliation.engine.model import (
    CHAIN_TABLE,
    CURRENCY_TABLE,
    KIND_TABLE,
    STATUS_TABLE,
    LedgerEntry,
    LedgerTable,
    ParseResult,
    RowError,
    StatementLine,
    StatementTable,
)

STATEMENT_COLUMNS: tuple[str, ...] = (
    "provider_txn_id", "reference", "kind", "amount_minor", "currency", "status", "booked_at")
LEDGER_COLUMNS: tuple[str, ...] = (
    "entry_id", "provider_txn_id", "reference", "kind", "amount_minor", "currency", "status", "booked_at",
    "chain_state", "tx_hash")
_LEDGER_REQUIRED = LEDGER_COLUMNS[:8]

BLOCK_CHARS = 4 * 1024 * 1024  # characters read per block: bounds the memory of one step
DATETIME_CACHE_MAX = 500_000  # distinct timestamps remembered across blocks
ENCODING_SAMPLE_BYTES = 1024 * 1024
FORMAT_NORMALIZED = "normalized-csv"
FORMAT_LEDGER = "ledger-csv"


# ---- per-field converters: (fast column converter, slow single-value converter) -------------------

class _RowFault(ValueError):
    pass


def _opt_str_col(col: list[str], _ctx: dict) -> list | None:
    return [v or None for v in col] if "" in col else col


def _opt_str_one(v: str, _ctx: dict) -> str | None:
    return v or None


def _req_str_col(col: list[str], _ctx: dict) -> list | None:
    return None if "" in col else col


def _req_str_one(v: str, _ctx: dict) -> str:
    if not v:
        raise _RowFault("empty value")
    return v


def _table_col(table: dict[str, str | None]) -> Callable[[list[str], dict], list | None]:
    def convert(col: list[str], _ctx: dict) -> list | None:
        values = set(col)
        if not values <= table.keys():
            return None
        if None in map(table.__getitem__, values):  # "" stands for None: map those
            return list(map(table.__getitem__, col))
        return col  # equal strings, valid: not worth a second pass to share the objects
    return convert


def _table_one(table: dict[str, str | None], what: str) -> Callable[[str, dict], str | None]:
    def convert(v: str, _ctx: dict) -> str | None:
        try:
            return table[v]
        except KeyError:
            raise _RowFault(f"unknown {what} {v!r}") from None
    return convert


def _amount_col(col: list[str], _ctx: dict) -> list | None:
    joined = "".join(col)
    if "" in col or not (joined.isascii() and joined.isdigit()):
        return None
    values = list(map(int, col))
    if max(values) > AMOUNT_MINOR_MAX:
        return None
    return values


def _amount_one(v: str, _ctx: dict) -> int:
    if not (v.isascii() and v.isdigit()):
        raise _RowFault(f"amount_minor must be a non-negative integer, got {v!r}")
    value = int(v)
    if value > AMOUNT_MINOR_MAX:
        raise _RowFault(f"amount_minor {v} exceeds {AMOUNT_MINOR_MAX}")
    return value


def _datetime_col(col: list[str], ctx: dict) -> list | None:
    cache: dict[str, datetime] = ctx["dt_cache"]
    if len(cache) > DATETIME_CACHE_MAX:
        cache.clear()
    fromiso = datetime.fromisoformat
    try:
        for text in set(col).difference(cache.keys()):
            cache[text] = fromiso(text)
    except ValueError:
        return None
    return list(map(cache.__getitem__, col))


def _datetime_one(v: str, _ctx: dict) -> datetime:
    try:
        return datetime.fromisoformat(v)
    except ValueError:
        raise _RowFault(f"booked_at is not an ISO 8601 date/time: {v!r}") from None


_CHAIN_OPT_TABLE: dict[str, str | None] = {"": None, **CHAIN_TABLE}

_CONVERTERS: dict[str, tuple[Callable, Callable]] = {
    "entry_id": (_req_str_col, _req_str_one),
    "provider_txn_id": (_opt_str_col, _opt_str_one),
    "reference": (_opt_str_col, _opt_str_one),
    "kind": (_table_col(KIND_TABLE), _table_one(KIND_TABLE, "kind")),
    "amount_minor": (_amount_col, _amount_one),
    "currency": (_table_col(CURRENCY_TABLE), _table_one(CURRENCY_TABLE, "currency")),
    "status": (_table_col(STATUS_TABLE), _table_one(STATUS_TABLE, "status")),
    "booked_at": (_datetime_col, _datetime_one),
    "chain_state": (_table_col(_CHAIN_OPT_TABLE), _table_one(_CHAIN_OPT_TABLE, "chain_state")),
    "tx_hash": (_opt_str_col, _opt_str_one),
}


# ---- the block reader ------------------------------------------------------------------------------

class _Layout:
    """Where each wanted column sits in the file's header."""

    def __init__(self, header: list[str], wanted: tuple[str, ...], required: tuple[str, ...], source: str,
                 keep_lines: bool):
        self.keep_lines = keep_lines
        names = [h.strip() for h in header]
        missing = [c for c in required if c not in names]
        if missing:
            raise StatementFormatError(f"{source}: header lacks columns {missing}; got {names}",
                                       missing=missing)
        self.width = len(names)
        self.columns = [(c, names.index(c)) for c in wanted if c in names]
        self.absent = [c for c in wanted if c not in names]  # optional columns: all None


def _iter_blocks(stream: IO[str]) -> Iterator[str]:
    """Whole lines, ``\\n``-separated, in blocks of about BLOCK_CHARS; no trailing newline."""
    carry = ""
    while True:
        chunk = stream.read(BLOCK_CHARS)
        if not chunk:
            break
        chunk = carry + chunk
        cut = chunk.rfind("\n")
        if cut < 0:
            carry = chunk
            continue
        carry = chunk[cut + 1:]
        yield chunk[:cut]
    if carry:
        yield carry


def _block_is_clean_text(block: str) -> bool:
    if block.isascii():
        return True
    try:
        block.encode(ENCODING_UTF8)  # lone surrogates = bytes the decoder could not read
        return True
    except UnicodeEncodeError:
        return False


def _fast_block(block: str, layout: _Layout, ctx: dict) -> tuple[list[str], list[list]] | None:
    """Column-wise conversion of a clean block, or None when any check fails."""
    if '"' in block or "\r" in block or not _block_is_clean_text(block):
        return None
    lines: list[str] = block.split("\n") if layout.keep_lines else []
    line_count = len(lines) if layout.keep_lines else block.count("\n") + 1
    fields = block.replace("\n", ",").split(",")
    width = layout.width
    if len(fields) != width * line_count:
        return None
    out: list[list] = []
    for name, index in layout.columns:
        converted = _CONVERTERS[name][0](fields[index::width], ctx)
        if converted is None:
            return None
        out.append(converted)
    for _ in layout.absent:
        out.append(list(repeat(None, line_count)))
    return lines, out


def _slow_block(block: str, first_line_no: int, layout: _Layout, ctx: dict, source: str,
                emit: Callable[[int, list, str], None], errors: list[RowError]) -> None:
    for offset, text in enumerate(block.split("\n")):
        line_no = first_line_no + offset
        text = text.rstrip("\r")
        if not text.strip():
            continue
        if not _block_is_clean_text(text):
            errors.append(RowError(source, line_no, "bytes not valid in the file's encoding",
                                   text.encode(ENCODING_UTF8, "surrogateescape").decode(ENCODING_UTF8, "replace")))
            continue
        try:
            row = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            errors.append(RowError(source, line_no, f"broken CSV row: {exc}", text))
            continue
        if len(row) != layout.width:
            errors.append(RowError(source, line_no, f"expected {layout.width} fields, got {len(row)}", text))
            continue
        values: list = []
        try:
            for name, index in layout.columns:
                values.append(_CONVERTERS[name][1](row[index], ctx))
        except _RowFault as exc:
            errors.append(RowError(source, line_no, f"{name}: {exc}", text))
            continue
        values.extend(None for _ in layout.absent)
        emit(line_no, values, text)


def sample_encoding(sample: bytes) -> tuple[str, bool]:
    """(encoding, had BOM) of a file from its first ENCODING_SAMPLE_BYTES bytes."""
    body, had_bom = strip_bom(sample)
    # A sample cut in the middle of a character must not look like a non-UTF-8 file.
    cut = body.rfind(b"\n")
    encoding = detect_encoding(body[:cut] if cut > 0 and len(sample) == ENCODING_SAMPLE_BYTES else body)
    return encoding, had_bom


def _open_text(path_or_data: str | os.PathLike | bytes) -> tuple[IO[str], str]:
    if isinstance(path_or_data, (bytes, bytearray)):
        sample = bytes(path_or_data[:ENCODING_SAMPLE_BYTES])
        raw: IO[bytes] = io.BytesIO(path_or_data)
    else:
        raw = open(path_or_data, "rb")  # noqa: SIM115 - closed by the TextIOWrapper's owner
        sample = raw.read(ENCODING_SAMPLE_BYTES)
        raw.seek(0)
    encoding, had_bom = sample_encoding(sample)
    if had_bom:
        raw.read(3)
    return io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline=""), encoding


def _read(path_or_data: str | os.PathLike | bytes, source: str, wanted: tuple[str, ...],
          required: tuple[str, ...], table: StatementTable | LedgerTable,
          block_columns: Callable[[int, list[str], list[list]], list[list]],
          row: Callable[[int, list, str], tuple], fmt: str) -> ParseResult:
    stream, encoding = _open_text(path_or_data)
    errors: list[RowError] = []
    ctx: dict = {"dt_cache": {}}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of new lists/tuples would trigger full collections; there are no cycles
    try:
        with stream:
            header_line = stream.readline()
            if not header_line.strip():
                raise StatementFormatError(f"{source}: empty file, expected a header line")
            layout = _Layout(next(csv.reader([header_line.rstrip("\r\n")])), wanted, required, source,
                             isinstance(table, StatementTable))
            line_no = 2
            emit = lambda n, values, text: table.append(row(n, values, text))  # noqa: E731
            for block in _iter_blocks(stream):
                count = block.count("\n") + 1
                fast = _fast_block(block, layout, ctx)
                if fast is None:
                    _slow_block(block, line_no, layout, ctx, source, emit, errors)
                else:
                    table.extend_columns(block_columns(line_no, *fast))
                line_no += count
    finally:
        if gc_was_enabled:
            gc.enable()
    return ParseResult(table, errors, fmt, encoding)


def parse_normalized_csv(path_or_data: str | os.PathLike | bytes, *, source: str = "normalized") -> ParseResult:
    """Statement lines from the normalized CSV (a path, streamed, or the file's bytes)."""

    def block_columns(first: int, lines: list[str], cols: list[list]) -> list[list]:
        return [list(repeat(source, len(lines))), list(range(first, first + len(lines))), *cols, lines]

    def row(line_no: int, values: list, text: str) -> tuple:
        return (source, line_no, *values, text)

    return _read(path_or_data, source, STATEMENT_COLUMNS, STATEMENT_COLUMNS, StatementTable(), block_columns,
                 row, FORMAT_NORMALIZED)


def parse_ledger_csv(path_or_data: str | os.PathLike | bytes, *, source: str = "ledger") -> ParseResult:
    """Ledger entries from the ledger export CSV; ``chain_state``/``tx_hash`` columns are optional."""

    def block_columns(_first: int, _lines: list[str], cols: list[list]) -> list[list]:
        return cols

    def row(_line_no: int, values: list, _text: str) -> tuple:
        return tuple(values)

    return _read(path_or_data, source, LEDGER_COLUMNS, _LEDGER_REQUIRED, LedgerTable(), block_columns, row,
                 FORMAT_LEDGER)


def write_normalized_csv(lines: Iterable[StatementLine], stream: IO[str]) -> int:
    """Write statement lines in the normalized format (e.g. a converted provider bill). A person
    opens such a file in a spreadsheet, so text that would run as a formula is guarded with a
    leading apostrophe (:mod:`settlement.core.csv_safe`), and reads back with it."""
    writer = safe_writer(stream)
    writer.writerow(STATEMENT_COLUMNS)
    count = 0
    for line in lines:
        writer.writerow((line.provider_txn_id, line.reference, line.kind, line.amount_minor, line.currency,
                         line.status, line.booked_at.isoformat()))
        count += 1
    return count


def write_ledger_csv(entries: Iterable[LedgerEntry], stream: IO[str]) -> int:
    """Write ledger entries in the ledger export format this module reads (formula text guarded,
    as in :func:`write_normalized_csv`)."""
    writer = safe_writer(stream)
    writer.writerow(LEDGER_COLUMNS)
    count = 0
    for e in entries:
        writer.writerow((e.entry_id, e.provider_txn_id, e.reference, e.kind, e.amount_minor, e.currency, e.status,
                         e.booked_at.isoformat(), e.chain_state, e.tx_hash))
        count += 1
    return count
