"""Matcher: every line and entry lands in exactly one bucket; totals add up; rules hold."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.domains.reconciliation.engine import (
    BUCKETS,
    LedgerEntry,
    MatchConfig,
    StatementLine,
    reconcile,
)

T0 = datetime(2024, 1, 15, 10, 0)


def line(txn, ref, amount, kind="payment", status="succeeded", cur="CNY", day=0, n=1):
    return StatementLine("test", n, txn, ref, kind, amount, cur, status, T0 + timedelta(days=day), "")


def entry(eid, txn, ref, amount, kind="payment", status="succeeded", cur="CNY", chain="confirmed", day=0):
    return LedgerEntry(eid, txn, ref, kind, amount, cur, status, T0 + timedelta(days=day), chain, None)


def buckets_of(report):
    return {(item.bucket, item.reason, tuple(x.provider_txn_id or x.reference for x in item.lines),
             item.entry.entry_id if item.entry else None) for item in report.items()}


def test_each_rule_lands_in_its_bucket():
    """One example per rule: id match, tolerance, mismatches, chain, grouping, duplicates, missing."""
    s = [line("T1", "R1", 100), line("T2", "R2", 100), line("T3", "R3", 100), line("T4", "R4", 100, status="pending"),
         line("T5", "R5", 100), line(None, "R6", 60), line(None, "R6", 40), line("T7", "R7", 100),
         line("T7", "R7", 100), line("T8", "R8", 100), line(None, "R9", 100, day=10), line("T10", "R10", 101)]
    l = [entry("J1", "T1", "R1", 100), entry("J2", "T2", "R2", 150), entry("J3", "T3", "R3", 100, cur="USD"),
         entry("J4", "T4", "R4", 100), entry("J5", "T5", "R5", 100, chain="pending"), entry("J6", None, "R6", 100),
         entry("J7", "T7", "R7", 100), entry("J9", None, "R9", 100), entry("J11", "T11", "R11", 5),
         entry("J10", "T10", "R10", 100)]
    report = reconcile(s, l, MatchConfig(amount_tolerance_minor=1, date_window_days=3))
    got = buckets_of(report)
    assert ("matched", "exact", ("T1",), "J1") in got
    assert ("amount_mismatch", "amount_differs", ("T2",), "J2") in got
    assert ("amount_mismatch", "currency_differs", ("T3",), "J3") in got
    assert ("status_mismatch", "status_differs", ("T4",), "J4") in got
    assert ("status_mismatch", "chain_not_confirmed", ("T5",), "J5") in got
    assert ("matched", "grouped_by_reference", ("R6", "R6"), "J6") in got
    assert ("matched", "exact", ("T7",), "J7") in got
    assert ("duplicate", "duplicate_provider_txn_id_in_statement", ("T7",), None) in got
    assert ("missing_in_ledger", "no_ledger_entry", ("T8",), None) in got
    assert ("missing_in_ledger", "no_ledger_entry", ("R9",), None) in got  # outside the date window
    assert ("missing_in_statement", "no_statement_line", (), "J9") in got
    assert ("missing_in_statement", "no_statement_line", (), "J11") in got
    assert ("matched", "within_tolerance", ("T10",), "J10") in got


def test_ledger_duplicates_and_mixed_kinds():
    """A repeated ledger id is a duplicate; a payment and a refund may share a provider id."""
    s = [line("T1", "R1", 100), line("T1", "R1", 30, kind="refund")]
    l = [entry("J1", "T1", "R1", 100), entry("J1b", "T1", "R1", 100), entry("J2", "T1", "R1", 30, kind="refund")]
    got = buckets_of(reconcile(s, l))
    assert ("matched", "exact", ("T1",), "J1") in got and ("matched", "exact", ("T1",), "J2") in got
    assert ("duplicate", "duplicate_provider_txn_id_in_ledger", (), "J1b") in got


def test_report_outputs():
    """JSON, CSV and text outputs carry the buckets, totals and exception records."""
    report = reconcile([line("T1", "R1", 100), line("T2", "R2", 5)], [entry("J1", "T1", "R1", 90)])
    doc_stream = io.StringIO()
    report.write_json(doc_stream)
    doc = json.loads(doc_stream.getvalue())
    assert doc["buckets"]["amount_mismatch"]["statement_totals"] == [{"value": 100, "currency": "CNY"}]
    assert {e["bucket"] for e in doc["exceptions"]} == {"amount_mismatch", "missing_in_ledger"}
    mismatch = next(e for e in doc["exceptions"] if e["bucket"] == "amount_mismatch")
    assert mismatch["difference_minor"] == 10 and mismatch["ledger_amount"] == {"value": 90, "currency": "CNY"}
    csv_stream = io.StringIO()
    assert report.write_exceptions_csv(csv_stream) == 2
    assert "amount_mismatch" in report.summary_text()
    ids = {r.exception_id for r in report.exceptions()}
    again = reconcile([line("T1", "R1", 100), line("T2", "R2", 5)], [entry("J1", "T1", "R1", 90)])
    assert ids == {r.exception_id for r in again.exceptions()}  # stable across runs


txns = st.sampled_from([None, "T1", "T2", "T3", "T4", "T5"])
refs = st.sampled_from([None, "R1", "R2", "R3"])
kinds = st.sampled_from(["payment", "refund"])
statuses = st.sampled_from(["succeeded", "pending"])
curs = st.sampled_from(["CNY", "USD"])
amounts = st.integers(0, 200)
days = st.integers(0, 5)
lines_st = st.lists(st.builds(line, txns, refs, amounts, kinds, statuses, curs, days), max_size=25)
entries_st = st.lists(st.builds(lambda *a: a, txns, refs, amounts, kinds, statuses, curs,
                                st.sampled_from([None, "confirmed", "pending"]), days), max_size=25)


@settings(max_examples=300, deadline=None)
@given(lines_st, entries_st, st.integers(0, 3), st.integers(0, 3))
def test_every_item_in_exactly_one_bucket_and_totals_add_up(s, raw_entries, tol, window):
    """Property: exactly-once bucketing, per-currency totals = inputs, id pairs are a bijection."""
    l = [entry(f"J{k}", *args) for k, args in enumerate(raw_entries)]
    report = reconcile(s, l, MatchConfig(amount_tolerance_minor=tol, date_window_days=window))
    s_bucket, l_bucket = report.assignments()  # raises on a double assignment
    assert None not in s_bucket and None not in l_bucket
    totals = report.totals()
    for side, rows in (("statement", s), ("ledger", l)):
        expected = Counter()
        for row in rows:
            expected[row.currency] += row.amount_minor
        got = Counter()
        for b in BUCKETS:
            got.update(totals[b][side])
        assert +got == +expected
    paired_lines, paired_entries = [], []
    for item in report.items():
        if item.entry is not None and item.lines:
            paired_entries.append(item.entry.entry_id)
            paired_lines.extend(x.line_no * 1000 + id(x) % 1 for x in item.lines)
            if len(item.lines) == 1 and item.lines[0].provider_txn_id and item.entry.provider_txn_id:
                assert item.lines[0].provider_txn_id == item.entry.provider_txn_id
                assert item.lines[0].kind == item.entry.kind
    assert len(paired_entries) == len(set(paired_entries))  # no entry paired twice
    matched = [(i, j) for i, j in zip(report.bulk_statement, report.bulk_ledger)]
    assert len({i for i, _ in matched}) == len({j for _, j in matched}) == len(matched)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=200), st.integers(0, 210))
def test_unset_positions_of_flags(flags, n):
    """_unset lists the positions below n whose flag is clear, from bytes (sparse or dense) or bools,
    as the flags stood when it was called."""
    from settlement.domains.reconciliation.engine.matcher import _unset

    expected = [i for i, f in enumerate(flags[:n]) if not f]
    as_bytes = bytearray(flags)
    got = _unset(as_bytes, n)
    as_bytes[:] = bytes(len(as_bytes))  # changes after the call do not show
    assert list(got) == expected
    assert list(_unset(list(flags), n)) == expected
