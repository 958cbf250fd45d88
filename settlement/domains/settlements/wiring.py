"""How the settlements domain plugs into the pipeline (called by ``settlement.wiring``)."""

from __future__ import annotations

from settlement.domains.settlements import events
from settlement.pipeline.registry import HandlerRegistry


def wire(registry: HandlerRegistry) -> None:
    """SettlementLedger events confirm or apply settlements and cycles; reverted operations roll
    their settlement (or cycle) back with the decoded error."""
    registry.on_event_batch("SettlementRecorded", events.on_recorded)
    for event, handler in events.EVENT_HANDLERS:
        registry.on_event(event, handler, contracts=events.LEDGER_CONTRACTS)
    for kind in events.OPERATION_KINDS:
        registry.on_failure(kind, events.reject_ops)
    for kind in events.CYCLE_KINDS:
        registry.on_failure(kind, events.on_cycle_failure)
    for kind in events.NET_PAYMENT_KINDS:
        registry.on_failure(kind, events.on_net_payment_failure)
    registry.on_rollback(events.on_chain_lost)
