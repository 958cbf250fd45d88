"""Keep a private dev chain's clock clear of midnight (UTC) before a test reasons in whole days.

Tests that register a receivable due "tomorrow" and then move the clock by whole days
(``evm_increaseTime``) assume that the chain's day does not turn over by itself while they run.
Started at 23:59 it does: CI once ran such a test across midnight and the "on the due date" step
met a chain already one day past it. Before a test reads "today", the clock is moved forward (never
back) to just after the next midnight if it is within ``MARGIN_S`` of it; then every later
``advance_days(n)`` lands on a known day for hours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DAY_S = 86_400
MARGIN_S = 4 * 3_600  # a test reasoning in days runs for minutes at most


def clear_of_midnight(rpc: Callable[[str, list[Any]], Any], latest_timestamp: int) -> int:
    """Return the chain's day (days since the epoch), after moving a clock that is within
    ``MARGIN_S`` of midnight to one minute past it (a private anvil only: evm_* methods)."""
    seconds_into_day = latest_timestamp % DAY_S
    if seconds_into_day < DAY_S - MARGIN_S:
        return latest_timestamp // DAY_S
    next_day = latest_timestamp // DAY_S + 1
    rpc("evm_setNextBlockTimestamp", [next_day * DAY_S + 60])
    rpc("evm_mine", [])
    return next_day
