"""The `ledger` command as a newcomer meets it (issue 15): `--version`; exit codes in `--help`;
`status` says what runs where and how it is doing (secrets of the RPC URL hidden) and exits by
it; progress is a bar only on a terminal (plain lines, no carriage returns, when redirected);
`simulate-payment` reports what the server did with its notification and exits 3 when the server
recorded an exception (on the main it printed "paid" and exited 0); the sample Alipay bill of the
tour is accepted by `ledger reconcile` and matches the tour's payment."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ledger_api.cli import main as ledger_main
from ledger_api.cli.progress import LineProgress, RichProgress, progress_for
from settlement.chain.anvil import free_port

from .conftest import CWorld

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_BILL = ROOT / "docs" / "samples" / "alipay-bill.csv"
TOUR_TRADE_NO = "2026120422001488230000000001"  # the sample bill's first line


def _env(cw: CWorld, monkeypatch: pytest.MonkeyPatch, *, api_port: int | None = None) -> None:
    rt = cw.w.runtime
    port = api_port if api_port is not None else urlsplit(str(cw.w.http.base_url)).port
    for name, value in {"LEDGER_HOME": str(rt.home), "LEDGER_DATABASE_URL": rt.db.url,
                        "LEDGER_RPC_URL": rt.chain.rpc_url, "LEDGER_API_HOST": "127.0.0.1",
                        "LEDGER_API_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)


def _demo(cw: CWorld) -> None:
    demo = {"api": str(cw.w.http.base_url), "providers": cw.creds,
            "members": [{"id": "operator", "roles": ["operator"], "api_key": cw.w.operator_key}]}
    (cw.w.runtime.home / "demo.json").write_text(json.dumps(demo))


def test_version_and_exit_codes_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        ledger_main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("ledger ")
    with pytest.raises(SystemExit):
        ledger_main(["--help"])
    epilog = capsys.readouterr().out.split("exit codes:", 1)[1]
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "):
        assert f"\n  {code}" in epilog


def test_status_says_what_runs_where(sworld: CWorld, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    sworld.settlement()
    _env(sworld, monkeypatch)
    assert ledger_main(["status"]) == 0
    out = capsys.readouterr().out
    api, chain, store, manifest, home = out.splitlines()
    assert "answering, health ok" in api
    assert "chain id 31337" in chain and "external node" in chain
    assert "outbox 0 rows waiting" in store and "follower contracts at block" in store and "blocks behind" in store
    assert "contracts from block" in manifest
    assert "READABLE BY OTHERS" in home  # this test's home was made by the test, 0755: status says so
    os.chmod(sworld.w.runtime.home, 0o700)
    assert ledger_main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data_dir"]["private"] is True
    assert report["store"]["outbox_depth"] == 0 and report["chain"]["reachable"] is True
    assert report["api"]["health"]["status"] == "ok"
    # nothing answers on the API port: exit 4; a node URL's password and path never shown
    _env(sworld, monkeypatch, api_port=free_port())
    monkeypatch.setenv("LEDGER_RPC_URL", f"http://user:hunter2@127.0.0.1:{free_port()}/v3/PROJECTKEY")
    assert ledger_main(["status"]) == 4
    captured = capsys.readouterr()
    assert "not answering" in captured.out and "unreachable" in captured.out
    assert "hunter2" not in captured.out + captured.err and "PROJECTKEY" not in captured.out + captured.err


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere() -> None:
    piped = io.StringIO()
    bar = progress_for(piped)
    assert isinstance(bar, LineProgress)
    for done in range(0, 1001, 10):
        bar("parse", done, 1000)
    bar("match", 5, None)
    bar.close()
    text = piped.getvalue()
    assert "\r" not in text and text.splitlines()[0] == "parse: started, 1,000 to do"
    assert "parse: done, 1,000 of 1,000 (100%)" in text and text.endswith("match: done, 5\n")
    assert len(text.splitlines()) <= 5  # not a line per update

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    live = progress_for(tty)
    assert isinstance(live, RichProgress)
    live("parse", 1, 2)
    live.close()
    assert "parse" in tty.getvalue()


def test_simulate_payment_reports_what_the_server_did(sworld: CWorld, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _demo(sworld)
    _env(sworld, monkeypatch)
    s = sworld.settlement()
    assert ledger_main(["simulate-payment", "--provider", "alipay", "--settlement", s["id"]]) == 0
    assert "server: applied" in capsys.readouterr().out
    sworld.w.sync()
    # the same settlement paid again (another provider transaction): the server queues an exception
    assert ledger_main(["simulate-payment", "--provider", "stripe", "--settlement", s["id"]]) == 3
    out = capsys.readouterr().out
    assert "server: EXCEPTION" in out and "settlement_not_payable" in out and "NOT paid" in out
    # the very same notification again: one fact, recorded once
    assert ledger_main(["simulate-payment", "--provider", "alipay", "--settlement", s["id"],
                        "--provider-txn-id", "2026010100000000000000000077"]) == 3
    assert ledger_main(["simulate-payment", "--provider", "alipay", "--settlement", s["id"],
                        "--provider-txn-id", "2026010100000000000000000077"]) == 3
    assert "delivered 2 times, recorded once" in capsys.readouterr().out
    # the API is down: exit 4
    assert ledger_main(["simulate-payment", "--provider", "alipay", "--settlement", s["id"],
                        "--api", f"http://127.0.0.1:{free_port()}"]) == 4


def test_the_sample_bill_reconciles_the_tours_payment(sworld: CWorld, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The tour: HKD 1,000.00 from the retailer, 914.00 CNY paid through Alipay with the bill's
    transaction id, then the bill reconciled as the retailer: its line matches the payment, the
    other line (an order the ledger never saw) is queued as an exception."""
    _demo(sworld)
    _env(sworld, monkeypatch)
    s = sworld.settlement(payment_reference="ORDER-88123", source={"value": 100_000, "currency": "HKD"},
                          target={"value": 91_400, "currency": "CNY"}, fx_rate="0.914")
    assert ledger_main(["simulate-payment", "--provider", "alipay", "--settlement", s["id"],
                        "--provider-txn-id", TOUR_TRADE_NO]) == 0
    sworld.w.sync()
    out = tmp_path / "report.json"
    code = ledger_main(["reconcile", str(SAMPLE_BILL), "--provider", "alipay", "--member", "retailer",
                        "--out", str(out)])
    assert code == 3, capsys.readouterr()
    report = json.loads(out.read_text())
    assert report["inputs"]["statement_row_errors"] == 0
    assert report["buckets"]["matched"]["items"] == 1
    assert report["buckets"]["matched"]["statement_totals"] == [{"value": 91_400, "currency": "CNY"}]
    (missing,) = report["exceptions"]
    assert missing["bucket"] == "missing_in_ledger" and missing["reference"] == "ORDER-88124"
