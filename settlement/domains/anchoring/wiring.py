"""How the anchoring domain plugs into the pipeline (called by ``settlement.wiring``)."""

from __future__ import annotations

from settlement.domains.anchoring.batcher import run_once
from settlement.domains.anchoring.limits import ANCHOR_OUTBOX_KIND, BatchLimits
from settlement.domains.anchoring.submit import on_anchor_failed, on_root_anchored
from settlement.pipeline.registry import HandlerRegistry
from settlement.runtime import Runtime

ANCHORING_INTERVAL_S = 0.25


def wire(registry: HandlerRegistry, limits: BatchLimits | None = None) -> None:
    """``RootAnchored`` marks a batch anchored; a refused anchor is retried by the job; the job
    closes due batches of provenance events and journal digests and anchors their roots."""
    batch_limits = limits or BatchLimits.from_env()

    def anchoring(runtime: Runtime) -> int:
        return run_once(runtime, batch_limits)

    registry.on_event("RootAnchored", on_root_anchored)
    registry.on_failure(ANCHOR_OUTBOX_KIND, on_anchor_failed)
    registry.every("anchoring", ANCHORING_INTERVAL_S, anchoring)
