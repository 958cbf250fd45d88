"""Failed authentication throttled per client address (issue 15).

Each client address has a fixed window of :data:`AUTH_FAILURE_WINDOW_S` starting at its first
failed authentication (missing, malformed, unknown or revoked key). Past
:data:`AUTH_FAILURES_MAX` failures in its window, every further failure from that address is
answered 429 ``authentication-throttled`` with ``Retry-After`` (the seconds left in the window)
instead of 401, and is no longer written to the security-event log one by one: one
``auth.throttled`` event marks the start (so a flood of bad keys cannot turn into a flood of store
writes). A request with a valid key is never throttled: the key is checked first, and only a
failure is counted or refused. Guessing keys stays hopeless either way (a key holds 256 random
bits); the throttle bounds the cost of trying and tells a misconfigured client to stop.

Memory is bounded: at most :data:`AUTH_CLIENTS_TRACKED_MAX` addresses are tracked; the least
recently failing one is forgotten first (an attacker cycling through that many addresses only
resets its own windows). The address is the TCP peer (``request.client.host``): behind a reverse
proxy every client shares the proxy's address, so put the throttle at the proxy there, or accept
that one noisy client slows the others' failures (never their successes).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AUTH_CLIENTS_TRACKED_MAX", "AUTH_FAILURES_MAX", "AUTH_FAILURE_WINDOW_S", "FailedAuthThrottle", "Verdict"]

AUTH_FAILURES_MAX = 20  # failed authentications per client address per window, answered 401
AUTH_FAILURE_WINDOW_S = 60.0
AUTH_CLIENTS_TRACKED_MAX = 10_000


@dataclass(frozen=True)
class Verdict:
    """What to do with one failed authentication: ``retry_after_s`` None -> answer 401 (and log
    it); else 429 with that ``Retry-After``; ``first_throttled`` marks the failure that tripped
    the limit (log that one)."""

    retry_after_s: int | None
    first_throttled: bool = False


class FailedAuthThrottle:
    """Counts failed authentications per client address in fixed windows (thread-safe)."""

    def __init__(self, failures_max: int = AUTH_FAILURES_MAX, window_s: float = AUTH_FAILURE_WINDOW_S,
                 clients_max: int = AUTH_CLIENTS_TRACKED_MAX, clock: Callable[[], float] = time.monotonic) -> None:
        if failures_max < 1 or window_s <= 0 or clients_max < 1:
            raise ValueError("the auth throttle needs failures_max >= 1, window_s > 0 and clients_max >= 1")
        self.failures_max = failures_max
        self.window_s = window_s
        self.clients_max = clients_max
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, list[float]] = OrderedDict()  # address -> [window start, failures]

    def __len__(self) -> int:
        return len(self._windows)

    def failed(self, client: str) -> Verdict:
        """Count one failed authentication from ``client`` and say how to answer it."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(client)
            if window is None or now - window[0] >= self.window_s:
                window = [now, 0.0]
            window[1] += 1
            self._windows[client] = window
            self._windows.move_to_end(client)
            while len(self._windows) > self.clients_max:
                self._windows.popitem(last=False)
            failures, started = int(window[1]), window[0]
        if failures <= self.failures_max:
            return Verdict(None)
        retry_after = max(1, math.ceil(started + self.window_s - now))
        return Verdict(retry_after, first_throttled=failures == self.failures_max + 1)
