"""Anchoring: provenance events and the store's journal, batched into Merkle roots on TraceAnchor.

- ``record_events(session, member_id, member_onchain_id, events)``: store posted events with
  their leaves (all or nothing).
- ``digest_changed(session, kind, record)``: a domain service marks a record of a journal kind
  (:mod:`.kinds`) changed, in the transaction that changes it; the record's new version is
  digested from the row when that transaction commits (``digest_new`` for rows just inserted in
  bulk). The journal is anchored periodically.
- ``run_once(runtime, limits)``: the worker hook; closes due batches (each: tree, batch row and
  ``TraceAnchor.anchor`` outbox row in one transaction) and records anchored blocks' times.
- ``audit_store`` / ``export_journal`` / ``audit_export`` / ``event_proof`` / ``record_proof`` /
  ``trial_balance``: what auditors read and check.

The follower's ``RootAnchored`` handler, the dispatcher's failure hook for ``anchors.anchor`` rows
and the periodic anchoring job are registered by :func:`.wiring.wire`.
"""

from __future__ import annotations

from settlement.domains.anchoring.audit import (
    ONCHAIN_PROOFS_PER_BATCH_DEFAULT,
    ONCHAIN_PROOFS_PER_BATCH_MAX,
    AuditReport,
    Finding,
)
from settlement.domains.anchoring.audit_store import audit_store, open_read_only
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
    backfill,
    canonical_record_json,
    digest_changed,
    digest_new,
    record_digest,
)
from settlement.domains.anchoring.export import EXPORT_FORMAT, audit_export, export_lines
from settlement.domains.anchoring.kinds import KINDS, RecordKind
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
    PRODUCT_LOTS_MAX,
    ProductLot,
    TraceItem,
    anchor_ref,
    batch_dump,
    event_proof,
    get_batch,
    list_batches,
    lot_trace,
    product_lots,
    rebuild_tree,
    record_proof,
)
from settlement.domains.anchoring.provenance import RecordedEvent, parse_events, record_events
from settlement.domains.anchoring.submit import chain_last_sequence, retry_failed
from settlement.domains.anchoring.trial import TrialBalance, trial_balance

__all__ = [
    "ANCHOR_OUTBOX_KIND",
    "ONCHAIN_PROOFS_PER_BATCH_DEFAULT",
    "ONCHAIN_PROOFS_PER_BATCH_MAX",
    "BATCH_LIST_MAX",
    "DEFAULT_LIMITS",
    "EVENTS_PER_REQUEST_MAX",
    "EXPORT_FORMAT",
    "EXPORT_BATCHES_MAX",
    "JOURNAL_LEAF_ENCODING",
    "JOURNAL_LEAF_FIELDS",
    "JOURNAL_SCHEMA_VERSION",
    "KINDS",
    "KIND_EVENTS",
    "KIND_JOURNAL",
    "TRACE_EVENTS_MAX",
    "AuditReport",
    "BatchLimits",
    "BatchSummary",
    "Finding",
    "RecordKind",
    "RecordedEvent",
    "TraceItem",
    "TrialBalance",
    "audit_export",
    "backfill",
    "export_lines",
    "record_proof",
    "trial_balance",
    "anchor_ref",
    "audit_store",
    "batch_dump",
    "canonical_record_json",
    "chain_last_sequence",
    "digest_changed",
    "digest_new",
    "event_proof",
    "flush",
    "flush_events",
    "flush_journal",
    "get_batch",
    "list_batches",
    "lot_trace",
    "open_read_only",
    "PRODUCT_LOTS_MAX",
    "ProductLot",
    "product_lots",
    "parse_events",
    "pending_counts",
    "rebuild_tree",
    "record_digest",
    "record_events",
    "retry_failed",
    "run_once",
]
