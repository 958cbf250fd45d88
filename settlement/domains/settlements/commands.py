"""Cross-border settlements: create (single and batch), pay, cancel, refund, and look up.

Every function that changes a settlement does all of it in the caller's ONE database
transaction: the store row, its journal postings, an operation record and the outbox row that
makes the contract call (nothing is sent from here; the dispatcher does). The contract checks the
same rules again; the follower marks the operation confirmed when it sees its event, and a
failure hook undoes it (state and journal) when the chain refuses it.

One operation in flight per settlement: a transition is refused with ``pending-on-chain`` (409)
while the settlement's previous operation is not confirmed. Operations of different signers are
not ordered on chain, so e.g. a payment must not overtake the recording it depends on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.contracts import catalogue
from settlement.chain.signing import keccak256
from settlement.core.errors import (
    ForbiddenError,
    InvalidPurposeCodeError,
    InvalidReferenceError,
    InvalidStateError,
    InvalidValueDateError,
    MemberSuspendedError,
    PayeeNotActiveError,
    PaymentReferenceReusedError,
    SelfPaymentError,
    SettlementBatchSizeError,
    SettlementExistsError,
    SettlementNotFoundError,
    SettlementPendingOnChainError,
    UnknownMemberError,
    UnknownPayeeError,
    ValidationError,
)
from settlement.core.money import exponent
from settlement.domains.anchoring import digest_changed, digest_new
from settlement.domains.members import custodial_signer
from settlement.domains.settlements import postings as jr
from settlement.domains.settlements.fx import check_amount, check_target, rate_from_decimal
from settlement.pipeline import intents
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.bulk import insert_rows
from settlement.store.models import Member, OutboxRow
from settlement.store.models.settlements import (
    SYSTEM_OWNER,
    Settlement,
    SettlementOperation,
)

__all__ = [
    "CONTRACT", "BATCH_SIZE_MAX", "VALUE_DATE_PAST_DAYS_MAX", "VALUE_DATE_FUTURE_DAYS_MAX", "InstructionInput",
    "create_settlement", "acting_call", "create_batch", "prepare_batch", "write_batch", "PreparedBatch", "get_settlement", "find_by_payment_reference", "find_by_payment_ref_hash",
    "provider_txn_hash", "reference_hash", "settlement_struct", "operations_of",
    "STATES", "TERMINAL_STATES",
]

CONTRACT = "SettlementLedger"
BATCH_SIZE_MAX = 200  # the contract's BATCH_SIZE_MAX
VALUE_DATE_PAST_DAYS_MAX = 7
VALUE_DATE_FUTURE_DAYS_MAX = 366
CLIENT_REFERENCE_LEN_MAX = 64
PAYMENT_REFERENCE_LEN_MAX = 140
REFUND_REFERENCE_LEN_MAX = 140
PROVIDER_LEN_MAX = 16  # bytes16 on chain

# Gas limits, measured on anvil (recordSettlement ~67k, recordBatch(200) ~34k per item) with
# margins. A limit only caps (zero-fee chains charge nothing for headroom) but a block holds only
# so many limits: 200k + 40k x 200 = 8.2M lets seven full batches share a 60M-gas block.
GAS_RECORD = 250_000
GAS_BATCH_BASE = 200_000
GAS_BATCH_PER_ITEM = 40_000
GAS_MARK_PAID = 250_000
GAS_CANCEL = 150_000
GAS_REFUND = 250_000
GAS_ACKNOWLEDGE = 150_000

STATES = ("instructed", "paid", "in_cycle", "settled", "cancelled", "refunded", "rejected")
TERMINAL_STATES = ("cancelled", "refunded", "rejected")

_CLIENT_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
_PURPOSE_RE = re.compile(r"^[A-Z0-9]{4}$")
_PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,15}$")
_HASH_RE = re.compile(r"^0x[0-9a-f]{64}$")
_SETTLEMENTS = Settlement.__table__
_SETTLEMENT_COLUMNS = tuple(c.key for c in _SETTLEMENTS.columns if c.key != "seq")


# -- pure helpers ------------------------------------------------------------------------------------


def reference_hash(text: str) -> str:
    """keccak256 of a reference's UTF-8 bytes, as 0x hex: what goes on chain instead of the text."""
    return "0x" + keccak256(text.encode("utf-8")).hex()


def provider_txn_hash(provider_transaction_id: str) -> str:
    """The on-chain ``providerTxHash`` of a provider's transaction id (keccak256 of its UTF-8)."""
    return reference_hash(provider_transaction_id)


def settlement_id_of(payer_onchain_id: str, client_reference_hash: str) -> str:
    """The contract's ``settlementIdOf``: keccak256(abi.encode(payer, clientReference))."""
    return "0x" + keccak256(bytes.fromhex(payer_onchain_id[2:]) + bytes.fromhex(client_reference_hash[2:])).hex()


def _ascii_hex(text: str, size: int) -> str:
    return "0x" + text.encode("ascii").ljust(size, b"\0").hex()


def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def instruction_struct(s: Settlement) -> list:
    """The ISettlementLedger.Instruction of ``s``, JSON-safe as the outbox stores it."""
    return [s.client_reference_hash, s.payee_onchain_id, s.source_amount_minor, _ascii_hex(s.source_currency, 3),
            s.target_amount_minor, _ascii_hex(s.target_currency, 3), s.fx_rate_scaled, s.fees_minor,
            _days(s.value_date), _ascii_hex(s.purpose_code, 4), s.payment_ref_hash]


def settlement_struct(s: Settlement) -> list:
    """The ISettlementLedger.Settlement ``(payer, instruction)`` every later call takes."""
    return [s.payer_onchain_id, instruction_struct(s)]


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


# -- inputs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstructionInput:
    """What a payer asks for. ``target_minor`` None: computed from the rate (else checked)."""

    client_reference: str
    payee_id: str
    source_minor: int
    source_currency: str
    target_currency: str
    fx_rate: str  # decimal string, target major units per source major unit
    purpose_code: str
    payment_reference: str
    target_minor: int | None = None
    fees_minor: int = 0
    value_date: date | None = None


@dataclass(frozen=True)
class _Checked:
    inp: InstructionInput
    rate: int
    target: int
    value_date: date
    payee: Member


def _check_text(value: str, field: str, len_max: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= len_max or not value.isprintable() \
            or value != value.strip():
        raise InvalidReferenceError(f"{field} must be 1-{len_max} printable characters without surrounding spaces",
                                    field=field)
    return value


def _check_instruction(session: Session, payer: Member, inp: InstructionInput, today: date,
                       payees: dict[str, Member]) -> _Checked:
    if not isinstance(inp.client_reference, str) or not _CLIENT_REF_RE.match(inp.client_reference):
        raise InvalidReferenceError("client_reference must be 1-64 letters, digits or . _ : / - (starting "
                                    "with a letter or digit)", field="client_reference")
    _check_text(inp.payment_reference, "payment_reference", PAYMENT_REFERENCE_LEN_MAX)
    if not isinstance(inp.purpose_code, str) or not _PURPOSE_RE.match(inp.purpose_code):
        raise InvalidPurposeCodeError("purpose_code must be 4 upper-case ASCII letters or digits, e.g. GDDS",
                                      field="purpose_code")
    exponent(inp.source_currency)
    exponent(inp.target_currency)
    check_amount(inp.source_minor, "source")
    check_amount(inp.fees_minor, "fees", allow_zero=True)
    rate = rate_from_decimal(inp.fx_rate, inp.source_currency, inp.target_currency)
    target = check_target(inp.source_minor, rate, inp.target_minor)
    value_date = inp.value_date or today
    earliest = today - timedelta(days=VALUE_DATE_PAST_DAYS_MAX)
    latest = today + timedelta(days=VALUE_DATE_FUTURE_DAYS_MAX)
    if not earliest <= value_date <= latest:
        raise InvalidValueDateError(f"value_date must be within {earliest.isoformat()}..{latest.isoformat()}",
                                    field="value_date", earliest=earliest.isoformat(), latest=latest.isoformat())
    payee = payees.get(inp.payee_id)
    if payee is None:
        payee = session.get(Member, inp.payee_id) if isinstance(inp.payee_id, str) and len(inp.payee_id) <= 64 \
            else None
        if payee is None:
            raise UnknownPayeeError(f"no member {str(inp.payee_id)[:64]!r}", field="payee")
        payees[inp.payee_id] = payee
    if payee.id == payer.id:
        raise SelfPaymentError("payer and payee must be different members", field="payee")
    if payee.status != "active":
        raise PayeeNotActiveError(f"member {payee.id!r} is {payee.status}", field="payee")
    return _Checked(inp, rate, target, value_date, payee)


def _finance_member(session: Session, member_id: str) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise UnknownMemberError(f"no member {member_id[:64]!r}")
    if member.status != "active":
        raise MemberSuspendedError(f"member {member_id} is suspended", member_id=member_id)
    if "finance" not in member.roles:
        raise ForbiddenError("this needs the finance role", required_roles=["finance"])
    return member


# -- create ----------------------------------------------------------------------------------------------


def _record_postings(s: Settlement) -> list[jr.Posting]:
    postings = [
        jr.debit(SYSTEM_OWNER, jr.FX_CLEARING, s.source_currency, s.source_amount_minor),
        jr.credit(s.payer_id, jr.INSTRUCTED_PAYABLE, s.source_currency, s.source_amount_minor),
        jr.debit(s.payee_id, jr.INSTRUCTED_RECEIVABLE, s.target_currency, s.target_amount_minor),
        jr.credit(SYSTEM_OWNER, jr.FX_CLEARING, s.target_currency, s.target_amount_minor),
    ]
    if s.fees_minor:
        postings += [jr.debit(SYSTEM_OWNER, jr.FEES_RECEIVABLE, s.source_currency, s.fees_minor),
                     jr.credit(s.payer_id, jr.FEES_PAYABLE, s.source_currency, s.fees_minor)]
    return postings


def _new_settlement(payer: Member, c: _Checked) -> Settlement:
    return Settlement(**_settlement_values(payer, c))


def _settlement_values(payer: Member, c: _Checked) -> dict:
    inp = c.inp
    ref_hash = reference_hash(inp.client_reference)
    return dict(
        id=settlement_id_of(payer.onchain_id, ref_hash), payer_id=payer.id, payee_id=c.payee.id,
        payer_onchain_id=payer.onchain_id, payee_onchain_id=c.payee.onchain_id,
        client_reference=inp.client_reference, client_reference_hash=ref_hash,
        source_amount_minor=inp.source_minor, source_currency=inp.source_currency,
        target_amount_minor=c.target, target_currency=inp.target_currency, fx_rate_scaled=c.rate,
        fees_minor=inp.fees_minor, value_date=c.value_date, purpose_code=inp.purpose_code,
        payment_reference=inp.payment_reference, payment_ref_hash=reference_hash(inp.payment_reference),
        state="instructed", paid_minor=0, refunded_minor=0, chain_op="record", chain_status="pending")


def _check_unique(session: Session, rows: Sequence[Settlement | SimpleNamespace]) -> None:
    ids = [r.id for r in rows]
    pay_hashes = [r.payment_ref_hash for r in rows]
    if len(set(ids)) != len(ids):
        raise SettlementExistsError("the batch repeats a client reference", field="client_reference")
    if len(set(pay_hashes)) != len(pay_hashes):
        raise PaymentReferenceReusedError("the batch repeats a payment reference", field="payment_reference")
    taken = session.scalars(select(Settlement.client_reference).where(Settlement.id.in_(ids)).limit(1)).first()
    if taken is not None:
        raise SettlementExistsError(f"a settlement with client reference {taken!r} already exists",
                                    field="client_reference", client_reference=taken)
    if session.scalars(select(Settlement.id).where(Settlement.payment_ref_hash.in_(pay_hashes)).limit(1)).first():
        raise PaymentReferenceReusedError("a payment reference of this request belongs to another settlement",
                                          field="payment_reference")


def acting_call(runtime: Runtime, session: Session, member_id: str, own: intents.OwnKey | None, *, kind: str,
                function: str, args: list, gas_limit: int, aggregate_id: str) -> OutboxRow:
    """The member's contract call: signed by its custodial account, or (``own``) held as an intent
    the member signs with its own key (settlement.pipeline.intents)."""
    if own is None:
        return enqueue(session, kind=kind, contract=CONTRACT, function=function, args=args,
                       signer=custodial_signer(session, member_id), gas_limit=gas_limit, aggregate_id=aggregate_id)
    if own.member_id != member_id:
        raise ForbiddenError(f"an intent signs for its own member only ({own.member_id}, not {member_id})")
    return intents.hold(session, own, kind=kind, contract=CONTRACT, to=runtime.address(CONTRACT), function=function,
                        args=args, gas_limit=gas_limit, aggregate_id=aggregate_id)


def create_settlement(runtime: Runtime, session: Session, payer_id: str, inp: InstructionInput, *,
                      today: date | None = None, own: intents.OwnKey | None = None) -> Settlement:
    """Validates and records one settlement from ``payer_id`` (a finance member): the row
    (instructed, chain pending), its journal postings and a ``recordSettlement`` outbox row
    signed by the payer's custodial account (or, with ``own``, held as an intent the payer signs
    with its own key), all in ``session``'s transaction."""
    payer = _finance_member(session, payer_id)
    checked = _check_instruction(session, payer, inp, today or utc_today(), {})
    s = _new_settlement(payer, checked)
    _check_unique(session, [s])
    row = acting_call(runtime, session, payer.id, own, kind="settlement.record", function="recordSettlement",
                      args=[instruction_struct(s)], gas_limit=GAS_RECORD, aggregate_id=s.id)
    s.outbox_id = row.id
    session.add(s)
    digest_changed(session, "settlement", s)
    txn = jr.post(session, "settlement.instructed", _record_postings(s), settlement_id=s.id)
    session.add(SettlementOperation(settlement_id=s.id, kind="record", outbox_id=row.id, prev_state="none",
                                    journal_txn_id=txn, requested_by=payer.id, status="pending"))
    session.flush()
    return s


@dataclass(frozen=True)
class PreparedBatch:
    """A validated batch ready to write: everything that needs no write lock is done."""

    payer_id: str
    member_status: dict[str, str]  # payer and payees as validated: id -> status
    rows: list[SimpleNamespace]
    specs: list[jr.TxnSpec]
    args: list
    calldata: bytes
    signer: str
    gas: int


def prepare_batch(session: Session, payer_id: str, inputs: Sequence[InstructionInput], *,
                  today: date | None = None) -> PreparedBatch:
    """Validates 1..200 instructions and builds their rows, journal postings and calldata.
    Reads only, so it runs before (and outside) the write transaction: the store's single
    writer is held for the inserts alone. :func:`write_batch` re-checks what could change."""
    if not 1 <= len(inputs) <= BATCH_SIZE_MAX:
        raise SettlementBatchSizeError(f"a batch holds 1..{BATCH_SIZE_MAX} settlements, got {len(inputs)}",
                                       max=BATCH_SIZE_MAX)
    payer = _finance_member(session, payer_id)
    day = today or utc_today()
    payees: dict[str, Member] = {}
    checked = []
    for index, inp in enumerate(inputs):
        try:
            checked.append(_check_instruction(session, payer, inp, day, payees))
        except ValidationError as exc:
            exc.extra["index"] = index
            raise
    signer = custodial_signer(session, payer.id)
    # Plain records, not ORM objects: the batch path is the volume path, written with bulk inserts.
    now = datetime.now(timezone.utc)
    rows = [SimpleNamespace(**_settlement_values(payer, c), outbox_id=None, batch_outbox_id=None, cycle_id=None,
                            provider=None, provider_tx_hash=None, tx_hash=None, block_number=None,
                            recorded_tx_hash=None, recorded_block=None, chain_error=None, created_at=now,
                            updated_at=now) for c in checked]
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise SettlementExistsError("the batch repeats a client reference", field="client_reference")
    if len({r.payment_ref_hash for r in rows}) != len(rows):
        raise PaymentReferenceReusedError("the batch repeats a payment reference", field="payment_reference")
    specs = [jr.TxnSpec("settlement.instructed", _record_postings(r), settlement_id=r.id) for r in rows]
    for spec in specs:
        jr.check_balanced(spec.postings)
    args = [[instruction_struct(r) for r in rows]]
    try:
        calldata = catalogue().function(CONTRACT, "recordBatch").encode(args)
    except Exception as exc:
        raise ValidationError(f"cannot encode {CONTRACT}.recordBatch: {exc}") from exc
    status = {payer.id: payer.status, **{p.id: p.status for p in payees.values()}}
    return PreparedBatch(payer.id, status, rows, specs, args, calldata, signer,
                         GAS_BATCH_BASE + GAS_BATCH_PER_ITEM * len(rows))


def write_batch(session: Session, prepared: PreparedBatch) -> list[SimpleNamespace]:
    """Writes a prepared batch in ``session``'s transaction: members still active, references
    still unused, then ONE ``recordBatch`` outbox row and the bulk inserts."""
    now_status = dict(session.execute(select(Member.id, Member.status)
                                      .where(Member.id.in_(list(prepared.member_status)))).all())
    for member_id, was in prepared.member_status.items():
        if now_status.get(member_id) != was:  # suspended (or gone) since it was validated
            if member_id == prepared.payer_id:
                raise MemberSuspendedError(f"member {member_id} is suspended", member_id=member_id)
            raise PayeeNotActiveError(f"member {member_id!r} is {now_status.get(member_id, 'gone')}",
                                      field="payee")
    rows = prepared.rows
    _check_unique(session, rows)
    out = enqueue(session, kind="settlement.record_batch", contract=CONTRACT, function="recordBatch",
                  args=prepared.args, signer=prepared.signer, gas_limit=prepared.gas, aggregate_id=rows[0].id,
                  calldata=prepared.calldata)
    for r in rows:
        r.outbox_id = r.batch_outbox_id = out.id
    values = [{k: getattr(r, k) for k in _SETTLEMENT_COLUMNS} for r in rows]
    insert_rows(session, _SETTLEMENTS, values)
    digest_new(session, "settlement", values)
    jr.post_many(session, prepared.specs, checked=True)
    now = rows[0].created_at
    insert_rows(session, SettlementOperation.__table__, [
        {"settlement_id": r.id, "kind": "record", "outbox_id": out.id, "prev_state": "none",
         "journal_txn_id": spec.id, "requested_by": prepared.payer_id, "status": "pending", "created_at": now}
        for r, spec in zip(rows, prepared.specs)])
    return rows


def create_batch(runtime: Runtime, session: Session, payer_id: str, inputs: Sequence[InstructionInput], *,
                 today: date | None = None) -> list[SimpleNamespace]:
    """Like :func:`create_settlement` for 1..200 instructions, all or nothing, with ONE
    ``recordBatch`` outbox row (the contract records them in one transaction). The rows are
    bulk-inserted; what is returned are plain read-only records with the Settlement's attributes
    (load the settlement with :func:`get_settlement` to change it). The API splits this into
    :func:`prepare_batch` (outside the write transaction) and :func:`write_batch`."""
    return write_batch(session, prepare_batch(session, payer_id, inputs, today=today))


# -- lookups ---------------------------------------------------------------------------------------------


def get_settlement(session: Session, settlement_id: str, *, for_update: bool = False) -> Settlement:
    if not isinstance(settlement_id, str) or not _HASH_RE.match(settlement_id):
        raise SettlementNotFoundError(f"no settlement {str(settlement_id)[:80]!r}")
    q = select(Settlement).where(Settlement.id == settlement_id)
    if for_update:
        q = q.with_for_update()
    s = session.scalar(q)
    if s is None:
        raise SettlementNotFoundError(f"no settlement {settlement_id}", settlement_id=settlement_id)
    return s


def find_by_payment_ref_hash(session: Session, payment_ref_hash: str) -> Settlement | None:
    return session.scalar(select(Settlement).where(Settlement.payment_ref_hash == payment_ref_hash.lower()))


def find_by_payment_reference(session: Session, payment_reference: str) -> Settlement | None:
    """The settlement whose payment reference (e.g. the ``out_trade_no`` a provider echoes) this is."""
    if not isinstance(payment_reference, str) or not payment_reference:
        return None
    return find_by_payment_ref_hash(session, reference_hash(payment_reference))


def operations_of(session: Session, settlement_id: str) -> list[SettlementOperation]:
    return list(session.scalars(select(SettlementOperation).where(SettlementOperation.settlement_id == settlement_id)
                                .order_by(SettlementOperation.id)))


def _load(session: Session, settlement: Settlement | str) -> Settlement:
    sid = settlement if isinstance(settlement, str) else settlement.id
    return get_settlement(session, sid, for_update=True)


def _require_quiet(s: Settlement) -> None:
    if s.chain_status == "pending":
        raise SettlementPendingOnChainError(
            f"settlement {s.id}: its {s.chain_op} is not confirmed on chain yet; retry shortly",
            settlement_id=s.id, pending_operation=s.chain_op, outbox_id=s.outbox_id)


def _require_state(s: Settlement, *states: str) -> None:
    if s.state not in states:
        raise InvalidStateError(f"settlement {s.id} is {s.state}; this needs {' or '.join(states)}",
                                settlement_id=s.id, state=s.state)


def _start(session: Session, s: Settlement, kind: str, outbox_id: int, new_state: str, requested_by: str, *,
           journal_txn: str | None = None, amount: int | None = None, refund_id: int | None = None,
           cycle_id: str | None = None) -> SettlementOperation:
    op = SettlementOperation(settlement_id=s.id, kind=kind, outbox_id=outbox_id, prev_state=s.state,
                             amount_minor=amount, refund_id=refund_id, cycle_id=cycle_id,
                             journal_txn_id=journal_txn, requested_by=requested_by, status="pending")
    session.add(op)
    s.state, s.chain_op, s.chain_status, s.outbox_id = new_state, kind, "pending", outbox_id
    digest_changed(session, "settlement", s)
    s.tx_hash = s.block_number = None
    s.chain_error = None
    return op
