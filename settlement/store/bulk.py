"""Bulk INSERT for the volume paths (settlement batches, their journal, the follower's events).

``session.execute(table.insert(), rows)`` spends most of its time in SQLAlchemy, not in the
database: per row it builds a parameter dict and runs each column's bind processor (about 10 µs a
row here; a batch of 200 settlements writes ~1,400 rows). :func:`insert_rows` compiles one INSERT
per (table, columns) and hands the driver plain tuples, running each column's bind processor
(the same ones SQLAlchemy would run, so stored values are identical) once per distinct value in
a row of repeats, which the volume paths are full of (timestamps, states, ``None``).

Column defaults of the model are applied to columns the rows leave out, as Core's insert would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

__all__ = ["PreparedInsert", "execute_insert", "insert_rows", "prepare_insert"]

_UNSET = object()


@lru_cache(maxsize=128)
def _statement(table: Table, columns: tuple[str, ...], dialect_name: str, paramstyle: str,
               quote: Callable[[str], str]) -> str:
    marker = "?" if paramstyle == "qmark" else "%s"
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join([marker] * len(columns))})"


def _processor(table: Table, column: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    col = table.c[column]
    return col.type.dialect_impl(dialect).bind_processor(dialect)


def _defaults(table: Table, given: Sequence[str]) -> list[tuple[str, Callable[[], Any]]]:
    """Python-side defaults of the columns the rows leave out (server defaults apply by themselves)."""
    out = []
    for col in table.columns:
        if col.key in given or col.default is None:
            continue
        default = col.default
        if getattr(default, "is_scalar", False):
            value = default.arg  # type: ignore[attr-defined]
            out.append((col.key, lambda value=value: value))
        elif getattr(default, "is_callable", False):
            fn = default.arg  # type: ignore[attr-defined]
            out.append((col.key, lambda fn=fn: fn(None)))
        # sequences and SQL expressions: left to the database
    return out


@dataclass(frozen=True)
class PreparedInsert:
    """An INSERT and its driver-ready parameter rows (see :func:`prepare_insert`)."""

    sql: str
    params: list[tuple]

    def only(self, keep: Sequence[int]) -> PreparedInsert:
        return PreparedInsert(self.sql, [self.params[i] for i in keep])


def prepare_insert(dialect: Dialect, table: Table, rows: Sequence[Mapping[str, Any]]) -> PreparedInsert:
    """Converts ``rows`` (mappings with the same keys) for the driver. Needs no connection, so a
    caller can do it before taking the write lock and run :func:`execute_insert` inside."""
    if not rows:
        return PreparedInsert("", [])
    given = list(rows[0].keys())
    defaults = _defaults(table, given)
    columns = tuple(given + [name for name, _fn in defaults])
    procs = [_processor(table, c, dialect) for c in columns]
    # Columns whose values need converting: (index, processor, also-for-None); the rest pass as is.
    convert = [(i, proc, _json_like(table, columns[i])) for i, proc in enumerate(procs) if proc is not None]
    last_in: list[Any] = [_UNSET] * len(columns)
    last_out: list[Any] = [None] * len(columns)
    pick = itemgetter(*given) if len(given) > 1 else (lambda row: (row[given[0]],))
    fills = [fn for _name, fn in defaults]
    params = []
    for row in rows:
        values = list(pick(row))
        if fills:
            values += [fn() for fn in fills]
        for i, proc, for_none in convert:
            value = values[i]
            if value is None and not for_none:
                continue
            if value is last_in[i]:  # repeats (the batch's timestamp, a state, None) convert once
                values[i] = last_out[i]
                continue
            out = proc(value)
            last_in[i], last_out[i], values[i] = value, out, out
        params.append(tuple(values))
    sql = _statement(table, columns, dialect.name, dialect.paramstyle, dialect.identifier_preparer.quote)
    return PreparedInsert(sql, params)


def execute_insert(session: Session, prepared: PreparedInsert) -> None:
    """Runs a prepared INSERT in ``session``'s transaction (one executemany)."""
    if prepared.params:
        session.connection().exec_driver_sql(prepared.sql, prepared.params)


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (mappings with the same keys) in one executemany, inside ``session``'s
    transaction. Autoincrement keys left out are assigned by the database."""
    if rows:
        execute_insert(session, prepare_insert(session.connection().dialect, table, rows))


@lru_cache(maxsize=512)
def _json_like(table: Table, column: str) -> bool:
    """JSON columns store Python None as JSON 'null' (SQLAlchemy's default): their processor
    must see None too. Other types keep None as SQL NULL without calling the processor."""
    from sqlalchemy import JSON

    return isinstance(table.c[column].type, JSON)
