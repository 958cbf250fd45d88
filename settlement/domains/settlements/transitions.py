"""Settlement state transitions after recording: pay (``mark_paid``, attested provider evidence),
the payee's acknowledgement, cancel, refund (by the payee, or a provider's refund attested like a
payment). Each writes its operation, outbox row and journal postings in the caller's transaction;
the follower confirms them (``events.py``).

Separation of duties (the contract enforces the same): payment evidence is attested by the
operator's account (the service verified the provider's signature), never by a party to the
settlement; one provider transaction evidences one payment; both parties must be active; a
settlement is paid on or after its value date; the operator alone never refunds.
"""


from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    InvalidAmountError,
    InvalidStateError,
    NotAttestorError,
    NotSettlementPartyError,
    PaidAmountMismatchError,
    PartyNotActiveError,
    PaymentEvidenceUsedError,
    RefundExceedsPaidError,
    RefundExistsError,
    RefundNotByPayeeError,
    ValidationError,
    ValueDateNotReachedError,
)
from settlement.core.money import Money
from settlement.domains.anchoring import digest_changed
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.commands import (
    _HASH_RE,
    _PROVIDER_RE,
    CONTRACT,
    GAS_ACKNOWLEDGE,
    GAS_CANCEL,
    GAS_MARK_PAID,
    GAS_REFUND,
    REFUND_REFERENCE_LEN_MAX,
    _ascii_hex,
    _check_text,
    _finance_member,
    _load,
    acting_call,
    _require_quiet,
    _require_state,
    _start,
    provider_txn_hash,
    reference_hash,
    settlement_struct,
    utc_today,
)
from settlement.domains.settlements.fx import check_amount
from settlement.pipeline import intents
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models import Member, MemberAccount
from settlement.store.models.settlements import (
    SYSTEM_OWNER,
    NetPayment,
    Settlement,
    SettlementOperation,
    SettlementRefund,
)

__all__ = ["mark_paid", "acknowledge_receipt", "cancel_settlement", "refund_settlement", "refund_by_provider",
           "refunds_of", "attestor_member", "require_active", "require_evidence_unused", "check_evidence"]


# -- the attestor's rules ----------------------------------------------------------------------------------


def attestor_member(runtime: Runtime, session: Session) -> str:
    """The member whose account attests payment evidence: the operator's (its key signs the
    attestations; the contract requires the OPERATOR role)."""
    account = session.get(MemberAccount, runtime.operator.address)
    if account is None:
        raise NotAttestorError("the operator's account is no member: nothing can be attested")
    return account.member_id


def require_active(session: Session, subject: str, member_ids: list[str]) -> None:
    """Every member of ``member_ids`` (the parties to a payment, a cycle's members) is active."""
    for member_id in member_ids:
        member = session.get(Member, member_id)
        if member is None or member.status != "active":
            raise PartyNotActiveError(f"member {member_id} is {member.status if member else 'unknown'}: no money "
                                      f"moves for it", subject=subject, member_id=member_id)


def check_evidence(provider: str, provider_txn_id_hash: str | bytes, field: str = "provider_txn_id_hash") -> str:
    """The provider name checked and the transaction hash as lower-case 0x hex (non-zero)."""
    if not isinstance(provider, str) or not _PROVIDER_RE.match(provider):
        raise ValidationError("provider must be 1-16 characters a-z 0-9 _ . -", field="provider")
    tx_hash = provider_txn_id_hash if isinstance(provider_txn_id_hash, str) \
        else "0x" + bytes(provider_txn_id_hash).hex()
    tx_hash = tx_hash.lower()
    if not _HASH_RE.match(tx_hash) or int(tx_hash, 16) == 0:
        raise ValidationError(f"{field} must be a non-zero 32-byte hash", field=field)
    return tx_hash


def require_evidence_unused(session: Session, provider: str, tx_hash: str, subject: str) -> None:
    """No other settlement payment nor net payment used (provider, tx_hash): one provider
    transaction evidences one payment (the contract's ``SettlementEvidenceUsed``)."""
    other = session.scalar(select(Settlement.id).where(
        Settlement.provider_tx_hash == tx_hash, Settlement.provider == provider, Settlement.id != subject,
        Settlement.state.not_in(("instructed", "rejected"))).limit(1))
    if other is None:
        other = session.scalar(select(NetPayment.cycle_id).where(
            NetPayment.provider_tx_hash == tx_hash, NetPayment.provider == provider,
            NetPayment.status != "rejected").limit(1))
    if other is not None:
        raise PaymentEvidenceUsedError(f"this {provider} transaction already evidenced the payment of {other}",
                                       used_by=other)


def _attest_settlement(runtime: Runtime, session: Session, s: Settlement) -> str:
    """The attestor's member id, checked: not a party to ``s``; both parties active."""
    attestor = attestor_member(runtime, session)
    if attestor in (s.payer_id, s.payee_id):
        raise NotAttestorError(f"the attestor {attestor} is a party to settlement {s.id}", settlement_id=s.id)
    require_active(session, s.id, [s.payer_id, s.payee_id])
    return attestor


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
              provider_txn_id_hash: str | bytes, amount: int | Money, *, today: date | None = None) -> Settlement:
    """Records a payment provider's evidence that the payee received the target amount, and
    enqueues ``markPaid`` signed by the operator's account: the attestation of the party that
    verified the provider's signature (a verified callback, or the operator over the API). The
    payee's own word is :func:`acknowledge_receipt`.

    ``provider``: 1-16 chars ``[a-z0-9_.-]`` (``"alipay"``); ``provider_txn_id_hash``: keccak256 of
    the provider's transaction id (:func:`provider_txn_hash`), 0x hex or 32 bytes; ``amount``:
    minor units of the target currency (an int, or Money in that currency), which must equal the
    target amount.

    Idempotent for callbacks: the same evidence again, once paid, returns the settlement unchanged.
    Raises SettlementNotFoundError, InvalidStateError, SettlementPendingOnChainError,
    PaidAmountMismatchError, ValidationError, PaymentEvidenceUsedError, PartyNotActiveError,
    ValueDateNotReachedError, NotAttestorError.
    """
    tx_hash = check_evidence(provider, provider_txn_id_hash)
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
    day = today or utc_today()
    if s.value_date > day:
        raise ValueDateNotReachedError(f"settlement {s.id} has value date {s.value_date.isoformat()}; it can be "
                                       f"paid from that day", settlement_id=s.id, value_date=s.value_date.isoformat())
    _attest_settlement(runtime, session, s)
    require_evidence_unused(session, provider, tx_hash, s.id)
    row = enqueue(session, kind="settlement.pay", contract=CONTRACT, function="markPaid",
                  args=[settlement_struct(s), [_ascii_hex(provider, 16), tx_hash, value]],
                  signer=runtime.operator.address, gas_limit=GAS_MARK_PAID, aggregate_id=s.id)
    txn = jr.post(session, "settlement.paid", _paid_postings(s), settlement_id=s.id)
    _start(session, s, "pay", row.id, "paid", "operator", journal_txn=txn, amount=value)
    s.paid_minor, s.provider, s.provider_tx_hash = value, provider, tx_hash
    session.flush()
    return s


# -- acknowledge ----------------------------------------------------------------------------------------


def acknowledge_receipt(runtime: Runtime, session: Session, settlement: Settlement | str, by: str, *,
                        own: intents.OwnKey | None = None) -> Settlement:
    """The payee (``by``) acknowledges receiving the money: ``acknowledgeReceipt`` signed by its
    account (custodial, or its own key with ``own``). Recorded on chain; it changes no state: the
    payer may still cancel and the settlement is not nettable until attested evidence marks it paid."""
    s = _load(session, settlement)
    if by != s.payee_id:
        raise NotSettlementPartyError(f"only the payee acknowledges receipt of settlement {s.id}", settlement_id=s.id)
    _require_state(s, "instructed", "paid")
    _require_quiet(s)
    _finance_member(session, by)
    acknowledged = session.scalar(select(SettlementOperation.id).where(
        SettlementOperation.settlement_id == s.id, SettlementOperation.kind == "acknowledge",
        SettlementOperation.status != "rejected").limit(1))
    if acknowledged is not None:
        raise InvalidStateError(f"settlement {s.id}: its payee already acknowledged receipt", settlement_id=s.id,
                                state=s.state)
    row = acting_call(runtime, session, by, own, kind="settlement.acknowledge", function="acknowledgeReceipt",
                      args=[settlement_struct(s)], gas_limit=GAS_ACKNOWLEDGE, aggregate_id=s.id)
    _start(session, s, "acknowledge", row.id, s.state, by)
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


def _check_refund(session: Session, s: Settlement, value: int, ref_hash: str) -> None:
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


def _book_refund(session: Session, s: Settlement, row_id: int, value: int, refund: SettlementRefund,
                 requested_by: str) -> None:
    txn = jr.post(session, "settlement.refunded", _refund_postings(s, value), settlement_id=s.id)
    fully = s.refunded_minor + value == s.paid_minor
    _start(session, s, "refund", row_id, "refunded" if fully else s.state, requested_by, journal_txn=txn,
           amount=value, refund_id=refund.id)
    s.refunded_minor += value
    session.flush()


def refund_settlement(runtime: Runtime, session: Session, settlement: Settlement | str, amount: int | Money,
                      reference: str, *, by: str | None, own: intents.OwnKey | None = None) -> SettlementRefund:
    """The payee (``by``) refunds ``amount`` (target currency minor units) of a paid or settled
    settlement, partly or in full: it returns the money, so its account signs ``refund``
    (custodial, or its own key with ``own``). Refunds never exceed what was paid. ``reference``
    (kept in the store; its keccak256 goes on chain) is unique per settlement, so a retried refund
    is refused with ``refund-exists``. The operator alone cannot refund (``by`` None is refused):
    it relays a provider's refund notification with :func:`refund_by_provider`."""
    s = _load(session, settlement)
    if by is None:
        raise RefundNotByPayeeError(f"the operator alone cannot refund settlement {s.id}: the payee refunds, or a "
                                    "provider's refund notification is attested", settlement_id=s.id)
    if by != s.payee_id:
        raise NotSettlementPartyError(f"member {by} may not do this to settlement {s.id}", settlement_id=s.id)
    _check_text(reference, "reference", REFUND_REFERENCE_LEN_MAX)
    value = _amount_value(amount, s.target_currency, "amount")
    ref_hash = reference_hash(reference)
    _check_refund(session, s, value, ref_hash)
    _finance_member(session, by)
    require_active(session, s.id, [s.payer_id])
    refund = SettlementRefund(settlement_id=s.id, amount_minor=value, reference=reference, reference_hash=ref_hash,
                              requested_by=by, status="pending")
    session.add(refund)
    session.flush()
    digest_changed(session, "settlement.refund", refund)
    row = acting_call(runtime, session, by, own, kind="settlement.refund", function="refund",
                      args=[settlement_struct(s), value, ref_hash], gas_limit=GAS_REFUND, aggregate_id=s.id)
    _book_refund(session, s, row.id, value, refund, by)
    return refund


def refund_by_provider(runtime: Runtime, session: Session, settlement: Settlement | str, provider: str,
                       provider_refund_id: str, amount: int | Money) -> SettlementRefund:
    """A provider's refund notification, attested by the operator (``attestRefund``: the refund
    transaction ``provider_txn_hash(provider_refund_id)`` evidences one refund only; its reference
    on the settlement is ``"<provider>:<provider_refund_id>"``). Idempotent: the same provider
    refund id again returns the refund already recorded (whatever its state)."""
    tx_hash = check_evidence(provider, provider_txn_hash(provider_refund_id) if isinstance(provider_refund_id, str)
                             else "", "provider_refund_id")
    reference = f"{provider}:{provider_refund_id}"
    s = _load(session, settlement)
    ref_hash = reference_hash(reference)
    existing = session.scalar(select(SettlementRefund).where(
        SettlementRefund.settlement_id == s.id, SettlementRefund.reference_hash == ref_hash))
    if existing is not None:
        return existing
    _check_text(reference, "reference", REFUND_REFERENCE_LEN_MAX)
    value = _amount_value(amount, s.target_currency, "amount")
    _check_refund(session, s, value, ref_hash)
    _attest_settlement(runtime, session, s)
    used = session.scalar(select(SettlementRefund.settlement_id).where(
        SettlementRefund.reference == reference, SettlementRefund.status != "rejected").limit(1))
    if used is not None:
        raise PaymentEvidenceUsedError(f"this {provider} refund already evidenced a refund of {used}", used_by=used)
    refund = SettlementRefund(settlement_id=s.id, amount_minor=value, reference=reference, reference_hash=ref_hash,
                              requested_by="operator", status="pending")
    session.add(refund)
    session.flush()
    digest_changed(session, "settlement.refund", refund)
    row = enqueue(session, kind="settlement.refund", contract=CONTRACT, function="attestRefund",
                  args=[settlement_struct(s), ref_hash, [_ascii_hex(provider, 16), tx_hash, value]],
                  signer=runtime.operator.address, gas_limit=GAS_REFUND, aggregate_id=s.id)
    _book_refund(session, s, row.id, value, refund, "operator")
    return refund


def refunds_of(session: Session, settlement_id: str) -> list[SettlementRefund]:
    return list(session.scalars(select(SettlementRefund).where(SettlementRefund.settlement_id == settlement_id)
                                .order_by(SettlementRefund.id)))
