"""Fast paths give the simple path's report: the id-only rule 1, the vectorized rule 1, the Arrow
column checks, and the columnar file runner as a whole."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from settlement.domains.reconciliation.engine import (
    LedgerEntry,
    MatchConfig,
    StatementLine,
    parse_ledger_csv,
    parse_normalized_csv,
    reconcile,
    reconcile_files,
)
from settlement.domains.reconciliation.engine import columnar as col
from settlement.domains.reconciliation.engine.columnar import scan as col_scan
from settlement.domains.reconciliation.engine.matcher import _Run
from settlement.domains.reconciliation.engine.model import LedgerTable, StatementTable
from settlement.domains.reconciliation.engine.parsers.normalized import _amount_one

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


# ---- rule 1 on arrays ------------------------------------------------------------------------------

def _codes_of(values, name):
    return np.array([col._CODE_VALUES[name].index(v) for v in values], np.uint8)


def _vectorized_run(s, l, config, id_of):
    """Rule 1 through rule1_arrays (ids numbered by ``id_of``), the rest through _Run.finish."""
    n_s, n_l = len(s), len(l)
    s_id = np.array([id_of(t) for t in s.column("provider_txn_id")], np.int64)
    l_id = np.array([id_of(t) for t in l.column("provider_txn_id")], np.int64)
    count = max([*s_id.tolist(), *l_id.tolist(), -1]) + 1
    r1 = col.rule1_arrays(s_id, _codes_of(s.column("kind"), "kind"), np.array(s.column("amount_minor"), np.int64),
                          _codes_of(s.column("currency"), "currency"), _codes_of(s.column("status"), "status"),
                          l_id, _codes_of(l.column("kind"), "kind"), np.array(l.column("amount_minor"), np.int64),
                          _codes_of(l.column("currency"), "currency"), _codes_of(l.column("status"), "status"),
                          _codes_of(l.column("chain_state"), "chain_state"), count)
    bulk_s = np.flatnonzero(r1.exact)
    bulk_l = r1.pos[bulk_s]
    l_exact = np.zeros(n_l, bool)
    l_exact[bulk_l] = True
    run = _Run.from_tables(s, l, config)
    open_s = np.flatnonzero(~r1.exact)
    run.adopt_rule1(n_s, n_l, bytearray(r1.exact.astype(np.uint8)), bytearray(l_exact.astype(np.uint8)),
                    dict(zip(open_s.tolist(), r1.pos[open_s].tolist())), bulk_s.tolist(), bulk_l.tolist(),
                    r1.dup_s, r1.dup_l)
    run.finish()
    return run


@settings(max_examples=400, deadline=None)
@given(st.lists(line_args, max_size=30), st.lists(entry_args, max_size=30), st.integers(0, 2), st.integers(0, 3),
       st.randoms(use_true_random=False))
def test_vectorized_rule1_equals_the_general_path(raw_lines, raw_entries, tol, window, rnd):
    """rule1_arrays + _Run.finish give the general path's pairs and records, however ids are numbered."""
    s = StatementTable.from_rows([_line(k, *a) for k, a in enumerate(raw_lines)])
    l = LedgerTable.from_rows([_entry(k, *a) for k, a in enumerate(raw_entries)])
    config = MatchConfig(amount_tolerance_minor=tol, date_window_days=window)
    numbers = list(range(8))
    rnd.shuffle(numbers)
    numbering = {f"T{k}": numbers[k] for k in range(1, 8)}
    vectorized = _vectorized_run(s, l, config, lambda t: -1 if t is None else numbering[t])
    general = _Run.from_tables(s, l, config, fast=False)
    general.execute()
    assert (vectorized.bulk_s, vectorized.bulk_l, vectorized.records) == \
        (general.bulk_s, general.bulk_l, general.records)


def _arrow_strings(values, chunk=3):
    parts = [col._utf8_array(values[k:k + chunk]) for k in range(0, len(values), chunk)] or [col._utf8_array([])]
    return pa.chunked_array(parts, pa.string())


id_texts = st.sampled_from(["", "1", "2", "3", "10", "11", "ab", "ac", "订单", "b", "12345678901234567"])


@settings(max_examples=200, deadline=None)
@given(st.lists(id_texts, max_size=40), st.lists(id_texts, max_size=40))
def test_id_numbering_groups_equal_ids(s_ids, l_ids):
    """Equal ids get equal numbers, different ids different numbers, a missing id -1, across
    both sides and however the ids are chunked."""
    s_num, l_num, count = col._id_indices(_arrow_strings(s_ids), _arrow_strings(l_ids))
    texts, numbers = s_ids + l_ids, s_num.tolist() + l_num.tolist()
    assert all((n == -1) == (t == "") for t, n in zip(texts, numbers))
    pairs = {(t, n) for t, n in zip(texts, numbers) if t}
    assert len({t for t, _ in pairs}) == len(pairs) == len({n for _, n in pairs})
    assert all(0 <= n < count for _, n in pairs)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 30), st.data(), st.sampled_from(["0123456789", "0123456789ab", "09", "订单"]))
def test_fixed_width_ids_numbered_by_integer_keys(width, data, alphabet):
    """Ids of one length that share a prefix become integer keys (their digits, or their bytes):
    equal exactly when the ids are, including 19-digit tails, empty ids and many chunks."""
    prefix = data.draw(st.text("ABC123", min_size=0, max_size=width))[:width]
    tail = st.text(alphabet, min_size=width - len(prefix), max_size=width - len(prefix))
    ids_drawn = data.draw(st.lists(st.one_of(tail.map(lambda t: prefix + t), st.just("")), max_size=40))
    s_ids, l_ids = ids_drawn[: len(ids_drawn) // 2], ids_drawn[len(ids_drawn) // 2:]
    with ThreadPoolExecutor(2) as pool:  # the chunks in two halves, one a thread
        s_num, l_num, count = col._id_indices(_arrow_strings(s_ids, 4), _arrow_strings(l_ids, 5),
                                              pool if data.draw(st.booleans()) else None)
    texts, numbers = s_ids + l_ids, s_num.tolist() + l_num.tolist()
    assert all((n == -1) == (t == "") for t, n in zip(texts, numbers))
    pairs = {(t, n) for t, n in zip(texts, numbers) if t}
    assert len({t for t, _ in pairs}) == len(pairs) == len({n for _, n in pairs})
    assert all(0 <= n < count for _, n in pairs)
    widths = {len(t.encode()) for t in texts if t}
    rest = width - len(prefix)
    if len(widths) == 1 and alphabet == "0123456789" and rest <= 19:
        assert col._short_id_keys(_arrow_strings(texts).chunks) is not None


# ---- column checks -----------------------------------------------------------------------------------

amount_texts = st.one_of(st.sampled_from(["0", "007", "-0", "+5", " 5", "5 ", "", "1e3", "١٢", "9223372036854775807",
                                          "9223372036854775808", "99999999999999999999999"]),
                         st.integers(0, 10**12).map(str), st.text("0123456789-x", max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.lists(amount_texts, min_size=1, max_size=12))
def test_amount_check_takes_what_the_row_converter_takes(values):
    """A column is taken only when every value is what _amount_one takes and fits int64; the ints agree."""
    got = col._amounts(_arrow_strings(values))
    expected = []
    for v in values:
        try:
            expected.append(_amount_one(v, {}))
        except ValueError:
            expected = None
            break
    if expected is None or max(expected) >= 2**63:
        assert got is None
    else:
        assert got is not None and got.tolist() == expected


code_texts = st.sampled_from(["payment", "refund", "fee", "Payment", "", "succeeded", "pending", "CNY", "USD", "XXX",
                              "confirmed", "absent", "mined", "payment "])


@settings(max_examples=300, deadline=None)
@given(st.lists(code_texts, min_size=1, max_size=10), st.sampled_from(list(col._CODE_VALUES)), st.booleans())
def test_code_check_takes_exactly_the_allowed_values(values, name, same):
    """Kind, status, currency and chain state: the codes of allowed values, None for anything else."""
    if same:
        values = [values[0]] * len(values)  # the one-value shortcut
    got = col._codes(_arrow_strings(values), name)
    texts = col._CODE_TEXTS[name]
    allowed = texts if name == "chain_state" else texts[1:]
    if all(v in allowed for v in values):
        assert got is not None and got.tolist() == [texts.index(v) for v in values]
    else:
        assert got is None


def _iso_text(draw_digits, shape):
    return "".join(draw_digits() if c == "d" else c for c in shape)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(col._ISO_SHAPES.values())), st.randoms(use_true_random=False),
       st.sampled_from(["T", " ", "x"]), st.sampled_from(["+", "-", "*"]), st.integers(1, 6))
def test_iso_check_only_vouches_for_what_fromisoformat_takes(shape, rnd, sep, sign, rows):
    """Whatever the NumPy check calls valid, datetime.fromisoformat parses; real timestamps pass it."""
    low = rnd.random() < 0.5  # mostly small digits: plausible dates; else anything
    values = []
    for _ in range(rows):
        text = _iso_text(lambda: str(rnd.randint(0, 2 if low else 9)), shape)
        values.append(text.replace("T", sep, 1).replace("s", sign))
    ((offsets, data),) = col._string_layout(_arrow_strings(values, chunk=len(values)))
    if col._iso_certainly_valid(offsets, data):
        for v in values:
            datetime.fromisoformat(v)
    for _ in range(rows):  # real timestamps, in each shape the check knows
        moment = datetime(1, 1, 1) + timedelta(seconds=rnd.randrange(315_000_000_000), microseconds=rnd.randrange(1, 10**6))
        zone = timezone(timedelta(minutes=rnd.randrange(-1439, 1440)))
        texts = [moment.date().isoformat(), moment.replace(microsecond=0).isoformat(),
                 moment.replace(microsecond=0).isoformat(sep=" ") + "Z", moment.isoformat(),
                 moment.replace(microsecond=0, tzinfo=zone).isoformat(), moment.replace(tzinfo=zone).isoformat()]
        for text in texts:
            ((offsets, data),) = col._string_layout(_arrow_strings([text]))
            assert col._iso_certainly_valid(offsets, data), text


# ---- the columnar runner, on files ---------------------------------------------------------------

ids = st.sampled_from(["", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"])
cells_ref = st.sampled_from(["", "R1", "R2", "订单-3", '"R,4"', "R 5"])
cells_kind = st.sampled_from(["payment", "refund", "payment", "payment", "bogus"])
cells_amount = st.sampled_from(["1", "2", "10", "0010", "2", "99999999999999999999999", "-5", "x", ""])
cells_cur = st.sampled_from(["CNY", "CNY", "USD", "XXX"])
cells_status = st.sampled_from(["succeeded", "succeeded", "pending"])
cells_booked = st.sampled_from(["2024-01-15T10:00:00+08:00", "2024-01-16", "2024-01-19T23:59:59", "yesterday",
                                "2024-01-15 10:00:00", "2024-01-15T10:00:00Z", "2024-01-17T10:00:00.123456+08:00",
                                "2024-02-30", "2024-01-15T24:00:00", "2024-01-15T10:00"])
cells_chain = st.sampled_from(["", "confirmed", "confirmed", "pending", "mined"])
odd_lines = st.sampled_from(["", "   ", "T9,R1,payment,1,CNY", "T9,R1,payment,1,CNY,succeeded,2024-01-15,extra",
                             "T9,R1,payment,1,CNY,succeeded,2024-01-15\r", "\x00"])
statement_rows = st.lists(st.one_of(
    st.tuples(ids, cells_ref, cells_kind, cells_amount, cells_cur, cells_status, cells_booked).map(",".join),
    odd_lines,
), max_size=40)
ledger_rows = st.lists(st.one_of(
    st.tuples(st.sampled_from(["J1", "J2", ""]), ids, cells_ref, cells_kind, cells_amount, cells_cur, cells_status,
              cells_booked, cells_chain, st.sampled_from(["", "0xabc"])).map(",".join),
    odd_lines,
), max_size=40)
raw_bytes = st.sampled_from([b"", b"T1,R\xff,payment,1,CNY,succeeded,2024-01-15"])


def _write(tmp_path, name, header, rows, newline, tail, raw=b""):
    path = tmp_path / name
    lines = [line.encode("utf-8") for line in [header, *rows]]
    if raw:  # a line that is not UTF-8, first after the header
        lines.insert(1, raw)
    path.write_bytes(newline.encode().join(lines) + tail.encode())
    return path


def _same_report(fast, serial):
    assert _outcome(fast) == _outcome(serial)
    assert fast.statement_errors == serial.statement_errors
    assert fast.ledger_errors == serial.ledger_errors
    assert fast.counts() == serial.counts() and fast.totals() == serial.totals()
    key = lambda e: {**e.as_json(), "run_id": None}
    assert [key(e) for e in fast.exceptions()] == [key(e) for e in serial.exceptions()]
    assert list(fast.items()) == list(serial.items())  # reads the files again
    assert fast.statement == serial.statement and fast.ledger == serial.ledger


STATEMENT_HEADER = "provider_txn_id,reference,kind,amount_minor,currency,status,booked_at"
LEDGER_HEADER = "entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,booked_at,chain_state,tx_hash"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(statement_rows, ledger_rows, st.sampled_from(["\n", "\r\n"]), st.sampled_from(["", "\n", "\n\n"]),
       st.integers(16, 400), st.integers(8, 120), st.integers(1, 200), raw_bytes)
def test_columnar_runner_gives_the_serial_report(tmp_path, monkeypatch, s_rows, l_rows, newline, tail, piece,
                                                 block, slack, raw):
    """Random small files with bad rows, quotes, CRLF, stray CR, empty lines, non-ASCII and non-UTF-8
    bytes, cut into tiny pieces and blocks: the serial path's report, row errors included."""
    monkeypatch.setattr(col_scan, "PIECE_BYTES", piece)
    monkeypatch.setattr(col_scan, "BLOCK_BYTES", block)
    monkeypatch.setattr(col_scan, "LINE_SLACK_BYTES", slack)
    s_path = _write(tmp_path, "s.csv", STATEMENT_HEADER, s_rows, newline, tail, raw)
    l_path = _write(tmp_path, "l.csv", LEDGER_HEADER, l_rows, newline, tail)
    config = MatchConfig(amount_tolerance_minor=1, date_window_days=2)
    fast = reconcile_files(s_path, l_path, statement_format="normalized-csv", config=config, columnar=True)
    serial = reconcile_files(s_path, l_path, statement_format="normalized-csv", config=config, columnar=False)
    utf8 = parse_normalized_csv(s_path).encoding == parse_ledger_csv(l_path).encoding == "utf-8"
    if utf8 and "99999999999999999999999" not in s_path.read_text("utf-8", "replace") + l_path.read_text():
        assert isinstance(fast.statement, col.LazyStatementTable)  # the columnar path ran
    _same_report(fast, serial)


good_ref = st.sampled_from(["", "R1", "R2", "订单-3"])
good_amount = st.sampled_from(["1", "2", "10", "0010"])
good_booked = st.sampled_from(["2024-01-15T10:00:00+08:00", "2024-01-16", "2024-01-15 10:00:00", "2024-01-19T23:59:59"])
good_statement = st.tuples(ids, good_ref, st.sampled_from(["payment", "refund"]), good_amount,
                           st.sampled_from(["CNY", "USD"]), cells_status, good_booked).map(",".join)
good_ledger = st.tuples(st.sampled_from(["J1", "J2", "J3"]), ids, good_ref, st.sampled_from(["payment", "refund"]),
                        good_amount, st.sampled_from(["CNY", "USD"]), cells_status, good_booked,
                        st.sampled_from(["", "confirmed", "pending"]), st.sampled_from(["", "0xabc"])).map(",".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.lists(good_statement, max_size=60), st.lists(good_ledger, max_size=60), st.sampled_from(["\n", "\r\n"]),
       st.integers(16, 600), st.integers(8, 200), st.lists(st.tuples(st.integers(0, 60), odd_lines), max_size=2),
       st.sampled_from(["", "\ufeff"]))
def test_columnar_runner_on_mostly_clean_files(tmp_path, monkeypatch, s_rows, l_rows, newline, piece, block, bad,
                                               bom):
    """Files Arrow mostly takes as they are (repeated ids, payment and refund sharing an id, CRLF, a
    BOM), with at most two broken lines: the serial path's report."""
    monkeypatch.setattr(col_scan, "PIECE_BYTES", piece)
    monkeypatch.setattr(col_scan, "BLOCK_BYTES", block)
    for at, text in bad:
        s_rows.insert(min(at, len(s_rows)), text)
    s_path = _write(tmp_path, "s.csv", bom + STATEMENT_HEADER, s_rows, newline, "\n")
    l_path = _write(tmp_path, "l.csv", bom + LEDGER_HEADER, l_rows, newline, "")
    fast = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=True)
    serial = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=False)
    assert isinstance(fast.statement, col.LazyStatementTable)
    _same_report(fast, serial)


def _bench_like_files(tmp_path, n=3000):
    from bench.bench_reconcile import generate

    return generate(tmp_path, n, seed=11)


def test_columnar_report_on_a_bench_file_and_lazy_tables(tmp_path, monkeypatch):
    """A generated run, in small pieces: Arrow takes every piece; exceptions come without reading
    the files again; items() reads them once and agrees with the serial path."""
    monkeypatch.setattr(col_scan, "PIECE_BYTES", 64 * 1024)
    s_path, l_path = _bench_like_files(tmp_path)
    scan = col._Scan(str(l_path), col.LEDGER, "ledger")
    with ThreadPoolExecutor(1) as pool, open(l_path, "rb") as f:
        parts = [future.result() for future in col._submit_pieces(pool, scan, f.fileno())]
    assert len(parts) > 3 and all(seg.table is not None for part in parts for seg in part.segments)
    fast = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=True)
    assert isinstance(fast.ledger, col.LazyLedgerTable)
    assert fast.counts()["duplicate"]["items"] == 1 and fast.timings
    exceptions = list(fast.exceptions())
    assert exceptions and not fast.statement.materialized and not fast.ledger.materialized
    serial = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=False)
    _same_report(fast, serial)
    assert fast.statement.materialized and fast.ledger.materialized
    out = io.StringIO()
    fast.write_json(out)
    assert '"exceptions"' in out.getvalue()


def test_a_line_longer_than_several_pieces(tmp_path, monkeypatch):
    """A reference longer than a piece and its read-ahead: the line is read whole, once."""
    monkeypatch.setattr(col_scan, "PIECE_BYTES", 100)
    monkeypatch.setattr(col_scan, "LINE_SLACK_BYTES", 10)
    rows = [f"T{k},R{k},payment,{k},CNY,succeeded,2024-01-15" for k in range(30)]
    rows[7] = "T7," + "R" * 1000 + ",payment,7,CNY,succeeded,2024-01-15"
    s_path = _write(tmp_path, "s.csv", STATEMENT_HEADER, rows, "\n", "")
    l_path = _write(tmp_path, "l.csv", LEDGER_HEADER,
                    [f"J{k},T{k},R{k},payment,{k},CNY,succeeded,2024-01-15,," for k in range(30)], "\n", "\n")
    fast = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=True)
    serial = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=False)
    assert isinstance(fast.statement, col.LazyStatementTable) and len(fast.statement) == 30
    _same_report(fast, serial)


def test_changed_file_is_refused_when_the_tables_are_read(tmp_path):
    s_path, l_path = _bench_like_files(tmp_path, 200)
    report = reconcile_files(s_path, l_path, statement_format="normalized-csv", columnar=True)
    with l_path.open("a") as f:
        f.write("J9,T9,R9,payment,1,CNY,succeeded,2024-01-15,,\n")
    with pytest.raises(RuntimeError):
        list(report.ledger)


def test_fallbacks_give_the_serial_behaviour(tmp_path):
    """GB18030 files and amounts beyond int64 run serially; a missing header column still raises
    StatementFormatError."""
    from settlement.core.errors import StatementFormatError

    text = (STATEMENT_HEADER + "\n" + "T1,订单-1,payment,1,CNY,succeeded,2024-01-15\n" * 20)
    s_path = tmp_path / "s.csv"
    s_path.write_bytes(text.encode("gbk"))
    l_path = tmp_path / "l.csv"
    l_path.write_text("entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
                      "J1,T1,订单-1,payment,1,CNY,succeeded,2024-01-15\n")
    assert col.reconcile_files_columnar(s_path, l_path) is None
    report = reconcile_files(s_path, l_path, columnar=True)
    assert report.counts()["matched"]["items"] == 1 and report.counts()["duplicate"]["items"] == 19
    big = tmp_path / "big.csv"
    big.write_text(STATEMENT_HEADER + "\nT1,R1,payment,9223372036854775808,CNY,succeeded,2024-01-15\n")
    assert col.reconcile_files_columnar(big, l_path) is None
    assert reconcile_files(big, l_path, columnar=True).totals()["amount_mismatch"]["statement"] == \
        {"CNY": 9223372036854775808}
    bad = tmp_path / "bad.csv"
    bad.write_text("provider_txn_id,reference\nT1,R1\n")
    with pytest.raises(StatementFormatError):
        reconcile_files(bad, l_path, statement_format="normalized-csv", columnar=True)
    assert parse_normalized_csv(s_path).encoding == "gb18030" and len(parse_ledger_csv(l_path).lines) == 1


def test_the_columnar_run_does_not_import_pandas(tmp_path):
    """pyarrow imports pandas (about 0.3 s) when asked to convert Python or NumPy values, or to
    give NumPy arrays; the run builds its Arrow arrays from buffers instead."""
    s_path, l_path = _bench_like_files(tmp_path, 500)
    code = ("import sys\nfrom settlement.domains.reconciliation.engine import columnar\n"
            f"r = columnar.reconcile_files_columnar({str(s_path)!r}, {str(l_path)!r})\n"
            "r.totals(); list(r.exceptions())\nassert r is not None\nprint('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(txns, refs, amounts, kinds, days), max_size=30),
       st.lists(st.tuples(txns, refs, amounts, kinds, chains, days), max_size=30),
       st.sampled_from(["succeeded", "pending"]), st.sampled_from(["succeeded", "pending"]))
def test_exact_matches_with_single_valued_columns(raw_lines, raw_entries, s_status, l_status):
    """When a column holds one value on both sides the exact test skips it: check the outcome
    against the rule itself (exact = same amount, currency, effective status and kind)."""
    from settlement.domains.reconciliation.engine.matcher import _EFFECTIVE

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
