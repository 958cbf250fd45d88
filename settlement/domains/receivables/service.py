"""Receivables (supply-chain finance): the service side of ``ReceivableRegistry``.

Every command checks the request against the store's mirror of the chain, then writes its
operation row and ONE outbox row (the contract call, signed by the acting member's custodial
account, or relayed by the operator for an own-key EIP-712 approval) in the caller's transaction.
Nothing changes in the mirror until the follower sees the contract's event (``chain.py``); a
revert marks the operation rejected with the decoded custom error. Bad requests raise a
:class:`~settlement.core.errors.LedgerError` before anything is written.

One operation at a time per receivable (``busy_operation_id``, taken under a row lock): part ids
are derived from the order of splits, so the service predicts them only when no other change to
the receivable is in flight. A second request meanwhile gets ``receivable-operation-pending``.

"Today" is the chain's: the latest block's UTC day (the contract's ``block.timestamp / 1 days``),
so maturity, overdue and offer expiry agree with what the contract will decide.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from settlement.chain.deploy import RECEIVABLE_GRACE_PERIOD_DAYS
from settlement.core.errors import (
    AmountExceedsHoldingError, ChainRevertError, ChainUnavailableError, EvidenceInvalidError, ForbiddenError,
    InvalidAmountError, InvalidCounterpartyError, InvalidCursorError, InvalidInvoiceError, InvalidOfferError,
    InvalidSplitError, InvoiceAlreadyRegisteredError, LedgerError, MemberSuspendedError, NoCustodialAccountError,
    NoFinancingRequestError, NotPartFinancierError, NotPartHolderError, NotReceivableBuyerError,
    NotReceivableSupplierError, NotRequestedFinancierError, OfferExpiredError, OfferNotCurrentError,
    PartAlreadyFinancedError, PartLockedError, PartTooSmallError, ReceivableNotFoundError,
    ReceivableNotMaturedError, ReceivableNotOverdueError, ReceivableOperationPendingError,
    ReceivablePartNotFoundError, ReceivableWrongStatusError, SignatureExpiredError, SignatureInvalidError,
    TooManyPartsError, UnsupportedCurrencyError, ValidationError,
)
from settlement.domains.receivables.terms import (
    FINANCING_DAYS_MAX, RATE_PPM_MAX, RATE_PPM_SCALE, DayCountBasis, FinancingTerms, canonical_invoice_hash,
    day_number, financing_terms, normalise_invoice_number, part_id as derive_part_id, receivable_id as derive_receivable_id,
)
from settlement.core.money import Money, check_currency
from settlement.pipeline.outbox import enqueue
from settlement.domains.receivables import typed_data as approvals, evidence as ev
from settlement.domains.receivables.models import (
    AMOUNT_MINOR_MAX_STORE, CONTRACT, PART_AMOUNT_MIN, PARTS_PER_RECEIVABLE_MAX, PARTY_ROLES, Actor,
    EvidenceCheck, HistoryEntry, display_status,
)
from settlement.runtime import Runtime
from settlement.store.models import Member, MemberAccount, OutboxRow
from settlement.store.models.receivables import (
    Receivable, ReceivableEvent, ReceivableEvidence, ReceivableOperation, ReceivableParty, ReceivablePart,
    ReceivablePayment,
)

__all__ = [
    "GAS", "LIST_LIMIT_MAX", "OFFER_VALIDITY_S_MAX", "SIGNATURE_DEADLINE_S_MAX", "ISSUE_DATE_FUTURE_DAYS_MAX",
    "Accepted", "register_receivable", "confirm_receivable", "confirmation_typed_data", "confirm_with_signature",
    "split_part", "transfer_part", "request_financing", "withdraw_financing_request", "offer_financing",
    "acceptance_typed_data", "accept_offer", "repay_receivable", "declare_default", "add_evidence",
    "evidence_of", "get_receivable", "list_receivables", "parts_of", "operations_of", "history_of",
    "payments_of", "instruct_payments", "chain_today", "grace_period_days", "status_for_display",
    "rate_ppm_from_decimal", "custodial_signer",
]

log = logging.getLogger("ledger.receivables")

# Gas limits per call, measured on anvil (bench/bench_receivables.py) with about 2x margin; a
# split pays per new part.
GAS: dict[str, int] = {
    "register": 400_000, "confirm": 150_000, "confirm_signed": 200_000, "split_base": 150_000,
    "split_per_part": 120_000, "transfer": 150_000, "request_financing": 200_000, "withdraw_financing": 120_000,
    "offer": 250_000, "accept": 200_000, "accept_signed": 250_000, "repay_base": 150_000,
    "repay_per_part": 30_000, "default": 200_000,
}
LIST_LIMIT_MAX = 200
OFFER_VALIDITY_S_MAX = 30 * 86_400
SIGNATURE_DEADLINE_S_MAX = 7 * 86_400
ISSUE_DATE_FUTURE_DAYS_MAX = 1
INVOICE_NUMBER_INPUT_LEN_MAX = 200
PAYMENTS_INSTRUCT_BATCH_MAX = 100
_CHAIN_TIME_TTL_S = 1.0
_HEX32_RE = re.compile(r"^0x[0-9a-f]{64}$")
_MEMBER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
DAY_S = 86_400


# -- chain reads ----------------------------------------------------------------------------------

_grace_cache: dict[str, int] = {}
_time_cache: dict[str, tuple[float, int]] = {}
_cache_lock = threading.Lock()


def chain_time_s(runtime: Runtime) -> int:
    """The latest block's timestamp (cached for a second); wall-clock time if the chain is down."""
    key = runtime.chain.rpc_url
    now = time.monotonic()
    with _cache_lock:
        hit = _time_cache.get(key)
    if hit is not None and now - hit[0] < _CHAIN_TIME_TTL_S:
        return hit[1]
    try:
        block = runtime.chain.get_block("latest")
        stamp = int(block["timestamp"], 16) if isinstance(block["timestamp"], str) else int(block["timestamp"])
    except ChainUnavailableError:
        return int(time.time())
    with _cache_lock:
        _time_cache[key] = (now, stamp)
    return stamp


def forget_chain_time() -> None:
    """Drop the cached chain time (tests that move the chain's clock)."""
    with _cache_lock:
        _time_cache.clear()


def chain_today(runtime: Runtime) -> date:
    return date(1970, 1, 1) + timedelta(days=chain_time_s(runtime) // DAY_S)


def grace_period_days(runtime: Runtime) -> int:
    """The registry's ``gracePeriodDays`` (immutable: read once per contract)."""
    try:
        address = runtime.address(CONTRACT)
    except LookupError:
        return RECEIVABLE_GRACE_PERIOD_DAYS
    with _cache_lock:
        if address in _grace_cache:
            return _grace_cache[address]
    try:
        (days,) = runtime.chain.call(CONTRACT, address, "gracePeriodDays")
    except (ChainUnavailableError, ChainRevertError):
        return RECEIVABLE_GRACE_PERIOD_DAYS
    with _cache_lock:
        _grace_cache[address] = int(days)
    return int(days)


def status_for_display(runtime: Runtime, r: Receivable, today: date | None = None) -> str:
    return display_status(r.status, r.due_date, today or chain_today(runtime), grace_period_days(runtime))


def _onchain_nonce(runtime: Runtime, member: Member) -> int:
    (nonce,) = runtime.chain.call(CONTRACT, runtime.address(CONTRACT), "nonces", [member.onchain_id])
    return int(nonce)


def _member_of_account(runtime: Runtime, session: Session, address: str) -> str | None:
    """The member id an account belongs to: the registry decides, the store if the chain is down."""
    try:
        (oid,) = runtime.chain.call("ConsortiumRegistry", runtime.address("ConsortiumRegistry"), "memberOf",
                                    [address])
        oid_hex = "0x" + bytes(oid).hex()
        return session.scalar(select(Member.id).where(Member.onchain_id == oid_hex))
    except (ChainUnavailableError, LookupError):
        return session.scalar(select(MemberAccount.member_id).where(MemberAccount.address == address))


# -- small checks ---------------------------------------------------------------------------------


def _require_active(actor: Actor) -> None:
    if not actor.active:
        raise MemberSuspendedError(f"member {actor.member_id} is suspended", member_id=actor.member_id)


def _require_role(actor: Actor, role: str) -> None:
    _require_active(actor)
    if not actor.has(role):
        raise ForbiddenError(f"this needs the {role} role", required_roles=[role])


def custodial_signer(session: Session, member_id: str) -> str:
    """The address of an account of ``member_id`` whose key the service holds."""
    address = session.scalar(select(MemberAccount.address).where(
        MemberAccount.member_id == member_id, MemberAccount.encrypted_key.is_not(None))
        .order_by(MemberAccount.created_at, MemberAccount.address).limit(1))
    if address is None:
        raise NoCustodialAccountError(f"the service holds no key for member {member_id}; sign with your own key",
                                      member_id=member_id)
    return address


def _counterparty(session: Session, member_id: str, role: str | None, field: str, actor: Actor) -> Member:
    """An active member (with ``role`` if given) other than the actor; InvalidCounterpartyError else."""
    member = session.get(Member, member_id) if isinstance(member_id, str) and _MEMBER_RE.match(member_id) else None
    if member is None:
        raise InvalidCounterpartyError(f"no member {str(member_id)[:64]!r}", field=field)
    if member.id == actor.member_id:
        raise InvalidCounterpartyError(f"the {field} cannot be yourself", field=field)
    if member.status != "active":
        raise InvalidCounterpartyError(f"member {member.id!r} is {member.status}", field=field)
    if role is not None and role not in member.roles:
        raise InvalidCounterpartyError(f"member {member.id!r} does not have the {role} role", field=field)
    return member


def _check_hex32(value: str, what: str, error: type[LedgerError]) -> str:
    if not isinstance(value, str) or not _HEX32_RE.match(value):
        raise error(f"no {what} {str(value)[:80]!r}")
    return value


def rate_ppm_from_decimal(text: str) -> int:
    """A yearly rate as a decimal string ("0.045" = 4.5 %) to exact parts per million."""
    try:
        rate = Decimal(text) if isinstance(text, str) and len(text) <= 20 else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite():
        raise InvalidOfferError("discount_rate must be a decimal string such as \"0.045\"", field="discount_rate")
    ppm = rate * RATE_PPM_SCALE
    if ppm != ppm.to_integral_value() or not 0 <= ppm <= RATE_PPM_MAX:
        raise InvalidOfferError(f"discount_rate must be within 0..1 with at most 6 decimals, got {text!r}",
                                field="discount_rate")
    return int(ppm)


# -- loading with visibility -----------------------------------------------------------------------


def _is_party(session: Session, actor: Actor, r: Receivable) -> bool:
    if actor.sees_everything or actor.member_id in (r.supplier_id, r.buyer_id):
        return True
    return session.scalar(select(ReceivableParty.id).where(
        ReceivableParty.receivable_id == r.id, ReceivableParty.member_id == actor.member_id).limit(1)) is not None


def get_receivable(session: Session, actor: Actor, receivable_id: str, *, for_update: bool = False) -> Receivable:
    """The receivable if ``actor`` is a party to it (or an operator/auditor); not found otherwise."""
    _check_hex32(receivable_id, "receivable", ReceivableNotFoundError)
    q = select(Receivable).where(Receivable.id == receivable_id)
    if for_update:
        q = q.with_for_update()
    r = session.scalar(q)
    if r is None or not _is_party(session, actor, r):
        raise ReceivableNotFoundError(f"no receivable {receivable_id}", receivable_id=receivable_id)
    return r


def _part(session: Session, r: Receivable, part_id: str) -> ReceivablePart:
    _check_hex32(part_id, "part", ReceivablePartNotFoundError)
    p = session.get(ReceivablePart, part_id)
    if p is None or p.receivable_id != r.id:
        raise ReceivablePartNotFoundError(f"receivable {r.id} has no part {part_id}", part_id=part_id)
    return p


def _take(session: Session, r: Receivable) -> None:
    """Refuse when another operation on ``r`` is in flight (the row is locked by the caller)."""
    if r.busy_operation_id is None:
        return
    op = session.get(ReceivableOperation, r.busy_operation_id)
    if op is not None and op.status == "pending":
        row = session.get(OutboxRow, op.outbox_id)
        if row is not None and row.status == "failed":
            # Refused before any hook could run (no key, node refused it for good).
            op.status, op.error_name = "rejected", row.error_name or "NotSent"
            r.busy_operation_id = None
            return
        raise ReceivableOperationPendingError(
            f"operation {op.id} ({op.kind}) on this receivable is not confirmed on chain yet; retry when it is",
            operation_id=op.id, operation_kind=op.kind)
    r.busy_operation_id = None


def _require_status(r: Receivable, runtime: Runtime, *allowed: str) -> str:
    shown = status_for_display(runtime, r)
    if r.status not in allowed:
        raise ReceivableWrongStatusError(f"receivable {r.id} is {shown}; this needs {' or '.join(allowed)}",
                                         receivable_id=r.id, receivable_status=shown)
    return shown


@dataclass(frozen=True)
class Accepted:
    """What a command wrote: the receivable, its new operation(s) (the last one holds the lock)."""

    receivable: Receivable
    operations: tuple[ReceivableOperation, ...]
    part_ids: tuple[str, ...] = ()
    terms: FinancingTerms | None = None

    @property
    def operation(self) -> ReceivableOperation:
        return self.operations[-1]


def _operation(session: Session, r: Receivable, actor: Actor, kind: str, *, function: str, args: list,
               signer: str, gas: int, part_id: str | None = None, params: dict | None = None,
               nonce_member_id: str | None = None, lock: bool = True) -> ReceivableOperation:
    row = enqueue(session, kind=f"receivable.{kind}", contract=CONTRACT, function=function, args=args,
                  signer=signer, gas_limit=gas, aggregate_id=r.id)
    op = ReceivableOperation(receivable_id=r.id, part_id=part_id, kind=kind, requested_by=actor.member_id,
                             params=params or {}, outbox_id=row.id, nonce_member_id=nonce_member_id,
                             status="pending")
    session.add(op)
    session.flush()
    if lock:
        r.busy_operation_id = op.id
    return op


def _add_party(session: Session, receivable_id: str, member_id: str | None, role: str) -> None:
    if member_id is None or role not in PARTY_ROLES:
        return
    exists = session.scalar(select(ReceivableParty.id).where(
        ReceivableParty.receivable_id == receivable_id, ReceivableParty.member_id == member_id,
        ReceivableParty.role == role).limit(1))
    if exists is None:
        session.add(ReceivableParty(receivable_id=receivable_id, member_id=member_id, role=role))


# -- register and confirm ---------------------------------------------------------------------------


def register_receivable(runtime: Runtime, session: Session, actor: Actor, *, buyer_id: str, invoice_number: str,
                        face_value: Money, issue_date: date, due_date: date) -> Accepted:
    """A supplier registers an invoice against ``buyer_id``.

    The invoice number is canonicalised (NFKC, whitespace collapsed, upper case) before both the
    store's (supplier, buyer, number) uniqueness check and the on-chain invoice hash; an invoice
    already registered (in the store, or on chain around the service) is refused.
    """
    _require_role(actor, "supplier")
    supplier = session.get(Member, actor.member_id)
    if supplier is None:
        raise ForbiddenError("the acting member is unknown to the store")
    buyer = _counterparty(session, buyer_id, "buyer", "buyer_id", actor)
    if not isinstance(invoice_number, str) or len(invoice_number) > INVOICE_NUMBER_INPUT_LEN_MAX:
        raise InvalidInvoiceError("invoice_number must be a string of at most 200 characters",
                                  field="invoice_number")
    try:
        normalized = normalise_invoice_number(invoice_number)
    except ValidationError as exc:
        raise InvalidInvoiceError(exc.detail, field="invoice_number") from None
    if not isinstance(face_value, Money):
        raise InvalidAmountError("face_value must be money")
    check_currency(face_value.currency)
    if not PART_AMOUNT_MIN <= face_value.value <= AMOUNT_MINOR_MAX_STORE:
        raise InvalidAmountError(f"face value must be within {PART_AMOUNT_MIN}..{AMOUNT_MINOR_MAX_STORE} minor units",
                                 field="face_value")
    today = chain_today(runtime)
    if due_date < issue_date:
        raise InvalidInvoiceError(f"due date {due_date} is before the issue date {issue_date}", field="due_date")
    if issue_date > today + timedelta(days=ISSUE_DATE_FUTURE_DAYS_MAX):
        raise InvalidInvoiceError(f"issue date {issue_date} is in the future", field="issue_date")
    if (due_date - issue_date).days > FINANCING_DAYS_MAX:
        raise InvalidInvoiceError(f"the term exceeds {FINANCING_DAYS_MAX} days", field="due_date")
    try:
        day_number(issue_date)
    except ValidationError as exc:
        raise InvalidInvoiceError(exc.detail, field="issue_date") from None

    invoice_hash = "0x" + canonical_invoice_hash(
        normalized, bytes.fromhex(supplier.onchain_id[2:]), bytes.fromhex(buyer.onchain_id[2:]), face_value.value,
        face_value.currency, issue_date, due_date).hex()
    rid = "0x" + derive_receivable_id(bytes.fromhex(supplier.onchain_id[2:]), bytes.fromhex(invoice_hash[2:])).hex()
    key = f"{supplier.id}|{buyer.id}|{normalized}"
    taken = session.scalar(select(Receivable).where(or_(Receivable.uniqueness_key == key,
                                                        Receivable.invoice_hash == invoice_hash)).limit(1))
    if taken is not None and taken.status != "rejected":
        raise InvoiceAlreadyRegisteredError(
            f"invoice {normalized!r} of {supplier.id} to {buyer.id} is registered already as {taken.id}",
            receivable_id=taken.id, invoice_number_normalized=normalized)
    _check_not_on_chain(runtime, invoice_hash, normalized)

    r = taken if taken is not None and taken.id == rid else None
    if taken is not None and r is None:
        taken.uniqueness_key = None  # a rejected row with other terms: its key is free again
        session.flush()
    if r is None:
        r = Receivable(id=rid, supplier_id=supplier.id, buyer_id=buyer.id, part_count=0)
        session.add(r)
    r.invoice_number = invoice_number.strip()
    r.invoice_number_normalized = normalized
    r.uniqueness_key = key
    r.invoice_hash = invoice_hash
    r.face_value_minor = face_value.value
    r.currency = face_value.currency
    r.issue_date, r.due_date = issue_date, due_date
    r.status, r.rejection, r.busy_operation_id = "pending", None, None
    session.flush()
    _add_party(session, rid, supplier.id, "supplier")
    _add_party(session, rid, buyer.id, "buyer")
    signer = custodial_signer(session, supplier.id)
    args = [buyer.onchain_id, invoice_hash, face_value.value, "0x" + face_value.currency.encode().hex(),
            day_number(issue_date), day_number(due_date)]
    op = _operation(session, r, actor, "register", function="register", args=args, signer=signer,
                    gas=GAS["register"], params={"invoice_number_normalized": normalized})
    log.info("receivable %s registered by %s against %s (%s %s), outbox %s", rid, supplier.id, buyer.id,
             face_value.value, face_value.currency, op.outbox_id)
    return Accepted(r, (op,), ("0x" + derive_part_id(bytes.fromhex(rid[2:]), 0).hex(),))


def _check_not_on_chain(runtime: Runtime, invoice_hash: str, normalized: str) -> None:
    """Refuse an invoice hash the registry already holds (registered around the service)."""
    try:
        (existing,) = runtime.chain.call(CONTRACT, runtime.address(CONTRACT), "receivableOfInvoice", [invoice_hash])
    except (ChainUnavailableError, LookupError):
        return  # the contract refuses it anyway; the failure hook reports it
    if any(existing):
        raise InvoiceAlreadyRegisteredError(f"invoice {normalized!r} is registered on chain already",
                                            receivable_id="0x" + bytes(existing).hex())


def confirm_receivable(runtime: Runtime, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """The buyer confirms, through its custodial account."""
    r = _for_buyer(runtime, session, actor, receivable_id)
    signer = custodial_signer(session, actor.member_id)
    op = _operation(session, r, actor, "confirm", function="confirm", args=[r.id], signer=signer,
                    gas=GAS["confirm"])
    return Accepted(r, (op,))


def _for_buyer(runtime: Runtime, session: Session, actor: Actor, receivable_id: str) -> Receivable:
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, may confirm receivable {r.id}",
                                      receivable_id=r.id)
    _require_role(actor, "buyer")
    _take(session, r)
    _require_status(r, runtime, "registered")
    return r


def _signature_nonce(runtime: Runtime, session: Session, member: Member) -> int:
    """The member's next EIP-712 nonce once its own-key approvals in flight are mined."""
    in_flight = session.scalar(select(func.count()).select_from(ReceivableOperation).where(
        ReceivableOperation.nonce_member_id == member.id, ReceivableOperation.status == "pending")) or 0
    return _onchain_nonce(runtime, member) + int(in_flight)


def _deadline(runtime: Runtime, deadline: int | None) -> int:
    now = chain_time_s(runtime)
    if deadline is None:
        return now + 3600
    if type(deadline) is not int or deadline > now + SIGNATURE_DEADLINE_S_MAX:
        raise ValidationError(f"deadline must be unix seconds within {SIGNATURE_DEADLINE_S_MAX} s from now",
                              field="deadline")
    if deadline < now:
        raise SignatureExpiredError(f"deadline {deadline} has passed (chain time {now})", deadline=deadline)
    return deadline


def _chain_id(runtime: Runtime) -> int:
    return runtime.manifest.chain_id if runtime.manifest else runtime.chain.chain_id()


def confirmation_typed_data(runtime: Runtime, session: Session, actor: Actor, receivable_id: str,
                            deadline: int | None = None) -> dict[str, Any]:
    """The EIP-712 ``ConfirmReceivable`` the buyer signs with its own key."""
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, confirms receivable {r.id}",
                                      receivable_id=r.id)
    _require_status(r, runtime, "registered")
    buyer = session.get(Member, r.buyer_id)
    return approvals.confirm_typed_data(_chain_id(runtime), runtime.address(CONTRACT), receivable_id=r.id,
                                        invoice_hash=r.invoice_hash, nonce=_signature_nonce(runtime, session, buyer),
                                        deadline=_deadline(runtime, deadline))


def _check_signed_by(runtime: Runtime, session: Session, typed: dict[str, Any], signature: str,
                     member: Member) -> str:
    signer = approvals.recover_signer(typed, signature)
    owner = _member_of_account(runtime, session, signer)
    if owner != member.id:
        raise SignatureInvalidError(f"the signature recovers to {signer}, not an account of {member.id} "
                                    "(or it was made over other terms or another nonce)", signer=signer)
    return signer


def confirm_with_signature(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, *,
                           signature: str, deadline: int) -> Accepted:
    """The buyer's own-key confirmation, relayed by the operator; checked here first."""
    r = _for_buyer(runtime, session, actor, receivable_id)
    approvals.check_signature_hex(signature)
    deadline = _deadline(runtime, deadline)
    buyer = session.get(Member, r.buyer_id)
    typed = approvals.confirm_typed_data(_chain_id(runtime), runtime.address(CONTRACT), receivable_id=r.id,
                                         invoice_hash=r.invoice_hash,
                                         nonce=_signature_nonce(runtime, session, buyer), deadline=deadline)
    signer = _check_signed_by(runtime, session, typed, signature, buyer)
    op = _operation(session, r, actor, "confirm_signed", function="confirmWithSignature",
                    args=[r.id, deadline, signature.lower()], signer=runtime.operator.address,
                    gas=GAS["confirm_signed"], params={"signer": signer, "deadline": deadline},
                    nonce_member_id=buyer.id)
    return Accepted(r, (op,))


# -- parts ------------------------------------------------------------------------------------------


def _movable_part(runtime: Runtime, session: Session, actor: Actor, receivable_id: str,
                  part_id: str) -> tuple[Receivable, ReceivablePart]:
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = _part(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    _take(session, r)
    _require_status(r, runtime, "confirmed")
    if p.financed:
        raise PartAlreadyFinancedError(f"part {p.id} is financed: it can be neither split nor passed on",
                                       part_id=p.id)
    if p.request_open:
        raise PartLockedError(f"part {p.id} has an open financing request to {p.financier_id}",
                              part_id=p.id, financier_id=p.financier_id)
    return r, p


def _check_split(r: Receivable, p: ReceivablePart, amounts_minor: Sequence[int]) -> list[int]:
    amounts = list(amounts_minor)
    if any(type(a) is not int for a in amounts):
        raise InvalidSplitError("split amounts must be integers of minor units", field="amounts")
    if len(amounts) < 2:
        raise InvalidSplitError("a split needs at least two amounts", field="amounts")
    if r.part_count + len(amounts) - 1 > PARTS_PER_RECEIVABLE_MAX:
        raise TooManyPartsError(f"the receivable would have {r.part_count + len(amounts) - 1} parts, "
                                f"at most {PARTS_PER_RECEIVABLE_MAX}", max=PARTS_PER_RECEIVABLE_MAX)
    for a in amounts:
        if a < PART_AMOUNT_MIN:
            raise PartTooSmallError(f"part of {a} below the minimum {PART_AMOUNT_MIN}", minimum=PART_AMOUNT_MIN)
    total = sum(amounts)
    if total > p.amount_minor:
        raise AmountExceedsHoldingError(f"the amounts sum to {total}; part {p.id} holds {p.amount_minor}",
                                        held_minor=p.amount_minor, requested_minor=total)
    if total != p.amount_minor:
        raise InvalidSplitError(f"the amounts sum to {total}, not the {p.amount_minor} the part holds",
                                held_minor=p.amount_minor, sum_minor=total)
    return amounts


def _new_part_ids(r: Receivable, count: int) -> list[str]:
    rid = bytes.fromhex(r.id[2:])
    return ["0x" + derive_part_id(rid, r.part_count + i).hex() for i in range(count)]


def _currency_amounts(r: Receivable, amounts: Sequence[int | Money]) -> list[int]:
    out = []
    for a in amounts:
        if isinstance(a, Money):
            if a.currency != r.currency:
                raise UnsupportedCurrencyError(f"amounts must be in {r.currency}, the receivable's currency",
                                               field="amounts")
            out.append(a.value)
        else:
            out.append(a)
    return out


def split_part(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str,
               amounts: Sequence[int | Money]) -> Accepted:
    """The holder splits a confirmed, unfinanced part: it keeps ``amounts[0]``, each further amount
    becomes a new part it holds (ids returned, in order)."""
    r, p = _movable_part(runtime, session, actor, receivable_id, part_id)
    values = _check_split(r, p, _currency_amounts(r, amounts))
    new_ids = _new_part_ids(r, len(values) - 1)
    signer = custodial_signer(session, actor.member_id)
    op = _operation(session, r, actor, "split", function="splitPart", args=[p.id, values], signer=signer,
                    gas=GAS["split_base"] + GAS["split_per_part"] * (len(values) - 1), part_id=p.id,
                    params={"amounts_minor": values, "new_part_ids": new_ids})
    return Accepted(r, (op,), tuple(new_ids))


def transfer_part(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                  to_member_id: str, amount: int | Money | None = None) -> Accepted:
    """The holder passes a part (or ``amount`` of it) to another member, such as a tier-2 supplier.

    Less than the whole part: the part is split first (it keeps the rest) and the new part of
    ``amount`` is transferred; both calls go in one database transaction, in order.
    """
    r, p = _movable_part(runtime, session, actor, receivable_id, part_id)
    recipient = _counterparty(session, to_member_id, None, "to_member_id", actor)
    value = p.amount_minor if amount is None else _currency_amounts(r, [amount])[0]
    if type(value) is not int or value <= 0:
        raise InvalidAmountError("amount must be a positive integer of minor units", field="amount")
    if value > p.amount_minor:
        raise AmountExceedsHoldingError(f"part {p.id} holds {p.amount_minor}; cannot transfer {value}",
                                        held_minor=p.amount_minor, requested_minor=value)
    signer = custodial_signer(session, actor.member_id)
    ops = []
    moved = p.id
    if value < p.amount_minor:
        values = _check_split(r, p, [p.amount_minor - value, value])
        (moved,) = _new_part_ids(r, 1)
        ops.append(_operation(session, r, actor, "split", function="splitPart", args=[p.id, values], signer=signer,
                              gas=GAS["split_base"] + GAS["split_per_part"], part_id=p.id,
                              params={"amounts_minor": values, "new_part_ids": [moved]}, lock=False))
    ops.append(_operation(session, r, actor, "transfer", function="transferPart", args=[moved, recipient.onchain_id],
                          signer=signer, gas=GAS["transfer"], part_id=moved,
                          params={"to_member_id": recipient.id, "amount_minor": value}))
    return Accepted(r, tuple(ops), (moved,))


# -- financing --------------------------------------------------------------------------------------


def _financeable(runtime: Runtime, r: Receivable, p: ReceivablePart) -> None:
    shown = _require_status(r, runtime, "confirmed")
    if shown == "overdue":
        raise ReceivableWrongStatusError(f"receivable {r.id} is overdue: it cannot be financed",
                                         receivable_id=r.id, receivable_status=shown)
    if p.financed:
        raise PartAlreadyFinancedError(f"part {p.id} is financed already", part_id=p.id)


def request_financing(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                      financier_id: str) -> Accepted:
    """The holder (a supplier) asks ``financier_id`` to finance a part; the part is locked meanwhile."""
    _require_role(actor, "supplier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = _part(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    _take(session, r)
    _financeable(runtime, r, p)
    financier = _counterparty(session, financier_id, "financier", "financier_id", actor)
    signer = custodial_signer(session, actor.member_id)
    op = _operation(session, r, actor, "request_financing", function="requestFinancing",
                    args=[p.id, financier.onchain_id], signer=signer, gas=GAS["request_financing"], part_id=p.id,
                    params={"financier_id": financier.id})
    return Accepted(r, (op,))


def withdraw_financing_request(runtime: Runtime, session: Session, actor: Actor, receivable_id: str,
                               part_id: str) -> Accepted:
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = _part(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    _take(session, r)
    if not p.request_open:
        raise NoFinancingRequestError(f"part {p.id} has no open financing request", part_id=p.id)
    signer = custodial_signer(session, actor.member_id)
    op = _operation(session, r, actor, "withdraw_financing", function="withdrawFinancingRequest", args=[p.id],
                    signer=signer, gas=GAS["withdraw_financing"], part_id=p.id)
    return Accepted(r, (op,))


def _for_financier(runtime: Runtime, session: Session, actor: Actor, receivable_id: str,
                   part_id: str) -> tuple[Receivable, ReceivablePart]:
    _require_role(actor, "financier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = _part(session, r, part_id)
    if not p.request_open:
        raise NoFinancingRequestError(f"part {p.id} has no open financing request", part_id=p.id)
    if p.financier_id != actor.member_id:
        raise NotRequestedFinancierError(f"part {p.id} was offered to {p.financier_id}", part_id=p.id)
    _take(session, r)
    _financeable(runtime, r, p)
    return r, p


def offer_financing(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                    rate_ppm: int, basis: DayCountBasis | int, fee_minor: int, valid_until_s: int) -> Accepted:
    """The requested financier offers terms. The discount runs from the chain's today to the due
    date (nothing to discount once matured), rounded half up once (settlement/financing.py); the
    advance is the part's amount less discount and fee."""
    r, p = _for_financier(runtime, session, actor, receivable_id, part_id)
    try:
        basis = DayCountBasis(basis)
    except ValueError:
        raise InvalidOfferError("day count basis must be ACT/360 or ACT/365", field="day_count") from None
    now = chain_time_s(runtime)
    if type(valid_until_s) is not int or not now < valid_until_s <= now + OFFER_VALIDITY_S_MAX:
        raise InvalidOfferError(f"valid_until must be within {OFFER_VALIDITY_S_MAX // 86_400} days from now",
                                field="valid_until")
    today = chain_today(runtime)
    start = min(today, r.due_date)
    try:
        terms = financing_terms(p.amount_minor, r.currency, rate_ppm, start, r.due_date, basis, fee_minor)
    except ValidationError as exc:
        raise InvalidOfferError(exc.detail, field="terms") from None
    if terms.advance_minor + terms.fee_minor > p.amount_minor:  # the contract's rule, checked before sending
        raise InvalidOfferError("advance plus fee exceed the part")
    signer = custodial_signer(session, actor.member_id)
    args = [p.id, terms.advance_minor, terms.fee_minor, rate_ppm, int(basis), valid_until_s]
    op = _operation(session, r, actor, "offer", function="offerFinancing", args=args, signer=signer,
                    gas=GAS["offer"], part_id=p.id,
                    params={"advance_minor": terms.advance_minor, "fee_minor": terms.fee_minor,
                            "discount_minor": terms.discount_minor, "days": terms.days, "rate_ppm": rate_ppm,
                            "basis": int(basis), "valid_until": valid_until_s, "financing_date": start.isoformat()})
    return Accepted(r, (op,), terms=terms)


def _for_seller(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str,
                offer_id: int | None) -> tuple[Receivable, ReceivablePart]:
    _require_role(actor, "supplier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    p = _part(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    _take(session, r)
    _financeable(runtime, r, p)
    if not p.request_open or p.offer_id is None:
        raise OfferNotCurrentError(f"part {p.id} has no current offer", part_id=p.id)
    if offer_id is not None and offer_id != p.offer_id:
        raise OfferNotCurrentError(f"offer {offer_id} is not the current offer {p.offer_id} on part {p.id}",
                                   part_id=p.id, current_offer_id=p.offer_id)
    if (p.offer_valid_until or 0) < chain_time_s(runtime):
        raise OfferExpiredError(f"offer {p.offer_id} expired at {p.offer_valid_until}", part_id=p.id)
    financier = session.get(Member, p.financier_id) if p.financier_id else None
    if financier is None or financier.status != "active" or "financier" not in financier.roles:
        raise InvalidCounterpartyError(f"the financier {p.financier_id} is no longer an active financier",
                                       field="financier")
    return r, p


def acceptance_typed_data(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str,
                          deadline: int | None = None) -> dict[str, Any]:
    """The EIP-712 ``AcceptFinancingOffer`` over the part's current offer, for the holder's own key."""
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    p = _part(session, r, part_id)
    if p.holder_id != actor.member_id:
        raise NotPartHolderError(f"part {p.id} is not held by {actor.member_id}", part_id=p.id)
    if not p.request_open or p.offer_id is None:
        raise OfferNotCurrentError(f"part {p.id} has no current offer", part_id=p.id)
    return _accept_typed(runtime, session, p, _deadline(runtime, deadline))


def _accept_typed(runtime: Runtime, session: Session, p: ReceivablePart, deadline: int) -> dict[str, Any]:
    holder = session.get(Member, p.holder_id)
    financier = session.get(Member, p.financier_id)
    return approvals.accept_typed_data(
        _chain_id(runtime), runtime.address(CONTRACT), part_id=p.id, offer_id=int(p.offer_id or 0),
        financier_onchain_id=financier.onchain_id, advance_minor=int(p.advance_minor or 0),
        fee_minor=int(p.fee_minor or 0), discount_rate_ppm=int(p.discount_rate_ppm or 0),
        day_count_basis=int(p.day_count_basis or 0), nonce=_signature_nonce(runtime, session, holder),
        deadline=deadline)


def accept_offer(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, part_id: str, *,
                 offer_id: int, signature: str | None = None, deadline: int | None = None) -> Accepted:
    """The holder accepts the current offer: custodially, or with its own-key EIP-712 signature
    (relayed by the operator). On chain, the part passes to the financier; the disbursement of the
    advance is recorded when the follower sees ``FinancingAccepted``."""
    r, p = _for_seller(runtime, session, actor, receivable_id, part_id, offer_id)
    if signature is None:
        signer = custodial_signer(session, actor.member_id)
        op = _operation(session, r, actor, "accept", function="acceptOffer", args=[p.id, offer_id], signer=signer,
                        gas=GAS["accept"], part_id=p.id, params={"offer_id": offer_id})
        return Accepted(r, (op,))
    approvals.check_signature_hex(signature)
    if deadline is None:
        raise ValidationError("a signed acceptance needs its deadline", field="deadline")
    deadline = _deadline(runtime, deadline)
    holder = session.get(Member, p.holder_id)
    account = _check_signed_by(runtime, session, _accept_typed(runtime, session, p, deadline), signature, holder)
    op = _operation(session, r, actor, "accept_signed", function="acceptOfferWithSignature",
                    args=[p.id, offer_id, deadline, signature.lower()], signer=runtime.operator.address,
                    gas=GAS["accept_signed"], part_id=p.id,
                    params={"offer_id": offer_id, "signer": account, "deadline": deadline},
                    nonce_member_id=holder.id)
    return Accepted(r, (op,))


# -- repayment and default --------------------------------------------------------------------------


def repay_receivable(runtime: Runtime, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """The buyer repays at or after maturity; each current holder is owed exactly what it holds
    (repayment settlements are recorded from the ``PartRepaid`` events)."""
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id, for_update=True)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, repays receivable {r.id}", receivable_id=r.id)
    _require_role(actor, "buyer")
    _take(session, r)
    _require_status(r, runtime, "confirmed", "defaulted")
    today = chain_today(runtime)
    if today < r.due_date:
        raise ReceivableNotMaturedError(f"receivable {r.id} is due on {r.due_date}; today is {today}",
                                        due_date=r.due_date.isoformat())
    signer = custodial_signer(session, actor.member_id)
    op = _operation(session, r, actor, "repay", function="recordRepayment", args=[r.id], signer=signer,
                    gas=GAS["repay_base"] + GAS["repay_per_part"] * max(r.part_count, 1))
    return Accepted(r, (op,))


def declare_default(runtime: Runtime, session: Session, actor: Actor, receivable_id: str) -> Accepted:
    """A financier holding a financed part declares the overdue receivable defaulted."""
    _require_role(actor, "financier")
    r = get_receivable(session, actor, receivable_id, for_update=True)
    holds = session.scalar(select(ReceivablePart.id).where(
        ReceivablePart.receivable_id == r.id, ReceivablePart.holder_id == actor.member_id,
        ReceivablePart.financed.is_(True)).limit(1))
    if holds is None:
        raise NotPartFinancierError(f"{actor.member_id} holds no financed part of {r.id}", receivable_id=r.id)
    _take(session, r)
    shown = _require_status(r, runtime, "confirmed")
    if shown != "overdue":
        overdue_from = r.due_date + timedelta(days=grace_period_days(runtime) + 1)
        raise ReceivableNotOverdueError(f"receivable {r.id} is overdue only from {overdue_from}",
                                        overdue_from=overdue_from.isoformat())
    signer = custodial_signer(session, actor.member_id)
    op = _operation(session, r, actor, "default", function="declareDefault", args=[r.id], signer=signer,
                    gas=GAS["default"])
    return Accepted(r, (op,))


# -- evidence ---------------------------------------------------------------------------------------


def add_evidence(runtime: Runtime, session: Session, actor: Actor, receivable_id: str, document: dict[str, Any],
                 label: str = "") -> ReceivableEvidence:
    """The supplier (or buyer) cites an anchored provenance proof; it must verify offline."""
    _require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    if actor.member_id not in (r.supplier_id, r.buyer_id):
        raise NotReceivableSupplierError("only the receivable's supplier or buyer cites evidence",
                                         receivable_id=r.id)
    if not isinstance(label, str) or len(label) > ev.LABEL_LEN_MAX:
        raise EvidenceInvalidError(f"label must be at most {ev.LABEL_LEN_MAX} characters", field="label")
    doc = ev.parse_evidence(document)
    count = session.scalar(select(func.count()).select_from(ReceivableEvidence)
                           .where(ReceivableEvidence.receivable_id == r.id)) or 0
    if count >= ev.EVIDENCE_PER_RECEIVABLE_MAX:
        raise EvidenceInvalidError(f"a receivable cites at most {ev.EVIDENCE_PER_RECEIVABLE_MAX} proofs",
                                   max=ev.EVIDENCE_PER_RECEIVABLE_MAX)
    if session.scalar(select(ReceivableEvidence.id).where(ReceivableEvidence.receivable_id == r.id,
                                                          ReceivableEvidence.leaf_hash == doc.leaf_hash)):
        raise EvidenceInvalidError(f"leaf {doc.leaf_hash} is cited already", leaf_hash=doc.leaf_hash)
    row = ReceivableEvidence(receivable_id=r.id, label=label.strip(), leaf_hash=doc.leaf_hash, root=doc.root,
                             anchor_tx_hash=doc.anchor.tx_hash if doc.anchor else None,
                             anchor_block_number=doc.anchor.block_number if doc.anchor else None,
                             document=doc.to_json(), added_by=actor.member_id)
    session.add(row)
    session.flush()
    return row


def evidence_of(runtime: Runtime, session: Session, actor: Actor, receivable_id: str) -> list[EvidenceCheck]:
    """Each cited proof with a fresh verification (offline, and the anchored root on chain)."""
    r = get_receivable(session, actor, receivable_id)
    rows = session.scalars(select(ReceivableEvidence).where(ReceivableEvidence.receivable_id == r.id)
                           .order_by(ReceivableEvidence.id).limit(ev.EVIDENCE_PER_RECEIVABLE_MAX)).all()
    parties = {m.onchain_id.lower() for m in (session.get(Member, r.supplier_id), session.get(Member, r.buyer_id))}
    return [ev.check_evidence(runtime, row, parties) for row in rows]


# -- queries ----------------------------------------------------------------------------------------


def list_receivables(session: Session, actor: Actor, *, role: str | None = None, status: str | None = None,
                     limit: int = 50, after: str | None = None) -> list[Receivable]:
    """"My receivables", ordered by id: as ``supplier``, ``buyer``, ``holder`` (of a part now) or
    ``financier`` (asked, offering or holding); no role: any involvement."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be within 1..{LIST_LIMIT_MAX}", field="limit")
    if after is not None and not _HEX32_RE.match(after):
        raise InvalidCursorError("after must be a receivable id from the previous page", field="after")
    me = actor.member_id
    q = select(Receivable)
    if role == "supplier":
        q = q.where(Receivable.supplier_id == me)
    elif role == "buyer":
        q = q.where(Receivable.buyer_id == me)
    elif role == "holder":
        q = q.where(Receivable.id.in_(select(ReceivablePart.receivable_id).where(ReceivablePart.holder_id == me)))
    elif role == "financier":
        q = q.where(Receivable.id.in_(select(ReceivableParty.receivable_id).where(
            ReceivableParty.member_id == me, ReceivableParty.role == "financier")))
    elif role is None:
        q = q.where(Receivable.id.in_(select(ReceivableParty.receivable_id).where(ReceivableParty.member_id == me)))
    else:
        raise ValidationError(f"role must be one of {', '.join(PARTY_ROLES)}", field="role")
    if status is not None:
        if status == "overdue":
            raise ValidationError("filter by status=confirmed and read the shown status for overdue",
                                  field="status")
        q = q.where(Receivable.status == status)
    if after:
        q = q.where(Receivable.id > after)
    return list(session.scalars(q.order_by(Receivable.id).limit(limit)))


def parts_of(session: Session, receivable_ids: Sequence[str]) -> dict[str, list[ReceivablePart]]:
    out: dict[str, list[ReceivablePart]] = {rid: [] for rid in receivable_ids}
    if receivable_ids:
        for p in session.scalars(select(ReceivablePart).where(ReceivablePart.receivable_id.in_(list(receivable_ids)))
                                 .order_by(ReceivablePart.receivable_id, ReceivablePart.index)):
            out[p.receivable_id].append(p)
    return out


def operations_of(session: Session, receivable_id: str, limit: int = 200) -> list[ReceivableOperation]:
    return list(session.scalars(select(ReceivableOperation).where(ReceivableOperation.receivable_id == receivable_id)
                                .order_by(ReceivableOperation.id).limit(limit)))


def history_of(session: Session, actor: Actor, receivable_id: str, limit: int = 500) -> list[HistoryEntry]:
    """The receivable's contract events in chain order, each with tx hash, block and log index."""
    r = get_receivable(session, actor, receivable_id)
    rows = session.scalars(select(ReceivableEvent).where(ReceivableEvent.receivable_id == r.id)
                           .order_by(ReceivableEvent.block_number, ReceivableEvent.log_index).limit(limit))
    return [HistoryEntry(e.event, e.part_id, dict(e.args), e.tx_hash, e.block_number, e.log_index, e.operation_id)
            for e in rows]


def payments_of(session: Session, receivable_id: str) -> list[ReceivablePayment]:
    return list(session.scalars(select(ReceivablePayment).where(ReceivablePayment.receivable_id == receivable_id)
                                .order_by(ReceivablePayment.id)))


# -- disbursements and repayments as settlements -----------------------------------------------------

_PURPOSE = {"disbursement": "LOAN", "repayment": "SUPP"}


def instruct_payments(runtime: Runtime, session: Session, *, receivable_id: str | None = None,
                      limit: int = PAYMENTS_INSTRUCT_BATCH_MAX) -> int:
    """Turn owed disbursements and repayments into settlements (``settlement.domains.settlements``): the
    payer's instruction to the payee, recorded on the SettlementLedger like any other. A payment
    the settlements service refuses (the payer lacks the finance role, say) stays ``blocked``
    with the reason and is tried again on the next call. Returns how many were instructed."""
    try:
        from settlement.domains.settlements import InstructionInput, create_settlement
    except ImportError:  # the settlements service is not installed: payments stay owed
        return 0
    q = select(ReceivablePayment).where(ReceivablePayment.status.in_(("owed", "blocked")))
    if receivable_id is not None:
        q = q.where(ReceivablePayment.receivable_id == receivable_id)
    done = 0
    for pay in session.scalars(q.order_by(ReceivablePayment.id).limit(limit)).all():
        if pay.payer_id is None or pay.payee_id is None:
            pay.status, pay.settlement_error = "blocked", "payer or payee is not a member known to the service"
            continue
        ref = f"rcv-{pay.kind[:4]}-{pay.part_id[2:50]}"
        inp = InstructionInput(client_reference=ref, payee_id=pay.payee_id, source_minor=pay.amount_minor,
                               source_currency=pay.currency, target_currency=pay.currency, fx_rate="1",
                               purpose_code=_PURPOSE[pay.kind],
                               payment_reference=f"receivable {pay.kind} part {pay.part_id}")
        try:
            with session.begin_nested():
                s = create_settlement(runtime, session, pay.payer_id, inp)
            pay.status, pay.settlement_id, pay.settlement_error = "instructed", s.id, None
            done += 1
        except LedgerError as exc:
            pay.status, pay.settlement_error = "blocked", f"{exc.type_slug}: {exc.detail}"[:2000]
    return done
