"""Settlement state transitions after recording: pay (``mark_paid``), cancel, refund (by the
payee or evidenced by the provider). Each writes its operation, outbox row and journal postings in
the caller's transaction; the follower confirms them (``events.py``)."""


from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    InvalidAmountError,
    InvalidStateError,
    NotSettlementPartyError,
    PaidAmountMismatchError,
    RefundExceedsPaidError,
    RefundExistsError,
    ValidationError,
)
from settlement.core.money import Money
from settlement.domains.anchoring import digest_changed
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.commands import (
    _HASH_RE,
    _PROVIDER_RE,
    CONTRACT,
    GAS_CANCEL,
    GAS_MARK_PAID,
    GAS_REFUND,
    REFUND_REFERENCE_LEN_MAX,
    _ascii_hex,
    _check_text,
    _finance_member,
    _load,
    _party_call,
    _party_signer,
    acting_call,
    _require_quiet,
    _require_state,
    _start,
    reference_hash,
    settlement_struct,
)
from settlement.domains.settlements.fx import check_amount
from settlement.pipeline import intents
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models.settlements import (
    SYSTEM_OWNER,
    Settlement,
    SettlementOperation,
    SettlementRefund,
)

__all__ = ["mark_paid", "cancel_settlement", "refund_settlement", "refund_by_provider", "refunds_of"]


# -- pay ---------------------------------------------------------------------------------------------------


def _paid_postings(s: Settlement) -> list[jr.Posting]:
    return [
        jr.debit(s.payer_id, jr.INSTRUCTED_PAYABLE, s.source_currency, s.source_amount_minor),
        jr.credit(SYSTEM_OWNER, jr.FX_CLEARING, s.source_currency, s.source_amount_minor),
        jr.debit(SYSTEM_OWNER, jr.FX_CLEARING, s.target_currency, s.target_amount_minor),
        jr.credit(s.payee_id, jr.INSTRUCTED_RECEIVABLE, s.target_currency, s.target_amount_minor),
        jr.debit(s.payee_id, jr.CLEARING_RECEIVABLE, s.target_currency, s.target_amount_minor),
        jr.credit(s.payer_id, jr.CLEARING_PAYABLE, s.target_currency, s.target_amount_minor),
    ]


def _amount_value(amount: int | Money, currency: str, field: str) -> int:
    if isinstance(amount, Money):
        if amount.currency != currency:
            raise InvalidAmountError(f"{field} must be in {currency}, got {amount.currency}", field=field)
        return amount.value
    return check_amount(amount, field)


def mark_paid(runtime: Runtime, session: Session, settlement: Settlement | str, provider: str,
              provider_txn_id_hash: str | bytes, amount: int | Money, *, by: str | None = None) -> Settlement:
    """Records a payment provider's evidence that the payee received the target amount, and
    enqueues ``markPaid``: relayed by the operator (``by`` None, e.g. from a verified callback) or
    confirmed by the payee's finance (``by`` = the payee's member id, signing with its account).

    ``provider``: 1-16 chars ``[a-z0-9_.-]`` (``"alipay"``); ``provider_txn_id_hash``: keccak256 of
    the provider's transaction id (:func:`provider_txn_hash`), 0x hex or 32 bytes; ``amount``:
    minor units of the target currency (an int, or Money in that currency), which must equal the
    target amount.

    Idempotent for callbacks: the same evidence again, once paid, returns the settlement unchanged.
    Raises SettlementNotFoundError, InvalidStateError, SettlementPendingOnChainError,
    PaidAmountMismatchError, ValidationError, NotSettlementPartyError.
    """
    if not isinstance(provider, str) or not _PROVIDER_RE.match(provider):
        raise ValidationError("provider must be 1-16 characters a-z 0-9 _ . -", field="provider")
    tx_hash = provider_txn_id_hash if isinstance(provider_txn_id_hash, str) \
        else "0x" + bytes(provider_txn_id_hash).hex()
    tx_hash = tx_hash.lower()
    if not _HASH_RE.match(tx_hash) or int(tx_hash, 16) == 0:
        raise ValidationError("provider_txn_id_hash must be a non-zero 32-byte hash", field="provider_txn_id_hash")
    s = _load(session, settlement)
    value = _amount_value(amount, s.target_currency, "amount")
    if s.provider_tx_hash == tx_hash and s.provider == provider and s.state not in ("instructed", "rejected"):
        return s  # the same evidence again: already applied
    _require_state(s, "instructed")
    _require_quiet(s)
    if value != s.target_amount_minor:
        raise PaidAmountMismatchError(f"paid {value}, the target amount is {s.target_amount_minor}",
                                      settlement_id=s.id, paid_minor=str(value),
                                      expected_minor=str(s.target_amount_minor))
    signer, requested_by = _party_signer(runtime, session, s, by, s.payee_id)
    row = enqueue(session, kind="settlement.pay", contract=CONTRACT, function="markPaid",
                  args=[settlement_struct(s), [_ascii_hex(provider, 16), tx_hash, value]], signer=signer,
                  gas_limit=GAS_MARK_PAID, aggregate_id=s.id)
    txn = jr.post(session, "settlement.paid", _paid_postings(s), settlement_id=s.id)
    _start(session, s, "pay", row.id, "paid", requested_by, journal_txn=txn, amount=value)
    s.paid_minor, s.provider, s.provider_tx_hash = value, provider, tx_hash
    session.flush()
    return s


# -- cancel -------------------------------------------------------------------------------------------------


def _record_txn(session: Session, s: Settlement) -> str:
    txn = session.scalar(select(SettlementOperation.journal_txn_id).where(
        SettlementOperation.settlement_id == s.id, SettlementOperation.kind == "record")
        .order_by(SettlementOperation.id).limit(1))
    if txn is None:
        raise InvalidStateError(f"settlement {s.id} has no recording journal entry")
    return txn


def cancel_settlement(runtime: Runtime, session: Session, settlement: Settlement | str, by: str, *,
                      own: intents.OwnKey | None = None) -> Settlement:
    """The payer (``by``) withdraws an instructed settlement: ``cancelSettlement`` signed by its
    account (custodial, or its own key with ``own``); the instruction's postings are reversed."""
    s = _load(session, settlement)
    if by != s.payer_id:
        raise NotSettlementPartyError(f"only the payer may cancel settlement {s.id}", settlement_id=s.id)
    _require_state(s, "instructed")
    _require_quiet(s)
    _finance_member(session, by)
    row = acting_call(runtime, session, by, own, kind="settlement.cancel", function="cancelSettlement",
                      args=[settlement_struct(s)], gas_limit=GAS_CANCEL, aggregate_id=s.id)
    txn = jr.reverse(session, _record_txn(session, s), "settlement.cancelled")
    _start(session, s, "cancel", row.id, "cancelled", by, journal_txn=txn)
    session.flush()
    return s


# -- refund -------------------------------------------------------------------------------------------------


def _refund_postings(s: Settlement, amount: int) -> list[jr.Posting]:
    if s.state == "settled":  # after net settlement the payee owes it back outside any cycle
        return [jr.debit(s.payer_id, jr.REFUND_RECEIVABLE, s.target_currency, amount),
                jr.credit(s.payee_id, jr.REFUND_PAYABLE, s.target_currency, amount)]
    return [jr.debit(s.payer_id, jr.CLEARING_PAYABLE, s.target_currency, amount),
            jr.credit(s.payee_id, jr.CLEARING_RECEIVABLE, s.target_currency, amount)]


def refund_settlement(runtime: Runtime, session: Session, settlement: Settlement | str, amount: int | Money,
                      reference: str, *, by: str | None = None, own: intents.OwnKey | None = None) -> SettlementRefund:
    """Refunds ``amount`` (target currency minor units) of a paid or settled settlement, partly or
    in full; refunds never exceed what was paid. ``by`` None: the operator relays; else it must be
    the payee (its finance account signs). ``reference`` (kept in the store; its keccak256 goes on
    chain) is unique per settlement, so a retried refund is refused with ``refund-exists``."""
    s = _load(session, settlement)
    _check_text(reference, "reference", REFUND_REFERENCE_LEN_MAX)
    value = _amount_value(amount, s.target_currency, "amount")
    ref_hash = reference_hash(reference)
    existing = session.scalar(select(SettlementRefund).where(SettlementRefund.settlement_id == s.id,
                                                             SettlementRefund.reference_hash == ref_hash))
    if existing is not None:
        raise RefundExistsError(f"settlement {s.id} already has a refund with this reference",
                                settlement_id=s.id, refund_id=existing.id)
    _require_state(s, "paid", "settled")
    _require_quiet(s)
    if value + s.refunded_minor > s.paid_minor:
        raise RefundExceedsPaidError(f"refunding {value} would bring refunds to {value + s.refunded_minor}, "
                                     f"above the {s.paid_minor} paid", settlement_id=s.id,
                                     refunded_minor=str(s.refunded_minor), paid_minor=str(s.paid_minor))
    if by is not None and by != s.payee_id:
        raise NotSettlementPartyError(f"member {by} may not do this to settlement {s.id}", settlement_id=s.id)
    refund = SettlementRefund(settlement_id=s.id, amount_minor=value, reference=reference, reference_hash=ref_hash,
                              requested_by=by or "operator", status="pending")
    session.add(refund)
    session.flush()
    digest_changed(session, "settlement.refund", refund)
    row, requested_by = _party_call(runtime, session, s, by, s.payee_id, own, kind="settlement.refund",
                                    function="refund", args=[settlement_struct(s), value, ref_hash],
                                    gas_limit=GAS_REFUND, aggregate_id=s.id)
    txn = jr.post(session, "settlement.refunded", _refund_postings(s, value), settlement_id=s.id)
    fully = s.refunded_minor + value == s.paid_minor
    _start(session, s, "refund", row.id, "refunded" if fully else s.state, requested_by, journal_txn=txn,
           amount=value, refund_id=refund.id)
    s.refunded_minor += value
    session.flush()
    return refund


def refund_by_provider(runtime: Runtime, session: Session, settlement: Settlement | str, provider: str,
                       provider_refund_id: str, amount: int | Money) -> SettlementRefund:
    """A provider's refund notification, relayed by the operator. Idempotent: the same provider
    refund id again returns the refund already recorded (whatever its state)."""
    if not isinstance(provider, str) or not _PROVIDER_RE.match(provider):
        raise ValidationError("provider must be 1-16 characters a-z 0-9 _ . -", field="provider")
    reference = f"{provider}:{provider_refund_id}"
    s = _load(session, settlement)
    existing = session.scalar(select(SettlementRefund).where(
        SettlementRefund.settlement_id == s.id, SettlementRefund.reference_hash == reference_hash(reference)))
    if existing is not None:
        return existing
    return refund_settlement(runtime, session, s, amount, reference, by=None)


def refunds_of(session: Session, settlement_id: str) -> list[SettlementRefund]:
    return list(session.scalars(select(SettlementRefund).where(SettlementRefund.settlement_id == settlement_id)
                                .order_by(SettlementRefund.id)))
