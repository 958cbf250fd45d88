"""Background workers: the outbox dispatcher, the chain follower and the domains' periodic jobs,
each in its own loop.

The loops are bounded per pass, back off while the chain or the store is unavailable, and stop
promptly when asked. What the domains plug in (event handlers, failure hooks, periodic jobs)
comes from a :class:`~settlement.pipeline.registry.HandlerRegistry` built by the caller
(``settlement.wiring.build_registry``); the pipeline never imports a domain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import OperationalError

from settlement.core.errors import ChainUnavailableError
from settlement.pipeline.dispatcher import INFLIGHT_PER_SIGNER_DEFAULT, Dispatcher
from settlement.pipeline.follower import Follower
from settlement.pipeline.registry import HandlerRegistry, PeriodicJob
from settlement.runtime import Runtime

log = logging.getLogger("ledger.workers")

BACKOFF_MAX_S = 5.0


def build(runtime: Runtime, registry: HandlerRegistry, *, batch_size: int = 200, confirmations: int = 0,
          block_range_max: int = 2_000,
          inflight_max: int = INFLIGHT_PER_SIGNER_DEFAULT) -> tuple[Dispatcher, Follower]:
    """The dispatcher and the follower, fed with the registry's handlers and hooks."""
    dispatcher = Dispatcher(runtime, batch_size=batch_size, failure_hooks=registry.failure_hooks(),
                            rollback_hooks=registry.rollback_hooks(), inflight_max=inflight_max)
    follower = Follower(runtime, dispatcher, handlers=registry.event_handlers(),
                        batch_handlers=registry.batch_event_handlers(), confirmations=confirmations,
                        block_range_max=block_range_max)
    return dispatcher, follower


def run_jobs_once(runtime: Runtime, jobs: list[PeriodicJob]) -> int:
    """Run every job once (for tests and tools); returns the total work done."""
    return sum(job.run(runtime) for job in jobs)


class Workers:
    """Runs the dispatcher, the follower and the periodic domain jobs in daemon threads until stop()."""

    def __init__(self, runtime: Runtime, registry: HandlerRegistry, *, dispatch_interval_s: float = 0.1,
                 follow_interval_s: float = 0.25, jobs_tick_s: float = 0.25, **build_kwargs: int) -> None:
        self.runtime = runtime
        self.dispatcher, self.follower = build(runtime, registry, **build_kwargs)
        self._jobs = registry.jobs()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=("dispatcher", self.dispatcher.run_once, dispatch_interval_s),
                             name="ledger-dispatcher", daemon=True),
            threading.Thread(target=self._loop, args=("follower", self.follower.run_once, follow_interval_s),
                             name="ledger-follower", daemon=True),
            # Periodic domain jobs, run one after another in a third thread.
            threading.Thread(target=self._run_jobs, args=(jobs_tick_s,), name="ledger-jobs", daemon=True),
        ]

    def start(self) -> Workers:
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout_s)

    def _run_jobs(self, tick_s: float) -> None:
        due = {job.name: 0.0 for job in self._jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self._jobs:
                if now < due[job.name]:
                    continue
                try:
                    busy = job.run(self.runtime)
                except (ChainUnavailableError, OperationalError) as exc:
                    log.warning("%s: %s", job.name, exc)
                    busy = 0
                except Exception:
                    log.exception("%s failed; retrying", job.name)
                    busy = 0
                due[job.name] = now if busy else now + job.interval_s
            self._stop.wait(tick_s)

    def _loop(self, name: str, step: Callable[[], int], interval_s: float) -> None:
        backoff = interval_s
        while not self._stop.is_set():
            try:
                busy = step()
                backoff = interval_s
                if busy:
                    continue  # more work may be waiting: go again at once
            except (ChainUnavailableError, OperationalError) as exc:
                log.warning("%s: %s; retrying in %.1fs", name, exc, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception:
                log.exception("%s pass failed; retrying", name)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            self._stop.wait(backoff)
