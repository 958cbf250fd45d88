"""Progress of long CLI work: a live bar on a terminal (``rich``), plain lines anywhere else.

A bar redraws itself with carriage returns; written into a file or a pipe (a log collector, CI
output, ``2> run.log``) those frames pile up as garbage. So :func:`progress_for` draws a
``rich`` bar only when the stream is a terminal, and otherwise writes plain lines: one when a stage
starts, at most one every :data:`LINE_INTERVAL_S` while it runs, and one when it ends. No ``\\r``.

Both are called as ``progress(stage, done, total_or_None)`` (the domain's ``Progress`` callback)
and closed with ``close()``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Protocol

__all__ = ["LINE_INTERVAL_S", "LineProgress", "ProgressSink", "RichProgress", "progress_for"]

LINE_INTERVAL_S = 5.0


class ProgressSink(Protocol):
    def __call__(self, stage: str, done: int, total: int | None) -> None: ...

    def close(self) -> None: ...


def _amount(done: int, total: int | None) -> str:
    if total:
        return f"{done:,} of {total:,} ({min(100, done * 100 // total)}%)"
    return f"{done:,}"


class LineProgress:
    """Plain progress lines for a file or a pipe."""

    def __init__(self, stream: IO[str], interval_s: float = LINE_INTERVAL_S,
                 clock: Any = time.monotonic) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self._clock = clock
        self._stage = ""
        self._last_line = 0.0
        self._last: tuple[int, int | None] = (0, None)

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_line = self._clock()

    def _finish_stage(self) -> None:
        if self._stage:
            self._line(f"{self._stage}: done, {_amount(*self._last)}")

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage != self._stage:
            self._finish_stage()
            self._stage = stage
            self._last = (done, total)
            self._line(f"{stage}: started" + (f", {total:,} to do" if total else ""))
            return
        self._last = (done, total)
        if self._clock() - self._last_line >= self.interval_s:
            self._line(f"{stage}: {_amount(done, total)}")

    def close(self) -> None:
        self._finish_stage()
        self._stage = ""


class RichProgress:
    """A live ``rich`` bar per stage, on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(file=stream), transient=False)
        self._tasks: dict[str, Any] = {}
        self._started = False

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(task, completed=done, total=total)

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False


def progress_for(stream: IO[str] | None = None) -> ProgressSink:
    """A bar on a terminal, plain lines otherwise (and with TERM=dumb)."""
    stream = stream or sys.stderr
    is_tty = getattr(stream, "isatty", lambda: False)()
    if is_tty and os.environ.get("TERM", "") != "dumb":
        return RichProgress(stream)
    return LineProgress(stream)
