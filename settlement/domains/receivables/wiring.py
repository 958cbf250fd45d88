"""How the receivables domain plugs into the pipeline (called by ``settlement.wiring``)."""

from __future__ import annotations

from settlement.domains.receivables import events
from settlement.domains.receivables.models import OPERATION_KINDS
from settlement.domains.receivables.payments import INSTRUCT_INTERVAL_S, instruct_payments_job
from settlement.pipeline.registry import HandlerRegistry


def wire(registry: HandlerRegistry) -> None:
    """ReceivableRegistry events confirm or apply receivables; reverted operations are marked
    rejected; a periodic job turns owed disbursements and repayments into settlements."""
    for event, handler in events.HANDLERS.items():
        registry.on_event(event, handler)
    for kind in OPERATION_KINDS:
        registry.on_failure(f"receivable.{kind}", events.on_failure)
    registry.on_rollback(events.on_chain_lost)
    registry.every("receivables.payments", INSTRUCT_INTERVAL_S, instruct_payments_job)
