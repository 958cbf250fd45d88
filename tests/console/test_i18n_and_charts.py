"""Pure parts of the console: the catalogues hold the same keys and every key the templates use;
amounts written from minor units and typed back are the same integer (hypothesis, every currency
and exponent, both languages); the language negotiation; the ageing buckets and bar heights."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_api.console import charts, i18n
from settlement.core.errors import InvalidAmountError
from settlement.core.money import AMOUNT_MINOR_MAX, CURRENCY_EXPONENTS

TEMPLATES = Path(i18n.__file__).resolve().parent / "templates"
KEY = re.compile(r"""\bt\(\s*'([a-z0-9_.]+)'""")


def test_both_catalogues_hold_the_same_keys_and_every_key_the_templates_use():
    en, zh = i18n.catalogue("en").messages, i18n.catalogue("zh").messages
    assert set(en) == set(zh)
    used = {k for path in TEMPLATES.glob("*.html") for k in KEY.findall(path.read_text())}
    assert used, "no t('...') found"
    prefixes = {k for k in used if k.endswith(".")}  # t('state.' ~ s.state): a family of keys
    assert not (used - prefixes) - set(en), sorted((used - prefixes) - set(en))
    assert all(any(k.startswith(p) for k in en) for p in prefixes), prefixes
    from settlement.domains.settlements.commands import STATES
    assert all(f"state.{s}" in en for s in STATES)
    assert all(v.strip() for v in zh.values()) and all(v.strip() for v in en.values())


@given(value=st.integers(min_value=-AMOUNT_MINOR_MAX, max_value=AMOUNT_MINOR_MAX),
       currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)), lang=st.sampled_from(i18n.LANGUAGES))
def test_amounts_written_and_typed_back_are_the_same_integer(value, currency, lang):
    text = i18n.format_money(value, currency, lang)
    number = text.replace(currency, "").strip()
    assert number.count(".") == (1 if CURRENCY_EXPONENTS[currency] else 0)
    sign = -1 if number.startswith("-") else 1
    assert sign * i18n.to_minor(number.lstrip("-"), currency) == value


def test_amounts_per_locale_and_refused_input():
    assert i18n.format_money(123456789, "CNY", "en") == "CNY 1,234,567.89"
    assert i18n.format_money(123456789, "CNY", "zh") == "1,234,567.89 CNY"
    assert i18n.format_money(5, "KWD", "en") == "KWD 0.005"
    assert i18n.format_money(1000, "JPY", "zh") == "1,000 JPY"
    assert i18n.to_minor(" 1,000.5 ", "USD") == 100050
    for bad in ("1.001", "1e3", "-1", "abc", "", "0x10"):
        with pytest.raises(InvalidAmountError):
            i18n.to_minor(bad, "USD")


def test_language_negotiation():
    assert i18n.negotiate("zh", "en-GB") == "zh"
    assert i18n.negotiate(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert i18n.negotiate(None, "fr-FR, en;q=0.5, zh;q=0.4") == "en"
    assert i18n.negotiate("xx", "de") == "en"
    assert i18n.negotiate(None, "zh;q=0, en;q=0.1") == "en"
    assert i18n.format_date(date(2026, 12, 5), "zh") == "2026年12月5日"
    assert i18n.format_date(date(2026, 12, 5), "en") == "5 Dec 2026"


def _receivable(due: date, value: int, status: str = "confirmed", currency: str = "CNY") -> SimpleNamespace:
    return SimpleNamespace(due_date=due, status=status, face_value=SimpleNamespace(value=value, currency=currency))


def test_ageing_buckets_by_days_past_due():
    today = date(2026, 12, 5)
    rows = [_receivable(today, 1), _receivable(today - timedelta(days=1), 10), _receivable(today - timedelta(days=31), 100),
            _receivable(today - timedelta(days=90), 1000), _receivable(today - timedelta(days=91), 10000),
            _receivable(today - timedelta(days=400), 5, status="settled")]
    assert charts.ageing_buckets(rows, today) == {"CNY": {"not_due": 1, "0_30": 10, "31_60": 100, "61_90": 1000,
                                                          "over_90": 10000}}


@given(values=st.lists(st.integers(min_value=0, max_value=AMOUNT_MINOR_MAX), min_size=1, max_size=80))
def test_bars_are_integer_heights_within_the_plot(values):
    svg = charts.bar_chart("t", [charts.Bar(str(i), (v,)) for i, v in enumerate(values)], [("USD", "USD")],
                           label_of=lambda v, c: i18n.format_money(v, c, "en"), chart_id="c")
    heights = [int(h) for h in re.findall(r'<rect x="\d+" y="-?\d+" width="\d+" height="(-?\d+)" fill="#[0-9a-f]+"><title>', svg)]
    assert len(heights) == min(len(values), charts.BARS_MAX)
    assert all(0 <= h <= charts.HEIGHT - charts.PAD_TOP - charts.PAD_BOTTOM for h in heights)
    assert "<script" not in svg


def test_typed_data_for_the_browser_keeps_big_integers_exact():
    from ledger_api.console.web import js_safe

    nonce = (12345 << 64) | 7
    doc = {"message": {"nonce": nonce, "deadline": 1_800_000_000, "ok": True, "parts": [2**53, 2**53 - 1]}}
    assert js_safe(doc) == {"message": {"nonce": str(nonce), "deadline": 1_800_000_000, "ok": True,
                                        "parts": [str(2**53), 2**53 - 1]}}


def test_exception_rates_are_integer_basis_points():
    """Rates by integer arithmetic: 1 of 3 is 33.33 % (floor), an empty group 0; runs without items are left out."""
    from datetime import datetime, timezone

    from ledger_api.console.charts import Rate, callback_rates, format_rate, reconciliation_rates

    assert Rate("d", 1, 3).bp == 3333 and format_rate(3333) == "33.33 %"
    assert Rate("d", 0, 0).bp == 0 and format_rate(10_000) == "100.00 %" and format_rate(5) == "0.05 %"
    at = datetime(2026, 12, 5, 9, tzinfo=timezone.utc)
    cbs = [SimpleNamespace(received_at=at, outcome=o) for o in ("applied", "exception", "noted", "exception")]
    (rate,) = callback_rates(cbs, "en")
    assert (rate.exceptions, rate.total, rate.bp) == (2, 4, 5000)
    runs = [SimpleNamespace(id="run-aaaaaa", started_at=at, summary={"buckets": {
                "matched": {"items": 3}, "missing_in_ledger": {"items": 1}}}),
            SimpleNamespace(id="run-bbbbbb", started_at=at, summary={"buckets": {}})]
    (rate,) = reconciliation_rates(runs, "en")
    assert (rate.exceptions, rate.total, rate.bp) == (1, 4, 2500)
