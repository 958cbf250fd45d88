"""The auditor export (``GET /v1/anchors/journal/export``, ``ledger anchors export``) and its audit.

For auditors who cannot reach the database. The export is built exactly as the store audit reads
(:func:`.audit_store.store_items`): every journaled record with all its versions *and the text of
its live row encoded now*, the live rows the journal lacks, the provenance events, and the
batches; ``ledger anchors audit --export FILE`` feeds it to the same engine (:mod:`.audit`), which
recomputes every digest, chain link and leaf, rebuilds every batch root and checks it on chain.

An export is assembled by the operator's service, so it shows what the service reads: an auditor
who can reach a replica or a dump audits the store itself (``ledger anchors audit --database-url``).

Format ``ledger-journal-export-v2``, JSON lines:

- ``{"type":"header","format":..,"chain_id":..,"contract":..,"leaf_encodings":{..},"exported_at_s":..}``
- ``{"type":"batch","kind":..,"sequence":..,"root":..,"leaf_count":..,"schema_version":..,"status":..,
  "tx_hash":..,"block_number":..,"block_time":..}``, every batch, before the records;
- ``{"type":"record","kind":..,"record_id":..,"live":<text or null>,"versions":[{"version",
  "recorded_at_s","prev_digest","digest","canonical_json","batch_sequence"}..]}``;
- ``{"type":"inserted","kind":..,"record_id":..,"detail":..,"live":<text or null>}``;
- ``{"type":"event","event_id":..,"event":{..},"value":[..],"batch_sequence":..}``;
- ``{"type":"end","records":..,"inserted":..,"events":..,"batches":..}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from anchors.rpc import Rpc
from sqlalchemy.engine import Connection

from settlement.domains.anchoring.audit import (
    NO_TABLE,
    ONCHAIN_PROOFS_PER_BATCH_DEFAULT,
    AuditReport,
    Auditor,
    BatchInfo,
    Version,
)
from settlement.domains.anchoring.audit_store import (
    AUDIT_PAGE_ROWS,
    EventItem,
    InsertedItem,
    RecordItem,
    batches_of,
    chain_view,
    roots_anchored,
    store_items,
)
from settlement.domains.anchoring.digests import JOURNAL_SCHEMAS

__all__ = ["EXPORT_FORMAT", "EXPORT_LINE_BYTES_MAX", "audit_export", "export_lines"]

EXPORT_FORMAT = "ledger-journal-export-v2"
# A line holds a record's versions (each at most 256 KiB): bounded by the versions kept per line.
EXPORT_LINE_BYTES_MAX = 64 * 1024 * 1024
_NO_TABLE = "<no table>"


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def export_lines(conn: Connection, *, chain_id: int | None, contract: str | None,
                 page_rows: int = AUDIT_PAGE_ROWS) -> Iterator[str]:
    """The export's lines, read from ``conn`` (one snapshot: the caller's read transaction)."""
    batches = batches_of(conn)
    by_id = {b.id: b.sequence for b in batches}
    yield _line({"type": "header", "format": EXPORT_FORMAT, "chain_id": chain_id, "contract": contract,
                 "leaf_encodings": {str(k): list(v) for k, v in JOURNAL_SCHEMAS.items()},
                 "exported_at_s": int(time.time())})
    for b in batches:
        yield _line({"type": "batch", "kind": b.kind, "sequence": b.sequence, "root": b.root,
                     "leaf_count": b.leaf_count, "schema_version": b.schema_version, "status": b.status,
                     "tx_hash": b.tx_hash, "block_number": b.block_number, "block_time": b.block_time})
    counts = {"records": 0, "inserted": 0, "events": 0, "batches": len(batches)}
    for item in store_items(conn, page_rows):
        if isinstance(item, RecordItem):
            counts["records"] += 1
            yield _line({"type": "record", "kind": item.kind, "record_id": item.record_id,
                         "live": _NO_TABLE if item.live is NO_TABLE else item.live,
                         "versions": [{"version": v.version, "recorded_at_s": v.recorded_at_s,
                                       "prev_digest": v.prev_digest, "digest": v.digest,
                                       "canonical_json": v.canonical_json,
                                       "batch_sequence": by_id.get(v.batch_id) if v.batch_id else None}
                                      for v in item.versions]})
        elif isinstance(item, InsertedItem):
            counts["inserted"] += 1
            yield _line({"type": "inserted", "kind": item.kind, "record_id": item.record_id, "detail": item.detail,
                         "live": item.live})
        elif isinstance(item, EventItem):
            counts["events"] += 1
            yield _line({"type": "event", "event_id": item.event_id, "event": item.event, "value": item.value,
                         "batch_sequence": by_id.get(item.batch_id) if item.batch_id else None})
    yield _line({"type": "end", **counts})


def _batch(obj: dict[str, Any]) -> BatchInfo:
    return BatchInfo(id=int(obj["sequence"]), kind=str(obj["kind"]), sequence=int(obj["sequence"]),
                     root=str(obj["root"]), leaf_count=int(obj["leaf_count"]),
                     schema_version=int(obj["schema_version"]), status=str(obj["status"]), tx_hash=obj.get("tx_hash"),
                     block_number=obj.get("block_number"), block_time=obj.get("block_time"))


def _version(v: dict[str, Any]) -> Version:
    return Version(int(v["version"]), int(v["recorded_at_s"]), v.get("prev_digest"), str(v["digest"]),
                   str(v["canonical_json"]), v.get("batch_sequence"))


def audit_export(lines: Iterable[str | bytes], *, rpc: str | Rpc | None = None, contract: str | None = None,
                 chain_id: int | None = None, from_block: int = 0, out: Callable[[str], None] = print,
                 verbose: bool = False, onchain_proofs: int = ONCHAIN_PROOFS_PER_BATCH_DEFAULT) -> AuditReport:
    """Audit an export with the store audit's engine. ``contract`` / ``chain_id`` default to the
    header's (the operator's word: pass the consortium's own to check them); ``onchain_proofs``
    leaf proofs per anchored batch are also verified by the contract."""
    header: dict[str, Any] | None = None
    batches: list[BatchInfo] = []
    auditor: Auditor | None = None
    end: dict[str, Any] | None = None
    seen = {"records": 0, "inserted": 0, "events": 0}
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        if len(text) > EXPORT_LINE_BYTES_MAX:
            problems.append(f"line {number}: longer than {EXPORT_LINE_BYTES_MAX} bytes")
            continue
        try:
            obj = json.loads(text)
            kind = obj.get("type")
            if header is None:
                if kind != "header" or obj.get("format") != EXPORT_FORMAT:
                    problems.append(f"line {number}: not a {EXPORT_FORMAT} header")
                    break
                header = obj
            elif end is not None:
                problems.append(f"line {number}: content after the end line")
            elif kind == "batch":
                if auditor is not None:
                    problems.append(f"line {number}: a batch line after the records")
                batches.append(_batch(obj))
            elif kind in ("record", "inserted", "event"):
                if auditor is None:
                    view = None
                    if rpc is not None:
                        view = chain_view(rpc, contract or header.get("contract") or "",
                                          chain_id if chain_id is not None else header.get("chain_id"))
                    auditor = Auditor(batches, view, out, verbose=verbose, onchain_proofs=onchain_proofs)
                if kind == "record":
                    seen["records"] += 1
                    live = obj.get("live")
                    auditor.record(str(obj["kind"]), str(obj["record_id"]), [_version(v) for v in obj["versions"]],
                                   NO_TABLE if live == _NO_TABLE else live)
                elif kind == "inserted":
                    seen["inserted"] += 1
                    auditor.inserted(str(obj["kind"]), str(obj["record_id"]), str(obj.get("detail") or ""))
                else:
                    seen["events"] += 1
                    auditor.event(str(obj["event_id"]), obj.get("event"), obj.get("value"), obj.get("batch_sequence"))
            elif kind == "end":
                end = obj
            else:
                problems.append(f"line {number}: unknown line type {kind!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"line {number}: unusable ({exc})")
    if auditor is None:
        auditor = Auditor(batches, None, out, verbose=verbose)
    if header is None:
        problems.append("not an export: no header")
    elif end is None:
        problems.append("no end line: the export is truncated")
    elif any(end.get(k) != v for k, v in seen.items()) or end.get("batches") != len(batches):
        problems.append(f"the end line counts {end}, the export holds {seen} and {len(batches)} batches")
    for problem in problems:
        auditor.finding("EXPORT", "export", problem)
    anchored = None
    if auditor.chain is not None:
        anchored = roots_anchored(auditor.chain.rpc, auditor.chain.contract, from_block)
    return auditor.finish(anchored)
