"""Ingesting one provider callback: verify the raw bytes, record durably once, then answer.

:func:`ingest` is what ``POST /v1/callbacks/{provider}/{account}`` runs (in a worker thread):

1. the account's verifier (cached; unknown or disabled accounts are refused like bad signatures);
2. ``adapter.verify_and_parse`` on the raw body and headers: size, content type, signature and
   its timestamp window, and only then the body is interpreted. Any refusal is recorded as a
   security event (kind ``callback.<problem slug>``, with the body's SHA-256 and length, never
   the body or a header) and answered with the provider's own refusal (``adapter.nack``);
3. ONE database transaction: the callback row (raw body, parsed fields) is inserted first, so a
   concurrent delivery of the same fact blocks on, then collides with, the unique
   (provider, account, evidence_hash) key; the effect (:mod:`.matching`) and the record's
   journal digest follow; a collision (the IntegrityError race, or a row already there) is a
   duplicate: its delivery is counted and it is acknowledged with no second effect;
4. only after the commit the provider gets its acknowledgement (``adapter.ack``). A store that
   cannot be written gets the provider's retry answer (503), so nothing is lost.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from settlement import apikeys
from settlement.anchoring import record_digest
from settlement.callbacks import accounts
from settlement.callbacks.matching import apply_callback
from settlement.errors import (
    CallbackMalformedError, CallbackStoreUnavailableError, LedgerError, UnknownProviderError,
)
from settlement.providers import InboundRequest, ProviderResponse, VerifiedNotification, adapter_for
from settlement.runtime import Runtime
from settlement.store.models_callbacks import ProviderCallback
from settlement.store.models import utcnow

log = logging.getLogger("ledger.callbacks")

__all__ = ["CALLBACK_DIGEST_KIND", "CallbackResult", "ingest", "record_callback_digest"]

CALLBACK_DIGEST_KIND = "callback"
SECURITY_DETAIL_CHARS_MAX = 400
CONTENT_TYPE_CHARS_MAX = 200

@dataclass(frozen=True)
class CallbackResult:
    """What happened to one delivery: the answer for the provider, and for logs and tests the
    outcome (``applied``/``deferred``/``exception``/``noted``, ``duplicate``, or ``rejected``)."""

    response: ProviderResponse
    outcome: str
    callback_id: int | None = None
    problem: str | None = None  # the refusal's problem slug

    @property
    def accepted(self) -> bool:
        return self.outcome != "rejected"


_now = utcnow  # one clock for the store: settlement.store.models.utcnow


def _security_event(runtime: Runtime, provider: str, account: str, error: LedgerError, body: bytes,
                    source: str) -> None:
    detail = (f"{provider}/{str(account)[:64]}: {error.title}: {error.detail[:200]}; "
              f"body_sha256={hashlib.sha256(body).hexdigest()} bytes={len(body)}")
    try:
        with runtime.db.transaction() as session:
            apikeys.record_security_event(session, f"callback.{error.type_slug}"[:64], source=source,
                                          detail=detail[:SECURITY_DETAIL_CHARS_MAX])
    except SQLAlchemyError:  # recording must not turn a refusal into a 500
        log.exception("could not record the security event of a refused %s callback", provider)


def record_callback_digest(session: Session, row: ProviderCallback) -> None:
    """Journal the callback record's current version (anchored with the journal)."""
    record_digest(session, CALLBACK_DIGEST_KIND, f"{row.provider}:{row.account}:{row.id}", {
        "id": row.id, "provider": row.provider, "account": row.account, "evidence_hash": row.evidence_hash,
        "kind": row.kind, "provider_status": row.provider_status, "succeeded": row.succeeded,
        "provider_txn_id": row.provider_txn_id, "merchant_reference": row.merchant_reference,
        "refund_reference": row.refund_reference, "provider_refund_id": row.provider_refund_id,
        "amount_minor": None if row.amount_minor is None else str(row.amount_minor), "currency": row.currency,
        "amount_is_cumulative": row.amount_is_cumulative, "notification_id": row.notification_id,
        "body_sha256": row.body_sha256, "occurred_at": row.occurred_at.isoformat(),
        "outcome": row.outcome, "outcome_reason": row.outcome_reason, "settlement_id": row.settlement_id,
    })


_CALLBACKS = ProviderCallback.__table__
_CALLBACK_FIELDS = tuple(c.key for c in _CALLBACKS.columns if c.key != "id")
# Core statements compiled once; run on the transaction's connection (nothing is left pending in
# the session on this path, so no autoflush is needed before a read).
_FIND_CALLBACK = select(_CALLBACKS.c.id, _CALLBACKS.c.outcome).where(
    _CALLBACKS.c.provider == bindparam("provider"), _CALLBACKS.c.account == bindparam("account"),
    _CALLBACKS.c.evidence_hash == bindparam("evidence_hash"))
_COUNT_DELIVERY = update(_CALLBACKS).where(_CALLBACKS.c.id == bindparam("callback_id")).values(
    delivery_count=_CALLBACKS.c.delivery_count + 1, last_delivered_at=bindparam("delivered_at"))
_INSERT_CALLBACK = insert(_CALLBACKS)
_UPDATE_CALLBACK = update(_CALLBACKS).where(_CALLBACKS.c.id == bindparam("callback_id"))


def _values_of(n: VerifiedNotification, request: InboundRequest) -> dict:
    now = _now()
    values = dict.fromkeys(_CALLBACK_FIELDS)  # the columns set later (outcome reason, ids) start NULL
    values.update(
        provider=n.provider, account=n.account, evidence_hash=n.evidence_hash, kind=n.kind.value,
        provider_status=n.status[:64], succeeded=n.succeeded, provider_txn_id=n.provider_txn_id,
        merchant_reference=n.merchant_reference, refund_reference=n.refund_reference,
        provider_refund_id=n.provider_refund_id, amount_minor=n.amount.value if n.amount else None,
        currency=n.amount.currency if n.amount else None, amount_is_cumulative=n.amount_is_cumulative,
        occurred_at=n.occurred_at, notification_id=n.notification_id[:128], body_sha256=n.body_sha256,
        raw_body=request.body, content_type=(request.headers.get("content-type") or "")[:CONTENT_TYPE_CHARS_MAX],
        parsed=n.as_json(), outcome="received", delivery_count=1, attempts=1, received_at=now,
        last_delivered_at=now)
    return values


def _row_of(n: VerifiedNotification, request: InboundRequest) -> ProviderCallback:
    return ProviderCallback(**_values_of(n, request))


def _count_duplicate(session: Session, n: VerifiedNotification) -> tuple[int, str] | None:
    conn = session.connection()
    found = conn.execute(_FIND_CALLBACK, {"provider": n.provider, "account": n.account,
                                          "evidence_hash": n.evidence_hash}).first()
    if found is None:
        return None
    conn.execute(_COUNT_DELIVERY, {"callback_id": found.id, "delivered_at": _now()})
    return found.id, found.outcome


def _insert_and_apply(runtime: Runtime, session: Session, values: dict) -> ProviderCallback:
    """Insert the callback row (the unique key decides here which delivery records the fact),
    apply its effect, write the outcome fields the effect changed. The row object handed to
    the matching code is a copy of the inserted row that is not in the session: its changes are
    written here, in one UPDATE, instead of through the ORM's unit of work."""
    conn = session.connection()
    callback_id = conn.execute(_INSERT_CALLBACK, values).inserted_primary_key[0]
    if callback_id is None:
        raise RuntimeError("the callback row got no id")
    row = ProviderCallback(id=callback_id, **values)
    apply_callback(runtime, session, row)
    changed = {}
    for key in _CALLBACK_FIELDS:
        new = getattr(row, key)
        if new is not values[key] and new != values[key]:
            changed[key] = new
    if getattr(row, "id") != callback_id:
        raise RuntimeError("the callback row's id changed while its effect was applied")
    if changed:
        conn.execute(_UPDATE_CALLBACK, {"callback_id": callback_id, **changed})
    return row


_SQLITE_WRITE_LOCKS: "weakref.WeakKeyDictionary[object, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _write_lock(runtime: Runtime) -> threading.Lock | None:
    """SQLite has one writer: queueing this process's writers on a lock (instead of SQLite's
    sleeping busy handler) keeps the tail latency low. PostgreSQL needs none."""
    if runtime.db.dialect != "sqlite":
        return None
    with _LOCKS_GUARD:
        lock = _SQLITE_WRITE_LOCKS.get(runtime.db)
        if lock is None:
            lock = _SQLITE_WRITE_LOCKS[runtime.db] = threading.Lock()
        return lock


def _record(runtime: Runtime, n: VerifiedNotification, request: InboundRequest) -> tuple[str, int]:
    """The durable write; returns (outcome, callback id). Raises CallbackStoreUnavailableError."""
    values = _values_of(n, request)  # built before the write lock is taken
    lock = _write_lock(runtime)
    if lock is None:
        return _record_unlocked(runtime, n, request, values)
    with lock:
        return _record_unlocked(runtime, n, request, values)


def _record_unlocked(runtime: Runtime, n: VerifiedNotification, request: InboundRequest,
                     values: dict | None = None) -> tuple[str, int]:
    if values is None:
        values = _values_of(n, request)
    try:
        with runtime.db.transaction() as session:
            # No look-up first: the insert itself finds a row already there (the unique evidence
            # key), and a collision is counted as a duplicate below, as a concurrent one is.
            row = _insert_and_apply(runtime, session, values)
            record_callback_digest(session, row)
            return row.outcome, row.id
    except IntegrityError:
        pass  # a concurrent delivery of the same fact committed first
    except OperationalError as exc:
        log.warning("callback store unavailable: %s", type(exc).__name__)
        raise CallbackStoreUnavailableError("the store is unavailable") from None
    except Exception:  # nothing was committed; the provider retries
        log.exception("callback %s/%s could not be recorded", n.provider, n.account)
        raise CallbackStoreUnavailableError("the callback could not be recorded") from None
    try:
        with runtime.db.transaction() as session:
            seen = _count_duplicate(session, n)
    except SQLAlchemyError:
        raise CallbackStoreUnavailableError("the store is unavailable") from None
    if seen is None:  # the collision was not on the evidence key: let the provider retry
        log.error("callback %s/%s could not be recorded (integrity error)", n.provider, n.account)
        raise CallbackStoreUnavailableError("the callback could not be recorded")
    return "duplicate", seen[0]


def ingest(runtime: Runtime, provider: str, account: str, body: bytes,
           headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]], *,
           received_at: datetime | None = None, source: str = "") -> CallbackResult:
    """Verify, record and answer one callback delivery (see the module doc). Raises only
    UnknownProviderError (the provider's answer format is unknown); everything else is answered
    in the provider's format."""
    try:
        adapter = adapter_for(provider)
    except UnknownProviderError as exc:
        _security_event(runtime, str(provider)[:16], account, exc, body, source)
        raise
    try:
        material = accounts.verifier(runtime, provider, account)
        request = InboundRequest.build(body, headers, received_at=received_at)
        notification = adapter.verify_and_parse(material, request)
    except LedgerError as exc:
        _security_event(runtime, provider, account, exc, body, source)
        return CallbackResult(adapter.nack(exc), "rejected", problem=exc.type_slug)
    except Exception:  # an adapter surprise is the sender's problem, reported without the body
        log.exception("%s callback refused by an unexpected error", provider)
        error = CallbackMalformedError(f"{provider} notification could not be read")
        _security_event(runtime, provider, account, error, body, source)
        return CallbackResult(adapter.nack(error), "rejected", problem=error.type_slug)
    try:
        outcome, callback_id = _record(runtime, notification, request)
    except CallbackStoreUnavailableError as exc:
        return CallbackResult(adapter.nack(exc), "rejected", problem=exc.type_slug)
    return CallbackResult(adapter.ack(notification), outcome, callback_id)
