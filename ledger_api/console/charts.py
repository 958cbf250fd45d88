"""Pictures as inline SVG, drawn on the server from the API's own data (no chart library, no
script). Bar heights are integers computed from integer minor units (``value * height // max``);
labels show amounts through the same formatter as the tables. Every chart carries a ``<title>``
and a ``<desc>`` for screen readers, and its numbers are also in a table on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

from ledger_api.console import i18n

__all__ = ["AGEING_BUCKETS", "Bar", "Rate", "ageing", "bar_chart", "callback_rates", "format_rate", "gross_net",
           "rate_chart", "reconciliation_rates", "volume_per_day"]

WIDTH = 640
HEIGHT = 240
PAD_LEFT = 16
PAD_BOTTOM = 46
PAD_TOP = 22
BARS_MAX = 60  # a chart shows at most this many groups (the newest)
GROUP_W_MAX = 120  # a few bars stay bars, not walls
PALETTE = ("#12507b", "#e0892b", "#2f8f5b", "#8a4fb3", "#c0392b", "#5b6675")
AGEING_BUCKETS = ("not_due", "0_30", "31_60", "61_90", "over_90")


@dataclass(frozen=True)
class Bar:
    """One group on the x axis with one value per series (minor units, same currency per series)."""

    label: str
    values: tuple[int, ...]


def bar_chart(title: str, bars: Sequence[Bar], series: Sequence[tuple[str, str]], *, label_of: Any,
              chart_id: str) -> str:
    """Grouped bars. ``series``: (name, currency) per value; ``label_of(value, currency)`` writes an
    amount. Values are non-negative integers."""
    bars = list(bars)[-BARS_MAX:]
    top = max([v for b in bars for v in b.values] + [1])
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    group_w = min(GROUP_W_MAX, (WIDTH - PAD_LEFT * 2) // max(len(bars), 1))
    bar_w = max(2, (group_w - 8) // max(len(series), 1))
    parts = [f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>']
    desc = "; ".join(f"{b.label}: " + ", ".join(f"{name} {label_of(v, cur)}" for (name, cur), v in zip(series, b.values))
                     for b in bars)
    parts.append(f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>')
    base_y = HEIGHT - PAD_BOTTOM
    parts.append(f'<line x1="{PAD_LEFT}" y1="{base_y}" x2="{WIDTH - PAD_LEFT}" y2="{base_y}" stroke="#aab4c0"/>')
    for i, b in enumerate(bars):
        x0 = PAD_LEFT + i * group_w + 4
        for j, v in enumerate(b.values):
            h = v * plot_h // top
            x = x0 + j * bar_w
            parts.append(f'<rect x="{x}" y="{base_y - h}" width="{bar_w - 1}" height="{h}" '
                         f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(b.label)} · {escape(series[j][0])}: '
                         f'{escape(label_of(v, series[j][1]))}</title></rect>')
        if len(bars) <= 16 or i % max(1, len(bars) // 8) == 0:
            parts.append(f'<text x="{x0}" y="{base_y + 14}">{escape(b.label)}</text>')
    parts.append(f'<text x="{PAD_LEFT}" y="14">{escape(label_of(top, series[0][1]) if series else "")} max</text>')
    for j, (name, _) in enumerate(series):
        lx = PAD_LEFT + j * 150
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 18}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                     f'<text x="{lx + 14}" y="{HEIGHT - 9}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def gross_net(cycles: Sequence[dict[str, Any]], t: Any, lang: str) -> str:
    """Gross vs net per netting cycle (what netting saved); one chart per currency, oldest first."""
    out = []
    currencies = sorted({c["currency"] for c in cycles})
    for currency in currencies:
        bars = [Bar(c["cycle"].id[2:8], (c["gross"], c["net"])) for c in reversed(cycles) if c["currency"] == currency]
        out.append(bar_chart(f'{t("chart.gross_net")} ({currency})', bars,
                             [(t("cycle.gross"), currency), (t("cycle.net"), currency)],
                             label_of=lambda v, c: i18n.safe_format_money(v, c, lang), chart_id=f"gross-net-{currency}"))
    return "".join(out)


def volume_per_day(rows: Sequence[Any], t: Any, lang: str) -> str:
    """Settlement volume (target amounts) per value date, one chart per target currency."""
    per: dict[str, dict[date, int]] = {}
    for s in rows:
        per.setdefault(s.target.currency, {})
        day = s.value_date
        per[s.target.currency][day] = per[s.target.currency].get(day, 0) + s.target.value
    out = []
    for currency in sorted(per):
        days = sorted(per[currency])
        bars = [Bar(i18n.format_date(d, lang), (per[currency][d],)) for d in days]
        out.append(bar_chart(f'{t("chart.volume")} ({currency})', bars, [(currency, currency)],
                             label_of=lambda v, c: i18n.safe_format_money(v, c, lang), chart_id=f"volume-{currency}"))
    return "".join(out)


def ageing_buckets(receivables: Sequence[Any], today: date) -> dict[str, dict[str, int]]:
    """Open receivables' face value per currency and ageing bucket (days past due)."""
    out: dict[str, dict[str, int]] = {}
    for r in receivables:
        if r.status in ("settled", "cancelled", "rejected"):
            continue
        days = (today - r.due_date).days
        bucket = ("not_due" if days <= 0 else "0_30" if days <= 30 else "31_60" if days <= 60
                  else "61_90" if days <= 90 else "over_90")
        cur = out.setdefault(r.face_value.currency, dict.fromkeys(AGEING_BUCKETS, 0))
        cur[bucket] += r.face_value.value
    return out


def ageing(receivables: Sequence[Any], today: date, t: Any, lang: str) -> str:
    out = []
    for currency, buckets in sorted(ageing_buckets(receivables, today).items()):
        bars = [Bar(t("ageing." + b), (buckets[b],)) for b in AGEING_BUCKETS]
        out.append(bar_chart(f'{t("chart.ageing")} ({currency})', bars, [(currency, currency)],
                             label_of=lambda v, c: i18n.safe_format_money(v, c, lang), chart_id=f"ageing-{currency}"))
    return "".join(out)


# -- exception rates ---------------------------------------------------------------------------------------

BASIS_POINTS = 10_000  # a rate is an integer of basis points (1/100 of a per cent): no float


@dataclass(frozen=True)
class Rate:
    """``exceptions`` of ``total`` for one group (a day, a run); ``bp`` the rate in basis points."""

    label: str
    exceptions: int
    total: int

    @property
    def bp(self) -> int:
        return self.exceptions * BASIS_POINTS // self.total if self.total else 0


def format_rate(bp: int) -> str:
    """Basis points as a percentage with two decimals (``1234`` -> ``12.34 %``), by integer arithmetic."""
    return f"{bp // 100}.{bp % 100:02d} %"


def callback_rates(callbacks: Sequence[Any], lang: str) -> list[Rate]:
    """Per day received (oldest first): callbacks recorded as exceptions of all recorded."""
    per: dict[date, list[int]] = {}
    for c in callbacks:
        day = c.received_at.date()
        counts = per.setdefault(day, [0, 0])
        counts[0] += c.outcome == "exception"
        counts[1] += 1
    return [Rate(i18n.format_date(d, lang), *per[d]) for d in sorted(per)]


def reconciliation_rates(runs: Sequence[Any], lang: str) -> list[Rate]:
    """Per finished run (oldest first): items outside the matched bucket of all the run's items."""
    out = []
    for r in sorted(runs, key=lambda r: r.started_at):
        buckets = (r.summary or {}).get("buckets") or {}
        total = sum(int(b.get("items", 0)) for b in buckets.values() if isinstance(b, dict))
        if not total:
            continue
        matched = int((buckets.get("matched") or {}).get("items", 0))
        out.append(Rate(f"{i18n.format_date(r.started_at.date(), lang)} {r.id[-6:]}", total - matched, total))
    return out


def rate_chart(title: str, rates: Sequence[Rate], series_name: str, *, chart_id: str) -> str:
    """Exception rates as bars (basis points); each bar's label and description carry the counts."""
    bars = [Bar(f"{r.label} ({r.exceptions}/{r.total})", (r.bp,)) for r in rates]
    return bar_chart(title, bars, [(series_name, "")], label_of=lambda v, _c: format_rate(v), chart_id=chart_id)
