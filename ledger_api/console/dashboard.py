"""The charts page: settlement volume per day and currency, gross vs net per netting cycle,
receivables ageing, financing outstanding per financier, and the exception rates of payment
callbacks (per day) and of reconciliation runs (per run), each drawn as inline SVG on the
server (:mod:`ledger_api.console.charts`) from what the API gives the signed-in member."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi.responses import HTMLResponse

from ledger_api.console import charts, i18n
from ledger_api.console.finance import cycle_summaries
from ledger_api.console.web import Console, Ctx, invoke, page_router, render
from ledger_api.routes import callbacks as callbacks_api
from ledger_api.routes import receivables as receivables_api
from ledger_api.routes import reconciliation as reconciliation_api
from ledger_api.routes import settlements as settlements_api
from settlement.domains import settlements as svc
from settlement.domains.payments import CALLBACKS_PAGE_MAX as PAYMENTS_PAGE_MAX

router = page_router()

SETTLEMENT_PAGES_MAX = 5  # at most 5 x 200 settlements drawn (the newest)
RECEIVABLE_PAGES_MAX = 5
CALLBACK_PAGES_MAX = 4  # at most 4 x 500 callbacks (the oldest first: the API's order)
RUN_PAGES_MAX = 5  # at most 5 x 200 reconciliation runs (the newest)


def _settlements(ctx: Ctx) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    for _ in range(SETTLEMENT_PAGES_MAX):
        page = invoke(settlements_api.list_settlements, ctx, limit=svc.LIST_LIMIT_MAX, cursor=cursor)
        rows.extend(s for s in page.data if s.state not in ("cancelled", "rejected"))
        cursor = page.next_cursor
        if not cursor:
            break
    return rows


def _receivables(ctx: Ctx) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    for _ in range(RECEIVABLE_PAGES_MAX):
        page = invoke(receivables_api.list_mine, ctx, role=None, status_=None, limit=200, cursor=cursor, after=None)
        rows.extend(page.data)
        cursor = page.next_cursor
        if not cursor:
            break
    return rows


def _callbacks(ctx: Ctx) -> list[Any]:
    rows: list[Any] = []
    cursor = 0
    for _ in range(CALLBACK_PAGES_MAX):
        page = invoke(callbacks_api.list_recorded_callbacks, ctx, limit=PAYMENTS_PAGE_MAX, cursor=cursor)
        rows.extend(page.data)
        if not page.next_cursor:
            break
        cursor = int(page.next_cursor)
    return rows


def _runs(ctx: Ctx) -> list[Any]:
    rows: list[Any] = []
    cursor = None
    for _ in range(RUN_PAGES_MAX):
        page = invoke(reconciliation_api.list_runs, ctx, limit=200, cursor=cursor)
        rows.extend(page.data)
        cursor = page.next_cursor
        if not cursor:
            break
    return rows


def financing_outstanding(receivables: list[Any]) -> dict[str, dict[str, int]]:
    """Financed parts not yet repaid, per currency and holder (the financier that bought them)."""
    out: dict[str, dict[str, int]] = {}
    for r in receivables:
        if r.status in ("settled", "cancelled", "rejected"):
            continue
        for p in r.parts:
            if p.financed and p.repaid is None:
                holder = p.holder_id or p.holder_onchain_id[:10]
                cur = out.setdefault(p.amount.currency, {})
                cur[holder] = cur.get(holder, 0) + p.amount.value
    return out


@router.get("/charts")
def charts_page(ctx: Console) -> HTMLResponse:
    t, lang = ctx.t, ctx.lang
    sections: list[dict[str, Any]] = []
    if ctx.has("finance", "operator"):
        rows = _settlements(ctx)
        sections.append({"id": "volume", "title": t("chart.volume"), "svg": charts.volume_per_day(rows, t, lang),
                         "empty": not rows})
        cycles = cycle_summaries(ctx)
        sections.append({"id": "gross-net", "title": t("chart.gross_net"), "svg": charts.gross_net(cycles, t, lang),
                         "empty": not cycles})
    if ctx.has("supplier", "buyer", "financier"):
        receivables = _receivables(ctx)
        today = datetime.now(timezone.utc).date()
        sections.append({"id": "ageing", "title": t("chart.ageing"),
                         "svg": charts.ageing(receivables, today, t, lang),
                         "empty": not charts.ageing_buckets(receivables, today)})
        outstanding = financing_outstanding(receivables)
        svg = "".join(charts.bar_chart(
            f'{t("chart.financing")} ({currency})',
            [charts.Bar(holder, (value,)) for holder, value in sorted(per.items())], [(currency, currency)],
            label_of=lambda v, c: i18n.safe_format_money(v, c, lang), chart_id=f"financing-{currency}") for currency, per in sorted(outstanding.items()))
        sections.append({"id": "financing", "title": t("chart.financing"), "svg": svg, "empty": not outstanding})
    if ctx.has("finance", "operator", "auditor"):
        # The callbacks on the member's own provider accounts (every account's for the operator
        # and auditors) and its own reconciliation runs: the API's tenancy.
        rates = charts.callback_rates(_callbacks(ctx), lang)
        sections.append({"id": "callback-exceptions", "title": t("chart.callback_exceptions"), "empty": not rates,
                         "svg": charts.rate_chart(t("chart.callback_exceptions"), rates, t("chart.exception_rate"),
                                                  chart_id="callback-rates")})
        rates = charts.reconciliation_rates(_runs(ctx), lang)
        sections.append({"id": "recon-exceptions", "title": t("chart.recon_exceptions"), "empty": not rates,
                         "svg": charts.rate_chart(t("chart.recon_exceptions"), rates, t("chart.exception_rate"),
                                                  chart_id="recon-rates")})
    return render(ctx, "charts.html", sections=sections)
