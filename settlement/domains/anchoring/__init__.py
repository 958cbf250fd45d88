"""Anchoring: provenance events and the store's journal, batched into Merkle roots on TraceAnchor.

- ``record_events(session, member_id, member_onchain_id, events)``: store posted events with
  their leaves (all or nothing).
- ``record_digest(session, kind, record_id, record)``: any domain service journals a record
  version in its own transaction; the journal is anchored periodically.
- ``run_once(runtime, limits)``: the worker hook; closes due batches (each: tree, batch row and
  ``TraceAnchor.anchor`` outbox row in one transaction) and records anchored blocks' times.
- ``event_proof`` / ``lot_trace`` / ``batch_dump`` / ``export_journal`` / ``audit_journal``: what
  auditors read and check.

The follower's ``RootAnchored`` handler, the dispatcher's failure hook for ``anchors.anchor`` rows
and the periodic anchoring job are registered by :func:`.wiring.wire`.
"""

from __future__ import annotations

from settlement.domains.anchoring.audit import EXPORT_FORMAT, AuditReport, audit_journal, export_journal
from settlement.domains.anchoring.batcher import (
    KIND_EVENTS,
    KIND_JOURNAL,
    BatchSummary,
    flush,
    flush_events,
    flush_journal,
    pending_counts,
    run_once,
)
from settlement.domains.anchoring.digests import (
    JOURNAL_LEAF_ENCODING,
    JOURNAL_LEAF_FIELDS,
    JOURNAL_SCHEMA_VERSION,
    canonical_record_json,
    record_digest,
    register_record_loader,
)
from settlement.domains.anchoring.limits import (
    ANCHOR_OUTBOX_KIND,
    BATCH_LIST_MAX,
    DEFAULT_LIMITS,
    EVENTS_PER_REQUEST_MAX,
    EXPORT_BATCHES_MAX,
    TRACE_EVENTS_MAX,
    BatchLimits,
)
from settlement.domains.anchoring.proofs import (
    TraceItem,
    anchor_ref,
    batch_dump,
    event_proof,
    get_batch,
    list_batches,
    lot_trace,
    rebuild_tree,
)
from settlement.domains.anchoring.provenance import RecordedEvent, parse_events, record_events
from settlement.domains.anchoring.submit import chain_last_sequence, retry_failed

__all__ = ["BATCH_LIST_MAX", "EVENTS_PER_REQUEST_MAX", "EXPORT_BATCHES_MAX", "TRACE_EVENTS_MAX", "chain_last_sequence", 
    "ANCHOR_OUTBOX_KIND",
    "DEFAULT_LIMITS",
    "EXPORT_FORMAT",
    "JOURNAL_LEAF_ENCODING",
    "JOURNAL_LEAF_FIELDS",
    "JOURNAL_SCHEMA_VERSION",
    "KIND_EVENTS",
    "KIND_JOURNAL",
    "AuditReport",
    "BatchLimits",
    "BatchSummary",
    "RecordedEvent",
    "TraceItem",
    "anchor_ref",
    "audit_journal",
    "batch_dump",
    "canonical_record_json",
    "event_proof",
    "export_journal",
    "flush",
    "flush_events",
    "flush_journal",
    "get_batch",
    "list_batches",
    "lot_trace",
    "parse_events",
    "pending_counts",
    "rebuild_tree",
    "record_digest",
    "record_events",
    "register_record_loader",
    "retry_failed",
    "run_once",
]
