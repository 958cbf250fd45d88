"""The trial balance as of an anchored journal batch: every account, the consortium's included.

It is summed from the ``posting`` records (each a balanced journal transaction with its lines)
whose versions are in journal batches anchored up to the chosen one, i.e. from figures a chain
anchor vouches for, not from the live running balances (the audit checks that the live rows are
those records). Per currency, total debits must equal total credits; ``balanced`` says whether
they do, and every account's debits, credits and balance are listed (owner ``@consortium`` for
the consortium's FX clearing and fee accounts).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from settlement.core.errors import LedgerError, NoAnchoredJournalBatchError
from settlement.domains.anchoring.batcher import KIND_JOURNAL
from settlement.store.models.anchoring import AnchorBatch, RecordDigest

__all__ = ["TRIAL_PAGE_ROWS", "TRIAL_POSTINGS_MAX", "TrialBalance", "trial_balance"]

# Posting versions read per query, and the most a trial balance sums (bound on the work).
TRIAL_PAGE_ROWS = 5_000
TRIAL_POSTINGS_MAX = 50_000_000
_DIGESTS = RecordDigest.__table__
_BATCHES = AnchorBatch.__table__


@dataclass
class TrialBalance:
    as_of: dict[str, Any]
    postings: int = 0
    accounts: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def currencies(self) -> dict[str, tuple[int, int]]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (_owner, _account, currency), (debit, credit) in self.accounts.items():
            totals[currency][0] += debit
            totals[currency][1] += credit
        return {c: (d, cr) for c, (d, cr) in sorted(totals.items())}

    @property
    def balanced(self) -> bool:
        return all(d == c for d, c in self.currencies().values())

    def to_json(self) -> dict[str, Any]:
        def money(value: int, currency: str) -> dict[str, Any]:
            return {"value": value, "currency": currency}

        return {
            "as_of": self.as_of, "postings": self.postings, "balanced": self.balanced,
            "currencies": [{"currency": c, "debits": money(d, c), "credits": money(cr, c), "balanced": d == cr}
                           for c, (d, cr) in self.currencies().items()],
            "accounts": [{"owner": o, "account": a, "currency": c, "debits": money(d, c), "credits": money(cr, c),
                          "balance": money(d - cr, c)}
                         for (o, a, c), (d, cr) in sorted(self.accounts.items())],
        }

    def report(self) -> str:
        a = self.as_of
        lines = [f"Trial balance as of journal batch {a['sequence']} (root {a['root']}, tx {a['tx_hash']}, block "
                 f"{a['block_number']}): {self.postings} postings",
                 f"  {'owner':<20}{'account':<24}{'ccy':<5}{'debits':>20}{'credits':>20}{'balance':>20}"]
        for (o, acc, c), (d, cr) in sorted(self.accounts.items()):
            lines.append(f"  {o:<20}{acc:<24}{c:<5}{d:>20}{cr:>20}{d - cr:>20}")
        for c, (d, cr) in self.currencies().items():
            lines.append(f"  {'total':<44}{c:<5}{d:>20}{cr:>20}  {'balanced' if d == cr else 'NOT BALANCED'}")
        lines.append("BALANCED" if self.balanced else "NOT BALANCED")
        return "\n".join(lines)


def _as_of(conn: Connection, sequence: int | None) -> Mapping[str, Any]:
    q = sa.select(_BATCHES.c.id, _BATCHES.c.sequence, _BATCHES.c.root, _BATCHES.c.tx_hash, _BATCHES.c.block_number,
                  _BATCHES.c.block_time).where(_BATCHES.c.kind == KIND_JOURNAL, _BATCHES.c.status == "anchored")
    if sequence is not None:
        q = q.where(_BATCHES.c.sequence == sequence)
    row = conn.execute(q.order_by(_BATCHES.c.sequence.desc()).limit(1)).mappings().first()
    if row is None:
        raise NoAnchoredJournalBatchError("no journal batch is anchored yet" if sequence is None else
                                          f"journal batch {sequence} is not anchored (or not a journal batch)",
                                          sequence=sequence)
    return row


def trial_balance(conn: Connection, *, as_of_sequence: int | None = None) -> TrialBalance:
    """Sum the anchored postings up to journal batch ``as_of_sequence`` (default: the latest)."""
    as_of = _as_of(conn, as_of_sequence)
    tb = TrialBalance(as_of={k: as_of[k] for k in ("sequence", "root", "tx_hash", "block_number", "block_time")})
    anchored = sa.select(_BATCHES.c.id).where(_BATCHES.c.kind == KIND_JOURNAL, _BATCHES.c.status == "anchored",
                                              _BATCHES.c.sequence <= as_of["sequence"])
    # Each posting's latest version among those anchored up to the batch (postings never change,
    # so that is version 1; a later version would be a correction, and it is what counts).
    heads = (sa.select(_DIGESTS.c.record_id, sa.func.max(_DIGESTS.c.version).label("version"))
             .where(_DIGESTS.c.kind == "posting", _DIGESTS.c.batch_id.in_(anchored))
             .group_by(_DIGESTS.c.record_id).subquery())
    last_id = 0
    while True:
        rows = conn.execute(sa.select(_DIGESTS.c.id, _DIGESTS.c.canonical_json)
                            .join(heads, sa.and_(heads.c.record_id == _DIGESTS.c.record_id,
                                                 heads.c.version == _DIGESTS.c.version))
                            .where(_DIGESTS.c.kind == "posting", _DIGESTS.c.id > last_id)
                            .order_by(_DIGESTS.c.id).limit(TRIAL_PAGE_ROWS)).all()
        for _row_id, text in rows:
            posting = json.loads(text)
            if posting.get("$deleted"):
                continue
            tb.postings += 1
            for line in posting.get("lines", []):
                cell = tb.accounts[(line["owner"], line["account"], line["currency"])]
                cell[0 if line["side"] == "D" else 1] += int(line["amount_minor"])
        if tb.postings > TRIAL_POSTINGS_MAX:
            raise LedgerError(f"more than {TRIAL_POSTINGS_MAX} postings: not summed here")
        if len(rows) < TRIAL_PAGE_ROWS:
            break
        last_id = rows[-1][0]
    return tb
