"""Reading settlements: filtered, cursor-paginated lists, CSV export rows, and positions."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from settlement.core.errors import InvalidCursorError, ValidationError
from settlement.core.money import check_currency
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.commands import STATES
from settlement.domains.settlements.fx import rate_to_decimal
from settlement.store.models.settlements import Settlement

__all__ = ["SettlementFilter", "LIST_LIMIT_MAX", "EXPORT_ROWS_MAX", "list_settlements", "export_rows",
           "EXPORT_COLUMNS", "Position", "positions", "encode_cursor", "decode_cursor"]

LIST_LIMIT_MAX = 200
EXPORT_ROWS_MAX = 10_000
_EXPORT_PAGE = 500


@dataclass(frozen=True)
class SettlementFilter:
    """Who asks (``member_id``; None: the operator, who sees all) and what they want to see."""

    member_id: str | None
    role: str = "any"  # any | payer | payee (relative to member_id)
    state: str | None = None
    counterparty: str | None = None
    currency: str | None = None  # source or target
    date_from: date | None = None  # value date, inclusive
    date_to: date | None = None

    def validate(self) -> "SettlementFilter":
        if self.role not in ("any", "payer", "payee"):
            raise ValidationError("role must be any, payer or payee", field="role")
        if self.state is not None and self.state not in STATES:
            raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
        if self.currency is not None:
            check_currency(self.currency)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValidationError("date_from is after date_to", field="date_from")
        return self


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        tag, _, seq = text.partition(":")
        if tag != "s1" or not seq.isdigit() or len(seq) > 19:
            raise ValueError(text)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError("the cursor is not one this API handed out", field="cursor") from None


def _query(f: SettlementFilter) -> Select:
    q = select(Settlement)
    me = f.member_id
    if me is not None:
        if f.role == "payer":
            q = q.where(Settlement.payer_id == me)
        elif f.role == "payee":
            q = q.where(Settlement.payee_id == me)
        else:
            q = q.where(or_(Settlement.payer_id == me, Settlement.payee_id == me))
        if f.counterparty:
            q = q.where(or_(Settlement.payer_id == f.counterparty, Settlement.payee_id == f.counterparty),
                        Settlement.payer_id != Settlement.payee_id)
    elif f.counterparty:
        q = q.where(or_(Settlement.payer_id == f.counterparty, Settlement.payee_id == f.counterparty))
    if f.state:
        q = q.where(Settlement.state == f.state)
    if f.currency:
        q = q.where(or_(Settlement.source_currency == f.currency, Settlement.target_currency == f.currency))
    if f.date_from:
        q = q.where(Settlement.value_date >= f.date_from)
    if f.date_to:
        q = q.where(Settlement.value_date <= f.date_to)
    return q


def list_settlements(session: Session, f: SettlementFilter, *, limit: int = 50,
                     cursor: str | None = None) -> tuple[list[Settlement], str | None]:
    """Newest first, ``limit`` (1..200) at a time; returns the page and the next cursor (or None)."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be within 1..{LIST_LIMIT_MAX}", field="limit")
    q = _query(f.validate())
    if cursor:
        q = q.where(Settlement.seq < decode_cursor(cursor))
    rows = list(session.scalars(q.order_by(Settlement.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].seq) if more and rows else None)


EXPORT_COLUMNS = ("id", "client_reference", "payer", "payee", "source_minor", "source_currency", "target_minor",
                  "target_currency", "fx_rate", "fees_minor", "value_date", "purpose_code", "payment_reference",
                  "state", "paid_minor", "refunded_minor", "cycle_id", "chain_operation", "chain_status",
                  "tx_hash", "block_number", "recorded_tx_hash", "recorded_block", "created_at")


def export_rows(session: Session, f: SettlementFilter) -> Iterator[tuple]:
    """Rows for the CSV export, newest first, at most EXPORT_ROWS_MAX, read page by page."""
    base = _query(f.validate()).order_by(Settlement.seq.desc())
    emitted, last_seq = 0, None
    while emitted < EXPORT_ROWS_MAX:
        q = base if last_seq is None else base.where(Settlement.seq < last_seq)
        page = list(session.scalars(q.limit(min(_EXPORT_PAGE, EXPORT_ROWS_MAX - emitted))))
        if not page:
            return
        for s in page:
            yield (s.id, s.client_reference, s.payer_id, s.payee_id, s.source_amount_minor, s.source_currency,
                   s.target_amount_minor, s.target_currency,
                   rate_to_decimal(s.fx_rate_scaled, s.source_currency, s.target_currency), s.fees_minor,
                   s.value_date.isoformat(), s.purpose_code, s.payment_reference, s.state, s.paid_minor,
                   s.refunded_minor, s.cycle_id or "", s.chain_op, s.chain_status, s.tx_hash or "",
                   s.block_number if s.block_number is not None else "", s.recorded_tx_hash or "",
                   s.recorded_block if s.recorded_block is not None else "", s.created_at.isoformat())
        emitted += len(page)
        last_seq = page[-1].seq


@dataclass(frozen=True)
class Position:
    """A member's position in one currency, from its journal balances.

    ``to_receive`` / ``to_pay``: paid settlements not yet settled by a cycle (netting will move
    ``net``); ``instructed_in`` / ``instructed_out``: instructed, not yet paid; ``net_settled``:
    what cycles moved so far (+ received); refunds of settled settlements owed to / by it."""

    currency: str
    to_receive_minor: int = 0
    to_pay_minor: int = 0
    instructed_in_minor: int = 0
    instructed_out_minor: int = 0
    fees_owed_minor: int = 0
    net_settled_minor: int = 0
    refunds_owed_to_minor: int = 0
    refunds_owed_by_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.to_receive_minor - self.to_pay_minor


def positions(session: Session, member_id: str) -> list[Position]:
    fields: dict[str, dict[str, int]] = defaultdict(dict)
    mapping = {jr.CLEARING_RECEIVABLE: ("to_receive_minor", 1), jr.CLEARING_PAYABLE: ("to_pay_minor", -1),
               jr.INSTRUCTED_RECEIVABLE: ("instructed_in_minor", 1), jr.INSTRUCTED_PAYABLE: ("instructed_out_minor", -1),
               jr.FEES_PAYABLE: ("fees_owed_minor", -1), jr.NET_SETTLEMENT: ("net_settled_minor", 1),
               jr.REFUND_RECEIVABLE: ("refunds_owed_to_minor", 1), jr.REFUND_PAYABLE: ("refunds_owed_by_minor", -1)}
    for b in jr.balances(session, member_id):
        name, sign = mapping[b.account]
        fields[b.currency][name] = sign * b.balance_minor
    return [Position(currency=c, **v) for c, v in sorted(fields.items())]
