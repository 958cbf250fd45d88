"""Background workers: the outbox dispatcher and the chain follower, each in its own loop.

Both loops are bounded per pass, back off while the chain or the store is unavailable, and stop
promptly when asked. Domain handlers (event handlers, failure hooks) are registered here by the
features that need them, via :func:`register_event_handler` and :func:`register_failure_hook`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import OperationalError

from settlement.pipeline.dispatcher import Dispatcher, FailureHook
from settlement.core.errors import ChainUnavailableError
from settlement.pipeline.follower import BatchEventHandler, EventHandler, Follower
from settlement.runtime import Runtime

log = logging.getLogger("ledger.workers")

BACKOFF_MAX_S = 5.0

_EVENT_HANDLERS: dict[str, list[EventHandler]] = {}
_BATCH_EVENT_HANDLERS: dict[str, list[BatchEventHandler]] = {}
_FAILURE_HOOKS: dict[str, list[FailureHook]] = {}


def register_event_handler(event: str, handler: EventHandler) -> None:
    """Run ``handler(session, log)`` in the follower's transaction for each new ``event``."""
    _EVENT_HANDLERS.setdefault(event, []).append(handler)


def register_batch_event_handler(event: str, handler: BatchEventHandler) -> None:
    """Run ``handler(session, logs)`` in the follower's transaction once per run of consecutive new
    ``event`` logs in a page (for set-based handling of high-volume events)."""
    _BATCH_EVENT_HANDLERS.setdefault(event, []).append(handler)


def register_failure_hook(kind: str, hook: FailureHook) -> None:
    """Run ``hook(session, outbox_row, error)`` when an outbox row of ``kind`` reverts on chain."""
    _FAILURE_HOOKS.setdefault(kind, []).append(hook)


def periodic_jobs(runtime: Runtime) -> list[tuple[str, Callable[[], int], float]]:
    """The domain's periodic jobs, each returning how much it did (0: idle until its interval):

    - anchoring: close due batches of provenance events and journal digests, anchor their roots;
    - callbacks.deferred: apply provider callbacks that arrived before the chain had confirmed
      what they depend on (a payment before the recording, a refund before the payment);
    - receivables.payments: turn owed disbursements and repayments into settlements.
    """
    from settlement.domains import anchoring
    from settlement.domains.payments import process_deferred
    from settlement.domains.receivables import instruct_payments

    limits = anchoring.BatchLimits.from_env()

    def instruct() -> int:
        with runtime.db.transaction() as session:
            return instruct_payments(runtime, session)

    return [
        ("anchoring", lambda: anchoring.run_once(runtime, limits), 0.25),
        ("callbacks.deferred", lambda: process_deferred(runtime), 0.5),
        ("receivables.payments", instruct, 2.0),
    ]


def _fan_out(table: dict[str, list[Callable]]) -> dict[str, Callable]:
    def make(handlers: list[Callable]) -> Callable:
        def run(*args: object) -> None:
            for h in handlers:
                h(*args)
        return run
    return {name: make(hs) for name, hs in table.items()}


def build(runtime: Runtime, *, batch_size: int = 200, confirmations: int = 0,
          block_range_max: int = 2_000) -> tuple[Dispatcher, Follower]:
    _load_domain_handlers()
    dispatcher = Dispatcher(runtime, batch_size=batch_size, failure_hooks=_fan_out(_FAILURE_HOOKS))
    follower = Follower(runtime, dispatcher, handlers=_fan_out(_EVENT_HANDLERS),
                        batch_handlers=_fan_out(_BATCH_EVENT_HANDLERS), confirmations=confirmations,
                        block_range_max=block_range_max)
    return dispatcher, follower


def _load_domain_handlers() -> None:
    """Import the domain modules that register handlers (each registers once, on import)."""
    import importlib

    for module in ("settlement.domains.members.service", "settlement.domains.settlements", "settlement.domains.receivables",
                   "settlement.domains.anchoring", "settlement.domains.payments"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


class Workers:
    """Runs the dispatcher, the follower and the periodic domain jobs in daemon threads until stop()."""

    def __init__(self, runtime: Runtime, *, dispatch_interval_s: float = 0.1, follow_interval_s: float = 0.25,
                 anchor_interval_s: float = 0.25, **build_kwargs: int) -> None:
        self.dispatcher, self.follower = build(runtime, **build_kwargs)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=("dispatcher", self.dispatcher.run_once, dispatch_interval_s),
                             name="ledger-dispatcher", daemon=True),
            threading.Thread(target=self._loop, args=("follower", self.follower.run_once, follow_interval_s),
                             name="ledger-follower", daemon=True),
        ]
        # Periodic domain jobs, run one after another in a third thread.
        self._jobs = periodic_jobs(runtime)
        self._threads.append(threading.Thread(target=self._run_jobs, args=(anchor_interval_s,),
                                              name="ledger-jobs", daemon=True))

    def start(self) -> "Workers":
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout_s)

    def _run_jobs(self, tick_s: float) -> None:
        due = {name: 0.0 for name, _job, _every in self._jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for name, job, every_s in self._jobs:
                if now < due[name]:
                    continue
                try:
                    busy = job()
                except (ChainUnavailableError, OperationalError) as exc:
                    log.warning("%s: %s", name, exc)
                    busy = 0
                except Exception:
                    log.exception("%s failed; retrying", name)
                    busy = 0
                due[name] = now if busy else now + every_s
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
