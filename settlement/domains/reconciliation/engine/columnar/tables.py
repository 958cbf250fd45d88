"""Step 5 of the columnar run: the report's lazy tables, which answer lengths, open rows and the
rule-1 columns from the packed arrays and parse a file again only when asked for anything else."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from settlement.domains.reconciliation.engine.columnar.common import _CODE_VALUES, LEDGER, np
from settlement.domains.reconciliation.engine.model import LedgerTable, StatementTable


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
    """A :class:`StatementTable` of a columnar run: see the package docstring."""

    __slots__ = ("_cols", "_known", "_load", "_made", "_n", "_rows")

    def __init__(self, n: int, known: dict[str, Callable[[], list]], rows: dict[int, tuple],
                 load: Callable[[], list[list]]):
        self._init(n, known, rows, load)


class LazyLedgerTable(_Lazy, LedgerTable):
    """A :class:`LedgerTable` of a columnar run: see the package docstring."""

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
