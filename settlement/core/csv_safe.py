"""CSV cells that a spreadsheet will not run: the one helper every CSV writer of the service uses.

A CSV that a member downloads is opened in Excel, LibreOffice or Google Sheets, which treat a
cell starting with ``=``, ``+``, ``-`` or ``@`` as a formula (``=cmd|' /C calc'!A0``,
``=HYPERLINK(...)``), and a leading tab or carriage return can hide one. Text in our exports comes
from other members and from providers (references, notes, statement fields), so one member could
otherwise plant a formula in a report another opens. Such a cell is written with a leading
apostrophe (OWASP's CSV injection advice): spreadsheets show the text, and the apostrophe tells a
reader it was guarded.

Only text is guarded: integers (amounts in minor units, negative ones included) are numbers, which
a spreadsheet never evaluates.

Rows end in CRLF (RFC 4180), which also makes the csv module quote a cell holding a lone CR or
LF: otherwise ``x\r=1+1`` would be read as two rows, the second starting with a formula.
Writers take :func:`safe_writer`, which does both.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["FORMULA_TRIGGERS", "LINE_TERMINATOR", "SafeCsvWriter", "safe_cell", "safe_csv_row", "safe_writer"]

LINE_TERMINATOR = "\r\n"

# A cell starting with any of these is read as a formula (or hides one) by common spreadsheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a CSV cell: None -> empty, text starting with a formula trigger -> quoted
    with a leading apostrophe, anything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def safe_csv_row(values: Iterable[Any]) -> list[Any]:
    """A row for ``csv.writer.writerow`` with every cell passed through :func:`safe_cell`."""
    return [safe_cell(v) for v in values]


class SafeCsvWriter:
    """``csv.writer`` with every row passed through :func:`safe_csv_row`."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream, lineterminator=LINE_TERMINATOR)

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow(safe_csv_row(values))


def safe_writer(stream: IO[str]) -> SafeCsvWriter:
    """The CSV writer of every export: formula cells guarded, CRLF rows, cells with line breaks quoted."""
    return SafeCsvWriter(stream)
