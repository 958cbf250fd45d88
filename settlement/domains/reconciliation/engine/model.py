"""Normalized inputs of a reconciliation run: statement lines, ledger entries, per-row errors.

Both row types are :class:`typing.NamedTuple` s: a million of them must fit in memory and be built
in C (``tuple.__new__`` over ``zip``), so they carry no ``__dict__``. Amounts are kept as an integer
of minor units plus a currency code; the :attr:`amount` property gives the :class:`Money` value.
Amounts are non-negative magnitudes: the direction is the ``kind`` (payment, refund, fee).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from settlement.core.money import CURRENCY_EXPONENTS, Money

KIND_PAYMENT = "payment"
KIND_REFUND = "refund"
KIND_FEE = "fee"
KINDS: tuple[str, ...] = (KIND_PAYMENT, KIND_REFUND, KIND_FEE)

# Canonical statuses shared by every statement format and by the ledger side. Parsers map the
# provider's own vocabulary onto these; a status outside this set is a per-row error.
STATUS_SUCCEEDED = "succeeded"
STATUS_PENDING = "pending"
STATUS_FAILED = "failed"
STATUS_REVERSED = "reversed"
STATUSES: tuple[str, ...] = (STATUS_SUCCEEDED, STATUS_PENDING, STATUS_FAILED, STATUS_REVERSED)

# On-chain state of the record a ledger entry settles (None: the entry is not anchored on chain).
CHAIN_CONFIRMED = "confirmed"
CHAIN_PENDING = "pending"
CHAIN_FAILED = "failed"
CHAIN_ABSENT = "absent"
CHAIN_STATES: tuple[str, ...] = (CHAIN_CONFIRMED, CHAIN_PENDING, CHAIN_FAILED, CHAIN_ABSENT)

# Interning tables: one shared str object per value keeps a million rows small, and a dict lookup
# doubles as validation (None: not allowed).
KIND_TABLE: dict[str, str] = {k: k for k in KINDS}
STATUS_TABLE: dict[str, str] = {s: s for s in STATUSES}
CHAIN_TABLE: dict[str, str] = {s: s for s in CHAIN_STATES}
CURRENCY_TABLE: dict[str, str] = {c: c for c in CURRENCY_EXPONENTS}


class StatementLine(NamedTuple):
    """One line of a provider or bank statement, normalized.

    ``provider_txn_id``: the provider's identifier of this movement (refunds: the refund's own id
    where the format has one). ``reference``: the merchant's reference (order number / EndToEndId).
    ``booked_at``: a ``datetime`` (naive = the provider's local time). ``raw``: the source row text
    (for camt.053: the ``<Ntry>`` element serialized).
    """

    source: str
    line_no: int
    provider_txn_id: str | None
    reference: str | None
    kind: str
    amount_minor: int
    currency: str
    status: str
    booked_at: datetime
    raw: str

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def booked_date(self) -> date:
        return self.booked_at.date()


class LedgerEntry(NamedTuple):
    """The journal side of a run, with the chain facts the store knows about the entry.

    ``chain_state`` is one of :data:`CHAIN_STATES` or None when the entry is not anchored on chain;
    ``tx_hash`` is the confirming transaction, if any.
    """

    entry_id: str
    provider_txn_id: str | None
    reference: str | None
    kind: str
    amount_minor: int
    currency: str
    status: str
    booked_at: datetime
    chain_state: str | None = None
    tx_hash: str | None = None

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def booked_date(self) -> date:
        return self.booked_at.date()


class RowError(NamedTuple):
    """A row a parser could not turn into a line; ``line_no`` 0 means the file as a whole."""

    source: str
    line_no: int
    reason: str
    raw: str = ""


class ParseResult(NamedTuple):
    """What a parser returns: the good lines (a StatementTable or LedgerTable), the bad rows, and
    how the file was read (format name, encoding)."""

    lines: "StatementTable | LedgerTable"
    errors: list
    format: str
    encoding: str


def make_statement_line(source: str, line_no: int, provider_txn_id: str | None, reference: str | None,
                        kind: str, amount: Money, status: str, booked_at: datetime,
                        raw: str = "") -> StatementLine:
    """Validated constructor for callers building lines one by one (tests, other layers)."""
    _check_common(kind, status, amount.value)
    return StatementLine(source, line_no, provider_txn_id or None, reference or None, kind, amount.value,
                         amount.currency, status, booked_at, raw)


def make_ledger_entry(entry_id: str, provider_txn_id: str | None, reference: str | None, kind: str,
                      amount: Money, status: str, booked_at: datetime, chain_state: str | None = None,
                      tx_hash: str | None = None) -> LedgerEntry:
    """Validated constructor for the layer that exports journal entries from the store."""
    _check_common(kind, status, amount.value)
    if chain_state is not None and chain_state not in CHAIN_TABLE:
        raise ValueError(f"unknown chain state {chain_state!r}")
    if not entry_id:
        raise ValueError("entry_id is required")
    return LedgerEntry(entry_id, provider_txn_id or None, reference or None, kind, amount.value,
                       amount.currency, status, booked_at, chain_state, tx_hash or None)


def _check_common(kind: str, status: str, amount_minor: int) -> None:
    if kind not in KIND_TABLE:
        raise ValueError(f"unknown kind {kind!r}")
    if status not in STATUS_TABLE:
        raise ValueError(f"unknown status {status!r}")
    if amount_minor < 0:
        raise ValueError("amounts are non-negative magnitudes; the kind gives the direction")


class _Table:
    """Column-wise storage of rows of one NamedTuple type; a read-only sequence of those rows.

    The matcher works on the columns (lists), so a million rows cost a million list slots per
    column instead of a million tuples; rows are materialized only when someone looks at them.
    """

    row_type: type = tuple
    __slots__ = ("columns",)

    def __init__(self, columns: list[list] | None = None) -> None:
        width = len(self.row_type._fields)  # type: ignore[attr-defined]
        self.columns: list[list] = columns if columns is not None else [[] for _ in range(width)]
        if len(self.columns) != width or len({len(c) for c in self.columns}) > 1:
            raise ValueError("columns must all have the same length, one per field")

    @classmethod
    def from_rows(cls, rows: list | tuple) -> "_Table":
        rows = list(rows)
        if not rows:
            return cls()
        return cls([list(col) for col in zip(*rows, strict=True)])

    def append(self, row: tuple) -> None:
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)

    def extend_columns(self, columns: list[list]) -> None:
        for column, values in zip(self.columns, columns, strict=True):
            column.extend(values)

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, index: int):  # type: ignore[no-untyped-def]
        return tuple.__new__(self.row_type, [c[index] for c in self.columns])

    def __iter__(self):  # type: ignore[no-untyped-def]
        from itertools import repeat
        return map(tuple.__new__, repeat(self.row_type), zip(*self.columns))

    def column(self, name: str) -> list:
        return self.columns[self.row_type._fields.index(name)]  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} rows)"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.columns == other.columns  # type: ignore[attr-defined]


class StatementTable(_Table):
    """A sequence of :class:`StatementLine`, stored column-wise (what the parsers return)."""

    row_type = StatementLine
    __slots__ = ()


class LedgerTable(_Table):
    """A sequence of :class:`LedgerEntry`, stored column-wise."""

    row_type = LedgerEntry
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Tolerances of a run. Bounds are named and checked (TigerStyle: a limit on everything)."""

    amount_tolerance_minor: int = 0
    date_window_days: int = 3
    group_lines_max: int = 1_000  # statement lines summed into one ledger entry

    def __post_init__(self) -> None:
        if type(self.amount_tolerance_minor) is not int or self.amount_tolerance_minor < 0:
            raise ValueError("amount_tolerance_minor must be a non-negative int")
        if type(self.date_window_days) is not int or self.date_window_days < 0:
            raise ValueError("date_window_days must be a non-negative int")
        if type(self.group_lines_max) is not int or self.group_lines_max < 2:
            raise ValueError("group_lines_max must be an int >= 2")
