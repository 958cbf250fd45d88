"""Keyset pages for the one list envelope (``{data, next_cursor, has_more}``, docs/api.md).

A page is read newest first on a (time, id) key, the id breaking ties, with one row of
look-ahead, so ``has_more`` is exact and the cursor (the last row's time and id) is stable
while rows are added: a new row sorts before the cursor and never shifts a later page.
Ids may be text or integers; the cursor is opaque to clients (``<iso time>~<id>``). A cursor
this module did not hand out is refused with ``invalid-cursor`` (422).

First written for the reconciliation lists (statements, runs); every cursor-paged list that
orders by time uses it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.orm import Session

from settlement.core.errors import InvalidCursorError

__all__ = ["CURSOR_LEN_MAX", "CURSOR_PATTERN", "cursor_of", "keyset_page"]

CURSOR_LEN_MAX = 200
# What a cursor looks like; routes declare it so a malformed one is a 422 before any read.
CURSOR_PATTERN = r"^[0-9T:.+-]{10,40}~[A-Za-z0-9_:.-]{1,150}$"
_ID_INT_MAX = (1 << 63) - 1


def cursor_of(row_time: datetime, row_id: Any) -> str:
    """An opaque page cursor: the last row's time (UTC, no zone) and id."""
    if row_time.tzinfo is not None:
        row_time = row_time.astimezone(timezone.utc)
    return f"{row_time.replace(tzinfo=None).isoformat()}~{row_id}"


def _parse(cursor: str, id_col: Any, field: str) -> tuple[datetime, Any]:
    text, _, row_id = cursor.partition("~")
    try:
        if not row_id or len(cursor) > CURSOR_LEN_MAX:
            raise ValueError(cursor)
        at = datetime.fromisoformat(text)
        if at.tzinfo is not None:
            at = at.astimezone(timezone.utc).replace(tzinfo=None)
        key: Any = row_id
        if id_col.type.python_type is int:
            key = int(row_id)
            if not 0 <= key <= _ID_INT_MAX:
                raise ValueError(row_id)
    except (ValueError, NotImplementedError):
        raise InvalidCursorError("cursor is not a next_cursor of this list", field=field) from None
    return at, key


def keyset_page(session: Session, q: Any, time_col: Any, id_col: Any, limit: int, cursor: str | None, *,
                limit_max: int, field: str = "cursor") -> tuple[list[Any], str | None]:
    """One page of ``q`` (a select of one entity), newest first, and the next page's cursor (None
    on the last page: one row of look-ahead makes that exact). ``limit`` is clamped to
    1..``limit_max``."""
    limit = max(1, min(limit, limit_max))
    if cursor is not None:
        at, key = _parse(cursor, id_col, field)
        q = q.where(or_(time_col < at, and_(time_col == at, id_col < key)))
    rows = list(session.scalars(q.order_by(time_col.desc(), id_col.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, cursor_of(getattr(last, time_col.key), getattr(last, id_col.key))
