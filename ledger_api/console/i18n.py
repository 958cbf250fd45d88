"""Languages of the console (Chinese and English) and how amounts and dates are written in each.

The catalogues are JSON files beside this module (``i18n/en.json``, ``i18n/zh.json``), loaded once
and checked to hold the same keys. The language is the ``ledger_lang`` cookie when set (the
switch in the page header), else the best of ``Accept-Language``, else English.

Amounts arrive as integers of minor units and are written in major units with the currency's
ISO 4217 exponent by string arithmetic (:meth:`settlement.core.money.Money.to_decimal_str`):
no float is ever involved, on the server or in the browser.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

from settlement.core.errors import LedgerError
from settlement.core.money import Money, exponent

__all__ = ["LANGUAGES", "LANG_COOKIE", "Catalogue", "catalogue", "format_date", "format_datetime", "format_money",
           "group_digits", "negotiate", "to_minor"]

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "ledger_lang"
ACCEPT_LANGUAGE_LEN_MAX = 500
_DIR = Path(__file__).resolve().parent / "i18n"


class Catalogue:
    """The messages of one language; ``t(key, **values)``; a missing key shows as itself."""

    def __init__(self, lang: str, messages: dict[str, str]) -> None:
        self.lang = lang
        self.messages = messages

    def __call__(self, key: str, **values: object) -> str:
        text = self.messages.get(key, key)
        return text.format(**values) if values else text


@lru_cache(maxsize=None)
def _load(lang: str) -> dict[str, str]:
    return json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def catalogue(lang: str) -> Catalogue:
    return Catalogue(lang, _load(lang if lang in LANGUAGES else DEFAULT_LANGUAGE))


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language if it names one of ours, else the first of ours in Accept-Language
    (by q-value), else English."""
    if cookie in LANGUAGES:
        return cookie
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept_language or "")[:ACCEPT_LANGUAGE_LEN_MAX].split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])  # a preference weight, not money
            except ValueError:
                continue
        if q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, primary)
    return best[2] if best else DEFAULT_LANGUAGE


def group_digits(digits: str) -> str:
    """``"1234567"`` -> ``"1,234,567"`` (both languages group by thousands with a comma)."""
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)]
    return ",".join(groups)


def format_money(value_minor: int, currency: str, lang: str) -> str:
    """Minor units in major units with the currency's exponent, grouped: ``123456, CNY`` ->
    ``CNY 1,234.56`` (en) / ``1,234.56 CNY`` (zh). Integer and string arithmetic only."""
    text = Money(int(value_minor), currency).to_decimal_str()
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    number = sign + group_digits(whole) + (f".{frac}" if frac else "")
    return f"{number} {currency}" if lang == "zh" else f"{currency} {number}"


def to_minor(text: str, currency: str) -> int:
    """A major-unit amount typed by a person (``"1,234.56"``) in minor units, exactly; raises
    InvalidAmountError / UnsupportedCurrencyError (LedgerErrors) on junk or excess decimals."""
    exponent(currency)
    cleaned = (text or "").strip().replace(",", "").replace("_", "").replace(" ", "")
    return Money.from_decimal_str(cleaned, currency).value


_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(d: date | None, lang: str) -> str:
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = d.astimezone(timezone.utc).date() if d.tzinfo else d.date()
    if lang == "zh":
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"


def format_datetime(dt: datetime | None, lang: str) -> str:
    """A UTC instant, written per locale, with the zone said (the store keeps UTC only)."""
    if dt is None:
        return ""
    dt = dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return f"{format_date(dt, lang)} {dt:%H:%M} UTC"


def safe_format_money(value_minor: int | None, currency: str | None, lang: str) -> str:
    if value_minor is None or currency is None:
        return ""
    try:
        return format_money(value_minor, currency, lang)
    except LedgerError:  # a currency the ledger no longer lists: show minor units, say so
        return f"{value_minor} ({currency}, minor units)"
