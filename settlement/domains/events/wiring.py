"""How events out plug into the system (called by ``settlement.wiring``, last: its follower
handlers run after the domains' own, on the state they left)."""

from __future__ import annotations

from datetime import datetime, timezone

from settlement.domains.anchoring.digests import observe_changes
from settlement.domains.events import producer
from settlement.pipeline.registry import HandlerRegistry
from settlement.runtime import Runtime

OVERDUE_INTERVAL_S = 60.0


def _overdue(runtime: Runtime) -> int:
    with runtime.db.transaction() as session:
        return producer.emit_overdue(session.connection(), datetime.now(timezone.utc).date())


def wire(registry: HandlerRegistry) -> None:
    """Journal changes become events at commit; ``SettlementRecorded`` -> ``settlement.confirmed``;
    ``RootAnchored`` -> ``anchor.anchored``; a job marks receivables overdue."""
    observe_changes(producer.on_journal)
    registry.on_event_batch("SettlementRecorded", producer.on_settlements_recorded)
    registry.on_event("RootAnchored", producer.on_root_anchored)
    registry.every("events.overdue", OVERDUE_INTERVAL_S, _overdue)
