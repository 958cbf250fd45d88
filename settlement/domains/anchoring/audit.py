"""The auditor's journal export, and the audit that recomputes it against the chain.

Export (``ledger-journal-export-v1``, JSON lines, one object per line)::

    {"type": "header", "format": "ledger-journal-export-v1", "chain_id", "contract",
     "schema_version": 32769, "leaf_encoding": [...], "exported_at_s"}
    {"type": "batch", "sequence", "root", "leaf_count", "first_time_s", "last_time_s",
     "anchor": {"chain_id", "contract", "tx_hash", "block_number", "block_time", "batch_sequence"}}
    {"type": "record", "batch_sequence", "kind", "record_id", "version", "recorded_at_s",
     "record": "<canonical JSON text>", "digest", "value": [...], "leaf_hash", "proof": [...]}
    ... (each batch followed by its records)
    {"type": "end", "batches": <n>, "records": <m>}

Only anchored journal batches are exported. A record whose kind has a registered loader is
exported as it is now in its live table (the latest version), so an edit made behind the
service's back no longer matches its anchored digest.

The audit needs only the ``anchors`` package and a node URL: for every record it recomputes the
digest from the text, the leaf value from the record's fields, the leaf hash, and folds the proof
to the batch root; for every batch it rebuilds the whole tree from the exported values (a missing,
extra or reordered record changes the root) and checks on chain that the root was anchored in
that transaction and block with that sequence, leaf count and schema, and that ``verify`` accepts
a proof. It reports every step and never raises for a bad export: a failure is a failed step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from anchors.errors import InvalidInputError, NodeUnavailableError
from anchors.merkle import StandardMerkleTree, process_proof, standard_leaf_hash, to_bytes32, to_hex
from anchors.proof import AnchorRef, ProofDocument
from anchors.verify import call_anchor_of, verify_on_chain
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import LedgerError, ValidationError
from settlement.domains.anchoring.batcher import KIND_JOURNAL
from settlement.domains.anchoring.digests import (
    JOURNAL_LEAF_ENCODING,
    JOURNAL_SCHEMA_VERSION,
    canonical_record_json,
    digest_of,
    journal_leaf_value,
    latest_versions,
    record_loader,
)
from settlement.domains.anchoring.limits import ANCHOR_CONTRACT, EXPORT_BATCHES_MAX, EXPORT_PAGE_ROWS
from settlement.domains.anchoring.proofs import anchor_ref, rebuild_tree
from settlement.runtime import Runtime
from settlement.store.models.anchoring import AnchorBatch, RecordDigest

EXPORT_FORMAT = "ledger-journal-export-v1"
# An export line is a record of at most 256 KiB plus its proof.
EXPORT_LINE_BYTES_MAX = 512 * 1024
# Records whose failures are printed one by one (the rest are counted).
FAILURES_SHOWN_MAX = 50


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _exported_record(session: Session, row: RecordDigest, latest: dict[tuple[str, str], int]) -> str | None:
    loader = record_loader(row.kind)
    if loader is None or latest.get((row.kind, row.record_id)) != row.version:
        return row.canonical_json
    live = loader(session, row.record_id)
    if live is None:
        return None  # the record is gone from its table
    try:
        return canonical_record_json(live)
    except LedgerError:
        return json.dumps(live, ensure_ascii=False, sort_keys=True, default=str)


def export_journal(runtime: Runtime, session: Session, *, from_sequence: int = 0,
                   batches_max: int = EXPORT_BATCHES_MAX) -> Iterator[str]:
    """The export's lines, batch by batch (each batch's tree rebuilt and checked first)."""
    if not 1 <= batches_max <= EXPORT_BATCHES_MAX:
        raise ValidationError(f"batches_max must be 1..{EXPORT_BATCHES_MAX}", field="batches_max")
    manifest = runtime.manifest
    yield _line({"type": "header", "format": EXPORT_FORMAT,
                 "chain_id": manifest.chain_id if manifest else None,
                 "contract": runtime.address(ANCHOR_CONTRACT) if manifest else None,
                 "schema_version": JOURNAL_SCHEMA_VERSION, "leaf_encoding": list(JOURNAL_LEAF_ENCODING),
                 "exported_at_s": int(time.time())})
    batches = session.scalars(select(AnchorBatch).where(AnchorBatch.kind == KIND_JOURNAL,
                                                        AnchorBatch.status == "anchored",
                                                        AnchorBatch.sequence >= from_sequence)
                              .order_by(AnchorBatch.sequence).limit(batches_max)).all()
    records = 0
    for batch in batches:
        tree = rebuild_tree(session, batch)
        ref = anchor_ref(runtime, batch)
        yield _line({"type": "batch", "sequence": batch.sequence, "root": batch.root, "leaf_count": batch.leaf_count,
                     "first_time_s": batch.first_time_s, "last_time_s": batch.last_time_s,
                     "anchor": ref.to_json() if ref else None})
        for start in range(0, batch.leaf_count, EXPORT_PAGE_ROWS):
            rows = session.scalars(select(RecordDigest).where(RecordDigest.batch_id == batch.id,
                                                              RecordDigest.batch_index >= start)
                                   .order_by(RecordDigest.batch_index).limit(EXPORT_PAGE_ROWS)).all()
            latest: dict[tuple[str, str], int] = {}
            for kind in {r.kind for r in rows if record_loader(r.kind) is not None}:
                ids = [r.record_id for r in rows if r.kind == kind]
                latest.update({(kind, rid): v for rid, v in latest_versions(session, kind, ids).items()})
            for row in rows:
                records += 1
                yield _line({"type": "record", "batch_sequence": batch.sequence, "kind": row.kind,
                             "record_id": row.record_id, "version": row.version,
                             "recorded_at_s": row.recorded_at_s, "record": _exported_record(session, row, latest),
                             "digest": row.digest, "value": row.value, "leaf_hash": row.leaf_hash,
                             "proof": tree.get_proof(row.batch_index)})
    yield _line({"type": "end", "batches": len(batches), "records": records})


# -- the audit ---------------------------------------------------------------------------------


@dataclass
class AuditReport:
    ok: bool = True
    batches: int = 0
    records: int = 0
    records_failed: int = 0
    steps: list[tuple[bool, str]] = field(default_factory=list)


class _Auditor:
    def __init__(self, rpc_url: str | None, out: Callable[[str], None], verbose: bool) -> None:
        self.rpc_url = rpc_url
        self.out = out
        self.verbose = verbose
        self.report = AuditReport()
        self.header: dict[str, Any] | None = None

    def step(self, ok: bool, text: str) -> None:
        self.report.steps.append((ok, text))
        if not ok:
            self.report.ok = False
        self.out(f"[{'ok' if ok else 'FAIL'}] {text}")

    def record(self, rec: dict[str, Any], root: str) -> tuple[bool, list[str]]:
        """Recompute one record; returns (ok, problems)."""
        problems: list[str] = []
        text = rec.get("record")
        if not isinstance(text, str):
            return False, ["the record is missing from the store"]
        try:
            if canonical_record_json(text) != text:
                problems.append("record text is not canonical JSON")
        except LedgerError as exc:
            problems.append(f"record text: {exc.detail}")
        digest = digest_of(text)
        if digest != rec.get("digest"):
            problems.append(f"digest of the record is {digest}, export says {rec.get('digest')}")
        try:
            value = journal_leaf_value(str(rec["kind"]), str(rec["record_id"]), int(rec["version"]),
                                       int(rec["recorded_at_s"]), digest)
            if value != rec.get("value"):
                problems.append("leaf value recomputed from kind, id, version, time and digest differs")
            leaf = standard_leaf_hash(JOURNAL_LEAF_ENCODING, value)
            if to_hex(leaf) != rec.get("leaf_hash"):
                problems.append(f"leaf hash is {to_hex(leaf)}, export says {rec.get('leaf_hash')}")
            folded = to_hex(process_proof(leaf, rec.get("proof") or []))
            if folded != root:
                problems.append(f"proof folds to {folded}, not to the batch root")
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"record fields unusable: {exc}")
        return not problems, problems

    def batch(self, batch: dict[str, Any], records: list[dict[str, Any]]) -> None:
        self.report.batches += 1
        seq = batch.get("sequence")
        try:
            root = to_hex(to_bytes32(batch.get("root"), "root"))
        except InvalidInputError as exc:
            self.step(False, f"batch {seq}: {exc.detail}")
            return
        failed = 0
        for rec in records:
            self.report.records += 1
            ok, problems = self.record(rec, root)
            where = f"batch {seq} record {rec.get('kind')}/{rec.get('record_id')} v{rec.get('version')}"
            if not ok:
                failed += 1
                self.report.records_failed += 1
                if self.report.records_failed <= FAILURES_SHOWN_MAX:
                    self.step(False, f"{where}: " + "; ".join(problems))
            elif self.verbose:
                self.out(f"[ok] {where}: digest, leaf and proof recomputed")
        self.step(failed == 0, f"batch {seq}: {len(records) - failed}/{len(records)} records recompute to "
                               f"their digests, leaves and the root")
        self.step(len(records) == batch.get("leaf_count"),
                  f"batch {seq}: {len(records)} records exported, {batch.get('leaf_count')} anchored")
        try:
            rebuilt = StandardMerkleTree.of([r.get("value") for r in records], JOURNAL_LEAF_ENCODING).root \
                if records else None
        except InvalidInputError as exc:
            rebuilt = f"(not buildable: {exc.detail})"
        self.step(rebuilt == root, f"batch {seq}: tree of the exported values has root {rebuilt}, "
                                   f"batch root {root}")
        self.chain(batch, root, records)

    def chain(self, batch: dict[str, Any], root: str, records: list[dict[str, Any]]) -> None:
        seq = batch.get("sequence")
        if self.rpc_url is None:
            self.out(f"[skip] batch {seq}: on-chain checks (no --rpc)")
            return
        if not batch.get("anchor") or not records:
            self.step(False, f"batch {seq}: no anchor to check on chain")
            return
        try:
            anchor = AnchorRef.from_json(batch["anchor"])
            first = records[0]
            doc = ProofDocument(leaf_encoding=JOURNAL_LEAF_ENCODING, value=list(first.get("value") or []),
                                leaf_hash=to_hex(to_bytes32(first.get("leaf_hash"), "leaf_hash")),
                                proof=[to_hex(to_bytes32(p, "proof")) for p in first.get("proof") or []],
                                root=root, anchor=anchor, schema_version=None)
            result = verify_on_chain(doc, self.rpc_url)
            for s in result.steps:
                if s.name in ("chain-id", "anchor-tx", "anchor-record", "contract-verify"):
                    self.step(s.ok, f"batch {seq}: {s.name}: {s.detail}")
            record = call_anchor_of(self.rpc_url, anchor.contract, root, anchor.block_number)
            self.step(record.leaf_count == batch.get("leaf_count") and record.schema_version == JOURNAL_SCHEMA_VERSION,
                      f"batch {seq}: anchored with {record.leaf_count} leaves, schema {record.schema_version} "
                      f"(journal is {JOURNAL_SCHEMA_VERSION})")
            if self.header and (self.header.get("contract") or "").lower() != anchor.contract.lower():
                self.step(False, f"batch {seq}: anchor contract {anchor.contract} is not the export's "
                                 f"{self.header.get('contract')}")
        except NodeUnavailableError as exc:
            self.step(False, f"batch {seq}: chain unreachable: {exc.detail}")
        except InvalidInputError as exc:
            self.step(False, f"batch {seq}: malformed anchor or proof: {exc.detail}")


def audit_journal(lines: Iterable[str | bytes], rpc_url: str | None = None,
                  out: Callable[[str], None] = print, *, verbose: bool = False) -> AuditReport:
    """Audit an export, printing each step through ``out``; ``report.ok`` only if all passed."""
    auditor = _Auditor(rpc_url, out, verbose)
    current: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        if len(text) > EXPORT_LINE_BYTES_MAX:
            auditor.step(False, f"line {number}: longer than {EXPORT_LINE_BYTES_MAX} bytes")
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            auditor.step(False, f"line {number}: not JSON ({exc})")
            continue
        kind = obj.get("type") if isinstance(obj, dict) else None
        if number == 1 or auditor.header is None:
            if kind != "header" or obj.get("format") != EXPORT_FORMAT:
                auditor.step(False, f"line {number}: not a {EXPORT_FORMAT} header")
                return auditor.report
            auditor.header = obj
            auditor.step(obj.get("schema_version") == JOURNAL_SCHEMA_VERSION
                         and obj.get("leaf_encoding") == list(JOURNAL_LEAF_ENCODING),
                         f"export {EXPORT_FORMAT}: chain {obj.get('chain_id')}, TraceAnchor {obj.get('contract')}, "
                         f"journal leaf schema {obj.get('schema_version')}")
            continue
        if end is not None:
            auditor.step(False, f"line {number}: content after the end line")
            continue
        if kind == "batch":
            if current is not None:
                auditor.batch(current, records)
            current, records = obj, []
        elif kind == "record":
            if current is None or obj.get("batch_sequence") != current.get("sequence"):
                auditor.step(False, f"line {number}: a record outside its batch")
            else:
                records.append(obj)
        elif kind == "end":
            end = obj
        else:
            auditor.step(False, f"line {number}: unknown line type {kind!r}")
    if current is not None:
        auditor.batch(current, records)
    if auditor.header is None:
        auditor.step(False, "empty export")
    elif end is None:
        auditor.step(False, "no end line: the export is truncated")
    else:
        auditor.step(end.get("batches") == auditor.report.batches and end.get("records") == auditor.report.records,
                     f"end line: {end.get('batches')} batches, {end.get('records')} records; read "
                     f"{auditor.report.batches} and {auditor.report.records}")
    out(("AUDIT PASSED" if auditor.report.ok else "AUDIT FAILED")
        + f": {auditor.report.batches} batches, {auditor.report.records} records, "
          f"{auditor.report.records_failed} records failed")
    return auditor.report


__all__ = ["EXPORT_FORMAT", "AuditReport", "audit_journal", "export_journal"]
