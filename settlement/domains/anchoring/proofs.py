"""Proofs for auditors: a batch rebuilt from the store, proof documents, lot traces, dumps.

A batch's tree is rebuilt from its rows (values in ``batch_index`` order) and must give the
stored root: a store altered after batching is reported (AnchorStoreInconsistentError), never
turned into a proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anchors.errors import InvalidInputError
from anchors.events import ProvenanceEvent, normalize_product
from anchors.merkle import StandardMerkleTree
from anchors.journal import JournalRecord
from anchors.proof import AnchorRef, ProofDocument, build_proof_document
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    AnchorStoreInconsistentError,
    InvalidCursorError,
    JournalRecordPendingError,
    ProvenanceEventPendingError,
    UnknownJournalRecordError,
    UnknownAnchorBatchError,
    UnknownLotError,
    UnknownProvenanceEventError,
    ValidationError,
)
from settlement.domains.anchoring.batcher import KIND_EVENTS
from settlement.domains.anchoring.digests import check_kind, check_record_id, journal_leaf_value
from settlement.domains.anchoring.limits import ANCHOR_CONTRACT, BATCH_LIST_MAX, TRACE_EVENTS_MAX
from settlement.runtime import Runtime
from settlement.store.models.anchoring import AnchorBatch, ProvenanceEventRow, RecordDigest


class TreeCache:
    """Rebuilt trees of one request or export, by batch id (each batch is rebuilt once)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._trees: dict[int, StandardMerkleTree] = {}

    def tree(self, batch: AnchorBatch) -> StandardMerkleTree:
        tree = self._trees.get(batch.id)
        if tree is None:
            tree = rebuild_tree(self.session, batch)
            self._trees[batch.id] = tree
        return tree


def rebuild_tree(session: Session, batch: AnchorBatch) -> StandardMerkleTree:
    """The batch's tree from its rows; it must have the stored leaf count and root."""
    if batch.kind == KIND_EVENTS:
        model: type = ProvenanceEventRow
        rows = session.execute(select(model.batch_index, model.value).where(model.batch_id == batch.id)
                               .order_by(model.batch_index)).all()
    else:  # journal leaves are the rows' own columns (values stored only by the first journal schema)
        model = RecordDigest
        found = session.execute(select(model.batch_index, model.value, model.kind, model.record_id, model.version,
                                       model.recorded_at_s, model.prev_digest, model.digest)
                                .where(model.batch_id == batch.id).order_by(model.batch_index)).all()
        rows = [(r.batch_index, r.value if r.value is not None else journal_leaf_value(
            r.kind, r.record_id, r.version, r.recorded_at_s, r.prev_digest, r.digest, batch.schema_version))
            for r in found]
    if [r[0] for r in rows] != list(range(batch.leaf_count)):
        raise AnchorStoreInconsistentError(
            f"batch {batch.sequence} holds {len(rows)} rows, anchored with {batch.leaf_count} leaves",
            sequence=batch.sequence)
    try:
        tree = StandardMerkleTree.of([r[1] for r in rows], tuple(batch.leaf_encoding))
    except InvalidInputError as exc:
        raise AnchorStoreInconsistentError(f"batch {batch.sequence}: a stored value is malformed: {exc.detail}",
                                           sequence=batch.sequence) from None
    if tree.root != batch.root:
        raise AnchorStoreInconsistentError(
            f"batch {batch.sequence} rebuilds to {tree.root}, anchored root is {batch.root}", sequence=batch.sequence)
    return tree


def anchor_ref(runtime: Runtime, batch: AnchorBatch) -> AnchorRef | None:
    """Where the batch was anchored, or None while it is not (yet)."""
    if batch.status != "anchored" or batch.tx_hash is None or batch.block_number is None:
        return None
    block_time = batch.block_time
    if block_time is None:
        block = runtime.chain.get_block(batch.block_number)
        if block is None:
            return None
        block_time = block["timestamp"]
    if runtime.manifest is None:
        return None
    return AnchorRef(chain_id=runtime.manifest.chain_id, contract=runtime.address(ANCHOR_CONTRACT),
                     tx_hash=batch.tx_hash, block_number=batch.block_number, block_time=block_time,
                     batch_sequence=batch.sequence)


def _event_document(runtime: Runtime, cache: TreeCache, row: ProvenanceEventRow,
                    batch: AnchorBatch) -> ProofDocument:
    if row.batch_index is None:
        raise ProvenanceEventPendingError(f"event {row.event_id} is not in a batch yet", event_id=row.event_id)
    doc = build_proof_document(cache.tree(batch), row.batch_index, anchor=anchor_ref(runtime, batch),
                               event=ProvenanceEvent.from_json(row.event), schema_version=row.schema_version)
    if doc.leaf_hash != row.leaf_hash:
        raise AnchorStoreInconsistentError(f"event {row.event_id}: stored leaf hash differs from its batch leaf")
    return doc


def event_proof(runtime: Runtime, session: Session, event_id: str) -> ProofDocument:
    """The proof document of one event (anchor null until the follower saw its batch anchored)."""
    row = session.scalar(select(ProvenanceEventRow).where(ProvenanceEventRow.event_id == event_id))
    if row is None:
        raise UnknownProvenanceEventError(f"no provenance event {event_id!r}", event_id=event_id)
    if row.batch_id is None:
        raise ProvenanceEventPendingError(f"event {event_id} is waiting for the batcher; no proof yet",
                                          event_id=event_id)
    batch = session.get(AnchorBatch, row.batch_id)
    if batch is None:
        raise AnchorStoreInconsistentError(f"event {event_id} points at a missing batch")
    return _event_document(runtime, TreeCache(session), row, batch)


@dataclass(frozen=True)
class TraceItem:
    event: dict[str, Any]
    status: str  # pending (waiting for the batcher) | batched (root enqueued) | anchored | failed
    batch_sequence: int | None
    proof: ProofDocument | None


def lot_trace(runtime: Runtime, session: Session, lot_id: str, *, limit: int = TRACE_EVENTS_MAX,
              after_event_id: str | None = None, cursor: bool = False) -> tuple[list[TraceItem], bool]:
    """A page of a lot's events in order of occurrence (then of recording), each with its proof
    and anchor, and whether more follow (one row of look-ahead). ``after_event_id``: the last
    event seen; with ``cursor`` it came back as a page's ``next_cursor``, and one that is not an
    event of this lot is ``invalid-cursor`` (else ``unknown-provenance-event``, the former
    ``?after=``)."""
    if not 1 <= limit <= TRACE_EVENTS_MAX:
        raise ValidationError(f"limit must be 1..{TRACE_EVENTS_MAX}", field="limit")
    query = select(ProvenanceEventRow).where(ProvenanceEventRow.lot_id == lot_id)
    if after_event_id is not None:
        after = session.scalar(select(ProvenanceEventRow).where(ProvenanceEventRow.event_id == after_event_id,
                                                                ProvenanceEventRow.lot_id == lot_id))
        if after is None and cursor:
            raise InvalidCursorError("cursor is not a next_cursor of this lot's trace", field="cursor")
        if after is None:
            raise UnknownProvenanceEventError(f"no event {after_event_id!r} in lot {lot_id!r}")
        query = query.where((ProvenanceEventRow.occurred_at_s > after.occurred_at_s)
                            | ((ProvenanceEventRow.occurred_at_s == after.occurred_at_s)
                               & (ProvenanceEventRow.id > after.id)))
    elif session.scalar(select(ProvenanceEventRow.id).where(ProvenanceEventRow.lot_id == lot_id).limit(1)) is None:
        raise UnknownLotError(f"no provenance events for lot {lot_id!r}", lot_id=lot_id)
    rows = session.scalars(query.order_by(ProvenanceEventRow.occurred_at_s, ProvenanceEventRow.id)
                           .limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    batch_ids = {r.batch_id for r in rows if r.batch_id is not None}
    batches = {b.id: b for b in session.scalars(select(AnchorBatch).where(AnchorBatch.id.in_(batch_ids)))} \
        if batch_ids else {}
    cache = TreeCache(session)
    items: list[TraceItem] = []
    for row in rows:
        batch = batches.get(row.batch_id) if row.batch_id is not None else None
        if batch is None:
            items.append(TraceItem(row.event, "pending", None, None))
            continue
        status = batch.status if batch.status in ("anchored", "failed") else "batched"
        items.append(TraceItem(row.event, status, batch.sequence, _event_document(runtime, cache, row, batch)))
    return items, more


PRODUCT_LOTS_MAX = 200  # lots per page of a search by product


@dataclass(frozen=True)
class ProductLot:
    """A lot in which a product was seen: how many events, first and last occurrence (unix s)."""

    lot_id: str
    events: int
    first_occurred_at_s: int
    last_occurred_at_s: int


def product_lots(session: Session, product: str, *, limit: int = PRODUCT_LOTS_MAX,
                 after_lot_id: str | None = None) -> tuple[str, list[ProductLot], bool]:
    """The lots whose events name ``product`` (normalised as the events are: ``gtin:`` GTIN-8/12/13/14
    padded to 14 digits, or ``sku:``), in lot id order after ``after_lot_id``; returns the
    normalised product, one page and whether more follow. Raises ValidationError for a malformed
    product."""
    if not 1 <= limit <= PRODUCT_LOTS_MAX:
        raise ValidationError(f"limit must be 1..{PRODUCT_LOTS_MAX}", field="limit")
    try:
        normalised = normalize_product(product)
    except InvalidInputError as exc:
        raise ValidationError(str(exc.detail), field="product") from None
    e = ProvenanceEventRow
    query = (select(e.lot_id, func.count(e.id), func.min(e.occurred_at_s), func.max(e.occurred_at_s))
             .where(e.product == normalised).group_by(e.lot_id).order_by(e.lot_id).limit(limit + 1))
    if after_lot_id is not None:
        query = query.where(e.lot_id > after_lot_id)
    lots = [ProductLot(lot, int(n), int(first), int(last)) for lot, n, first, last in session.execute(query)]
    return normalised, lots[:limit], len(lots) > limit


def record_proof(runtime: Runtime, session: Session, kind: str, record_id: str,
                 version: int | None = None) -> ProofDocument:
    """The proof document of a journal record's latest version (or ``version``): its leaf, proof,
    root and anchor, and the record's canonical text, from which anyone recomputes the leaf.
    Raises UnknownJournalRecordError, JournalRecordPendingError (not batched yet; anchor null
    while batched but not confirmed), AnchorStoreInconsistentError (the batch no longer rebuilds)."""
    try:
        kind, record_id = check_kind(kind), check_record_id(record_id)
    except ValidationError:
        raise UnknownJournalRecordError(f"no journal record {str(kind)[:64]}/{str(record_id)[:128]}") from None
    q = select(RecordDigest).where(RecordDigest.kind == kind, RecordDigest.record_id == record_id)
    if version is not None:
        q = q.where(RecordDigest.version == version)
    row = session.scalar(q.order_by(RecordDigest.version.desc()).limit(1))
    if row is None:
        raise UnknownJournalRecordError(f"no journal record {kind}/{record_id}"
                                        + (f" version {version}" if version is not None else ""),
                                        kind=kind, record_id=record_id)
    if row.batch_id is None or row.batch_index is None:
        raise JournalRecordPendingError(f"{kind}/{record_id} v{row.version} is waiting for the batcher; no proof yet",
                                        kind=kind, record_id=record_id, version=row.version)
    batch = session.get(AnchorBatch, row.batch_id)
    if batch is None:
        raise AnchorStoreInconsistentError(f"{kind}/{record_id}: its batch is missing")
    record = JournalRecord(kind, record_id, row.version, row.recorded_at_s, row.prev_digest, row.canonical_json)
    doc = build_proof_document(TreeCache(session).tree(batch), row.batch_index, anchor=anchor_ref(runtime, batch),
                               schema_version=batch.schema_version, record=record)
    if doc.leaf_hash != row.leaf_hash or record.leaf_hash(batch.schema_version) != doc.leaf_hash:
        raise AnchorStoreInconsistentError(f"{kind}/{record_id} v{row.version}: its text does not give its batch leaf",
                                           sequence=batch.sequence)
    return doc


def get_batch(session: Session, sequence: int) -> AnchorBatch:
    batch = session.scalar(select(AnchorBatch).where(AnchorBatch.sequence == sequence))
    if batch is None:
        raise UnknownAnchorBatchError(f"no anchor batch with sequence {sequence}", sequence=sequence)
    return batch


def list_batches(session: Session, *, kind: str | None = None, after_sequence: int = 0,
                 limit: int = 100) -> list[AnchorBatch]:
    if not 1 <= limit <= BATCH_LIST_MAX:
        raise ValidationError(f"limit must be 1..{BATCH_LIST_MAX}", field="limit")
    query = select(AnchorBatch).where(AnchorBatch.sequence > after_sequence)
    if kind is not None:
        query = query.where(AnchorBatch.kind == kind)
    return list(session.scalars(query.order_by(AnchorBatch.sequence).limit(limit)))


def batch_dump(session: Session, sequence: int) -> dict[str, Any]:
    """The batch's ``standard-v1`` dump (loads with ``StandardMerkleTree.load`` in JS and Python)."""
    return rebuild_tree(session, get_batch(session, sequence)).dump()


__all__ = ["PRODUCT_LOTS_MAX", "ProductLot", "TreeCache", "TraceItem", "anchor_ref", "batch_dump", "event_proof",
           "get_batch", "list_batches", "lot_trace", "product_lots", "rebuild_tree", "record_proof"]
