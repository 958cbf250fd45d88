"""The whole wiring of the domains into the pipeline, in one stated order.

Order matters where two domains answer the same event or outbox kind: handlers run in
registration order inside one transaction. The settlements domain comes first, so the payments
domain's failure hooks on ``settlement.pay`` / ``settlement.refund`` rows run after the settlement
itself was rolled back.
"""

from __future__ import annotations

from settlement.domains.anchoring.limits import BatchLimits
from settlement.domains.anchoring.wiring import wire as wire_anchoring
from settlement.domains.events.wiring import observe as observe_events
from settlement.domains.events.wiring import wire as wire_events
from settlement.domains.governance.wiring import wire as wire_governance
from settlement.domains.members.wiring import wire as wire_members
from settlement.domains.payments.wiring import wire as wire_payments
from settlement.domains.receivables.wiring import wire as wire_receivables
from settlement.domains.settlements.wiring import wire as wire_settlements
from settlement.pipeline.registry import HandlerRegistry

__all__ = ["build_registry", "install_journal_observers"]


def build_registry(*, anchor_limits: BatchLimits | None = None) -> HandlerRegistry:
    registry = HandlerRegistry()
    wire_members(registry)  # first: the registry's events update the members other domains read
    wire_governance(registry)
    wire_settlements(registry)
    wire_receivables(registry)
    wire_anchoring(registry, anchor_limits)
    wire_payments(registry)
    wire_events(registry)  # last: events are read from the state the domains' handlers left
    return registry


def install_journal_observers() -> None:
    """What must run in every process that writes domain changes, with workers or without (the
    API alone): the events producer's journal observer (docs/events.md). ``build_registry`` does
    it too."""
    observe_events()
