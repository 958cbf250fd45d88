"""The three-way matcher: statement lines x ledger entries x the entries' chain facts.

Every statement line and every ledger entry ends in exactly one bucket:

* ``matched`` - paired, amounts within tolerance, same currency, statuses agree, chain confirms;
* ``amount_mismatch`` - paired, but the amount (beyond tolerance) or the currency differs;
* ``status_mismatch`` - paired, amounts agree, but the statuses differ or the chain does not
  confirm a succeeded entry;
* ``duplicate`` - a second statement line (or ledger entry) with an already seen
  (provider_txn_id, kind);
* ``missing_in_ledger`` / ``missing_in_statement`` - nothing to pair with.

Rules, in order: (1) one-to-one on (provider_txn_id, kind), authoritative, no date window;
(2) on (reference, kind) for what is left, within the date window, never pairing two different
provider ids: first one-to-one on equal amounts, then one ledger entry against the sum of the
remaining statement lines (partial captures / refunds), a single remaining line against a single
remaining entry being an ordinary (possibly mismatched) pair.

Rule (1) runs column-wise in C (``dict`` lookups and ``map`` over ``zip`` of the columns): a
million-line run spends its Python-level loop only on the lines that do not match exactly.
"""

from __future__ import annotations

import gc
import operator
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from itertools import compress, repeat

from settlement.domains.reconciliation.engine.model import (
    CHAIN_CONFIRMED,
    CHAIN_STATES,
    KINDS,
    STATUS_SUCCEEDED,
    STATUSES,
    LedgerTable,
    MatchConfig,
    StatementTable,
)
from settlement.domains.reconciliation.engine.report import (
    AMOUNT_MISMATCH,
    DUPLICATE,
    MATCHED,
    MISSING_IN_LEDGER,
    MISSING_IN_STATEMENT,
    STATUS_MISMATCH,
    ReconciliationReport,
)

# reasons (stable strings: the exceptions queue and the UI key on them)
REASON_EXACT = "exact"
REASON_WITHIN_TOLERANCE = "within_tolerance"
REASON_GROUPED = "grouped_by_reference"
REASON_AMOUNT = "amount_differs"
REASON_CURRENCY = "currency_differs"
REASON_STATUS = "status_differs"
REASON_CHAIN = "chain_not_confirmed"
REASON_DUP_STATEMENT = "duplicate_provider_txn_id_in_statement"
REASON_DUP_LEDGER = "duplicate_provider_txn_id_in_ledger"
REASON_NO_LEDGER = "no_ledger_entry"
REASON_NO_STATEMENT = "no_statement_line"
REASON_GROUP_TOO_LARGE = "group_too_large"


# (ledger status, chain state) -> the status a statement line must show for an exact match;
# a succeeded entry whose chain record is not confirmed can never match exactly.
_EFFECTIVE: dict[tuple[str, str | None], str | None] = {
    (status, chain): (None if status == STATUS_SUCCEEDED and chain not in (None, CHAIN_CONFIRMED) else status)
    for status in STATUSES for chain in (None, *CHAIN_STATES)
}


_CHAIN_KEEPS_STATUS = frozenset((None, CHAIN_CONFIRMED))


_FLIP = bytes.maketrans(b"\x00\x01", b"\x01\x00")


def _unset(flags: bytearray | list, n: int) -> Iterator[int]:
    """The positions below ``n`` whose flag (0/1 bytes, or bools) is not set, ascending, as the
    flags stand now (a snapshot). Bytes are searched with ``find``, so a million flags with a few
    thousand unset cost a few thousand steps."""
    if not isinstance(flags, (bytes, bytearray)):
        return compress(range(n), map(operator.not_, flags[:n]))
    snapshot = bytes(flags[:n])
    if snapshot.count(0) * 8 > n:  # many unset: one pass in C is cheaper than a search each
        return compress(range(n), snapshot.translate(_FLIP))
    return _zeros(snapshot)


def _zeros(flags: bytes) -> Iterator[int]:
    at = flags.find(0)
    while at >= 0:
        yield at
        at = flags.find(0, at + 1)


def _as_table(rows: object, table_type: type) -> StatementTable | LedgerTable:
    if isinstance(rows, table_type):
        return rows  # type: ignore[return-value]
    return table_type.from_rows(rows)  # type: ignore[attr-defined,no-any-return]


def reconcile(statement: StatementTable | Sequence, ledger: LedgerTable | Sequence,
              config: MatchConfig | None = None, *, statement_errors: Sequence = (),
              ledger_errors: Sequence = ()) -> ReconciliationReport:
    """Match ``statement`` lines against ``ledger`` entries; see the module docstring for rules."""
    config = config or MatchConfig()
    st = _as_table(statement, StatementTable)
    lt = _as_table(ledger, LedgerTable)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the run allocates millions of small containers and no cycles
    try:
        run = _Run.from_tables(st, lt, config)  # type: ignore[arg-type]
        run.execute()
    finally:
        if gc_was_enabled:
            gc.enable()
    report = ReconciliationReport(st, lt, config, run.bulk_s, run.bulk_l, run.records,
                                  list(statement_errors), list(ledger_errors))
    report.check_counts()
    return report


class _Run:
    """One matching run over column lists; indices are row positions in the two sides.

    Rule 1 needs only the id, kind, amount, currency, status and chain columns. :meth:`finish`
    (rule 2 and the records) reads the columns only at the rows rule 1 left over, so a run whose
    rule 1 was computed elsewhere (:meth:`adopt_rule1`, the columnar runner) may hold mappings
    with just those rows.
    """

    def __init__(self, config: MatchConfig, s_cols: tuple, l_cols: tuple, *, fast: bool = True) -> None:
        self.config = config
        self.fast = fast
        self.s_txn, self.s_ref, self.s_kind, self.s_amt, self.s_cur, self.s_st, self.s_booked = s_cols
        (self.l_txn, self.l_ref, self.l_kind, self.l_amt, self.l_cur, self.l_st, self.l_booked,
         self.l_chain) = l_cols
        self.n_s = len(self.s_txn)
        self.n_l = len(self.l_txn)
        self.bulk_s: list[int] = []
        self.bulk_l: list[int] = []
        self.records: list[tuple[str, str, tuple[int, ...], int]] = []
        self.l_used = bytearray(self.n_l + 1)  # 1: the entry has its bucket
        self.s_used = bytearray(self.n_s)
        self.pos: list[int] = []
        self.exact: list[bool] = []
        self._s_prep: tuple | None = None

    @classmethod
    def from_tables(cls, st: StatementTable, lt: LedgerTable, config: MatchConfig, *, fast: bool = True) -> "_Run":
        (_, _, s_txn, s_ref, s_kind, s_amt, s_cur, s_st, s_booked, _) = st.columns
        (_, l_txn, l_ref, l_kind, l_amt, l_cur, l_st, l_booked, l_chain, _) = lt.columns
        return cls(config, (s_txn, s_ref, s_kind, s_amt, s_cur, s_st, s_booked),
                   (l_txn, l_ref, l_kind, l_amt, l_cur, l_st, l_booked, l_chain), fast=fast)

    def execute(self) -> None:
        self.rule1()
        self.finish()

    # -- rule 1: provider txn id -------------------------------------------------------------------
    def rule1(self) -> None:
        """Duplicates, exact id matches (``bulk_s``/``bulk_l``); ``pos``/``exact`` kept for finish()."""
        if self.fast:
            self._rule1_fast()
            return
        n_s = self.n_s
        pos = self._positions_by_txn_and_kind()
        l_amt = self.l_amt + [-1]
        l_cur = self.l_cur + [None]
        l_eff = list(map(_EFFECTIVE.get, zip(self.l_st, self.l_chain))) + [None]
        l_kind = self.l_kind + [None]
        exact = list(map(operator.eq, zip(self.s_amt, self.s_cur, self.s_st, self.s_kind),
                         zip(map(l_amt.__getitem__, pos), map(l_cur.__getitem__, pos),
                             map(l_eff.__getitem__, pos), map(l_kind.__getitem__, pos))))
        self.bulk_s = list(compress(range(n_s), exact))
        self.bulk_l = list(compress(pos, exact))
        s_used, l_used = self.s_used, self.l_used
        for i in self.bulk_s:
            s_used[i] = 1
        for j in self.bulk_l:
            l_used[j] = 1
        self.pos, self.exact = pos, exact

    def _rule1_fast(self) -> None:
        """Rule 1 keyed on the provider id alone; the same outcome as the general path.

        Ledger ids are looked up among the statement's first lines per id (``back``), the exact
        test runs in ledger order, and only the few rows it rejects are checked for a kind clash
        (an id shared by a payment and a refund). Ids repeating in the ledger are resolved on
        (id, kind). The pairs are then scattered into statement order in C
        (``map(operator.setitem, ...)``)."""
        if self._s_prep is None:
            self.prepare_statement()
        first, s_by_key, s_repeated, s_dups = self._s_prep  # type: ignore[misc]
        self._s_prep = None
        n_s, n_l = self.n_s, self.n_l
        l_txn, l_kind, s_kind = self.l_txn, self.l_kind, self.s_kind
        back = list(map(first.get, l_txn, repeat(n_s)))  # ledger row -> statement row or n_s
        if set(self.l_chain) <= _CHAIN_KEEPS_STATUS:  # the common case: no (status, chain) lookups
            l_eff = self.l_st
        else:
            l_eff = list(map(_EFFECTIVE.get, zip(self.l_st, self.l_chain)))
        # Columns holding one and the same value on both sides cannot tell rows apart: leave them
        # out. The amount always stays in, and its -1 sentinel keeps unpaired entries unmatched.
        l_cols, s_cols = [self.l_amt], [self.s_amt + [-1]]
        for l_col, s_col in ((self.l_cur, self.s_cur), (l_eff, self.s_st), (l_kind, s_kind)):
            values = set(l_col)
            if len(values) != 1 or set(s_col) != values:
                l_cols.append(l_col)
                s_cols.append(s_col + [None])
        if len(l_cols) == 1:
            exact_l = list(map(operator.eq, self.l_amt, map(s_cols[0].__getitem__, back)))
        else:
            exact_l = list(map(operator.eq, zip(*l_cols), zip(*[map(col.__getitem__, back) for col in s_cols])))

        def same(i: int, j: int) -> bool:
            return (self.s_amt[i], self.s_cur[i], self.s_st[i], s_kind[i]) == \
                (self.l_amt[j], self.l_cur[j], l_eff[j], l_kind[j])

        for j in compress(range(n_l), map(operator.not_, exact_l)):
            i = back[j]
            if i != n_s and l_kind[j] != s_kind[i]:  # same id, other kind
                i = s_by_key.get((l_txn[j], l_kind[j]), n_s) if l_txn[j] in s_repeated else n_s
                back[j] = i
                if i != n_s:
                    exact_l[j] = same(i, j)
        with_txn = n_l - l_txn.count(None)
        l_repeated: set = set()
        if len(set(l_txn)) - (with_txn < n_l) != with_txn:  # a ledger id repeats
            l_first = dict(zip(reversed(l_txn), range(n_l - 1, -1, -1)))
            l_repeated = {l_txn[j] for j in compress(range(n_l), map(operator.ne, map(l_first.get, l_txn),
                                                                     range(n_l))) if l_txn[j] is not None}
        dups_l: list[int] = []
        if l_repeated:
            seen: set = set()
            for j in compress(range(n_l), map(l_repeated.__contains__, l_txn)):
                key = (l_txn[j], l_kind[j])
                if key in seen:  # a later entry with the same (id, kind)
                    back[j] = n_s
                    exact_l[j] = False
                    dups_l.append(j)
                else:
                    seen.add(key)
        # statement order, scattered in C; a line paired twice would leave too few filled slots
        paired = list(map(operator.ne, back, repeat(n_s)))
        pair_s = list(compress(back, paired))
        pos = [n_l] * n_s
        deque(map(operator.setitem, repeat(pos), pair_s, compress(range(n_l), paired)), maxlen=0)
        if pos.count(n_l) != n_s - len(pair_s):
            raise AssertionError("a statement line is paired by id with two ledger entries")
        exact_s = bytearray(n_s)
        deque(map(operator.setitem, repeat(exact_s), compress(back, exact_l), repeat(1)), maxlen=0)
        self.bulk_s = list(compress(range(n_s), exact_s))
        self.bulk_l = list(compress(pos, exact_s))
        if len(self.bulk_l) != sum(exact_l):
            raise AssertionError("exact matches differ between ledger and statement order")
        self.s_used = bytearray(exact_s)
        self.l_used = bytearray(exact_l)
        self.l_used.append(0)
        for j in dups_l:
            self._record(DUPLICATE, REASON_DUP_LEDGER, (), j)
        for i in s_dups:
            if pos[i] != n_l:
                raise AssertionError(f"duplicate statement line {i} paired by id")
            self._record(DUPLICATE, REASON_DUP_STATEMENT, (i,), -1)
        self.pos, self.exact = pos, exact_s  # type: ignore[assignment]

    def adopt_rule1(self, n_s: int, n_l: int, exact_s: bytearray, exact_l: bytearray, pos: dict[int, int],
                    bulk_s: list[int], bulk_l: list[int], dups_s: list[int], dups_l: list[int]) -> None:
        """Take rule 1's outcome computed elsewhere (the columnar runner, on arrays) instead of
        running :meth:`rule1`; :meth:`finish` then does the rest. The columns this run was built
        with may be mappings holding only the rows outside the exact matches, so the sizes come
        here. ``exact_s``/``exact_l``: 1 per row in an exact match; ``pos``: the entry paired by
        id with each statement row outside them (``n_l``: none); duplicates ascending."""
        if self.records or self.bulk_s:
            raise AssertionError("adopt_rule1 after matching started")
        if len(exact_s) != n_s or len(exact_l) != n_l or len(bulk_s) != len(bulk_l):
            raise AssertionError("rule 1 outcome does not fit the row counts")
        self.n_s, self.n_l = n_s, n_l
        self.pos, self.exact = pos, bytearray(exact_s)  # type: ignore[assignment]
        self.s_used = bytearray(exact_s)
        self.l_used = exact_l + b"\0"
        self.bulk_s, self.bulk_l = bulk_s, bulk_l
        # the general path's order: ledger duplicates, then statement duplicates
        for j in dups_l:
            self._record(DUPLICATE, REASON_DUP_LEDGER, (), j)
        for i in dups_s:
            self._record(DUPLICATE, REASON_DUP_STATEMENT, (i,), -1)

    def finish(self) -> None:
        n_s, n_l, pos = self.n_s, self.n_l, self.pos
        s_used, l_used = self.s_used, self.l_used
        leftovers: list[int] = []
        for i in _unset(self.exact, n_s):
            if s_used[i]:
                continue  # a duplicate, already recorded
            j = pos[i]
            if j == n_l:
                leftovers.append(i)
            else:
                self._pair((i,), j)
        self._by_reference(leftovers)

        for i in leftovers:
            if not s_used[i]:
                self._record(MISSING_IN_LEDGER, REASON_NO_LEDGER, (i,), -1)
        for j in _unset(l_used, n_l):
            self._record(MISSING_IN_STATEMENT, REASON_NO_STATEMENT, (), j)
        self.pos = self.exact = []  # type: ignore[assignment]

    def prepare_statement(self) -> None:
        """The statement side of rule 1 (needs no ledger data): the first row of each provider id,
        and the duplicates."""
        n_s, s_txn, s_kind = self.n_s, self.s_txn, self.s_kind
        # reversed: a repeated id keeps its first row
        first = dict(zip(reversed(s_txn), range(n_s - 1, -1, -1)))
        first.pop(None, None)
        by_key: dict[tuple, int] = {}
        dups: list[int] = []
        repeated: set = set()
        if len(first) != n_s - s_txn.count(None):
            repeated = {s_txn[i] for i in compress(range(n_s), map(operator.ne, map(first.get, s_txn),
                                                                   range(n_s))) if s_txn[i] is not None}
        rows = list(compress(range(n_s), map(repeated.__contains__, s_txn))) if repeated else []
        # every id not in `repeated` is on one line only (else duplicates would be lost)
        if len(first) + len(rows) - len(repeated) != n_s - s_txn.count(None):
            raise AssertionError("the statement's repeated ids do not account for its lines")
        if repeated:
            for i in rows:
                key = (s_txn[i], s_kind[i])
                if key in by_key:
                    dups.append(i)
                else:
                    by_key[key] = i
        self._s_prep = (first, by_key, repeated, dups)

    def _positions_by_txn_and_kind(self) -> list[int]:
        """The general path, keyed on (provider_txn_id, kind) tuples: the reference
        :meth:`_rule1_fast` is tested against."""
        n_s, n_l = self.n_s, self.n_l
        l_keys = list(zip(self.l_txn, self.l_kind))
        index = dict(zip(l_keys, range(n_l)))
        for key in [k for k in index if k[0] is None]:
            del index[key]
        if len(index) != n_l - self.l_txn.count(None):
            self._ledger_duplicates(l_keys, index)
        s_keys = list(zip(self.s_txn, self.s_kind))
        pos = list(map(index.get, s_keys, repeat(n_l)))  # n_l: the "no entry" sentinel
        distinct = set(s_keys)
        distinct_without_txn = sum(1 for kind in KINDS if (None, kind) in distinct)
        if len(distinct) - distinct_without_txn != n_s - self.s_txn.count(None):
            self._statement_duplicates(s_keys, pos)
        return pos

    def _ledger_duplicates(self, l_keys: list, index: dict) -> None:
        counts = Counter(l_keys)
        seen: set = set()
        for j, key in enumerate(l_keys):
            if key[0] is None or counts[key] < 2:
                continue
            if key in seen:
                self._record(DUPLICATE, REASON_DUP_LEDGER, (), j)
            else:
                seen.add(key)
                index[key] = j  # the first occurrence is the one that gets matched

    def _statement_duplicates(self, s_keys: list, pos: list[int]) -> None:
        counts = Counter(s_keys)
        seen: set = set()
        for i, key in enumerate(s_keys):
            if key[0] is None or counts[key] < 2:
                continue
            if key in seen:
                pos[i] = self.n_l
                self._record(DUPLICATE, REASON_DUP_STATEMENT, (i,), -1)
            else:
                seen.add(key)

    # -- bookkeeping -------------------------------------------------------------------------------
    def _record(self, bucket: str, reason: str, s_idx: tuple[int, ...], l_idx: int) -> None:
        for i in s_idx:
            if self.s_used[i]:
                raise AssertionError(f"statement line {i} assigned twice")
            self.s_used[i] = 1
        if l_idx >= 0:
            if self.l_used[l_idx]:
                raise AssertionError(f"ledger entry {l_idx} assigned twice")
            self.l_used[l_idx] = 1
        self.records.append((bucket, reason, s_idx, l_idx))

    def _classify(self, s_idx: tuple[int, ...], j: int) -> tuple[str, str]:
        cur = self.l_cur[j]
        if any(self.s_cur[i] != cur for i in s_idx):
            return AMOUNT_MISMATCH, REASON_CURRENCY
        diff = sum(self.s_amt[i] for i in s_idx) - self.l_amt[j]
        if abs(diff) > self.config.amount_tolerance_minor:
            return AMOUNT_MISMATCH, REASON_AMOUNT
        status = self.l_st[j]
        if any(self.s_st[i] != status for i in s_idx):
            return STATUS_MISMATCH, REASON_STATUS
        if _EFFECTIVE[(status, self.l_chain[j])] is None:
            return STATUS_MISMATCH, REASON_CHAIN
        if len(s_idx) > 1:
            return MATCHED, REASON_GROUPED
        return MATCHED, REASON_EXACT if diff == 0 else REASON_WITHIN_TOLERANCE

    def _pair(self, s_idx: tuple[int, ...], j: int) -> None:
        bucket, reason = self._classify(s_idx, j)
        self._record(bucket, reason, s_idx, j)

    # -- rule 2: merchant reference ---------------------------------------------------------------
    def _compatible(self, i: int, j: int) -> bool:
        s_txn, l_txn = self.s_txn[i], self.l_txn[j]
        if s_txn is not None and l_txn is not None and s_txn != l_txn:
            return False  # two different provider transactions never pair on a shared reference
        days = abs((self.s_booked[i].date() - self.l_booked[j].date()).days)
        return days <= self.config.date_window_days

    def _by_reference(self, leftovers: list[int]) -> None:
        if not leftovers:
            return
        s_groups: dict[tuple, list[int]] = {}
        for i in leftovers:
            ref = self.s_ref[i]
            if ref is not None:
                s_groups.setdefault((ref, self.s_kind[i]), []).append(i)
        if not s_groups:
            return
        l_groups: dict[tuple, list[int]] = {}
        l_used = self.l_used
        for j in _unset(l_used, self.n_l):
            key = (self.l_ref[j], self.l_kind[j])
            if key in s_groups:
                l_groups.setdefault(key, []).append(j)
        for key, entries in l_groups.items():
            self._match_reference_group(s_groups[key], entries)

    def _match_reference_group(self, lines: list[int], entries: list[int]) -> None:
        tol = self.config.amount_tolerance_minor
        s_used, l_used = self.s_used, self.l_used
        # (a) one-to-one on equal amount and currency
        for i in lines:
            for j in entries:
                if not l_used[j] and self.s_cur[i] == self.l_cur[j] and \
                        abs(self.s_amt[i] - self.l_amt[j]) <= tol and self._compatible(i, j):
                    self._pair((i,), j)
                    break
        rest_l = [j for j in entries if not l_used[j]]
        if len(rest_l) != 1:
            return  # none left, or ambiguous: the rest stays missing on both sides
        j = rest_l[0]
        rest_s = [i for i in lines if not s_used[i] and self._compatible(i, j)]
        if len(rest_s) == 1:
            self._pair((rest_s[0],), j)  # one line, one entry: a pair, mismatched or not
            return
        group = tuple(i for i in rest_s if self.s_cur[i] == self.l_cur[j])
        if len(group) > self.config.group_lines_max:
            for i in group:
                self._record(MISSING_IN_LEDGER, REASON_GROUP_TOO_LARGE, (i,), -1)
            return
        if group:
            self._pair(group, j)
