"""Console pages for suppliers, buyers and financiers: receivables they hold, owe or finance;
register, confirm, reject, cancel, split, transfer, request financing, offer and accept, repay and
confirm receipt.

Confirming, offering and accepting are custodial, or carry the member's own EIP-712 approval: the
typed data the API builds (``ConfirmReceivable``, ``FinancingOffer`` over the terms typed in,
``AcceptFinancingOffer`` over the current offer) shown in human terms, signed by a browser wallet
(wallet.js) or pasted from ``ledger sign``, and sent through the same route's handler, which checks
it; a refused signature is shown next to its field on the same signing page.

Each action calls the API route's own handler (:func:`~ledger_api.console.web.invoke`) with the
role dependency that route declares; amounts are typed in major units.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import pydantic
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
    signature_errors_of,
    typed_json,
)
from ledger_api.routes import receivables as api
from ledger_api.schemas.receivables import (
    AcceptanceCreate,
    FinancingRequestCreate,
    OfferCreate,
    ReceivableCreate,
    SignedConfirmation,
    SplitRequest,
    TransferRequest,
)
from settlement.core.errors import LedgerError, ValidationError

router = page_router()

PAGE_SIZE = 50
SPLIT_PARTS_MAX = 32
ROLES = ("supplier", "buyer", "holder", "financier")
STATUSES = ("pending", "registered", "confirmed", "repaying", "settled", "defaulted", "cancelled", "rejected")


def _choice(ctx: Ctx, name: str, allowed: tuple[str, ...]) -> str | None:
    value = ctx.request.query_params.get(name, "")
    return value if value in allowed else None


@router.get("/receivables")
def receivables_list(ctx: Console) -> HTMLResponse:
    role, status = _choice(ctx, "role", ROLES), _choice(ctx, "status", STATUSES)
    cursor = ctx.request.query_params.get("cursor") or None
    if cursor is not None and len(cursor) > 66:
        raise ValidationError("cursor is at most 66 characters", field="cursor")
    page = invoke(api.list_mine, ctx, role=role, status_=status, limit=PAGE_SIZE, cursor=cursor, after=None)
    return render(ctx, "receivables.html", rows=page.data, next_cursor=page.next_cursor, role=role or "",
                  status=status or "", roles=ROLES, statuses=STATUSES)


@router.get("/receivables/new")
def register_form(ctx: Console) -> HTMLResponse:
    authorised_for(api.register, ctx)
    return render(ctx, "receivable_new.html", values={"face_value.currency": "CNY"}, errors={}, message=None)


def _amount(ctx: Ctx, name: str, currency: str, errors: FieldErrors) -> int:
    try:
        return i18n.to_minor(ctx.field(name), currency)
    except LedgerError as exc:
        errors.setdefault(name, []).append(exc.detail)
        return 0


@router.post("/receivables/new")
def register(ctx: Console) -> Response:
    errors: FieldErrors = {}
    currency = ctx.field("face_value.currency").strip().upper()
    data = {"buyer_id": ctx.field("buyer_id").strip(), "invoice_number": ctx.field("invoice_number").strip(),
            "face_value": {"value": _amount(ctx, "face_value.value", currency, errors), "currency": currency},
            "issue_date": ctx.field("issue_date").strip(), "due_date": ctx.field("due_date").strip()}
    try:
        body = ReceivableCreate.model_validate(data)
        if errors:
            raise ValidationError("invalid amount")
        done = json.loads(invoke(api.register, ctx, body=body, idempotency_key=_key(ctx)).body)
    except (pydantic.ValidationError, LedgerError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403):
            raise
        more, message = field_errors_of(exc)
        for name, msgs in more.items():
            errors.setdefault(name, []).extend(msgs)
        values = {k: v for k, v in (ctx.form or {}).items() if isinstance(v, str) and k != "csrf"}
        return render(ctx, "receivable_new.html", status_code=getattr(exc, "status", 422), values=values,
                      errors=errors, message=None if errors and message == "invalid amount" else message)
    return RedirectResponse(f"{BASE}/receivables/{done['id']}?done=register", status_code=303)


def _detail(ctx: Ctx, receivable_id: str, *, status_code: int = 200, errors: FieldErrors | None = None,
            message: str | None = None, done: str | None = None, offer_id: str | None = None) -> HTMLResponse:
    r = invoke(api.get_one, ctx, receivable_id=receivable_id)
    history = invoke(api.history, ctx, receivable_id=receivable_id)
    typed, deadline_at = None, None
    if ctx.has("buyer") and ctx.member is not None and r.buyer_id == ctx.member.member_id \
            and r.status == "registered" and r.pending_operation_id is None:
        typed = invoke(api.confirmation_typed_data, ctx, receivable_id=receivable_id, deadline=None)
        deadline_at = datetime.fromtimestamp(int(typed.message["deadline"]), tz=timezone.utc)
    return render(ctx, "receivable_detail.html", status_code=status_code, r=r, history=history, typed=typed,
                  typed_json=typed_json(typed.model_dump(mode="json", by_alias=True)) if typed else None,
                  errors=errors or {}, message=message, done=done, deadline_at=deadline_at,
                  offer_id=offer_id if offer_id and _OFFER_ID.fullmatch(offer_id) else None)


_OFFER_ID = re.compile(r"0x[0-9a-f]{64}")


@router.get("/receivables/{receivable_id}")
def receivable_detail(receivable_id: api.ReceivableIdPath, ctx: Console) -> HTMLResponse:
    return _detail(ctx, receivable_id, done=ctx.request.query_params.get("done"),
                   offer_id=ctx.request.query_params.get("offer"))


@router.get("/receivables/{receivable_id}/status")
def receivable_status(receivable_id: api.ReceivableIdPath, ctx: Console) -> HTMLResponse:
    """The pending-operation fragment; htmx polls it until the chain has answered."""
    r = invoke(api.get_one, ctx, receivable_id=receivable_id)
    return render(ctx, "_receivable_status.html", r=r)


def _key(ctx: Ctx) -> str:
    """The form's own Idempotency-Key when it carries one (a resubmission replays), else a new one."""
    return ctx.field("idempotency_key") or new_idempotency_key()


def _act(ctx: Ctx, receivable_id: str, name: str, run: Callable[[], Any],
         query: Callable[[Any], str] = lambda _answer: "") -> Response:
    try:
        answer = run()
    except (pydantic.ValidationError, LedgerError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 404):
            raise
        errors, message = field_errors_of(exc)
        return _detail(ctx, receivable_id, status_code=getattr(exc, "status", 422), errors=errors,
                       message=message)
    return RedirectResponse(f"{BASE}/receivables/{receivable_id}?done={name}{query(answer)}", status_code=303)


@router.post("/receivables/{receivable_id}/confirm")
def confirm(receivable_id: api.ReceivableIdPath, ctx: Console) -> Response:
    return _act(ctx, receivable_id, "confirm", lambda: invoke(api.confirm, ctx, receivable_id=receivable_id))


@router.post("/receivables/{receivable_id}/confirm-signed")
def confirm_signed(receivable_id: api.ReceivableIdPath, ctx: Console) -> Response:
    def run() -> Any:
        deadline = ctx.field("deadline").strip()
        body = SignedConfirmation.model_validate({
            "signature": ctx.field("signature").strip(), "deadline": int(deadline) if deadline.isdigit() else -1,
            "signer": ctx.field("signer").strip() or None})
        return invoke(api.confirm_signed, ctx, receivable_id=receivable_id, body=body)

    return _act(ctx, receivable_id, "confirm", run)


@router.post("/receivables/{receivable_id}/reject")
def reject(receivable_id: api.ReceivableIdPath, ctx: Console) -> Response:
    return _act(ctx, receivable_id, "reject", lambda: invoke(api.reject, ctx, receivable_id=receivable_id))


@router.post("/receivables/{receivable_id}/cancel")
def cancel(receivable_id: api.ReceivableIdPath, ctx: Console) -> Response:
    return _act(ctx, receivable_id, "cancel", lambda: invoke(api.cancel, ctx, receivable_id=receivable_id))


@router.post("/receivables/{receivable_id}/repay")
def repay(receivable_id: api.ReceivableIdPath, ctx: Console) -> Response:
    return _act(ctx, receivable_id, "repay", lambda: invoke(api.repay, ctx, receivable_id=receivable_id))


def _currency(ctx: Ctx, receivable_id: str) -> str:
    return invoke(api.get_one, ctx, receivable_id=receivable_id).face_value.currency


@router.post("/receivables/{receivable_id}/parts/{part_id}/split")
def split(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    def run() -> Any:
        currency = _currency(ctx, receivable_id)
        texts = [x.strip() for x in ctx.field("amounts").replace("；", ";").split(";") if x.strip()]
        if not 2 <= len(texts) <= SPLIT_PARTS_MAX:
            raise ValidationError(ctx.t("receivable.split_help"), field="amounts")
        amounts = []
        for text in texts:
            try:
                amounts.append({"value": i18n.to_minor(text, currency), "currency": currency})
            except LedgerError as exc:
                raise ValidationError(exc.detail, field="amounts") from None
        body = SplitRequest.model_validate({"amounts": amounts})
        return invoke(api.split, ctx, receivable_id=receivable_id, part_id=part_id, body=body,
                      idempotency_key=_key(ctx))

    return _act(ctx, receivable_id, "split", run)


@router.post("/receivables/{receivable_id}/parts/{part_id}/transfer")
def transfer(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    def run() -> Any:
        data: dict[str, Any] = {"to_member_id": ctx.field("to_member_id").strip()}
        if ctx.field("amount").strip():
            currency = _currency(ctx, receivable_id)
            try:
                data["amount"] = {"value": i18n.to_minor(ctx.field("amount"), currency), "currency": currency}
            except LedgerError as exc:
                raise ValidationError(exc.detail, field="amount") from None
        body = TransferRequest.model_validate(data)
        return invoke(api.transfer, ctx, receivable_id=receivable_id, part_id=part_id, body=body,
                      idempotency_key=_key(ctx))

    return _act(ctx, receivable_id, "transfer", run)


@router.post("/receivables/{receivable_id}/parts/{part_id}/financing-request")
def request_financing(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    def run() -> Any:
        body = FinancingRequestCreate.model_validate({"financier_id": ctx.field("financier_id").strip()})
        return invoke(api.request_financing, ctx, receivable_id=receivable_id, part_id=part_id, body=body,
                      idempotency_key=_key(ctx))

    return _act(ctx, receivable_id, "financing", run)


def _offer_body(ctx: Ctx, receivable_id: str, **signed: Any) -> OfferCreate:
    """The offer form's terms (rate, day count, fee in major units, validity in UTC) as the API's
    body; ``signed``: the own-key approval (signature, deadline, signer)."""
    currency = _currency(ctx, receivable_id)
    try:
        fee = i18n.to_minor(ctx.field("fee") or "0", currency)
    except LedgerError as exc:
        raise ValidationError(exc.detail, field="fee") from None
    valid = ctx.field("valid_until").strip()
    return OfferCreate.model_validate({
        "discount_rate": ctx.field("discount_rate").strip(), "day_count": ctx.field("day_count").strip(),
        "fee": {"value": fee, "currency": currency},
        "valid_until": valid + ("Z" if valid and not valid.endswith("Z") and "+" not in valid else ""), **signed})


def _offer_typed(ctx: Ctx, receivable_id: str, part_id: str, body: OfferCreate, deadline: int | None) -> Any:
    return invoke(api.offer_typed_data, ctx, receivable_id=receivable_id, part_id=part_id,
                  discount_rate=body.discount_rate, day_count=body.day_count, fee_minor=body.fee.value,
                  valid_until=body.valid_until, deadline=deadline)


def _offer_query(answer: Any) -> str:
    # The offer's id is in its create answer (assigned before the transaction): shown at once.
    return f"&offer={json.loads(answer.body)['id']}"


@router.post("/receivables/{receivable_id}/parts/{part_id}/offer")
def offer(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    """Offer custodially; with ``own_key`` (the form's second button) nothing is written: the
    FinancingOffer over these terms is shown to be signed with the financier's own key."""
    if ctx.field("own_key"):
        try:
            body = _offer_body(ctx, receivable_id)
            typed = _offer_typed(ctx, receivable_id, part_id, body, None)
        except (pydantic.ValidationError, LedgerError) as exc:
            if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
                raise
            errors, message = field_errors_of(exc)
            return _detail(ctx, receivable_id, status_code=getattr(exc, "status", 422), errors=errors,
                           message=message)
        return _sign_page(ctx, receivable_id, part_id, "offer", typed, _offer_hidden(ctx, typed))

    def run() -> Any:
        return invoke(api.offer, ctx, receivable_id=receivable_id, part_id=part_id,
                      body=_offer_body(ctx, receivable_id), idempotency_key=_key(ctx))

    return _act(ctx, receivable_id, "offer", run, query=_offer_query)


def _offer_hidden(ctx: Ctx, typed: Any) -> dict[str, str]:
    """What the signing form sends back: the terms as typed, the deadline signed."""
    return {"discount_rate": ctx.field("discount_rate").strip(), "day_count": ctx.field("day_count").strip(),
            "fee": ctx.field("fee").strip() or "0", "valid_until": ctx.field("valid_until").strip(),
            "deadline": str(typed.message["deadline"]), "idempotency_key": new_idempotency_key()}


def _signed(ctx: Ctx) -> dict[str, Any]:
    """The signing form's approval: signature, the deadline it covers, the signer (optional)."""
    deadline = ctx.field("deadline").strip()
    return {"signature": ctx.field("signature").strip(), "deadline": int(deadline) if deadline.isdigit() else -1,
            "signer": ctx.field("signer").strip() or None}


@router.post("/receivables/{receivable_id}/parts/{part_id}/offer-signed")
def offer_signed(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    """The financier's own approval of the FinancingOffer, sent with the terms it covers through
    the offer route's handler (which rebuilds the typed data and checks the signature)."""
    try:
        body = _offer_body(ctx, receivable_id, **_signed(ctx))
        answer = invoke(api.offer, ctx, receivable_id=receivable_id, part_id=part_id, body=body,
                        idempotency_key=_key(ctx))
    except (pydantic.ValidationError, LedgerError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
            raise
        return _sign_again(ctx, receivable_id, part_id, "offer", exc)
    return RedirectResponse(f"{BASE}/receivables/{receivable_id}?done=offer{_offer_query(answer)}", status_code=303)


@router.post("/receivables/{receivable_id}/parts/{part_id}/accept")
def accept(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    def run() -> Any:
        body = AcceptanceCreate.model_validate({"offer_id": ctx.field("offer_id").strip()})
        return invoke(api.accept, ctx, receivable_id=receivable_id, part_id=part_id, body=body)

    return _act(ctx, receivable_id, "accept", run)


def _accept_hidden(typed: Any) -> dict[str, str]:
    return {"offer_id": str(typed.message["offerId"]), "deadline": str(typed.message["deadline"])}


@router.get("/receivables/{receivable_id}/parts/{part_id}/accept-signed")
def accept_sign_page(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> HTMLResponse:
    """The AcceptFinancingOffer over the part's current offer, in human terms, to be signed with
    the holder's own key (a browser wallet, or ``ledger sign`` and paste)."""
    typed = invoke(api.acceptance_typed_data, ctx, receivable_id=receivable_id, part_id=part_id, deadline=None)
    return _sign_page(ctx, receivable_id, part_id, "accept", typed, _accept_hidden(typed))


@router.post("/receivables/{receivable_id}/parts/{part_id}/accept-signed")
def accept_signed(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    try:
        body = AcceptanceCreate.model_validate({"offer_id": ctx.field("offer_id").strip(), **_signed(ctx)})
        invoke(api.accept, ctx, receivable_id=receivable_id, part_id=part_id, body=body)
    except (pydantic.ValidationError, LedgerError) as exc:
        if isinstance(exc, LedgerError) and exc.status in (401, 403, 404):
            raise
        return _sign_again(ctx, receivable_id, part_id, "accept", exc)
    return RedirectResponse(f"{BASE}/receivables/{receivable_id}?done=accept", status_code=303)


def _sign_again(ctx: Ctx, receivable_id: str, part_id: str, kind: str, exc: Exception) -> HTMLResponse:
    """A refused own-key approval: the same typed data again (the deadline the form carried), the
    API's errors next to their fields. When the terms themselves can no longer be built (the
    offer went, the part moved), the receivable's page with the error."""
    errors, message = signature_errors_of(exc)
    status_code = getattr(exc, "status", 422)
    deadline_text = ctx.field("deadline").strip()
    deadline = int(deadline_text) if deadline_text.isdigit() else None
    try:
        if kind == "offer":
            typed = _offer_typed(ctx, receivable_id, part_id, _offer_body(ctx, receivable_id), deadline)
            hidden = _offer_hidden(ctx, typed)
        else:
            typed = invoke(api.acceptance_typed_data, ctx, receivable_id=receivable_id, part_id=part_id,
                           deadline=deadline)
            hidden = _accept_hidden(typed)
    except (pydantic.ValidationError, LedgerError) as again:
        if isinstance(again, LedgerError) and again.status in (401, 403, 404):
            raise
        return _detail(ctx, receivable_id, status_code=status_code, errors=errors, message=message)
    return _sign_page(ctx, receivable_id, part_id, kind, typed, hidden, status_code=status_code, errors=errors,
                      message=message, signer=ctx.field("signer").strip())


_BASIS_NAMES = {1: "ACT/360", 2: "ACT/365"}
PPM_PER_PERCENT = 10_000


def percent_of_ppm(ppm: int) -> str:
    """A rate in parts per million as a percentage, exactly (50_000 -> "5", 45_500 -> "4.55")."""
    whole, rest = divmod(int(ppm), PPM_PER_PERCENT)
    return f"{whole}.{rest:04d}".rstrip("0").rstrip(".") if rest else str(whole)


def _sign_page(ctx: Ctx, receivable_id: str, part_id: str, kind: str, typed: Any, hidden: dict[str, str], *,
               status_code: int = 200, errors: FieldErrors | None = None, message: str | None = None,
               signer: str = "") -> HTMLResponse:
    """The typed data of an offer or acceptance in human terms (who, what amounts, which dates),
    the raw typed data beside it, a wallet button (wallet.js) and the signature form."""
    r = invoke(api.get_one, ctx, receivable_id=receivable_id)
    part = next((p for p in r.parts if p.id == part_id), None)
    m = typed.message
    financier = (part.offer.financier_id if part is not None and part.offer is not None and kind == "accept"
                 else None) or (part.financing_requested_from if part is not None else None) or m["financierId"]
    holder = (part.holder_id if part is not None else None) or r.supplier_id
    action = f"{BASE}/receivables/{receivable_id}/parts/{part_id}/{'offer' if kind == 'offer' else 'accept'}-signed"
    return render(ctx, "receivable_sign.html", status_code=status_code, kind=kind, r=r, part=part, typed=typed,
                  m=m, typed_json=typed_json(typed.model_dump(mode="json", by_alias=True)),
                  financier=financier, holder=holder, rate=percent_of_ppm(m["discountRatePpm"]),
                  basis=_BASIS_NAMES.get(int(m["dayCountBasis"]), str(m["dayCountBasis"])),
                  due=date(1970, 1, 1) + timedelta(days=int(m["dueDay"])),
                  valid_until=datetime.fromtimestamp(int(m["validUntil"]), tz=timezone.utc),
                  deadline_at=datetime.fromtimestamp(int(m["deadline"]), tz=timezone.utc),
                  action=action, hidden=hidden, errors=errors or {}, message=message, signer=signer)


@router.post("/receivables/{receivable_id}/parts/{part_id}/receipt")
def confirm_receipt(receivable_id: api.ReceivableIdPath, part_id: api.PartIdPath, ctx: Console) -> Response:
    return _act(ctx, receivable_id, "receipt",
                lambda: invoke(api.confirm_receipt, ctx, receivable_id=receivable_id, part_id=part_id))
