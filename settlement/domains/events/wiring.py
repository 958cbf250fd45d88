"""How events out plug into the system (called by ``settlement.wiring``, last: its follower
handlers run after the domains' own, on the state they left)."""

from __future__ import annotations

from datetime import timedelta

from settlement.domains.anchoring.digests import observe_changes
from settlement.domains.events import producer
from settlement.domains.receivables import read_chain_facts
from settlement.pipeline.registry import HandlerRegistry
from settlement.runtime import Runtime

OVERDUE_INTERVAL_S = 60.0


def _overdue(runtime: Runtime) -> int:
    """Overdue as the contract says it (``statusOf``): confirmed and past due date + the grace
    period, by the chain's clock (read before the write transaction)."""
    facts = read_chain_facts(runtime)
    due_before = facts.today - timedelta(days=facts.grace_period_days)
    with runtime.db.transaction() as session:
        return producer.emit_overdue(session.connection(), due_before)


def observe() -> None:
    """Journal changes become events at commit, in any process that writes (idempotent)."""
    observe_changes(producer.on_journal)


def wire(registry: HandlerRegistry) -> None:
    """Journal changes become events at commit; ``SettlementRecorded`` -> ``settlement.confirmed``;
    ``SettlementReceiptAcknowledged`` -> ``settlement.acknowledged``; ``NetPaymentAttested`` ->
    ``netting_cycle.payment_attested``;
    ``RootAnchored`` -> ``anchor.anchored``; ReceivableRegistry events -> ``receivable.*`` and ``financing.*``; a job marks receivables overdue."""
    observe()
    registry.on_event_batch("SettlementRecorded", producer.on_settlements_recorded)
    registry.on_event("RootAnchored", producer.on_root_anchored)
    registry.on_event("SettlementReceiptAcknowledged", producer.on_settlement_acknowledged)
    registry.on_event("NetPaymentAttested", producer.on_net_payment_attested)
    for name in producer.RECEIVABLE_CHAIN_EVENTS:
        registry.on_event(name, producer.on_receivable_event)
    registry.every("events.overdue", OVERDUE_INTERVAL_S, _overdue)
