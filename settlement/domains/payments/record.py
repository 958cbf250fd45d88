"""The durable write of verified callbacks: a group of deliveries in ONE transaction (group commit,
:func:`record_group`), or one delivery in its own (:func:`record_one`, the fallback that isolates a
bad item).

Either way the same rows come out for each delivery, in the transaction that is committed before
the provider is answered: the ``provider_callbacks`` row (raw body, parsed fields), inserted first
so the unique ``(provider, account, evidence_hash)`` key decides which delivery records the fact
(a concurrent delivery of the same fact blocks on it, then collides); its effect
(:mod:`.matching`: an outbox transition in a savepoint, or a reconciliation exception); the
outcome fields; and the record's journal digest. A delivery of a fact already recorded only
counts the delivery.

A group does per STATEMENT what one delivery does per row: one multi-row insert of the callback
rows, one look-up of the settlements of every payment reference in the group, one insert of the
group's exceptions, one update of the outcome fields, one read of the journal versions and one
insert of the digests; effects (``mark_paid``, ``refund_by_provider``) stay one per callback, in
arrival order, each seeing the ones before it. Anything unexpected in a group (a collision with a
row committed by another process, a database error, a bug) rolls the whole group back; the caller
then records each delivery with :func:`record_one`, so nothing is acknowledged that was not
committed, and a bad delivery fails alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from settlement.core.errors import CallbackStoreUnavailableError
from settlement.domains.anchoring import digest_changed, digest_new
from settlement.domains.payments.digests import (
    CALLBACK_DIGEST_KIND,
    callback_digest_record,
    record_callback_digest,
)
from settlement.domains.payments.matching import (
    apply_callback,
    decided_without_effect,
    prefetch_payment_references,
)
from settlement.domains.reconciliation.exceptions import account_owners, callback_exception_values
from settlement.providers import InboundRequest, VerifiedNotification
from settlement.runtime import Runtime
from settlement.store.models import utcnow
from settlement.store.models.payments import ProviderCallback, ReconciliationException

log = logging.getLogger("ledger.callbacks")

__all__ = [
    "CALLBACK_DIGEST_KIND", "CONTENT_TYPE_CHARS_MAX", "GROUP_ITEMS_MAX", "CallbackRecord", "Recorded",
    "callback_digest_record", "record_callback_digest", "record_group", "record_one", "values_of",
]

CONTENT_TYPE_CHARS_MAX = 200
# Deliveries written in one transaction at most (the writer's group; also bounds one statement's
# parameters: 35 columns x 64 rows stays under SQLite's 32,766 variables).
GROUP_ITEMS_MAX = 64

_now = utcnow  # one clock for the store: settlement.store.models.utcnow

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
# The group's rows in one statement, their ids returned in the order of the parameters.
_INSERT_CALLBACKS = insert(_CALLBACKS).returning(_CALLBACKS.c.id, sort_by_parameter_order=True)
_INSERT_EXCEPTIONS = insert(ReconciliationException.__table__)


class CallbackRecord:
    """The callback row as inserted, as plain attributes (the columns of ``provider_callbacks``):
    what the matching code reads and changes while the row's effect is applied, without an ORM
    instance per delivery. The changes are written by one UPDATE afterwards."""

    __slots__ = ("id", *_CALLBACK_FIELDS)

    def __init__(self, callback_id: int | None, values: Mapping[str, Any]) -> None:
        self.id = callback_id  # None until inserted
        for key in _CALLBACK_FIELDS:
            setattr(self, key, values[key])

    def values(self) -> dict[str, Any]:
        """The columns as they are now (what to insert)."""
        return {key: getattr(self, key) for key in _CALLBACK_FIELDS}

    def changes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The columns whose value differs from ``values`` (what was inserted)."""
        changed = {}
        for key in _CALLBACK_FIELDS:
            new = getattr(self, key)
            if new is not values[key] and new != values[key]:
                changed[key] = new
        return changed


@dataclass(frozen=True)
class Recorded:
    """What the store did with one delivery: its outcome (``applied``/``deferred``/``exception``/
    ``noted``, or ``duplicate`` for a fact already recorded) and the callback row's id."""

    outcome: str
    callback_id: int


def values_of(n: VerifiedNotification, request: InboundRequest) -> dict[str, Any]:
    """The callback row of a verified notification, as first inserted (outcome ``received``)."""
    now = _now()
    values: dict[str, Any] = dict.fromkeys(_CALLBACK_FIELDS)  # columns set by the effect start NULL
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


# -- one delivery per transaction -----------------------------------------------------------------------


def _count_duplicate(session: Session, values: Mapping[str, Any]) -> tuple[int, str] | None:
    conn = session.connection()
    found = conn.execute(_FIND_CALLBACK, {"provider": values["provider"], "account": values["account"],
                                          "evidence_hash": values["evidence_hash"]}).first()
    if found is None:
        return None
    conn.execute(_COUNT_DELIVERY, {"callback_id": found.id, "delivered_at": _now()})
    return found.id, found.outcome


def _write_changes(session: Session, callback_id: int, changed: Mapping[str, Any]) -> None:
    if changed:
        session.connection().execute(update(_CALLBACKS).where(_CALLBACKS.c.id == callback_id).values(**changed))


def record_one(runtime: Runtime, values: Mapping[str, Any]) -> Recorded:
    """One delivery in its own transaction (the per-item path). Raises CallbackStoreUnavailableError
    when it could not be recorded (nothing was committed; the provider is told to retry)."""
    try:
        with runtime.db.transaction() as session:
            # No look-up first: the insert itself finds a row already there (the unique evidence
            # key), and a collision is counted as a duplicate below, as a concurrent one is.
            conn = session.connection()
            callback_id = conn.execute(_INSERT_CALLBACK, dict(values)).inserted_primary_key[0]
            if callback_id is None:
                raise RuntimeError("the callback row got no id")
            row = CallbackRecord(callback_id, values)
            apply_callback(runtime, session, row)
            _write_changes(session, callback_id, row.changes(values))
            record_callback_digest(session, row)
            recorded = Recorded(row.outcome, callback_id)
        return recorded
    except IntegrityError:
        pass  # a concurrent delivery of the same fact committed first
    except OperationalError as exc:
        log.warning("callback store unavailable: %s", type(exc).__name__)
        raise CallbackStoreUnavailableError("the store is unavailable") from None
    except Exception:  # nothing was committed; the provider retries
        log.exception("callback %s/%s could not be recorded", values["provider"], values["account"])
        raise CallbackStoreUnavailableError("the callback could not be recorded") from None
    try:
        with runtime.db.transaction() as session:
            seen = _count_duplicate(session, values)
    except SQLAlchemyError:
        raise CallbackStoreUnavailableError("the store is unavailable") from None
    if seen is None:  # the collision was not on the evidence key: let the provider retry
        log.error("callback %s/%s could not be recorded (integrity error)", values["provider"], values["account"])
        raise CallbackStoreUnavailableError("the callback could not be recorded")
    return Recorded("duplicate", seen[0])


# -- a group of deliveries in one transaction -------------------------------------------------------------


def _evidence_key(values: Mapping[str, Any]) -> tuple[str, str, str]:
    return values["provider"], values["account"], values["evidence_hash"]


def record_group(runtime: Runtime, group: Sequence[Mapping[str, Any]]) -> list[Recorded]:
    """Every delivery of ``group`` (in order) in ONE transaction; returns after the commit, one
    result per delivery. Raises on anything unexpected (nothing is committed then): the caller
    records each delivery with :func:`record_one` instead."""
    if not 0 < len(group) <= GROUP_ITEMS_MAX:
        raise ValueError(f"a group holds 1..{GROUP_ITEMS_MAX} deliveries, not {len(group)}")
    # A fact delivered twice in the same group is inserted once; the later deliveries count on it.
    first_of: dict[tuple[str, str, str], int] = {}
    fresh: list[int] = []
    for i, values in enumerate(group):
        if first_of.setdefault(_evidence_key(values), i) == i:
            fresh.append(i)
    position = {i: k for k, i in enumerate(fresh)}
    with runtime.db.transaction() as session:
        conn = session.connection()
        rows = {i: CallbackRecord(None, group[i]) for i in fresh}
        prefetch_payment_references(session, (r.merchant_reference for r in rows.values()))
        queued: list[tuple[int, CallbackRecord, str, str, dict[str, Any]]] = []
        at = {id(rows[i]): position[i] for i in fresh}

        def queue_exception(_session: Session, callback: Any, reason: str, detail: str, **ledger: Any) -> None:
            # The callback row is new in this transaction, so its exception (whose id derives
            # from the same evidence key) cannot exist yet: inserted with the group's, unchecked.
            queued.append((at[id(callback)], callback, reason, detail, ledger))

        # An outcome that needs no effect (no money moves, or no settlement has the reference) is
        # decided now and written with the insert; the others are applied after it.
        effects = []
        for i in fresh:
            if decided_without_effect(session, rows[i]):
                apply_callback(runtime, session, rows[i], queue_exception=queue_exception)
            else:
                effects.append(i)
        inserted = {i: rows[i].values() for i in fresh}
        # The unique evidence key decides here: a fact committed earlier (or concurrently by
        # another process) makes this insert fail, and the whole group goes the per-item way.
        ids = [r[0] for r in conn.execute(_INSERT_CALLBACKS, [inserted[i] for i in fresh])]
        if len(ids) != len(fresh) or any(i is None for i in ids):
            raise RuntimeError(f"{len(fresh)} callback rows inserted, {len(ids)} ids returned")
        for i, callback_id in zip(fresh, ids, strict=True):
            rows[i].id = callback_id
        unwritten: list[tuple[CallbackRecord, Mapping[str, Any]]] = []
        for i in effects:
            row = rows[i]
            if row.kind == "refund" and unwritten:
                # A refund finds its settlement through the recorded payment with the same provider
                # transaction: the payments before it in this group must be readable first.
                _write_group_changes(session, unwritten)
                unwritten = []
            apply_callback(runtime, session, row, queue_exception=queue_exception)
            unwritten.append((row, inserted[i]))
        _write_group_changes(session, unwritten)
        if queued:
            queued.sort(key=lambda q: q[0])  # in arrival order, as one by one
            # Each item goes to the queue of the account's owner (one read per account in the group).
            owners = account_owners(conn, ((q[1].provider, q[1].account) for q in queued))
            exceptions = [callback_exception_values(callback, reason, detail,
                                                    owner=owners[(callback.provider, callback.account)], **ledger)
                          for _, callback, reason, detail, ledger in queued]
            conn.execute(_INSERT_EXCEPTIONS, exceptions)
            digest_changed(session, "reconciliation.exception", *(e["exception_id"] for e in exceptions))
        # New rows, so no journal versions yet: version 1 each, no read (a row id used before would
        # collide on the journal's unique key and send the group the per-item way).
        digest_new(session, CALLBACK_DIGEST_KIND, [rows[i] for i in fresh])
        duplicates = [{"callback_id": rows[first_of[_evidence_key(v)]].id, "delivered_at": _now()}
                      for i, v in enumerate(group) if i not in rows]
        if duplicates:
            conn.execute(_COUNT_DELIVERY, duplicates)
    # Committed: only now are the results handed out.
    return [Recorded(rows[i].outcome, rows[i].id) if i in rows
            else Recorded("duplicate", rows[first_of[_evidence_key(v)]].id) for i, v in enumerate(group)]


_UPDATE_STATEMENTS: dict[tuple[str, ...], Any] = {}
_UPDATE_STATEMENTS_MAX = 64  # distinct sets of changed columns kept compiled


def _update_statement(columns: tuple[str, ...]) -> Any:
    statement = _UPDATE_STATEMENTS.get(columns)
    if statement is None:
        statement = update(_CALLBACKS).where(_CALLBACKS.c.id == bindparam("callback_id")).values(
            {c: bindparam(f"new_{c}") for c in columns})
        if len(_UPDATE_STATEMENTS) < _UPDATE_STATEMENTS_MAX:
            _UPDATE_STATEMENTS[columns] = statement
    return statement


def _write_group_changes(session: Session, rows: Sequence[tuple[CallbackRecord, Mapping[str, Any]]]) -> None:
    """The outcome fields the effects changed: one executemany per set of changed columns (the
    rows of a group usually change the same ones)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row, values in rows:
        changed = row.changes(values)
        if changed:
            params = {"callback_id": row.id, **{f"new_{c}": v for c, v in changed.items()}}
            by_columns.setdefault(tuple(sorted(changed)), []).append(params)
    conn = session.connection()
    for columns, params_list in by_columns.items():
        conn.execute(_update_statement(columns), params_list)
