"""Console pages for finance teams: settlements (list, detail with history, create, CSV batch),
netting cycles (gross vs net) and balances.

Every page calls the API route's own handler through :func:`~ledger_api.console.web.invoke`, so
the filters, paging, tenancy (another member's settlement is 404) and validation are the API's.
Amounts are typed in major units and turned into minor units exactly
(:func:`~ledger_api.console.i18n.to_minor`); shown back from minor units the same way.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

import pydantic
from fastapi import Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console import i18n
from ledger_api.console.web import (
    BASE,
    Console,
    Ctx,
    FieldErrors,
    authorised_for,
    field_errors_of,
    invoke,
    new_idempotency_key,
    page_router,
    render,
)
from ledger_api.routes import settlements as api
from ledger_api.schemas.settlements import (
    CycleCreate,
    NetPaymentCreate,
    PaymentCreate,
    RefundCreate,
    SettlementBatchCreate,
    SettlementCreate,
)
from settlement.core.errors import LedgerError, PaidAmountMismatchError, ValidationError
from settlement.domains import settlements as svc
from settlement.domains.settlements.commands import STATES

router = page_router()

PAGE_SIZE = 25
CYCLES_SHOWN_MAX = 50  # cycles gathered from the member's settlements, newest first
CYCLE_SCAN_PAGES_MAX = 8  # pages of settlements read to find them (8 x 200)
CSV_BYTES_MAX = 512 * 1024
CSV_COLUMNS = ("client_reference", "payee", "source_amount", "source_currency", "target_currency", "target_amount",
               "fx_rate", "fees", "value_date", "purpose_code", "payment_reference")
_FILTER_TYPES: dict[str, Any] = {
    "role": api.RoleQuery, "state": api.StateQuery, "counterparty": api.MemberQuery, "currency": api.CurrencyQuery,
    "date_from": date | None, "date_to": date | None, "cursor": Annotated[str | None, Query(max_length=100)],
}
_ADAPTERS = {name: pydantic.TypeAdapter(kind) for name, kind in _FILTER_TYPES.items()}


def _filters(ctx: Ctx) -> tuple[dict[str, Any], FieldErrors]:
    """The list's filters from the query string, each checked by the API's own parameter type."""
    values: dict[str, Any] = {}
    errors: FieldErrors = {}
    for name, adapter in _ADAPTERS.items():
        raw = ctx.request.query_params.get(name, "").strip()
        if not raw:
            continue
        try:
            values[name] = adapter.validate_python(raw)
        except pydantic.ValidationError as exc:
            errors[name] = [str(e.get("msg", ""))[:200] for e in exc.errors()[:3]]
    return values, errors


@router.get("/settlements")
def settlements_list(ctx: Console) -> HTMLResponse:
    values, errors = _filters(ctx)
    rows, next_cursor = [], None
    if not errors:
        try:
            page = invoke(api.list_settlements, ctx, limit=PAGE_SIZE, **{"role": "any", **values})
            rows, next_cursor = page.data, page.next_cursor
        except ValidationError as exc:  # e.g. an unknown state: shown next to its filter
            errors, message = field_errors_of(exc)
            if message:
                errors.setdefault("state", []).append(message)
    raw = {name: ctx.request.query_params.get(name, "") for name in _FILTER_TYPES if name != "cursor"}
    next_query = None
    if next_cursor:
        next_query = "&".join(f"{k}={_quote(v)}" for k, v in raw.items() if v) + f"&cursor={_quote(next_cursor)}"
    return render(ctx, "settlements.html", rows=rows, filters=raw, errors=errors, next_query=next_query.lstrip("&")
                  if next_query else None, states=STATES, paged=bool(values.get("cursor")))


def _quote(value: str) -> str:
    return quote(str(value), safe="")


def _settlement(ctx: Ctx, settlement_id: str) -> Any:
    return invoke(api.get_settlement, ctx, settlement_id=settlement_id)


@router.get("/settlements/new")
def settlement_form(ctx: Console) -> HTMLResponse:
    return render(ctx, "settlement_new.html", values={"source.currency": "CNY", "target.currency": "USD",
                                                      "purpose_code": "GDDS"},
                  errors={}, message=None, idempotency_key=new_idempotency_key())


def _create_body(ctx: Ctx) -> SettlementCreate:
    """The API's SettlementCreate from the form; amounts typed in major units."""
    f = ctx.field
    errors: FieldErrors = {}

    def amount(name: str, currency: str, required: bool) -> int | None:
        text = f(name).strip()
        if not text:
            if required:
                errors.setdefault(name, []).append(ctx.t("form.required"))
            return None
        try:
            return i18n.to_minor(text, currency)
        except LedgerError as exc:
            errors.setdefault(name, []).append(exc.detail)
            return None

    source_currency, target_currency = f("source.currency").strip().upper(), f("target.currency").strip().upper()
    data: dict[str, Any] = {
        "client_reference": f("client_reference").strip(), "payee": f("payee").strip(),
        "source": {"value": amount("source.value", source_currency, True), "currency": source_currency},
        "target": {"value": amount("target.value", target_currency, False), "currency": target_currency},
        "fx_rate": f("fx_rate").strip(), "purpose_code": f("purpose_code").strip().upper(),
        "payment_reference": f("payment_reference").strip(),
    }
    fees = amount("fees.value", source_currency, False)
    if fees is not None:
        data["fees"] = {"value": fees, "currency": source_currency}
    if f("value_date").strip():
        data["value_date"] = f("value_date").strip()
    if errors:  # the schema's own checks of the other fields too, all shown at once
        for part in ("source", "target"):
            if data[part]["value"] is None and part == "source":
                data[part]["value"] = 0
        data.pop("fees", None)
        try:
            SettlementCreate.model_validate(data)
        except pydantic.ValidationError as exc:
            for name, msgs in field_errors_of(exc)[0].items():
                errors.setdefault(name, []).extend(msgs)
        raise _FormErrors(errors)
    return SettlementCreate.model_validate(data)


class _FormErrors(Exception):
    def __init__(self, errors: FieldErrors) -> None:
        super().__init__("invalid form")
        self.errors = errors


@router.post("/settlements/new")
def settlement_create(ctx: Console) -> Response:
    key = ctx.field("idempotency_key") or new_idempotency_key()
    try:
        body = _create_body(ctx)
        answer = invoke(api.create_settlement, ctx, body=body, idempotency_key=key, prefer=None)
    except (_FormErrors, pydantic.ValidationError, LedgerError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403):
            raise
        errors, message = (exc.errors, None) if isinstance(exc, _FormErrors) else field_errors_of(exc)
        values = {k: v for k, v in (ctx.form or {}).items() if isinstance(v, str) and k != "csrf"}
        return render(ctx, "settlement_new.html", status_code=422, values=values, errors=errors, message=message,
                      idempotency_key=key)
    created = json.loads(answer.body)
    return RedirectResponse(f"{BASE}/settlements/{created['id']}?created=1", status_code=303)


@router.get("/settlements/batch")
def batch_form(ctx: Console) -> HTMLResponse:
    authorised_for(api.create_batch, ctx)
    return render(ctx, "settlement_batch.html", rows=[], result=None, message=None, columns=CSV_COLUMNS,
                  idempotency_key=new_idempotency_key())


def _csv_rows(ctx: Ctx, text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("client_reference", "payee", "source_amount", "source_currency", "target_currency",
                           "fx_rate", "purpose_code", "payment_reference") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError(ctx.t("batch.missing_columns", columns=", ".join(missing)))
    rows = []
    for row in reader:
        if len(rows) >= svc.BATCH_SIZE_MAX:
            raise ValidationError(ctx.t("batch.too_many", max=svc.BATCH_SIZE_MAX))
        rows.append({k: (v or "").strip() for k, v in row.items() if k})
    if not rows:
        raise ValidationError(ctx.t("batch.empty"))
    return rows


def _row_body(row: dict[str, str]) -> SettlementCreate:
    errors: list[str] = []
    source_currency, target_currency = row.get("source_currency", "").upper(), row.get("target_currency", "").upper()

    def amount(name: str, currency: str) -> int | None:
        if not row.get(name):
            return None
        try:
            return i18n.to_minor(row[name], currency)
        except LedgerError as exc:
            errors.append(f"{name}: {exc.detail}")
            return None

    data: dict[str, Any] = {
        "client_reference": row.get("client_reference", ""), "payee": row.get("payee", ""),
        "source": {"value": amount("source_amount", source_currency), "currency": source_currency},
        "target": {"value": amount("target_amount", target_currency), "currency": target_currency},
        "fx_rate": row.get("fx_rate", ""), "purpose_code": row.get("purpose_code", "").upper(),
        "payment_reference": row.get("payment_reference", ""),
    }
    fees = amount("fees", source_currency)
    if fees is not None:
        data["fees"] = {"value": fees, "currency": source_currency}
    if row.get("value_date"):
        data["value_date"] = row["value_date"]
    if errors:
        raise ValidationError("; ".join(errors))
    return SettlementCreate.model_validate(data)


@router.post("/settlements/batch")
async def batch_upload(ctx: Console) -> HTMLResponse:
    """Check every row first (the API's body schema, then the batch API's own domain checks one
    row at a time) and show each row's errors; write nothing unless every row passes, then
    record them all in one batch (POST /v1/settlements:batch's handler, all or none)."""
    member = authorised_for(api.create_batch, ctx)
    key = ctx.field("idempotency_key") or new_idempotency_key()
    upload = ctx.form.get("file") if ctx.form is not None else None
    text = ctx.field("csv_text")
    if upload is not None and not isinstance(upload, str):
        raw = await upload.read(CSV_BYTES_MAX + 1)
        if len(raw) > CSV_BYTES_MAX:
            return _batch_page(ctx, [], None, ctx.t("batch.too_large", kb=CSV_BYTES_MAX // 1024), key, 413)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _batch_page(ctx, [], None, ctx.t("batch.not_utf8"), key, 422)
    try:
        rows = _csv_rows(ctx, text or "")
    except ValidationError as exc:
        return _batch_page(ctx, [], None, exc.detail, key, 422)
    checked: list[dict[str, Any]] = []
    bodies: list[SettlementCreate] = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        entry: dict[str, Any] = {"line": number, "row": row, "errors": []}
        try:
            body = _row_body(row)
            inp = api.instruction_of(body)
            with ctx.runtime.db.read() as session:
                svc.prepare_batch(session, member.member_id, [inp])
            bodies.append(body)
        except pydantic.ValidationError as exc:
            entry["errors"] = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                               for e in exc.errors()[:10]]
        except LedgerError as exc:
            field = exc.extra.get("field")
            entry["errors"] = [f"{field}: {exc.detail}" if field else exc.detail]
        checked.append(entry)
    if any(e["errors"] for e in checked):
        return _batch_page(ctx, checked, None, ctx.t("batch.rejected"), key, 422)
    try:
        answer = invoke(api.create_batch, ctx, body=SettlementBatchCreate(items=bodies), idempotency_key=key)
    except LedgerError as exc:  # a check across rows (a repeated reference): nothing was written
        index = exc.extra.get("index")
        if isinstance(index, int) and 0 <= index < len(checked):
            checked[index]["errors"].append(exc.detail)
        return _batch_page(ctx, checked, None, f"{ctx.t('batch.rejected')} {exc.detail}", key, 422)
    return _batch_page(ctx, checked, json.loads(answer.body), None, new_idempotency_key(), 201)


def _batch_page(ctx: Ctx, rows: list, result: dict | None, message: str | None, key: str,
                status_code: int) -> HTMLResponse:
    return render(ctx, "settlement_batch.html", status_code=status_code, rows=rows, result=result, message=message,
                  columns=CSV_COLUMNS, idempotency_key=key)


@router.get("/settlements/{settlement_id}")
def settlement_detail(settlement_id: api.SettlementIdPath, ctx: Console) -> HTMLResponse:
    s = _settlement(ctx, settlement_id)
    return render(ctx, "settlement_detail.html", s=s, created=ctx.request.query_params.get("created") == "1",
                  idempotency_key=new_idempotency_key(), errors={}, message=None)


@router.get("/settlements/{settlement_id}/status")
def settlement_status(settlement_id: api.SettlementIdPath, ctx: Console) -> HTMLResponse:
    """The chain status fragment; htmx polls it while the record is on its way to the chain."""
    return render(ctx, "_settlement_status.html", s=_settlement(ctx, settlement_id))


@router.post("/settlements/{settlement_id}/cancel")
def settlement_cancel(settlement_id: api.SettlementIdPath, ctx: Console) -> Response:
    return _action(ctx, settlement_id, lambda: invoke(api.cancel, ctx, settlement_id=settlement_id, prefer=None))


@router.post("/settlements/{settlement_id}/acknowledge")
def settlement_acknowledge(settlement_id: api.SettlementIdPath, ctx: Console) -> Response:
    return _action(ctx, settlement_id,
                   lambda: invoke(api.acknowledge, ctx, settlement_id=settlement_id, prefer=None))


def _typed_amount(ctx: Ctx, settlement_id: str) -> dict[str, Any]:
    """The form's ``amount``, typed in major units of the settlement's target currency, as the
    API's Money (minor units); a bad amount is an error next to the field."""
    currency = _settlement(ctx, settlement_id).target.currency
    try:
        return {"value": i18n.to_minor(ctx.field("amount"), currency), "currency": currency}
    except LedgerError as exc:
        raise ValidationError(exc.detail, field="amount") from None


@router.post("/settlements/{settlement_id}/refund")
def settlement_refund(settlement_id: api.SettlementIdPath, ctx: Console) -> Response:
    def run() -> Any:
        body = RefundCreate.model_validate({"amount": _typed_amount(ctx, settlement_id),
                                            "reference": ctx.field("reference").strip()})
        return invoke(api.refund, ctx, settlement_id=settlement_id, body=body, prefer=None)

    return _action(ctx, settlement_id, run)


@router.post("/settlements/{settlement_id}/payment")
def settlement_payment(settlement_id: api.SettlementIdPath, ctx: Console) -> Response:
    """The operator attests a payment it verified with the provider (the API's rule: never a party)."""
    def run() -> Any:
        body = PaymentCreate.model_validate({"provider": ctx.field("provider").strip(),
                                             "provider_transaction_id": ctx.field("provider_transaction_id").strip(),
                                             "amount": _typed_amount(ctx, settlement_id)})
        return invoke(api.pay, ctx, settlement_id=settlement_id, body=body)

    return _action(ctx, settlement_id, run)


def _action(ctx: Ctx, settlement_id: str, run: Any) -> Response:
    try:
        run()
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
            raise
        errors, message = field_errors_of(exc)
        s = _settlement(ctx, settlement_id)
        return render(ctx, "settlement_detail.html", status_code=getattr(exc, "status", 422), s=s, created=False,
                      idempotency_key=new_idempotency_key(), errors=errors, message=message)
    return RedirectResponse(f"{BASE}/settlements/{settlement_id}", status_code=303)


# -- netting cycles ---------------------------------------------------------------------------------------


def member_cycle_ids(ctx: Ctx) -> list[str]:
    """The cycles the member's own settlements were netted in (newest first), found through the
    settlements list the API gives it; the operator's list holds every settlement."""
    seen: dict[str, None] = {}
    cursor = None
    for _ in range(CYCLE_SCAN_PAGES_MAX):
        page = invoke(api.list_settlements, ctx, limit=svc.LIST_LIMIT_MAX, cursor=cursor)
        for s in page.data:
            if s.cycle_id and s.cycle_id not in seen:
                seen[s.cycle_id] = None
        cursor = page.next_cursor
        if not cursor or len(seen) >= CYCLES_SHOWN_MAX:
            break
    return list(seen)[:CYCLES_SHOWN_MAX]


def cycle_summaries(ctx: Ctx) -> list[dict[str, Any]]:
    """Each visible cycle with gross vs net: the operator's from the cycle's report; a member's
    from its own settlements in the cycle (gross) and its own net."""
    out = []
    for cycle_id in member_cycle_ids(ctx):
        cycle = invoke(api.get_cycle, ctx, cycle_id=cycle_id)
        if cycle.report is not None:
            gross, net = cycle.report.gross_value.value, cycle.report.net_value.value
        else:
            gross = 0
            for sid in cycle.settlement_ids:
                gross += _settlement(ctx, sid).target.value
            mine = next((m for m in cycle.members if ctx.member and m.member_id == ctx.member.member_id), None)
            net = abs(mine.net.value) if mine else 0
        out.append({"cycle": cycle, "gross": gross, "net": net, "currency": cycle.currency})
    return out


@router.get("/netting-cycles")
def cycles(ctx: Console) -> HTMLResponse:
    authorised_for(api.get_cycle, ctx)
    return render(ctx, "cycles.html", cycles=cycle_summaries(ctx), errors={}, message=None)


@router.post("/netting-cycles")
def cycle_close(ctx: Console) -> Response:
    try:
        body = CycleCreate.model_validate({"currency": ctx.field("currency").strip().upper()})
        cycle = json.loads(invoke(api.close_cycle, ctx, body=body,
                                  idempotency_key=ctx.field("idempotency_key") or new_idempotency_key()).body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403):
            raise
        errors, message = field_errors_of(exc)
        return render(ctx, "cycles.html", status_code=getattr(exc, "status", 422), cycles=cycle_summaries(ctx),
                      errors=errors, message=message)
    return RedirectResponse(f"{BASE}/netting-cycles/{cycle['id']}", status_code=303)


def _cycle_page(ctx: Ctx, cycle_id: str, *, status_code: int = 200, errors: FieldErrors | None = None,
                message: str | None = None, values: dict[str, str] | None = None) -> HTMLResponse:
    c = invoke(api.get_cycle, ctx, cycle_id=cycle_id)
    attested = {p.member_id for p in c.net_payments if p.status != "rejected"}
    # The net payers (a negative net) whose payment into the cycle is not attested yet: the
    # operator's form offers them, with what each owes (the API checks it again).
    payers = [m for m in c.members if m.net.value < 0 and m.member_id not in attested]
    done = ctx.request.query_params.get("done")
    return render(ctx, "cycle_detail.html", status_code=status_code, c=c, payers=payers, errors=errors or {},
                  message=message, values=values or {}, done=done if done in ("attested", "settled") else None)


@router.get("/netting-cycles/{cycle_id}")
def cycle_detail(cycle_id: api.CycleIdPath, ctx: Console) -> HTMLResponse:
    return _cycle_page(ctx, cycle_id)


@router.post("/netting-cycles/{cycle_id}/payments")
def cycle_payment(cycle_id: api.CycleIdPath, ctx: Console) -> Response:
    """The operator attests a net payer's payment it verified with the provider: through
    ``POST /v1/netting-cycles/{id}/payments``'s handler (the operator only; exactly the net owed)."""
    values = {name: ctx.field(name).strip() for name in ("member", "provider", "provider_transaction_id", "amount")}
    try:
        currency = invoke(api.get_cycle, ctx, cycle_id=cycle_id).currency
        try:
            amount = {"value": i18n.to_minor(values["amount"], currency), "currency": currency}
        except LedgerError as exc:
            raise ValidationError(exc.detail, field="amount") from None
        body = NetPaymentCreate.model_validate({"member": values["member"], "provider": values["provider"],
                                                "provider_transaction_id": values["provider_transaction_id"],
                                                "amount": amount})
        invoke(api.attest_net_payment, ctx, cycle_id=cycle_id, body=body)
    except (LedgerError, pydantic.ValidationError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
            raise
        errors, message = field_errors_of(exc)
        if isinstance(exc, PaidAmountMismatchError) and message is not None:  # about the amount typed in
            errors.setdefault("amount", []).append(message)
            message = None
        return _cycle_page(ctx, cycle_id, status_code=getattr(exc, "status", 422), errors=errors, message=message,
                           values=values)
    return RedirectResponse(f"{BASE}/netting-cycles/{cycle_id}?done=attested", status_code=303)


@router.post("/netting-cycles/{cycle_id}/settle")
def cycle_settle(cycle_id: api.CycleIdPath, ctx: Console) -> Response:
    try:
        invoke(api.settle_cycle, ctx, cycle_id=cycle_id)
    except LedgerError as exc:
        if exc.status in (401, 403, 404):
            raise
        return _cycle_page(ctx, cycle_id, status_code=exc.status, message=exc.detail)
    return RedirectResponse(f"{BASE}/netting-cycles/{cycle_id}?done=settled", status_code=303)


# -- balances ------------------------------------------------------------------------------------------------


@router.get("/balances")
def balances(ctx: Console) -> HTMLResponse:
    b = invoke(api.balances, ctx, currency=None, member_id=None)
    p = invoke(api.positions, ctx, member_id=None)
    return render(ctx, "balances.html", balances=b, positions=p)
