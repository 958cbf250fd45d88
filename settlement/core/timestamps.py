"""Timestamps as the API writes them (docs/api.md): RFC 3339 in UTC, ending in ``Z``.

The store keeps naive datetimes that are UTC (SQLite has no zone; PostgreSQL columns are without
time zone), so a naive value is taken as UTC; an aware one is converted.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utc_text"]


def utc_text(value: datetime | None) -> str | None:
    """``2026-12-04T14:19:07.933729Z`` (None stays None)."""
    if value is None:
        return None
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value.isoformat().replace("+00:00", "Z")
