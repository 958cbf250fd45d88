"""What a verified notification does to the ledger: find the settlement, apply the effect once.

Rules (each ends in one outcome on the callback row):

- PAYMENT that succeeded: the settlement whose payment reference is ``merchant_reference``
  (``out_trade_no`` / Stripe ``metadata.reference``); currency and amount must equal its target
  amount, then :func:`~settlement.domains.settlements.mark_paid` is enqueued through the outbox with
  ``provider_txn_hash(provider_txn_id)`` as evidence (``applied``). Unknown reference, another
  amount or currency, a settlement already paid with other evidence, cancelled or rejected:
  ``exception`` (queued for a person, never applied); so is a provider transaction that already
  paid another settlement (``evidence_used``) or a suspended party (``party_not_active``). The
  settlement's recording not yet confirmed on chain: ``deferred``, applied when the follower
  confirms it; a payment before the settlement's value date: ``deferred`` until that day (a
  settlement is paid on or after its value date).
- REFUND that succeeded: the settlement by reference, or through the applied payment with the
  same provider transaction (Stripe refunds carry no reference); cumulative totals (Alipay
  ``refund_fee``, Stripe ``charge.refunded``) are turned into the increment not yet refunded;
  then :func:`~settlement.domains.settlements.refund_by_provider` (idempotent per provider refund id).
  A refund ahead of its payment (out of order) or of a pending chain operation: ``deferred``.
- Anything else authentic (closed orders, pending or failed refunds, other events): ``noted``.

Every effect runs in a SAVEPOINT, so a refusal by the settlements service leaves nothing behind
but the callback row and its exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    InvalidStateError,
    LedgerError,
    PaidAmountMismatchError,
    PartyNotActiveError,
    PaymentEvidenceUsedError,
    RefundExceedsPaidError,
    SettlementPendingOnChainError,
    ValueDateNotReachedError,
)
from settlement.domains.payments.digests import record_callback_digest
from settlement.domains.reconciliation.exceptions import add_callback_exception
from settlement.domains.settlements import (
    get_settlement,
    mark_paid,
    provider_txn_hash,
    reference_hash,
    refund_by_provider,
)
from settlement.runtime import Runtime
from settlement.store.models import utcnow
from settlement.store.models.payments import ProviderCallback
from settlement.store.models.settlements import Settlement, SettlementRefund

log = logging.getLogger("ledger.callbacks")

__all__ = ["APPLIED", "DEFERRED", "EXCEPTION", "NOTED", "ExceptionSink", "Outcome", "apply_callback", "apply_deferred",
           "decided_without_effect", "prefetch_payment_references"]

APPLIED, DEFERRED, EXCEPTION, NOTED = "applied", "deferred", "exception", "noted"
DEFERRED_PER_SETTLEMENT_MAX = 50
DEFERRED_ATTEMPTS_MAX = 100


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str | None = None
    detail: str | None = None


class ExceptionSink(Protocol):
    """Where an unapplied callback is queued: :func:`add_callback_exception` (one row, in the
    caller's transaction), or a collector that inserts a group's exceptions at once."""

    def __call__(self, session: Session, callback: Any, reason: str, detail: str, *,
                 ledger_amount_minor: int | None = None, ledger_currency: str | None = None,
                 settlement_state: str | None = None) -> object: ...


_SETTLEMENTS = Settlement.__table__
_PK = inspect(Settlement).primary_key
# find_by_payment_reference as a statement compiled once: the id by the indexed reference hash
# (most callbacks of an unknown reference stop here), then the ORM row by its identity (primary key).
_SETTLEMENT_BY_REF_HASH = select(*_PK).where(_SETTLEMENTS.c.payment_ref_hash == bindparam("ref_hash"))
# One statement per number of hashes, each compiled once (an "expanding" IN list is re-rendered
# on every execution); at most PREFETCH_HASHES_MAX of them.
PREFETCH_HASHES_MAX = 64
_SETTLEMENTS_BY_REF_HASHES: dict[int, Any] = {}


def _settlements_by_ref_hashes(count: int) -> Any:
    statement = _SETTLEMENTS_BY_REF_HASHES.get(count)
    if statement is None:
        statement = _SETTLEMENTS_BY_REF_HASHES[count] = select(_SETTLEMENTS.c.payment_ref_hash, *_PK).where(
            _SETTLEMENTS.c.payment_ref_hash.in_([bindparam(f"ref_hash_{i}") for i in range(count)]))
    return statement


# session.info key: {reference hash: settlement primary key or None}, filled for a group of
# callbacks by prefetch_payment_references (one query instead of one per callback).
_REF_KEYS_INFO = "callbacks.settlement_keys_by_ref_hash"


def find_by_payment_reference(session: Session, payment_reference: str | None) -> Settlement | None:
    """:func:`settlement.domains.settlements.find_by_payment_reference`, without building the ORM query
    per call (same result: the session's Settlement object for that payment reference)."""
    if not isinstance(payment_reference, str) or not payment_reference:
        return None
    if session.autoflush:  # as the ORM query would
        session.flush()
    ref_hash = reference_hash(payment_reference).lower()
    known = session.info.get(_REF_KEYS_INFO)
    if known is not None and ref_hash in known:
        key = known[ref_hash]
    else:
        key = session.connection().execute(_SETTLEMENT_BY_REF_HASH, {"ref_hash": ref_hash}).first()
    if key is None:
        return None
    return session.get(Settlement, tuple(key))


def prefetch_payment_references(session: Session, references: Iterable[str | None]) -> None:
    """Look up the settlements of many payment references in one query, for the
    :func:`find_by_payment_reference` calls that follow in this session (a group of callbacks in
    one transaction). Sound because callbacks never create settlements nor change a payment
    reference: within the transaction, a reference's settlement id stays what this read found."""
    hashes = sorted({reference_hash(r).lower() for r in references if isinstance(r, str) and r})
    if not hashes:
        return
    if len(hashes) > PREFETCH_HASHES_MAX:
        raise ValueError(f"at most {PREFETCH_HASHES_MAX} references per look-up")
    if session.autoflush:
        session.flush()
    known: dict[str, tuple | None] = dict.fromkeys(hashes)
    params = {f"ref_hash_{i}": h for i, h in enumerate(hashes)}
    for row in session.connection().execute(_settlements_by_ref_hashes(len(hashes)), params):
        known[row[0]] = tuple(row[1:])
    session.info.setdefault(_REF_KEYS_INFO, {}).update(known)


_now = utcnow  # one clock for the store: settlement.store.models.utcnow


def decided_without_effect(session: Session, row: ProviderCallback) -> bool:
    """Whether :func:`apply_callback` can only NOTE ``row`` or queue it as an exception, reading
    nothing but settlements already looked up by :func:`prefetch_payment_references`: a
    notification that moves no money, or a payment for a reference no settlement has. Such a
    row's outcome can be decided before the row is inserted (and written with it); any other
    row is inserted first, so the unique evidence key is taken before its effect runs."""
    if not row.succeeded or row.kind not in ("payment", "refund"):
        return True
    if row.kind != "payment":
        return False  # a refund may find its settlement through another recorded callback
    if not isinstance(row.merchant_reference, str) or not row.merchant_reference:
        return True  # no reference: an unknown-reference exception
    known = session.info.get(_REF_KEYS_INFO)
    ref_hash = reference_hash(row.merchant_reference).lower()
    return known is not None and ref_hash in known and known[ref_hash] is None


def _set(row: ProviderCallback, outcome: Outcome) -> Outcome:
    row.outcome, row.outcome_reason = outcome.outcome, outcome.reason
    row.outcome_detail = (outcome.detail or "")[:500] or None
    row.processed_at = _now()
    return outcome


def _exception(session: Session, row: ProviderCallback, reason: str, detail: str, s: Settlement | None = None,
               *, ledger_amount: int | None = None, sink: ExceptionSink = add_callback_exception) -> Outcome:
    if s is not None:
        row.settlement_id = s.id
    sink(session, row, reason, detail, ledger_amount_minor=ledger_amount,
         ledger_currency=s.target_currency if s is not None else None,
         settlement_state=s.state if s is not None else None)
    return _set(row, Outcome(EXCEPTION, reason, detail))


def _settlement_of_refund(session: Session, row: ProviderCallback) -> Settlement | None:
    if row.merchant_reference:
        s = find_by_payment_reference(session, row.merchant_reference)
        if s is not None:
            return s
    sid = session.scalar(select(ProviderCallback.settlement_id).where(
        ProviderCallback.provider == row.provider, ProviderCallback.provider_txn_id == row.provider_txn_id,
        ProviderCallback.kind == "payment", ProviderCallback.settlement_id.is_not(None))
        .order_by(ProviderCallback.id).limit(1))
    if sid is None:
        return None
    return session.scalar(select(Settlement).where(Settlement.id == sid))


def apply_callback(runtime: Runtime, session: Session, row: ProviderCallback, *,
                   queue_exception: ExceptionSink = add_callback_exception) -> Outcome:
    """Decide and apply the effect of the recorded callback ``row`` (outcome fields updated; the
    caller writes them). An exception is queued through ``queue_exception``."""
    row.attempts = (row.attempts or 0) + (0 if row.outcome == "received" else 1)
    if not row.succeeded or row.kind not in ("payment", "refund"):
        s = find_by_payment_reference(session, row.merchant_reference) if row.merchant_reference else None
        row.settlement_id = s.id if s is not None else row.settlement_id
        return _set(row, Outcome(NOTED, f"{row.kind}_{row.provider_status}".lower()[:64],
                                 "authentic; moves no money the ledger books"))
    if row.kind == "payment":
        return _apply_payment(runtime, session, row, queue_exception)
    return _apply_refund(runtime, session, row, queue_exception)


def _apply_payment(runtime: Runtime, session: Session, row: ProviderCallback, sink: ExceptionSink) -> Outcome:
    s = find_by_payment_reference(session, row.merchant_reference) if row.merchant_reference else None
    if s is None:
        return _exception(session, row, "unknown_reference",
                          f"no settlement has payment reference {str(row.merchant_reference)[:80]!r}", sink=sink)
    row.settlement_id = s.id
    if row.currency != s.target_currency:
        return _exception(session, row, "currency_mismatch",
                          f"paid in {row.currency}, the settlement's target currency is {s.target_currency}", s,
                          ledger_amount=s.target_amount_minor, sink=sink)
    if row.amount_minor != s.target_amount_minor:
        return _exception(session, row, "amount_mismatch",
                          f"paid {row.amount_minor}, the target amount is {s.target_amount_minor}", s,
                          ledger_amount=s.target_amount_minor, sink=sink)
    evidence = provider_txn_hash(row.provider_txn_id)
    if s.provider == row.provider and s.provider_tx_hash == evidence and s.state != "instructed":
        return _set(row, Outcome(NOTED, "already_applied", "this provider transaction already paid the settlement"))
    if s.state == "instructed" and s.chain_status == "pending":
        return _set(row, Outcome(DEFERRED, "awaiting_chain",
                                 f"the settlement's {s.chain_op} is not confirmed on chain yet"))
    if s.state != "instructed":
        return _exception(session, row, "settlement_not_payable", f"settlement is {s.state}", s,
                          ledger_amount=s.paid_minor or s.target_amount_minor, sink=sink)
    try:
        with session.begin_nested():
            paid = mark_paid(runtime, session, s, row.provider, evidence, row.amount_minor)
    except SettlementPendingOnChainError:
        return _set(row, Outcome(DEFERRED, "awaiting_chain", "the settlement's previous operation is pending"))
    except ValueDateNotReachedError as exc:
        return _set(row, Outcome(DEFERRED, "awaiting_value_date", exc.detail))
    except PaymentEvidenceUsedError as exc:
        session.expire(s)
        return _exception(session, row, "evidence_used", exc.detail, s, sink=sink)
    except PartyNotActiveError as exc:
        session.expire(s)
        return _exception(session, row, "party_not_active", exc.detail, s, sink=sink)
    except PaidAmountMismatchError as exc:
        return _exception(session, row, "amount_mismatch", exc.detail, s, ledger_amount=s.target_amount_minor,
                          sink=sink)
    except (InvalidStateError, LedgerError) as exc:
        session.expire(s)
        return _exception(session, row, "settlement_not_payable", exc.detail, s, sink=sink)
    row.outbox_id, row.applied_amount_minor = paid.outbox_id, row.amount_minor
    return _set(row, Outcome(APPLIED, "paid", f"markPaid enqueued (outbox {paid.outbox_id})"))


def _provider_refunded(session: Session, s: Settlement, provider: str) -> int:
    refunds = session.scalars(select(SettlementRefund).where(
        SettlementRefund.settlement_id == s.id, SettlementRefund.status != "rejected"))
    return sum(r.amount_minor for r in refunds if r.reference.startswith(f"{provider}:"))


def _has_cumulative_refund(session: Session, s: Settlement, provider: str) -> bool:
    return session.scalar(select(SettlementRefund.id).where(
        SettlementRefund.settlement_id == s.id, SettlementRefund.status != "rejected",
        SettlementRefund.reference.like(f"{provider}:total-%")).limit(1)) is not None


def _apply_refund(runtime: Runtime, session: Session, row: ProviderCallback, sink: ExceptionSink) -> Outcome:
    s = _settlement_of_refund(session, row)
    if s is None:
        return _exception(session, row, "unknown_reference",
                          f"no settlement for reference {str(row.merchant_reference)[:80]!r} or provider "
                          "transaction", sink=sink)
    row.settlement_id = s.id
    if row.currency != s.target_currency:
        return _exception(session, row, "currency_mismatch",
                          f"refund in {row.currency}, the settlement's target currency is {s.target_currency}", s,
                          sink=sink)
    if s.state == "instructed":
        return _set(row, Outcome(DEFERRED, "awaiting_payment", "the refund arrived before its payment was applied"))
    if s.state in ("cancelled", "rejected"):
        return _exception(session, row, "settlement_not_refundable", f"settlement is {s.state}", s, sink=sink)
    if s.chain_status == "pending":
        return _set(row, Outcome(DEFERRED, "awaiting_chain", f"the settlement's {s.chain_op} is pending on chain"))
    amount = row.amount_minor or 0
    refund_key = row.provider_refund_id or row.refund_reference
    if row.amount_is_cumulative:
        amount -= _provider_refunded(session, s, row.provider)
        refund_key = refund_key or f"total-{row.amount_minor}"
    elif _has_cumulative_refund(session, s, row.provider):
        # A running total was booked already; whether this refund is inside it cannot be told.
        return _exception(session, row, "refund_ambiguous",
                          "an individual refund after a refunded-total notification: a person decides", s, sink=sink)
    if amount <= 0:
        return _set(row, Outcome(NOTED, "refund_already_applied", "the provider's refunded total is already booked"))
    if not refund_key:
        return _exception(session, row, "refund_without_id", "the refund carries no identifier", s, sink=sink)
    try:
        with session.begin_nested():
            refund = refund_by_provider(runtime, session, s, row.provider, refund_key[:120], amount)
    except SettlementPendingOnChainError:
        return _set(row, Outcome(DEFERRED, "awaiting_chain", "the settlement's previous operation is pending"))
    except PaymentEvidenceUsedError as exc:
        session.expire(s)
        return _exception(session, row, "evidence_used", exc.detail, s, sink=sink)
    except PartyNotActiveError as exc:
        session.expire(s)
        return _exception(session, row, "party_not_active", exc.detail, s, sink=sink)
    except RefundExceedsPaidError as exc:
        session.expire(s)
        return _exception(session, row, "refund_exceeds_paid", exc.detail, s, ledger_amount=s.paid_minor,
                          sink=sink)
    except LedgerError as exc:
        session.expire(s)
        return _exception(session, row, "settlement_not_refundable", exc.detail, s, sink=sink)
    row.refund_id, row.applied_amount_minor = refund.id, amount
    row.outbox_id = s.outbox_id
    return _set(row, Outcome(APPLIED, "refunded", f"refund {refund.id} of {amount} enqueued"))


def apply_deferred(runtime: Runtime, session: Session, settlement_id: str) -> int:
    """Retry the deferred callbacks of one settlement (oldest first), in the caller's transaction;
    returns how many left the deferred state. Called when the chain confirms an operation of the
    settlement, so a payment waits for its recording and a refund for its payment."""
    rows = list(session.scalars(select(ProviderCallback).where(
        ProviderCallback.outcome == DEFERRED, ProviderCallback.settlement_id == settlement_id)
        .order_by(ProviderCallback.id).limit(DEFERRED_PER_SETTLEMENT_MAX)))
    if not rows:
        return 0
    get_settlement(session, settlement_id)  # a settlement that vanished raises, leaving rows deferred
    moved = 0
    rows.sort(key=lambda r: (r.kind != "payment", r.id))  # a payment first: the refunds need it
    for row in rows:
        if row.attempts >= DEFERRED_ATTEMPTS_MAX:
            continue
        outcome = apply_callback(runtime, session, row)
        record_callback_digest(session, row)
        if outcome.outcome != DEFERRED:
            moved += 1
            log.info("deferred callback %s for settlement %s: %s", row.id, settlement_id, outcome.outcome)
    return moved
