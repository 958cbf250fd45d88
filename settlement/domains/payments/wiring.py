"""How the payments domain plugs into the pipeline (called by ``settlement.wiring``, after the
settlements domain: its hooks on settlement rows run after the settlements domain's own)."""

from __future__ import annotations

from settlement.domains.payments import on_effect_refused, process_deferred
from settlement.pipeline.registry import HandlerRegistry

DEFERRED_INTERVAL_S = 0.5
EFFECT_KINDS = ("settlement.pay", "settlement.refund")


def wire(registry: HandlerRegistry) -> None:
    """Deferred callbacks (a payment before its recording was confirmed, a refund before its payment)
    are applied by a periodic sweep; a callback's effect the chain refused becomes an exception."""
    for kind in EFFECT_KINDS:
        registry.on_failure(kind, on_effect_refused)
    registry.every("callbacks.deferred", DEFERRED_INTERVAL_S, process_deferred)
