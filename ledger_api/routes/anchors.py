"""Provenance events and anchors.

Who may do what:
- post events: members with the ``supplier``, ``buyer`` or ``operator`` role (the parties that
  produce, ship, receive and sell goods; the operator for integrations). The acting member in
  each event's leaf is the caller.
- read traces, proofs (events and journal records), batches, dumps, the journal export and the
  trial balance: ``auditor`` and ``operator``.
- force a flush of the batcher (every open batch, events and journal): ``operator``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from ledger_api.conventions import CursorQuery, IdempotencyKey, idempotent
from ledger_api.deps import DbSession, OperatorMember, Principal, RuntimeDep, require_roles
from ledger_api.schemas import Problem
from ledger_api.schemas.anchors import (
    AnchorBatchesPublic,
    AnchorBatchPublic,
    AnchorPublic,
    EventAccepted,
    EventsAccepted,
    FlushResult,
    LotTrace,
    ProductLotPublic,
    ProductLots,
    TrialBalancePublic,
    ProofDocumentOut,
    ProvenanceEventsIn,
    StandardV1Dump,
    TraceEntry,
)
from settlement.domains import anchoring
from settlement.domains.anchoring import BATCH_LIST_MAX, PRODUCT_LOTS_MAX, TRACE_EVENTS_MAX
from settlement.domains.members import onchain_id
from settlement.runtime import Runtime
from settlement.store.models.anchoring import AnchorBatch

router = APIRouter(prefix="/v1", tags=["provenance"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}})

EventWriter = Annotated[Principal, Depends(require_roles("supplier", "buyer", "operator"))]
Auditor = Annotated[Principal, Depends(require_roles("auditor", "operator"))]
LotIdPath = Annotated[str, Path(min_length=1, max_length=128)]
EventIdPath = Annotated[str, Path(min_length=1, max_length=128)]
# The store holds sequences as signed 64-bit integers: larger ones cannot exist (and would overflow
# the database driver).
SequencePath = Annotated[int, Path(ge=1, le=(1 << 63) - 1)]
KindPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9._-]{0,63}$")]
RecordIdPath = Annotated[str, Path(min_length=1, max_length=128)]
ProductPath = Annotated[str, Path(min_length=5, max_length=80)]

NDJSON = "application/x-ndjson"


def batch_public(runtime: Runtime, batch: AnchorBatch) -> AnchorBatchPublic:
    ref = anchoring.anchor_ref(runtime, batch)
    return AnchorBatchPublic(kind=batch.kind, sequence=batch.sequence, root=batch.root, leaf_count=batch.leaf_count,
                             schema_version=batch.schema_version, leaf_encoding=list(batch.leaf_encoding),
                             first_time_s=batch.first_time_s, last_time_s=batch.last_time_s, status=batch.status,
                             attempts=batch.attempts, last_error=batch.last_error,
                             anchor=AnchorPublic(**ref.to_json()) if ref else None, created_at=batch.created_at)


@router.post("/provenance/events", status_code=status.HTTP_201_CREATED, response_model=EventsAccepted,
             summary="Record provenance events (supplier, buyer, operator); all or none",
             responses={200: {"model": EventsAccepted, "description": "every event was already recorded"},
                        409: {"model": Problem}, 413: {"model": Problem}})
def post_events(body: ProvenanceEventsIn, runtime: RuntimeDep, member: EventWriter,
                idempotency_key: IdempotencyKey = None) -> EventsAccepted:
    raw = [e.model_dump(exclude_none=True) for e in body.events]

    def work(session: Session) -> tuple[int, dict]:
        recorded = anchoring.record_events(session, member.member_id, onchain_id(member.member_id), raw)
        new = sum(1 for r in recorded if not r.duplicate)
        answer = EventsAccepted(accepted=new, duplicates=len(recorded) - new,
                                events=[EventAccepted(event_id=r.event_id, lot_id=r.lot_id, leaf_hash=r.leaf_hash,
                                                      duplicate=r.duplicate) for r in recorded])
        return status.HTTP_201_CREATED if new else status.HTTP_200_OK, answer.model_dump(mode="json")

    return idempotent(runtime, member.member_id, idempotency_key, "POST /v1/provenance/events",  # type: ignore[return-value]
                      body.model_dump(mode="json", exclude_none=True), work)


@router.get("/provenance/lots/{lot_id:path}/trace", response_model=LotTrace,
            summary="A lot's events in order, each with its Merkle proof and anchor (auditor, operator)",
            responses={404: {"model": Problem}})
def lot_trace(lot_id: LotIdPath, runtime: RuntimeDep, session: DbSession, _auditor: Auditor,
              limit: Annotated[int, Query(ge=1, le=TRACE_EVENTS_MAX)] = TRACE_EVENTS_MAX,
              cursor: CursorQuery = None,
              after: Annotated[str | None, Query(max_length=128, deprecated=True,
                                                 description="the former cursor: event_id of the last one seen")] = None,
              ) -> LotTrace:
    items, more = anchoring.lot_trace(runtime, session, lot_id, limit=limit, after_event_id=cursor or after,
                                      cursor=cursor is not None)
    entries = [TraceEntry(event=i.event, status=i.status, batch_sequence=i.batch_sequence,
                          proof=ProofDocumentOut(**i.proof.to_json()) if i.proof else None) for i in items]
    return LotTrace(lot_id=lot_id, data=entries, has_more=more,
                    next_cursor=items[-1].event["event_id"] if more else None)


@router.get("/provenance/products/{product}/lots", response_model=ProductLots,
            summary="The lots in which a product (gtin:<digits> or sku:<code>) was seen (auditor, operator)",
            responses={422: {"model": Problem}})
def product_lots(product: ProductPath, session: DbSession, _auditor: Auditor,
                 cursor: Annotated[str | None, Query(min_length=1, max_length=128,
                                                     description="the last lot id seen")] = None,
                 limit: Annotated[int, Query(ge=1, le=PRODUCT_LOTS_MAX)] = 50) -> ProductLots:
    normalised, lots, has_more = anchoring.product_lots(session, product, limit=limit, after_lot_id=cursor)
    return ProductLots(product=normalised, data=[ProductLotPublic(
        lot_id=lot.lot_id, events=lot.events, first_occurred_at=_utc(lot.first_occurred_at_s),
        last_occurred_at=_utc(lot.last_occurred_at_s)) for lot in lots],
        next_cursor=lots[-1].lot_id if has_more else None, has_more=has_more)


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@router.get("/provenance/events/{event_id:path}/proof", response_model=ProofDocumentOut,
            summary="The proof document of one event (auditor, operator)",
            responses={404: {"model": Problem}, 409: {"model": Problem, "description": "not batched yet"}})
def event_proof(event_id: EventIdPath, runtime: RuntimeDep, session: DbSession, _auditor: Auditor) -> ProofDocumentOut:
    return ProofDocumentOut(**anchoring.event_proof(runtime, session, event_id).to_json())


@router.get("/anchors/batches", response_model=AnchorBatchesPublic, summary="Anchor batches in sequence order")
def list_batches(runtime: RuntimeDep, session: DbSession, _auditor: Auditor,
                 kind: Annotated[str | None, Query(pattern="^(events|journal)$")] = None,
                 cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$",
                                                     description="next_cursor of the previous page")] = None,
                 after: Annotated[int, Query(ge=0, le=(1 << 63) - 1, deprecated=True,
                                             description="the former cursor: sequence of the last batch seen")] = 0,
                 limit: Annotated[int, Query(ge=1, le=BATCH_LIST_MAX)] = 100) -> AnchorBatchesPublic:
    start = int(cursor) if cursor is not None else after
    batches = anchoring.list_batches(session, kind=kind, after_sequence=start, limit=limit)
    # has_more is exact: a full page is followed by a one-row look-ahead
    more = len(batches) == limit and bool(anchoring.list_batches(session, kind=kind,
                                                                  after_sequence=batches[-1].sequence, limit=1))
    return AnchorBatchesPublic(data=[batch_public(runtime, b) for b in batches], count=len(batches),
                               next_cursor=str(batches[-1].sequence) if more else None, has_more=more)


@router.get("/anchors/batches/{sequence}", response_model=AnchorBatchPublic, summary="One anchor batch",
            responses={404: {"model": Problem}})
def get_batch(sequence: SequencePath, runtime: RuntimeDep, session: DbSession, _auditor: Auditor) -> AnchorBatchPublic:
    return batch_public(runtime, anchoring.get_batch(session, sequence))


@router.get("/anchors/batches/{sequence}/dump", response_model=StandardV1Dump,
            summary="The batch's standard-v1 Merkle tree dump", responses={404: {"model": Problem}})
def batch_dump(sequence: SequencePath, session: DbSession, _auditor: Auditor) -> StandardV1Dump:
    return StandardV1Dump(**anchoring.batch_dump(session, sequence))


@router.get("/anchors/records/{kind}/{record_id}/proof", response_model=ProofDocumentOut,
            summary="The proof document of a journal record's latest version, with its text (auditor, operator)",
            responses={404: {"model": Problem}, 409: {"model": Problem, "description": "not batched yet"}})
def record_proof(kind: KindPath, record_id: RecordIdPath, runtime: RuntimeDep, session: DbSession, _auditor: Auditor,
                 version: Annotated[int | None, Query(ge=1, le=(1 << 63) - 1)] = None) -> ProofDocumentOut:
    return ProofDocumentOut(**anchoring.record_proof(runtime, session, kind, record_id, version).to_json())


@router.get("/anchors/trial-balance", response_model=TrialBalancePublic,
            summary="Every account (the consortium's too), debits = credits per currency, as of an anchored "
                    "journal batch (auditor, operator)", responses={409: {"model": Problem}})
def trial_balance(session: DbSession, _auditor: Auditor,
                  as_of: Annotated[int | None, Query(ge=1, le=(1 << 63) - 1,
                                                     description="journal batch sequence; default: the latest "
                                                                 "anchored")] = None) -> TrialBalancePublic:
    return TrialBalancePublic(**anchoring.trial_balance(session.connection(), as_of_sequence=as_of).to_json())


@router.post("/anchors/flush", response_model=FlushResult,
             summary="Close every open batch now, provenance events and journal alike, ignoring the time bound "
                     "(operator)")
def flush_now(runtime: RuntimeDep, _op: OperatorMember) -> FlushResult:
    made = anchoring.flush(runtime, force=True)
    with runtime.db.read() as s:
        batches = [anchoring.get_batch(s, m.sequence) for m in made]
        return FlushResult(batches=[batch_public(runtime, b) for b in batches])


def _export_lines(runtime: Runtime) -> Iterator[str]:
    session: Session
    manifest = runtime.manifest
    with runtime.db.read() as session:
        yield from anchoring.export_lines(session.connection(), chain_id=manifest.chain_id if manifest else None,
                                          contract=runtime.address("TraceAnchor") if manifest else None)


@router.get("/anchors/journal/export", response_class=StreamingResponse,
            summary="Auditor export: every journaled record with its versions and its live row now, the live rows "
                    "the journal lacks, the events and the batches (JSON lines; check with "
                    "`ledger anchors audit --export`)",
            responses={200: {"content": {NDJSON: {}}}})
def journal_export(runtime: RuntimeDep, _auditor: Auditor) -> StreamingResponse:
    return StreamingResponse(_export_lines(runtime), media_type=NDJSON,
                             headers={"Content-Disposition": 'attachment; filename="journal-export.jsonl"'})
