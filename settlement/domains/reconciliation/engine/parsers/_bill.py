"""Shared row handling of the Chinese provider bills (Alipay, WeChat Pay): small files, read
line by line with per-line decoding, so one bad row or bad byte costs only that row."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime

from settlement.core.errors import InvalidAmountError, StatementFormatError, UnsupportedCurrencyError
from settlement.core.money import Money
from settlement.domains.reconciliation.engine._text import (
    decoded_lines,
    describe_undecodable,
    detect_encoding,
)
from settlement.domains.reconciliation.engine.model import ParseResult, RowError, StatementTable

BILL_BYTES_MAX = 512 * 1024 * 1024


class RowFault(ValueError):
    pass


def money(text: str, currency: str, column: str) -> Money:
    """A bill amount in yuan; the sign is dropped (the kind carries the direction)."""
    text = text.strip().lstrip("`").strip()
    try:
        return Money.from_decimal_str(text.lstrip("-+"), currency)
    except (InvalidAmountError, UnsupportedCurrencyError) as exc:
        raise RowFault(f"{column}: {exc.detail}") from None


def timestamp(text: str, column: str) -> datetime:
    text = text.strip().lstrip("`").strip()
    try:
        return datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise RowFault(f"{column}: not a date/time: {text!r}") from None


def parse_bill(data: bytes, *, source: str, fmt: str, header_first: str,
               row: Callable[[dict[str, str], int, str], tuple | None],
               required: tuple[str, ...], encoding: str | None = None,
               stop: Callable[[str], bool] = lambda text: False) -> ParseResult:
    """Find the header line (the one starting with ``header_first``), then turn each data row
    into a statement line with ``row`` (None: not a line we reconcile, e.g. a summary row)."""
    if len(data) > BILL_BYTES_MAX:
        raise StatementFormatError(f"{source}: bill larger than {BILL_BYTES_MAX} bytes")
    encoding = encoding or detect_encoding(data)
    table = StatementTable()
    errors: list[RowError] = []
    header: list[str] | None = None
    for line_no, text, raw in decoded_lines(data, encoding):
        if text is None:
            errors.append(RowError(source, line_no, describe_undecodable(raw, encoding),
                                   raw.decode(encoding, "replace")))
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if header is None:
            if stripped.lstrip("`").startswith(header_first):
                header = [h.strip().lstrip("`").strip() for h in next(csv.reader([stripped]))]
                missing = [c for c in required if c not in header]
                if missing:
                    raise StatementFormatError(f"{source}: header lacks {missing}", missing=missing)
            continue
        if stop(stripped):
            break
        try:
            fields = next(csv.reader([stripped], strict=True))
        except csv.Error as exc:
            errors.append(RowError(source, line_no, f"broken CSV row: {exc}", text))
            continue
        if len(fields) != len(header):
            errors.append(RowError(source, line_no, f"expected {len(header)} fields, got {len(fields)}", text))
            continue
        values = {name: value.strip().lstrip("`").strip() for name, value in zip(header, fields)}
        try:
            made = row(values, line_no, text)
        except RowFault as exc:
            errors.append(RowError(source, line_no, str(exc), text))
            continue
        if made is not None:
            table.append(made)
    if header is None:
        raise StatementFormatError(f"{source}: no header line starting with {header_first!r} found")
    return ParseResult(table, errors, fmt, encoding)
