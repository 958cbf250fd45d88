"""How the governance domain plugs into the pipeline (called by ``settlement.wiring``)."""

from __future__ import annotations

from settlement.domains.governance import events
from settlement.pipeline.registry import HandlerRegistry


def wire(registry: HandlerRegistry) -> None:
    """Proposal-log, Safe and timelock events move proposals along; reverted governance
    transactions are recorded on their proposal."""
    for event, handler in events.EVENT_HANDLERS:
        registry.on_event(event, handler)
    for kind, hook in events.FAILURE_HOOKS:
        registry.on_failure(kind, hook)
