"""The outcome of a run: buckets, per-currency totals, exception records, JSON/CSV/text output.

A report keeps row *indices* into the run's two tables (a million matched pairs are two lists of
ints); records are built when someone reads them. Every non-matched item becomes one
:class:`ExceptionRecord`, the shape another layer stores in its exceptions queue; a person's
decision on it is an :class:`ExceptionResolution` (stored elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import IO, Any, NamedTuple

from settlement.core.csv_safe import safe_writer
from settlement.core.money import Money
from settlement.core.timestamps import utc_text
from settlement.domains.reconciliation.engine.model import (
    LedgerEntry,
    LedgerTable,
    MatchConfig,
    RowError,
    StatementLine,
    StatementTable,
)

MATCHED = "matched"
MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_IN_STATEMENT = "missing_in_statement"
AMOUNT_MISMATCH = "amount_mismatch"
STATUS_MISMATCH = "status_mismatch"
DUPLICATE = "duplicate"
BUCKETS: tuple[str, ...] = (MATCHED, MISSING_IN_LEDGER, MISSING_IN_STATEMENT, AMOUNT_MISMATCH,
                            STATUS_MISMATCH, DUPLICATE)
EXCEPTION_BUCKETS: tuple[str, ...] = BUCKETS[1:]


class ReconItem(NamedTuple):
    """One bucketed item: statement lines (0..n) and at most one ledger entry."""

    bucket: str
    reason: str
    lines: tuple[StatementLine, ...]
    entry: LedgerEntry | None


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """A non-matched item, as the exceptions queue stores it. ``exception_id`` is stable across
    re-runs over the same files, so the queue can de-duplicate."""

    exception_id: str
    run_id: str
    bucket: str
    reason: str
    kind: str
    reference: str | None
    provider_txn_id: str | None
    currency: str
    statement_amount_minor: int | None
    ledger_amount_minor: int | None
    difference_minor: int | None  # statement - ledger, same currency only
    statement_source: str | None
    statement_line_nos: tuple[int, ...]
    statement_status: str | None
    ledger_entry_id: str | None
    ledger_status: str | None
    chain_state: str | None
    tx_hash: str | None
    booked_at: str | None  # ISO 8601, statement side first

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["statement_line_nos"] = list(self.statement_line_nos)
        for side in ("statement", "ledger"):
            value = data.pop(f"{side}_amount_minor")
            data[f"{side}_amount"] = None if value is None else Money(value, self.currency).as_json()
        return data


class ResolutionAction(str, Enum):
    ACCEPTED = "accepted"  # the difference is explained; nothing to change
    LEDGER_ADJUSTED = "ledger_adjusted"  # a correcting journal entry was posted
    PROVIDER_CLAIMED = "provider_claimed"  # raised with the provider / bank
    WRITTEN_OFF = "written_off"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class ExceptionResolution:
    """A person's decision on an exception; the exceptions queue stores these (append-only)."""

    exception_id: str
    action: ResolutionAction
    note: str
    resolved_by: str  # member/user id
    resolved_at: datetime
    adjustment_entry_id: str | None = None

    def __post_init__(self) -> None:
        if not self.note.strip() or len(self.note) > 4000:
            raise ValueError("a resolution needs a note of 1..4000 characters")
        if not self.resolved_by:
            raise ValueError("resolved_by is required")
        if self.resolved_at.tzinfo is None:
            raise ValueError("resolved_at must be timezone-aware")


def _exception_id(bucket: str, reason: str, lines: tuple[StatementLine, ...], entry: LedgerEntry | None) -> str:
    parts = [bucket, reason]
    for line in lines:
        parts += [line.source, str(line.line_no), line.provider_txn_id or "", line.reference or "", line.kind]
    if entry is not None:
        parts += ["ledger", entry.entry_id]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass
class ReconciliationReport:
    statement: StatementTable
    ledger: LedgerTable
    config: "MatchConfig"
    bulk_statement: list[int]  # exact one-to-one matches, parallel lists
    bulk_ledger: list[int]
    records: list[tuple[str, str, tuple[int, ...], int]]  # (bucket, reason, line idxs, entry idx|-1)
    statement_errors: list[RowError] = field(default_factory=list)
    ledger_errors: list[RowError] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _totals: dict | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)  # seconds per phase, when measured

    # -- structure ---------------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        """Per bucket: items, statement lines, ledger entries."""
        out = {b: {"items": 0, "statement": 0, "ledger": 0} for b in BUCKETS}
        out[MATCHED].update(items=len(self.bulk_statement), statement=len(self.bulk_statement),
                            ledger=len(self.bulk_ledger))
        for bucket, _reason, s_idx, l_idx in self.records:
            c = out[bucket]
            c["items"] += 1
            c["statement"] += len(s_idx)
            c["ledger"] += l_idx >= 0
        return out

    def check_counts(self) -> None:
        """Every line and entry is counted once: bucket counts add up to the inputs."""
        counts = self.counts()
        s_total = sum(c["statement"] for c in counts.values())
        l_total = sum(c["ledger"] for c in counts.values())
        if s_total != len(self.statement) or l_total != len(self.ledger):
            raise AssertionError(f"buckets hold {s_total}/{l_total} items for {len(self.statement)}"
                                 f"/{len(self.ledger)} inputs")

    def assignments(self) -> tuple[list[str | None], list[str | None]]:
        """The bucket of every statement line and every ledger entry (by position); raises when an
        item sits in two buckets. Meant for checks and tests: it is O(n) in Python."""
        s_bucket: list[str | None] = [None] * len(self.statement)
        l_bucket: list[str | None] = [None] * len(self.ledger)

        def put(target: list, index: int, bucket: str) -> None:
            if target[index] is not None:
                raise AssertionError(f"item {index} in {target[index]} and {bucket}")
            target[index] = bucket

        for i, j in zip(self.bulk_statement, self.bulk_ledger, strict=True):
            put(s_bucket, i, MATCHED)
            put(l_bucket, j, MATCHED)
        for bucket, _reason, s_idx, l_idx in self.records:
            for i in s_idx:
                put(s_bucket, i, bucket)
            if l_idx >= 0:
                put(l_bucket, l_idx, bucket)
        return s_bucket, l_bucket

    def items(self, bucket: str | None = None) -> Iterator[ReconItem]:
        """Bucketed items, the exact matches first; ``bucket`` filters."""
        st, lt = self.statement, self.ledger
        if bucket in (None, MATCHED):
            for i, j in zip(self.bulk_statement, self.bulk_ledger):
                yield ReconItem(MATCHED, "exact", (st[i],), lt[j])
        for b, reason, s_idx, l_idx in self.records:
            if bucket is None or b == bucket:
                yield ReconItem(b, reason, tuple(st[i] for i in s_idx), lt[l_idx] if l_idx >= 0 else None)

    # -- money -------------------------------------------------------------------------------------
    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{bucket: {"statement": {currency: minor}, "ledger": {currency: minor}}}``."""
        if self._totals is not None:
            return self._totals
        out: dict[str, dict[str, dict[str, int]]] = {b: {"statement": {}, "ledger": {}} for b in BUCKETS}
        s_amt, s_cur = self.statement.column("amount_minor"), self.statement.column("currency")
        l_amt, l_cur = self.ledger.column("amount_minor"), self.ledger.column("currency")
        _sum_by_currency(out[MATCHED]["statement"], self.bulk_statement, s_amt, s_cur)
        _sum_by_currency(out[MATCHED]["ledger"], self.bulk_ledger, l_amt, l_cur)
        for bucket, _reason, s_idx, l_idx in self.records:
            side = out[bucket]["statement"]
            for i in s_idx:
                side[s_cur[i]] = side.get(s_cur[i], 0) + s_amt[i]
            if l_idx >= 0:
                side = out[bucket]["ledger"]
                side[l_cur[l_idx]] = side.get(l_cur[l_idx], 0) + l_amt[l_idx]
        self._totals = out
        return out

    # -- exceptions --------------------------------------------------------------------------------
    def exceptions(self) -> Iterator[ExceptionRecord]:
        """One record per non-matched item, in ``items()`` order (the exact matches are never
        exceptions, so they are not looked at)."""
        st, lt = self.statement, self.ledger
        for b, reason, s_idx, l_idx in self.records:
            if b != MATCHED:
                yield self._exception(ReconItem(b, reason, tuple(st[i] for i in s_idx),
                                                lt[l_idx] if l_idx >= 0 else None))

    def _exception(self, item: ReconItem) -> ExceptionRecord:
        lines, entry = item.lines, item.entry
        first = lines[0] if lines else None
        currency = entry.currency if entry is not None else first.currency  # type: ignore[union-attr]
        s_amount = sum(line.amount_minor for line in lines) if lines else None
        same_currency = all(line.currency == currency for line in lines)
        diff = (s_amount - entry.amount_minor) if (lines and entry is not None and same_currency) else None
        booked = first.booked_at if first is not None else entry.booked_at  # type: ignore[union-attr]
        return ExceptionRecord(
            exception_id=_exception_id(item.bucket, item.reason, lines, entry),
            run_id=self.run_id, bucket=item.bucket, reason=item.reason,
            kind=(first or entry).kind,  # type: ignore[union-attr]
            reference=(first.reference if first else None) or (entry.reference if entry else None),
            provider_txn_id=(first.provider_txn_id if first else None) or (entry.provider_txn_id if entry else None),
            currency=currency,
            statement_amount_minor=s_amount if same_currency else None,
            ledger_amount_minor=entry.amount_minor if entry is not None else None,
            difference_minor=diff,
            statement_source=first.source if first else None,
            statement_line_nos=tuple(line.line_no for line in lines),
            statement_status=first.status if first else None,
            ledger_entry_id=entry.entry_id if entry else None,
            ledger_status=entry.status if entry else None,
            chain_state=entry.chain_state if entry else None,
            tx_hash=entry.tx_hash if entry else None,
            booked_at=booked.isoformat())

    # -- output ------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        counts, totals = self.counts(), self.totals()
        return {
            "run_id": self.run_id, "created_at": utc_text(self.created_at),
            "config": asdict(self.config),
            "inputs": {"statement_lines": len(self.statement), "ledger_entries": len(self.ledger),
                       "statement_row_errors": len(self.statement_errors),
                       "ledger_row_errors": len(self.ledger_errors)},
            "buckets": {b: {**counts[b],
                            "statement_totals": [{"value": v, "currency": c} for c, v in sorted(totals[b]["statement"].items())],
                            "ledger_totals": [{"value": v, "currency": c} for c, v in sorted(totals[b]["ledger"].items())]}
                        for b in BUCKETS},
        }

    def write_json(self, stream: IO[str], *, exceptions_max: int = 100_000) -> None:
        """Summary, row errors and up to ``exceptions_max`` exception records, as one JSON document."""
        doc = self.summary()
        doc["row_errors"] = [e._asdict() for e in [*self.statement_errors, *self.ledger_errors]]
        exceptions = []
        for count, record in enumerate(self.exceptions()):
            if count >= exceptions_max:
                doc["exceptions_truncated"] = True
                break
            exceptions.append(record.as_json())
        doc["exceptions"] = exceptions
        json.dump(doc, stream, ensure_ascii=False, indent=1)

    def write_exceptions_csv(self, stream: IO[str]) -> int:
        """One CSV row per exception record (amounts in minor units; text a spreadsheet would run as
        a formula is guarded, :mod:`settlement.core.csv_safe`); returns the row count."""
        names = [f.name for f in ExceptionRecord.__dataclass_fields__.values()]
        writer = safe_writer(stream)
        writer.writerow(names)
        count = 0
        for record in self.exceptions():
            row = [getattr(record, n) for n in names]
            row[names.index("statement_line_nos")] = " ".join(map(str, record.statement_line_nos))
            writer.writerow(row)
            count += 1
        return count

    def summary_text(self) -> str:
        counts, totals = self.counts(), self.totals()
        lines = [f"Reconciliation run {self.run_id}",
                 f"  statement lines: {len(self.statement)} ({len(self.statement_errors)} rows rejected)",
                 f"  ledger entries:  {len(self.ledger)} ({len(self.ledger_errors)} rows rejected)",
                 f"  {'bucket':<22}{'items':>10}{'lines':>10}{'entries':>10}  statement / ledger totals"]
        for b in BUCKETS:
            c = counts[b]
            money = "; ".join(
                f"{Money(totals[b]['statement'].get(cur, 0), cur)} / {Money(totals[b]['ledger'].get(cur, 0), cur)}"
                for cur in sorted(set(totals[b]["statement"]) | set(totals[b]["ledger"])))
            lines.append(f"  {b:<22}{c['items']:>10}{c['statement']:>10}{c['ledger']:>10}  {money}")
        return "\n".join(lines)


def _sum_by_currency(into: dict[str, int], idx: list[int], amounts: list[int], currencies: list[str]) -> None:
    if not idx:
        return
    present = set(currencies)
    if len(present) == 1:
        into[present.pop()] = into.get(currencies[0], 0) + sum(map(amounts.__getitem__, idx))
        return
    sums: dict[str, int] = defaultdict(int)
    for cur, amount in zip(map(currencies.__getitem__, idx), map(amounts.__getitem__, idx)):
        sums[cur] += amount
    for cur, value in sums.items():
        into[cur] = into.get(cur, 0) + value
