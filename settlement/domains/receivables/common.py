"""What every receivable command shares: the chain facts it decides on, checks, loading with
visibility, and the one way an operation and its outbox row are written.

Commands never ask the node inside the store's write transaction (on SQLite that would hold the
only write lock across an RPC round trip): the caller reads a :class:`ChainFacts` snapshot first
(:func:`read_chain_facts`) and passes it in. "Today" is the chain's: the latest block's UTC day
(the contract's ``block.timestamp / 1 days``), so maturity, overdue and offer expiry agree with
what the contract will decide.

One operation at a time per receivable (``busy_operation_id``, taken under a row lock): part ids
are derived from the order of splits, so the service predicts them only when no other change to
the receivable is in flight. A second request meanwhile gets ``receivable-operation-pending``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.deploy import RECEIVABLE_GRACE_PERIOD_DAYS
from settlement.core.errors import (
    ChainRevertError,
    ChainUnavailableError,
    ForbiddenError,
    InvalidCounterpartyError,
    InvalidOfferError,
    LedgerError,
    MemberSuspendedError,
    ReceivableNotFoundError,
    ReceivableDueError,
    ReceivableOperationPendingError,
    ReceivablePartNotFoundError,
    ReceivableWrongStatusError,
)
from settlement.domains.anchoring import digest_changed
from settlement.domains.members import custodial_signer, onchain_id
from settlement.domains.receivables.models import CONTRACT, PARTY_ROLES, Actor, display_status
from settlement.domains.receivables.terms import RATE_PPM_MAX, RATE_PPM_SCALE, FinancingTerms
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models import Member, OutboxRow
from settlement.store.models.receivables import (
    Receivable,
    ReceivableOperation,
    ReceivablePart,
    ReceivableParty,
)

__all__ = [
    "GAS", "LIST_LIMIT_MAX", "OFFER_VALIDITY_S_MAX", "SIGNATURE_DEADLINE_S_MAX", "ISSUE_DATE_FUTURE_DAYS_MAX",
    "Accepted", "ChainFacts", "read_chain_facts", "forget_chain_time", "get_receivable", "rate_ppm_from_decimal",
    "status_for_display", "custodial_signer",
]

# Gas limits per call, measured on anvil (bench/bench_receivables.py) with about 2x margin; a
# split pays per new part.
GAS: dict[str, int] = {
    "register": 400_000, "confirm": 150_000, "confirm_signed": 200_000, "split_base": 150_000,
    "split_per_part": 120_000, "transfer": 150_000, "cancel": 100_000, "reject": 100_000, "request_financing": 200_000, "withdraw_financing": 120_000,
    "offer": 250_000, "offer_signed": 300_000, "accept": 200_000, "accept_signed": 250_000, "repay": 120_000,
    "confirm_receipt": 200_000, "default": 200_000, "invalidate_nonce": 100_000,
}
LIST_LIMIT_MAX = 200
OFFER_VALIDITY_S_MAX = 30 * 86_400
SIGNATURE_DEADLINE_S_MAX = 7 * 86_400
ISSUE_DATE_FUTURE_DAYS_MAX = 1
INVOICE_NUMBER_INPUT_LEN_MAX = 200
PAYMENTS_INSTRUCT_BATCH_MAX = 100
NONCES_READ_MAX = 4
_CHAIN_TIME_TTL_S = 1.0
HEX32_RE = re.compile(r"^0x[0-9a-f]{64}$")
_MEMBER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
DAY_S = 86_400


# -- chain facts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainFacts:
    """What a command needs from the node, read before its write transaction.

    ``now_s`` is the latest block's timestamp (wall-clock time when the node is down: the contract
    decides again when the operation is mined). ``nonces`` holds the on-chain EIP-712 nonce of the
    members asked for (own-key approvals); ``invoices_on_chain`` what the registry holds for the
    invoice hashes asked for (registration).
    """

    now_s: int
    grace_period_days: int
    chain_id: int
    contract: str
    relayer: str
    # (member id, nonce key) -> the member's current keyed nonce, for those asked for
    nonces: Mapping[tuple[str, int], int] = field(default_factory=dict)
    # (buyer's on-chain id, invoice number hash) -> (the live receivable id, "" when free; how many
    # registrations the identity had), for those asked for
    invoices_on_chain: Mapping[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    # contract-wallet signer (lower case) -> (the EIP-712 digest asked about, whether its ERC-1271
    # isValidSignature approved it); signers without code are left out (keys: recovered locally)
    contract_signatures: Mapping[str, tuple[str, bool]] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return date(1970, 1, 1) + timedelta(days=self.now_s // DAY_S)

    def nonce(self, member_id: str, key: int) -> int:
        if (member_id, key) not in self.nonces:
            raise LookupError(f"the chain facts were read without the nonce of {member_id} for key {key:#x}")
        return self.nonces[(member_id, key)]


_grace_cache: dict[str, int] = {}
_time_cache: dict[str, tuple[float, int]] = {}
_cache_lock = threading.Lock()


def _chain_time_s(runtime: Runtime) -> int:
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


def _grace_period_days(runtime: Runtime, address: str | None) -> int:
    """The registry's ``gracePeriodDays`` (immutable: read once per contract)."""
    if address is None:
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


ERC1271_MAGIC = "0x1626ba7e"


def read_chain_facts(runtime: Runtime, *, nonces_of: Sequence[tuple[str, int]] = (),
                     invoice_hashes: Sequence[tuple[str, str]] = (),
                     signatures: Sequence[tuple[str, str, str]] = ()) -> ChainFacts:
    """Ask the node what a command will decide on; call it BEFORE opening the write transaction.

    ``nonces_of``: (member id, nonce key) pairs whose on-chain EIP-712 nonce the command needs
    (ChainUnavailableError when the node cannot tell); ``signatures``: (signer, digest, signature)
    of approvals to check with ERC-1271 when the signer is a contract wallet; ``invoice_hashes``: invoice identities (buyer's on-chain id, invoice
    number hash) to look up in the registry (left out when the node is down: the contract refuses
    a live identity anyway, and the registration index is then taken from the store). At most
    ``NONCES_READ_MAX`` of each.
    """
    if max(len(nonces_of), len(invoice_hashes), len(signatures)) > NONCES_READ_MAX:
        raise ValueError(f"at most {NONCES_READ_MAX} nonces and invoice hashes per command")
    try:
        address: str | None = runtime.address(CONTRACT)
    except LookupError:
        address = None
    nonces = {}
    for member_id, key in nonces_of:
        (nonce,) = runtime.chain.call(CONTRACT, runtime.address(CONTRACT), "nonces", [onchain_id(member_id), key])
        nonces[(member_id, key)] = int(nonce)
    contract_signatures = {}
    for signer, digest, signature in signatures:
        if not runtime.chain.get_code(signer):
            continue
        try:
            (magic,) = runtime.chain.call("IERC1271Wallet", signer, "isValidSignature",
                                          [digest, bytes.fromhex(signature.removeprefix("0x"))])
            valid = "0x" + bytes(magic).hex() == ERC1271_MAGIC
        except ChainRevertError:
            valid = False
        contract_signatures[signer.lower()] = (digest, valid)
    invoices = {}
    for buyer, number_hash in invoice_hashes:
        try:
            (existing,) = runtime.chain.call(CONTRACT, runtime.address(CONTRACT), "receivableOfInvoice",
                                             [buyer, number_hash])
            (count,) = runtime.chain.call(CONTRACT, runtime.address(CONTRACT), "registrationsOfInvoice",
                                          [buyer, number_hash])
        except (ChainUnavailableError, LookupError):
            continue
        invoices[(buyer, number_hash)] = ("0x" + bytes(existing).hex() if any(existing) else "", int(count))
    chain_id = runtime.manifest.chain_id if runtime.manifest else runtime.chain.chain_id()
    return ChainFacts(now_s=_chain_time_s(runtime), grace_period_days=_grace_period_days(runtime, address),
                      chain_id=chain_id, contract=address or "", relayer=runtime.operator.address,
                      nonces=nonces, invoices_on_chain=invoices, contract_signatures=contract_signatures)


def status_for_display(facts: ChainFacts, r: Receivable, today: date | None = None) -> str:
    return display_status(r.status, r.due_date, today or facts.today, facts.grace_period_days)


# -- small checks ---------------------------------------------------------------------------------


def require_active(actor: Actor) -> None:
    if not actor.active:
        raise MemberSuspendedError(f"member {actor.member_id} is suspended", member_id=actor.member_id)


def require_role(actor: Actor, role: str) -> None:
    require_active(actor)
    if not actor.has(role):
        raise ForbiddenError(f"this needs the {role} role", required_roles=[role])


def counterparty(session: Session, member_id: str, role: str | tuple[str, ...] | None, field: str,
                 actor: Actor) -> Member:
    """An active member (with ``role``, or one of the roles, if given) other than the actor;
    InvalidCounterpartyError else."""
    member = session.get(Member, member_id) if isinstance(member_id, str) and _MEMBER_RE.match(member_id) else None
    if member is None:
        raise InvalidCounterpartyError(f"no member {str(member_id)[:64]!r}", field=field)
    if member.id == actor.member_id:
        raise InvalidCounterpartyError(f"the {field} cannot be yourself", field=field)
    if member.status != "active":
        raise InvalidCounterpartyError(f"member {member.id!r} is {member.status}", field=field)
    roles = (role,) if isinstance(role, str) else role
    if roles is not None and not set(roles) & set(member.roles):
        raise InvalidCounterpartyError(f"member {member.id!r} does not have the {' or '.join(roles)} role",
                                       field=field)
    return member


def check_hex32(value: str, what: str, error: type[LedgerError]) -> str:
    if not isinstance(value, str) or not HEX32_RE.match(value):
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
    check_hex32(receivable_id, "receivable", ReceivableNotFoundError)
    q = select(Receivable).where(Receivable.id == receivable_id)
    if for_update:
        q = q.with_for_update()
    r = session.scalar(q)
    if r is None or not _is_party(session, actor, r):
        raise ReceivableNotFoundError(f"no receivable {receivable_id}", receivable_id=receivable_id)
    return r


def part_of(session: Session, r: Receivable, part_id: str) -> ReceivablePart:
    check_hex32(part_id, "part", ReceivablePartNotFoundError)
    p = session.get(ReceivablePart, part_id)
    if p is None or p.receivable_id != r.id:
        raise ReceivablePartNotFoundError(f"receivable {r.id} has no part {part_id}", part_id=part_id)
    return p


def take(session: Session, r: Receivable) -> None:
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
            digest_changed(session, "receivable.operation", op)
            return
        raise ReceivableOperationPendingError(
            f"operation {op.id} ({op.kind}) on this receivable is not confirmed on chain yet; retry when it is",
            operation_id=op.id, operation_kind=op.kind)
    r.busy_operation_id = None


def require_not_due(r: Receivable, facts: ChainFacts) -> None:
    """Parts move (split, transfer, financing) only until the due date, as on chain."""
    if facts.today > r.due_date:
        raise ReceivableDueError(f"receivable {r.id} was due on {r.due_date}: its parts no longer move",
                                 receivable_id=r.id, due_date=r.due_date.isoformat())


def require_status(r: Receivable, facts: ChainFacts, *allowed: str) -> str:
    shown = status_for_display(facts, r)
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
    offer_id: str | None = None  # a financing offer's id, assigned before it is sent

    @property
    def operation(self) -> ReceivableOperation:
        return self.operations[-1]


def write_operation(session: Session, r: Receivable, actor: Actor, kind: str, *, function: str, args: list,
                    signer: str, gas: int, part_id: str | None = None, params: dict | None = None,
                    nonce_member_id: str | None = None, lock: bool = True) -> ReceivableOperation:
    row = enqueue(session, kind=f"receivable.{kind}", contract=CONTRACT, function=function, args=args,
                  signer=signer, gas_limit=gas, aggregate_id=r.id)
    op = ReceivableOperation(receivable_id=r.id, part_id=part_id, kind=kind, requested_by=actor.member_id,
                             params=params or {}, outbox_id=row.id, nonce_member_id=nonce_member_id,
                             status="pending")
    session.add(op)
    session.flush()
    digest_changed(session, "receivable", r)
    digest_changed(session, "receivable.operation", op)
    if lock:
        r.busy_operation_id = op.id
    return op


def add_party(session: Session, receivable_id: str, member_id: str | None, role: str) -> None:
    if member_id is None or role not in PARTY_ROLES:
        return
    exists = session.scalar(select(ReceivableParty.id).where(
        ReceivableParty.receivable_id == receivable_id, ReceivableParty.member_id == member_id,
        ReceivableParty.role == role).limit(1))
    if exists is None:
        session.add(ReceivableParty(receivable_id=receivable_id, member_id=member_id, role=role))
