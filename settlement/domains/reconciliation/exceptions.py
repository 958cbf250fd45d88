"""The exceptions queue: non-matched reconciliation items and callbacks the ledger could not apply,
each resolved by a person with a note (who and when kept, append-only, anchored).

An item's ``exception_id`` is stable, so storing the exceptions of a re-run over the same files
adds nothing new and never re-opens an item already resolved; it only notes the latest run.

Every item belongs to one member (``owner``): a run's items to the member that ran it (their ids
are the engine's ids namespaced by that member, :func:`owned_exception_id`, so two members
reconciling the same file each get their own items), a callback's item to the owner of the
provider account it arrived on. Readers take ``owner`` explicitly (``None``: across members, for
the roles docs/api.md names); another member's item is "not found".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, make_transient_to_detached

from settlement.core.errors import (
    ExceptionAlreadyResolvedError,
    ExceptionNotResolvedError,
    ReconciliationExceptionNotFoundError,
    ValidationError,
)
from settlement.core.timestamps import utc_text
from settlement.domains.anchoring import digest_changed
from settlement.domains.reconciliation.engine import ExceptionRecord, ExceptionResolution, ResolutionAction
from settlement.store.models import utcnow
from settlement.store.models.payments import (
    ExceptionResolutionRow,
    ProviderAccountRow,
    ProviderCallback,
    ReconciliationException,
)

__all__ = [
    "ORIGIN_RUN", "ORIGIN_CALLBACK", "STATES", "EXCEPTIONS_PAGE_MAX", "ExceptionPage", "callback_exception_id",
    "callback_exception_values", "add_callback_exception", "account_owners", "owned_exception_id",
    "store_run_exceptions", "list_exceptions", "get_exception", "resolutions_of", "resolve_exception",
    "exception_json",
]

ORIGIN_RUN = "run"
ORIGIN_CALLBACK = "callback"
STATES = ("open", "resolved")
EXCEPTIONS_PAGE_MAX = 500
STORE_CHUNK_ROWS = 500
NOTE_CHARS_MAX = 4000
RESOLUTION_DIGEST_KIND = "reconciliation.resolution"
EXCEPTION_DIGEST_KIND = "reconciliation.exception"

# Callback outcomes -> the reconciliation bucket a person sees them in.
CALLBACK_BUCKETS = {
    "unknown_reference": "missing_in_ledger",
    "amount_mismatch": "amount_mismatch",
    "currency_mismatch": "amount_mismatch",
    "refund_exceeds_paid": "amount_mismatch",
}


_now = utcnow  # one clock for the store: settlement.store.models.utcnow


_EXCEPTIONS = ReconciliationException.__table__
_EXCEPTION_ID_OF = select(_EXCEPTIONS.c.id).where(_EXCEPTIONS.c.exception_id == bindparam("exception_id"))
_INSERT_EXCEPTION = insert(_EXCEPTIONS)


# The owner of an account that is not (or no longer) in the store: the operator's queue, so an
# item is never without an owner.
UNKNOWN_ACCOUNT_OWNER = "operator"
_ACCOUNT_OWNER = select(ProviderAccountRow.owner).where(ProviderAccountRow.provider == bindparam("provider"),
                                                        ProviderAccountRow.account == bindparam("account"))


def owned_exception_id(owner: str, engine_exception_id: str) -> str:
    """The queue's id of a run item: the engine's id (stable per file content and ledger entry)
    namespaced by the member that ran it, so ids are never shared across members."""
    return hashlib.sha256(f"{owner}\x1f{engine_exception_id}".encode()).hexdigest()[:32]


def account_owners(conn: Connection, accounts: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The owner of each (provider, account) (:data:`UNKNOWN_ACCOUNT_OWNER` for one not in the store)."""
    out: dict[tuple[str, str], str] = {}
    for provider, account in accounts:
        if (provider, account) not in out:
            owner = conn.execute(_ACCOUNT_OWNER, {"provider": provider, "account": account}).scalar()
            out[(provider, account)] = owner or UNKNOWN_ACCOUNT_OWNER
    return out


def callback_exception_id(provider: str, account: str, evidence_hash: str) -> str:
    digest = hashlib.sha256(f"callback|{provider}|{account}|{evidence_hash}".encode()).hexdigest()[:32]
    return "cb-" + digest


def callback_exception_values(callback: ProviderCallback, reason: str, detail: str, *, owner: str,
                              ledger_amount_minor: int | None = None, ledger_currency: str | None = None,
                              settlement_state: str | None = None) -> dict[str, Any]:
    """The queue row (column values) of a verified callback the ledger did not apply, in the
    queue of ``owner`` (the owner of the account it arrived on, :func:`account_owners`); what
    :func:`add_callback_exception` inserts, for a caller that inserts many at once."""
    same_currency = ledger_currency is None or ledger_currency == callback.currency
    diff = (callback.amount_minor - ledger_amount_minor
            if callback.amount_minor is not None and ledger_amount_minor is not None and same_currency else None)
    return {
        "exception_id": callback_exception_id(callback.provider, callback.account, callback.evidence_hash),
        "owner": owner, "origin": ORIGIN_CALLBACK, "run_id": None, "last_run_id": None,
        "callback_id": callback.id, "bucket": CALLBACK_BUCKETS.get(reason, "status_mismatch"), "reason": reason[:64],
        "kind": callback.kind, "reference": (callback.merchant_reference or "")[:140] or None,
        "provider_txn_id": callback.provider_txn_id, "currency": callback.currency or ledger_currency or "XXX",
        "statement_amount_minor": callback.amount_minor, "ledger_amount_minor": ledger_amount_minor,
        "difference_minor": diff, "statement_source": f"callback:{callback.provider}"[:64], "statement_line_nos": [],
        "statement_status": "succeeded" if callback.succeeded else "failed", "ledger_entry_id": None,
        "ledger_status": settlement_state, "chain_state": None, "tx_hash": None,
        "booked_at": callback.occurred_at.isoformat(), "detail": detail[:500], "state": "open",
        "resolution_action": None, "resolution_note": None, "resolved_by": None, "resolved_at": None,
        "created_at": _now(),
    }


def add_callback_exception(session: Session, callback: ProviderCallback, reason: str, detail: str,
                           *, ledger_amount_minor: int | None = None, ledger_currency: str | None = None,
                           settlement_state: str | None = None) -> ReconciliationException:
    """Queue a verified callback the ledger did not apply (unknown reference, amount or currency
    mismatch, a settlement state that does not admit it), in the caller's transaction."""
    exception_id = callback_exception_id(callback.provider, callback.account, callback.evidence_hash)
    # Core statements compiled once, on the session's connection: queue rows are only ever written
    # at once (here and by store_run_exceptions), never left pending in a session.
    conn = session.connection()
    existing_id = conn.execute(_EXCEPTION_ID_OF, {"exception_id": exception_id}).scalar()
    if existing_id is not None:
        existing = session.get(ReconciliationException, existing_id)
        if existing is None:
            raise RuntimeError(f"exception {exception_id} vanished inside its transaction")
        return existing
    owner = account_owners(conn, [(callback.provider, callback.account)])[(callback.provider, callback.account)]
    values = callback_exception_values(callback, reason, detail, owner=owner, ledger_amount_minor=ledger_amount_minor,
                                       ledger_currency=ledger_currency, settlement_state=settlement_state)
    new_id = conn.execute(_INSERT_EXCEPTION, values).inserted_primary_key[0]
    if new_id is None:
        raise RuntimeError(f"exception {exception_id} got no id")
    digest_changed(session, EXCEPTION_DIGEST_KIND, exception_id)
    row = ReconciliationException(id=new_id, **values)
    make_transient_to_detached(row)  # the row as stored: persistent in the caller's session
    session.add(row)
    return row


def _record_values(record: ExceptionRecord, owner: str, exception_id: str) -> dict[str, Any]:
    return {
        "exception_id": exception_id, "owner": owner, "origin": ORIGIN_RUN, "run_id": record.run_id,
        "last_run_id": record.run_id, "callback_id": None, "bucket": record.bucket, "reason": record.reason[:64],
        "kind": record.kind, "reference": (record.reference or "")[:140] or None,
        "provider_txn_id": (record.provider_txn_id or "")[:128] or None, "currency": record.currency,
        "statement_amount_minor": record.statement_amount_minor, "ledger_amount_minor": record.ledger_amount_minor,
        "difference_minor": record.difference_minor, "statement_source": (record.statement_source or "")[:64] or None,
        "statement_line_nos": list(record.statement_line_nos[:1000]), "statement_status": record.statement_status,
        "ledger_entry_id": record.ledger_entry_id, "ledger_status": record.ledger_status,
        "chain_state": record.chain_state, "tx_hash": record.tx_hash, "booked_at": record.booked_at,
        "detail": None, "state": "open", "created_at": _now(),
    }


def store_run_exceptions(session: Session, run_id: str, records: Iterable[ExceptionRecord], *, owner: str,
                         limit: int, progress: Any = None) -> tuple[int, int, bool]:
    """Store the exception records of ``owner``'s run, in chunks, under ids namespaced by
    ``owner``: new ones open, known ones (of the same owner) only get ``last_run_id``. Returns
    (new, seen before, truncated at ``limit``)."""
    table = ReconciliationException.__table__
    new = seen = count = 0
    truncated = False
    chunk: list[ExceptionRecord] = []

    def flush() -> None:
        nonlocal new, seen
        if not chunk:
            return
        ids = [owned_exception_id(owner, r.exception_id) for r in chunk]
        known = set(session.scalars(select(ReconciliationException.exception_id)
                                    .where(ReconciliationException.exception_id.in_(ids))))
        fresh, dup = [], set()
        for r, exception_id in zip(chunk, ids, strict=True):
            if exception_id in known or exception_id in dup:
                continue
            dup.add(exception_id)
            fresh.append(_record_values(r, owner, exception_id))
        if fresh:
            session.execute(table.insert(), fresh)
            digest_changed(session, EXCEPTION_DIGEST_KIND, *(v["exception_id"] for v in fresh))
        if known:
            session.execute(update(ReconciliationException)
                            .where(ReconciliationException.exception_id.in_(list(known)))
                            .values(last_run_id=run_id))
        new += len(fresh)
        seen += len(known)
        chunk.clear()
        if progress is not None:
            progress(new + seen)

    for record in records:
        if count >= limit:
            truncated = True
            break
        chunk.append(record)
        count += 1
        if len(chunk) >= STORE_CHUNK_ROWS:
            flush()
    flush()
    return new, seen, truncated


@dataclass(frozen=True)
class ExceptionPage:
    items: list[ReconciliationException]
    next_cursor: int | None


def list_exceptions(session: Session, *, owner: str | None, state: str | None = None, run_id: str | None = None,
                    origin: str | None = None, bucket: str | None = None, after_id: int = 0,
                    limit: int = 100) -> ExceptionPage:
    """A page of ``owner``'s queue (``None``: every member's), oldest first; ``after_id`` is the
    cursor from the previous page."""
    limit = max(1, min(int(limit), EXCEPTIONS_PAGE_MAX))
    q = select(ReconciliationException).where(ReconciliationException.id > after_id)
    if owner is not None:
        q = q.where(ReconciliationException.owner == owner)
    if state is not None:
        q = q.where(ReconciliationException.state == state)
    if run_id is not None:
        q = q.where((ReconciliationException.run_id == run_id) | (ReconciliationException.last_run_id == run_id))
    if origin is not None:
        q = q.where(ReconciliationException.origin == origin)
    if bucket is not None:
        q = q.where(ReconciliationException.bucket == bucket)
    rows = list(session.scalars(q.order_by(ReconciliationException.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return ExceptionPage(rows, rows[-1].id if more and rows else None)


def get_exception(session: Session, exception_id: str, *, owner: str | None,
                  for_update: bool = False) -> ReconciliationException:
    """The item, if ``owner`` may see it (``None``: any member's); otherwise not found."""
    if not isinstance(exception_id, str) or not 1 <= len(exception_id) <= 40:
        raise ReconciliationExceptionNotFoundError(f"no exception {str(exception_id)[:40]!r}")
    q = select(ReconciliationException).where(ReconciliationException.exception_id == exception_id)
    if owner is not None:
        q = q.where(ReconciliationException.owner == owner)
    if for_update:
        q = q.with_for_update()
    row = session.scalar(q)
    if row is None:
        raise ReconciliationExceptionNotFoundError(f"no exception {exception_id!r}", exception_id=exception_id)
    return row


def resolutions_of(session: Session, exception_id: str) -> list[ExceptionResolutionRow]:
    return list(session.scalars(select(ExceptionResolutionRow).where(
        ExceptionResolutionRow.exception_id == exception_id).order_by(ExceptionResolutionRow.id)))


def resolve_exception(session: Session, exception_id: str, action: str, note: str, resolved_by: str, *,
                      owner: str, adjustment_entry_id: str | None = None,
                      now: datetime | None = None) -> tuple[ReconciliationException, ExceptionResolutionRow]:
    """Resolve (or, with action ``reopened``, re-open) one of ``owner``'s exceptions with a note
    (another member's is not found: only the owner decides on its items). The decision is
    appended to the resolution history and its digest journaled (``reconciliation.resolution``),
    in the caller's transaction."""
    try:
        act = ResolutionAction(action)
    except ValueError:
        raise ValidationError(f"action must be one of {', '.join(a.value for a in ResolutionAction)}",
                              field="action") from None
    if not isinstance(note, str) or not note.strip() or len(note) > NOTE_CHARS_MAX:
        raise ValidationError(f"a resolution needs a note of 1..{NOTE_CHARS_MAX} characters", field="note")
    resolution = ExceptionResolution(exception_id=exception_id, action=act, note=note, resolved_by=resolved_by,
                                     resolved_at=now or _now(), adjustment_entry_id=adjustment_entry_id)
    row = get_exception(session, exception_id, owner=owner, for_update=True)
    if act is ResolutionAction.REOPENED:
        if row.state != "resolved":
            raise ExceptionNotResolvedError(f"exception {exception_id} is {row.state}", exception_id=exception_id)
        row.state = "open"
    else:
        if row.state == "resolved":
            raise ExceptionAlreadyResolvedError(f"exception {exception_id} was resolved by {row.resolved_by}",
                                                exception_id=exception_id, resolved_by=row.resolved_by)
        row.state = "resolved"
    row.resolution_action, row.resolution_note = act.value, note
    row.resolved_by, row.resolved_at = resolution.resolved_by, resolution.resolved_at
    history = ExceptionResolutionRow(exception_id=exception_id, action=act.value, note=note,
                                     resolved_by=resolution.resolved_by, resolved_at=resolution.resolved_at,
                                     adjustment_entry_id=adjustment_entry_id)
    session.add(history)
    session.flush()
    digest_changed(session, RESOLUTION_DIGEST_KIND, history)
    digest_changed(session, EXCEPTION_DIGEST_KIND, row)
    return row, history


def _money(value: int | None, currency: str) -> dict | None:
    return None if value is None else {"value": value, "currency": currency}


def exception_json(row: ReconciliationException) -> dict[str, Any]:
    """The queue item as JSON (money as ``{"value", "currency"}``)."""
    return {
        "exception_id": row.exception_id, "owner": row.owner, "origin": row.origin, "run_id": row.run_id,
        "last_run_id": row.last_run_id,
        "callback_id": row.callback_id, "bucket": row.bucket, "reason": row.reason, "kind": row.kind,
        "reference": row.reference, "provider_txn_id": row.provider_txn_id, "currency": row.currency,
        "statement_amount": _money(row.statement_amount_minor, row.currency),
        "ledger_amount": _money(row.ledger_amount_minor, row.currency),
        "difference": _money(row.difference_minor, row.currency), "statement_source": row.statement_source,
        "statement_line_nos": list(row.statement_line_nos or []), "statement_status": row.statement_status,
        "ledger_entry_id": row.ledger_entry_id, "ledger_status": row.ledger_status, "chain_state": row.chain_state,
        "tx_hash": row.tx_hash, "booked_at": row.booked_at, "detail": row.detail, "state": row.state,
        "resolution": None if row.resolved_by is None else {
            "action": row.resolution_action, "note": row.resolution_note, "resolved_by": row.resolved_by,
            "resolved_at": utc_text(row.resolved_at)},
        "created_at": utc_text(row.created_at),
    }
