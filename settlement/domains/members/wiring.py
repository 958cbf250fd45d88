"""How the members domain plugs into the pipeline (called by ``settlement.wiring``)."""

from __future__ import annotations

from settlement.domains.members import events
from settlement.pipeline.registry import HandlerRegistry


def wire(registry: HandlerRegistry) -> None:
    """Registry events keep the members mirror in step with the chain."""
    for event, handler in events.EVENT_HANDLERS:
        registry.on_event(event, handler, contracts=events.REGISTRY_CONTRACTS)
