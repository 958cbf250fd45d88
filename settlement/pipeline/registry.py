"""What the domains plug into the pipeline, registered explicitly by whoever builds the system.

A domain's ``wiring.wire(registry)`` says, in one place, which follower events it handles, which
outbox kinds it wants to hear about when the chain refuses them, and which periodic jobs it runs.
``settlement.wiring.build_registry`` calls every domain's ``wire`` in a stated order; nothing
registers itself by being imported. The dispatcher, the follower and the workers only ever see
the finished registry.

Order is part of the contract: handlers for one event or hook for one kind run in registration
order, inside the follower's (or dispatcher's) transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.core.errors import ChainRevertError
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow

__all__ = ["BatchEventHandler", "EventHandler", "FailureHook", "HandlerRegistry", "PeriodicJob", "RollbackHook"]

# Runs in the follower's transaction for each newly stored event of its name.
EventHandler = Callable[[Session, DecodedLog], None]
# Runs once per run of consecutive events of one name within a page (order is kept across names),
# for handlers whose per-event work is one set-based statement.
BatchEventHandler = Callable[[Session, list[DecodedLog]], None]
# Runs in the dispatcher's transaction when an outbox row of its kind reverts on chain.
FailureHook = Callable[[Session, OutboxRow, ChainRevertError], None]
# Runs in the transaction that puts outbox rows back to signed because the canonical chain lost
# their transactions (rollback, node restarted from an old state): a domain shows the records
# they carried as pending again until the same transactions are mined anew.
RollbackHook = Callable[[Session, list[OutboxRow]], None]

JOB_INTERVAL_S_MIN = 0.05


@dataclass(frozen=True)
class PeriodicJob:
    """A domain job run by the workers every ``interval_s`` while idle, at once again while busy.

    ``run(runtime)`` returns how much it did (0: nothing to do until the next interval).
    """

    name: str
    run: Callable[[Runtime], int]
    interval_s: float


def _fan_out(handlers: list[Callable]) -> Callable:
    if len(handlers) == 1:
        return handlers[0]

    def run(*args: object) -> None:
        for handler in handlers:
            handler(*args)

    return run


@dataclass
class HandlerRegistry:
    _events: dict[str, list[EventHandler]] = field(default_factory=dict)
    _batch_events: dict[str, list[BatchEventHandler]] = field(default_factory=dict)
    _failures: dict[str, list[FailureHook]] = field(default_factory=dict)
    _jobs: dict[str, PeriodicJob] = field(default_factory=dict)
    _rollbacks: list[RollbackHook] = field(default_factory=list)

    def on_event(self, event: str, handler: EventHandler, *, contracts: Collection[str] | None = None) -> None:
        """Run ``handler(session, log)`` for each new ``event``; with ``contracts``, only for logs of
        those contracts (event names are not unique across contracts)."""
        if contracts is not None:
            wanted = frozenset(contracts)
            inner = handler

            def handler(session: Session, lg: DecodedLog) -> None:  # type: ignore[no-redef]
                if lg.contract in wanted:
                    inner(session, lg)

            handler.__name__ = getattr(inner, "__name__", "handler")
        self._events.setdefault(event, []).append(handler)

    def on_event_batch(self, event: str, handler: BatchEventHandler) -> None:
        """Run ``handler(session, logs)`` once per run of consecutive new ``event`` logs in a page."""
        self._batch_events.setdefault(event, []).append(handler)

    def on_failure(self, kind: str, hook: FailureHook) -> None:
        """Run ``hook(session, outbox_row, error)`` when an outbox row of ``kind`` reverts on chain."""
        self._failures.setdefault(kind, []).append(hook)

    def on_rollback(self, hook: RollbackHook) -> None:
        """Run ``hook(session, outbox_rows)`` when the chain lost the transactions of those rows."""
        self._rollbacks.append(hook)

    def every(self, name: str, interval_s: float, run: Callable[[Runtime], int]) -> None:
        """Run ``run(runtime)`` periodically in the workers' job thread."""
        if name in self._jobs:
            raise ValueError(f"periodic job {name!r} is registered twice")
        if interval_s < JOB_INTERVAL_S_MIN:
            raise ValueError(f"periodic job {name!r}: interval {interval_s}s is below {JOB_INTERVAL_S_MIN}s")
        self._jobs[name] = PeriodicJob(name, run, interval_s)

    # -- what the pipeline reads ---------------------------------------------------------------------

    def event_handlers(self) -> dict[str, EventHandler]:
        return {event: _fan_out(hs) for event, hs in self._events.items()}

    def batch_event_handlers(self) -> dict[str, BatchEventHandler]:
        return {event: _fan_out(hs) for event, hs in self._batch_events.items()}

    def failure_hooks(self) -> dict[str, FailureHook]:
        return {kind: _fan_out(hs) for kind, hs in self._failures.items()}

    def rollback_hooks(self) -> list[RollbackHook]:
        return list(self._rollbacks)

    def jobs(self) -> list[PeriodicJob]:
        return list(self._jobs.values())
