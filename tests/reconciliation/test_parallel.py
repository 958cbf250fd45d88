"""Fast paths give the simple path's report: the id-only rule 1, and the two-process file runner."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from settlement.reconciliation import (
    LedgerEntry,
    MatchConfig,
    StatementLine,
    parse_ledger_csv,
    parse_normalized_csv,
    reconcile,
    reconcile_files,
)
from settlement.reconciliation import parallel as par
from settlement.reconciliation.matcher import _Run
from settlement.reconciliation.model import LedgerTable, StatementTable

T0 = datetime(2024, 1, 15, 10, 0)

txns = st.sampled_from([None, "T1", "T2", "T3", "T4", "T5", "T6", "T7"])
refs = st.sampled_from([None, "R1", "R2", "R3"])
kinds = st.sampled_from(["payment", "refund", "fee"])
statuses = st.sampled_from(["succeeded", "pending"])
curs = st.sampled_from(["CNY", "USD"])
amounts = st.integers(0, 50)
days = st.integers(0, 5)
chains = st.sampled_from([None, "confirmed", "pending"])


def _line(n, txn, ref, amount, kind, status, cur, day):
    return StatementLine("s", n, txn, ref, kind, amount, cur, status, T0 + timedelta(days=day), "")


def _entry(n, txn, ref, amount, kind, status, cur, chain, day):
    return LedgerEntry(f"J{n}", txn, ref, kind, amount, cur, status, T0 + timedelta(days=day), chain, None)


line_args = st.tuples(txns, refs, amounts, kinds, statuses, curs, days)
entry_args = st.tuples(txns, refs, amounts, kinds, statuses, curs, chains, days)


def _outcome(report):
    return report.bulk_statement, report.bulk_ledger, report.records


@settings(max_examples=400, deadline=None)
@given(st.lists(line_args, max_size=30), st.lists(entry_args, max_size=30), st.integers(0, 2), st.integers(0, 3))
def test_id_only_rule1_equals_the_general_path(raw_lines, raw_entries, tol, window):
    """Duplicates on both sides and ids shared by a payment and a refund: same pairs, same records."""
    s = StatementTable.from_rows([_line(k, *a) for k, a in enumerate(raw_lines)])
    l = LedgerTable.from_rows([_entry(k, *a) for k, a in enumerate(raw_entries)])
    config = MatchConfig(amount_tolerance_minor=tol, date_window_days=window)
    fast, general = _Run.from_tables(s, l, config, fast=True), _Run.from_tables(s, l, config, fast=False)
    fast.execute()
    general.execute()
    assert (fast.bulk_s, fast.bulk_l, fast.records) == (general.bulk_s, general.bulk_l, general.records)


# ---- the two-process runner, on files --------------------------------------------------------------

ids = st.sampled_from(["", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"])
cells_ref = st.sampled_from(["", "R1", "R2", "订单-3", '"R,4"'])
cells_kind = st.sampled_from(["payment", "refund", "payment", "bogus"])
cells_amount = st.sampled_from(["1", "2", "10", "99999999999999999999999", "-5", "x"])
cells_cur = st.sampled_from(["CNY", "CNY", "USD", "XXX"])
cells_status = st.sampled_from(["succeeded", "succeeded", "pending"])
cells_booked = st.sampled_from(["2024-01-15T10:00:00+08:00", "2024-01-16", "2024-01-19T23:59:59", "yesterday"])
cells_chain = st.sampled_from(["", "confirmed", "confirmed", "pending", "mined"])
statement_rows = st.lists(st.one_of(
    st.tuples(ids, cells_ref, cells_kind, cells_amount, cells_cur, cells_status, cells_booked).map(",".join),
    st.sampled_from(["", "T9,R1,payment,1,CNY", "T9,R1,payment,1,CNY,succeeded,2024-01-15,extra"]),
), max_size=40)
ledger_rows = st.lists(
    st.tuples(st.sampled_from(["J1", "J2", ""]), ids, cells_ref, cells_kind, cells_amount, cells_cur, cells_status,
              cells_booked, cells_chain, st.sampled_from(["", "0xabc"])).map(",".join), max_size=40)


def _write(tmp_path, name, header, rows, newline, tail):
    path = tmp_path / name
    path.write_bytes((newline.join([header, *rows]) + tail).encode("utf-8"))
    return path


def _same_report(parallel, serial):
    assert _outcome(parallel) == _outcome(serial)
    assert parallel.statement_errors == serial.statement_errors
    assert parallel.ledger_errors == serial.ledger_errors
    assert parallel.counts() == serial.counts() and parallel.totals() == serial.totals()
    key = lambda e: {**e.as_json(), "run_id": None}  # noqa: E731
    assert [key(e) for e in parallel.exceptions()] == [key(e) for e in serial.exceptions()]
    assert list(parallel.items()) == list(serial.items())  # reads the files again
    assert parallel.statement == serial.statement and parallel.ledger == serial.ledger


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(statement_rows, ledger_rows, st.sampled_from(["\n", "\r\n"]), st.sampled_from(["", "\n", "\n\n"]),
       st.integers(8, 200))
def test_parallel_runner_gives_the_serial_report(tmp_path, monkeypatch, s_rows, l_rows, newline, tail, block):
    """Random small files with bad rows, quotes, CRLF, non-ASCII and tiny blocks: same report."""
    monkeypatch.setattr(par, "SCAN_BLOCK_BYTES", block)
    s_path = _write(tmp_path, "s.csv", "provider_txn_id,reference,kind,amount_minor,currency,status,booked_at",
                    s_rows, newline, tail)
    l_path = _write(tmp_path, "l.csv", "entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,"
                    "booked_at,chain_state,tx_hash", l_rows, newline, tail)
    config = MatchConfig(amount_tolerance_minor=1, date_window_days=2)
    parallel = par.reconcile_files_parallel(s_path, l_path, config)
    assert parallel is not None
    assert isinstance(parallel.statement, par.LazyStatementTable)
    serial = reconcile_files(s_path, l_path, statement_format="normalized-csv", config=config, parallel=False)
    _same_report(parallel, serial)


def _bench_like_files(tmp_path, n=3000):
    from bench.bench_reconcile import generate

    return generate(tmp_path, n, seed=11)


def test_parallel_report_on_a_bench_file_and_lazy_tables(tmp_path):
    """A generated run: exceptions come without reading the files again; items() reads them once."""
    s_path, l_path = _bench_like_files(tmp_path)
    parallel = reconcile_files(s_path, l_path, statement_format="normalized-csv", parallel=True)
    assert isinstance(parallel.ledger, par.LazyLedgerTable)
    assert parallel.counts()["duplicate"]["items"] == 1 and parallel.timings
    exceptions = list(parallel.exceptions())
    assert exceptions and not parallel.statement.materialized and not parallel.ledger.materialized
    serial = reconcile_files(s_path, l_path, statement_format="normalized-csv", parallel=False)
    _same_report(parallel, serial)
    assert parallel.statement.materialized and parallel.ledger.materialized
    out = io.StringIO()
    parallel.write_json(out)
    assert '"exceptions"' in out.getvalue()


def test_changed_file_is_refused_when_the_tables_are_read(tmp_path):
    s_path, l_path = _bench_like_files(tmp_path, 200)
    report = reconcile_files(s_path, l_path, statement_format="normalized-csv", parallel=True)
    with l_path.open("a") as f:
        f.write("J9,T9,R9,payment,1,CNY,succeeded,2024-01-15,,\n")
    with pytest.raises(RuntimeError):
        list(report.ledger)


def test_fallbacks_give_the_serial_behaviour(tmp_path):
    """GB18030 files run serially; a missing header column still raises StatementFormatError."""
    from settlement.errors import StatementFormatError

    text = ("provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
            + "T1,订单-1,payment,1,CNY,succeeded,2024-01-15\n" * 20)
    s_path = tmp_path / "s.csv"
    s_path.write_bytes(text.encode("gbk"))
    l_path = tmp_path / "l.csv"
    l_path.write_text("entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
                      "J1,T1,订单-1,payment,1,CNY,succeeded,2024-01-15\n")
    assert par.reconcile_files_parallel(s_path, l_path) is None
    report = reconcile_files(s_path, l_path, parallel=True)
    assert report.counts()["matched"]["items"] == 1 and report.counts()["duplicate"]["items"] == 19
    bad = tmp_path / "bad.csv"
    bad.write_text("provider_txn_id,reference\nT1,R1\n")
    with pytest.raises(StatementFormatError):
        reconcile_files(bad, l_path, statement_format="normalized-csv", parallel=True)
    assert parse_normalized_csv(s_path).encoding == "gb18030" and len(parse_ledger_csv(l_path).lines) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(txns, refs, amounts, kinds, days), max_size=30),
       st.lists(st.tuples(txns, refs, amounts, kinds, chains, days), max_size=30),
       st.sampled_from(["succeeded", "pending"]), st.sampled_from(["succeeded", "pending"]))
def test_exact_matches_with_single_valued_columns(raw_lines, raw_entries, s_status, l_status):
    """When a column holds one value on both sides the exact test skips it: check the outcome
    against the rule itself (exact = same amount, currency, effective status and kind)."""
    from settlement.reconciliation.matcher import _EFFECTIVE

    s = [_line(k, t, r, a, kd, s_status, "CNY", d) for k, (t, r, a, kd, d) in enumerate(raw_lines)]
    l = [_entry(k, t, r, a, kd, l_status, "CNY", c, d) for k, (t, r, a, kd, c, d) in enumerate(raw_entries)]
    report = reconcile(s, l)

    def same(line, entry):
        return (line.amount_minor, line.currency, line.status, line.kind) == \
            (entry.amount_minor, entry.currency, _EFFECTIVE[(entry.status, entry.chain_state)], entry.kind)

    for i, j in zip(report.bulk_statement, report.bulk_ledger):
        assert same(s[i], l[j]) and s[i].provider_txn_id == l[j].provider_txn_id
    for _bucket, reason, s_idx, l_idx in report.records:
        if len(s_idx) == 1 and l_idx >= 0 and s[s_idx[0]].provider_txn_id is not None \
                and s[s_idx[0]].provider_txn_id == l[l_idx].provider_txn_id:
            assert not same(s[s_idx[0]], l[l_idx]) or reason != "exact"
