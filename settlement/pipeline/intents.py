"""Members' own-key intents: a contract call a member signs itself, relayed by the service.

Any domain command that would enqueue a custodial outbox row can instead be run for a member
that signs with its own key (:class:`OwnKey`): :func:`hold` writes the same outbox row in a *held*
state, which the dispatcher skips, plus an :class:`~settlement.store.models.governance.Intent`:
the call wrapped as an EIP-712 ``ForwardRequest`` of the ``LedgerForwarder`` (OpenZeppelin's
``ERC2771Forwarder``) with ``from`` = the member's own account. Everything else the command wrote
(its domain rows, journal postings) waits with it, exactly as for a custodial row waiting to be
mined.

The member signs the typed data (:func:`typed_data`); :func:`accept_signature` checks that it
recovers to that account (an account of that member in the registry's mirror), that the inner
call would not revert (simulated from the forwarder, with the signer appended, as
``ERC2771Context`` reads it), and turns the held row into ``LedgerForwarder.execute(request)``
sent by the relayer (the operator's key). From there the row is an ordinary outbox row: the
follower confirms it by the domain's events, and a revert runs the domain's failure hook with the
inner call's own error (the dispatcher decodes it, the forwarder only says ``FailedCall``).

Nonces: the forwarder's nonces are sequential per account, and a request is valid only with the
account's current nonce. An intent is prepared with ``max(forwarder.nonces(account), 1 + the
highest nonce of the account's outstanding intents)``; intents of one account are relayed in nonce
order (signing a later one while an earlier one is held is refused with ``intent-out-of-order``).
An unsigned intent whose deadline passes (or that its member withdraws) is released by the
dispatcher: its row fails with ``IntentExpired`` / ``IntentWithdrawn``, the domain's failure hook
undoes the command, and every later held intent of that account moves down one nonce (its typed
data changes: the client fetches it again before signing).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.store.paging import keyset_page
from settlement.chain.contracts import catalogue
from settlement.chain.signing import recover_typed_data
from settlement.core.errors import (
    ChainRevertError,
    IntentNotFoundError,
    IntentOutOfOrderError,
    IntentStateError,
    NoOwnAccountError,
    SignatureExpiredError,
    SignatureInvalidError,
    ValidationError,
)
from settlement.pipeline.outbox import enqueue
from settlement.runtime import Runtime
from settlement.store.models import MemberAccount, OutboxRow, utcnow
from settlement.store.models.governance import Intent

__all__ = ["FORWARDER", "DEADLINE_S_DEFAULT", "DEADLINE_S_MAX", "OUTSTANDING_PER_ACCOUNT_MAX", "LIST_LIMIT_MAX",
           "HELD", "OwnKey", "own_key", "hold", "typed_data", "request_tuple", "get_intent", "list_intents",
           "SignatureCheck", "check_signature", "accept_signature", "withdraw", "release", "forward_gas",
           "FORWARD_REQUEST_TYPES"]

FORWARDER = "LedgerForwarder"
HELD = "held"  # the outbox status the dispatcher never picks
DEADLINE_S_DEFAULT = 3_600
DEADLINE_S_MAX = 7 * 86_400
OUTSTANDING_PER_ACCOUNT_MAX = 32  # held or relayed-but-unmined intents of one account
LIST_LIMIT_MAX = 200
# The forwarder's own work (signature check, nonce) plus the 1/64 of gas a CALL keeps back: the
# outer transaction's gas is the inner call's limit scaled by 64/63 plus this.
FORWARD_GAS_OVERHEAD = 150_000
SIGNATURE_BYTES = 65

FORWARD_REQUEST_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "ForwardRequest": [
        {"name": "from", "type": "address"}, {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"},
        {"name": "gas", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint48"}, {"name": "data", "type": "bytes"},
    ],
}
_OPEN = ("held", "relayed")


@dataclass(frozen=True)
class OwnKey:
    """"Sign this with my own key": the member, its own account (the request's ``from``), and what
    was read from the chain before the write transaction (no node call holds the store's writer)."""

    member_id: str
    account: str
    chain_id: int
    forwarder: str
    chain_nonce: int
    deadline: int


def own_key(runtime: Runtime, member_id: str, *, account: str | None = None, deadline: int | None = None) -> OwnKey:
    """The facts for an intent of ``member_id``: its own account (``account``, or the oldest one
    whose key the service does not hold), the forwarder's nonce of it and a deadline (default one
    hour of chain time, at most seven days). Raises NoOwnAccountError, ValidationError."""
    with runtime.db.read() as session:
        q = select(MemberAccount.address).where(MemberAccount.member_id == member_id,
                                                MemberAccount.encrypted_key.is_(None))
        if account is not None:
            q = q.where(func.lower(MemberAccount.address) == account.lower())
        chosen = session.scalar(q.order_by(MemberAccount.created_at, MemberAccount.address).limit(1))
    if chosen is None:
        raise NoOwnAccountError(
            f"member {member_id} has no own account{' ' + account if account else ''} to sign with: register "
            f"one with POST /v1/members/{member_id}/keys", member_id=member_id)
    forwarder = runtime.address(FORWARDER)
    (nonce,) = runtime.chain.call(FORWARDER, forwarder, "nonces", [chosen])
    now = runtime.chain.chain_time()
    if deadline is None:
        deadline = now + DEADLINE_S_DEFAULT
    elif type(deadline) is not int or not now < deadline <= now + DEADLINE_S_MAX:
        raise ValidationError(f"deadline must be unix seconds within {DEADLINE_S_MAX} s from now (chain time {now})",
                              field="deadline")
    return OwnKey(member_id=member_id, account=chosen, chain_id=runtime.chain.chain_id, forwarder=forwarder,
                  chain_nonce=int(nonce), deadline=deadline)


def forward_gas(inner_gas: int) -> int:
    return inner_gas * 64 // 63 + FORWARD_GAS_OVERHEAD


def _next_nonce(session: Session, own: OwnKey) -> int:
    open_rows = session.execute(select(func.max(Intent.nonce), func.count()).where(
        Intent.account == own.account, Intent.status.in_(_OPEN),
        Intent.outbox_id.in_(select(OutboxRow.id).where(OutboxRow.status.in_((HELD, "pending", "signed", "sent")))))
    ).one()
    highest, outstanding = open_rows
    if outstanding >= OUTSTANDING_PER_ACCOUNT_MAX:
        raise IntentStateError(f"account {own.account} has {outstanding} intents outstanding; sign or withdraw "
                               f"them first (at most {OUTSTANDING_PER_ACCOUNT_MAX})", account=own.account)
    return max(own.chain_nonce, -1 if highest is None else int(highest) + 1)


def hold(session: Session, own: OwnKey, *, kind: str, contract: str, to: str, function: str, args: list,
         gas_limit: int, aggregate_id: str = "", calldata: bytes | None = None) -> OutboxRow:
    """Like :func:`~settlement.pipeline.outbox.enqueue`, for a call the member signs itself: the row
    is held (never sent) until :func:`accept_signature`, and an intent describes it. ``contract``
    must trust the forwarder (every ConsortiumGuarded ledger contract does); ``to`` is its address."""
    row = enqueue(session, kind=kind, contract=contract, function=function, args=args, signer=own.account,
                  gas_limit=gas_limit, aggregate_id=aggregate_id, calldata=calldata)
    row.status = HELD
    intent = Intent(id="int_" + secrets.token_hex(16), member_id=own.member_id, account=own.account,
                    outbox_id=row.id, kind=kind, aggregate_id=aggregate_id, contract=contract,
                    to=to, function=function, args=list(args), data=row.calldata,
                    gas=gas_limit, nonce=_next_nonce(session, own), deadline=own.deadline, status="held")
    session.add(intent)
    session.flush()
    return row


def request_tuple(intent: Intent, signature: bytes = b"") -> list:
    """The ``ForwardRequestData`` tuple ``(from, to, value, gas, deadline, data, signature)``."""
    return [intent.account, intent.to, 0, int(intent.gas), int(intent.deadline), "0x" + intent.data.hex(),
            "0x" + signature.hex()]


def typed_data(chain_id: int, forwarder: str, intent: Intent) -> dict[str, Any]:
    """The EIP-712 ForwardRequest the member signs (``eth_signTypedData_v4`` input)."""
    return {"types": FORWARD_REQUEST_TYPES, "primaryType": "ForwardRequest",
            "domain": {"name": "LedgerForwarder", "version": "1", "chainId": chain_id, "verifyingContract": forwarder},
            "message": {"from": intent.account, "to": intent.to, "value": 0, "gas": int(intent.gas),
                        "nonce": int(intent.nonce), "deadline": int(intent.deadline),
                        "data": "0x" + intent.data.hex()}}


def get_intent(session: Session, intent_id: str, member_id: str | None = None) -> Intent:
    """An intent; another member's answers as absent. ``member_id`` None: any (operator tools)."""
    intent = session.get(Intent, intent_id) if isinstance(intent_id, str) and len(intent_id) <= 40 else None
    if intent is None or (member_id is not None and intent.member_id != member_id):
        raise IntentNotFoundError(f"no intent {str(intent_id)[:40]!r}")
    return intent


def list_intents(session: Session, member_id: str, *, status: str | None = None, limit: int = 50,
                 cursor: str | None = None) -> tuple[list[Intent], str | None]:
    """A page of the member's intents, newest first, and the next page's cursor (``store.paging``)."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be within 1..{LIST_LIMIT_MAX}", field="limit")
    q = select(Intent).where(Intent.member_id == member_id)
    if status is not None:
        q = q.where(Intent.status == status)
    return keyset_page(session, q, Intent.created_at, Intent.id, limit, cursor, limit_max=LIST_LIMIT_MAX)


@dataclass(frozen=True)
class SignatureCheck:
    """A signature checked outside the write transaction (recovery, chain time, simulation)."""

    intent_id: str
    signature: bytes
    nonce: int


def check_signature(runtime: Runtime, intent_id: str, member_id: str, signature_hex: str) -> SignatureCheck:
    """Checks a member's signature of its intent before anything is written: it is 65 bytes, it
    recovers (over the intent's current typed data) to the intent's account, the deadline has not
    passed, and the inner call would succeed now. Raises SignatureInvalidError,
    SignatureExpiredError, IntentStateError, or ChainRevertError with the inner call's own error."""
    try:
        signature = bytes.fromhex(signature_hex.removeprefix("0x"))
    except (ValueError, AttributeError):
        signature = b""
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureInvalidError("the signature must be 65 bytes as 0x-hex (r, s, v)", field="signature")
    forwarder = runtime.address(FORWARDER)
    with runtime.db.read() as session:
        intent = get_intent(session, intent_id, member_id)
        if intent.status != "held":
            raise IntentStateError(f"intent {intent.id} is {intent.status}, not waiting for a signature",
                                   intent_id=intent.id, status=intent.status)
        typed = typed_data(runtime.chain.chain_id, forwarder, intent)
        account, to, data, gas, nonce, deadline = (intent.account, intent.to, intent.data, int(intent.gas),
                                                   int(intent.nonce), int(intent.deadline))
    try:
        signer = recover_typed_data(typed, signature)
    except ValueError as exc:
        raise SignatureInvalidError(str(exc), field="signature") from None
    if signer != account:
        raise SignatureInvalidError(f"the signature recovers to {signer}, not to the intent's account {account} "
                                    "(or it was made over another nonce or other terms: fetch the intent again)",
                                    signer=signer, account=account)
    now = runtime.chain.chain_time()
    if deadline <= now:
        raise SignatureExpiredError(f"the intent's deadline {deadline} has passed (chain time {now})",
                                    deadline=deadline)
    refusal = runtime.chain.forwarded_revert_reason(forwarder, account, to, data, gas)
    if refusal is not None:
        raise refusal
    return SignatureCheck(intent_id=intent_id, signature=signature, nonce=nonce)


def accept_signature(session: Session, runtime: Runtime, check: SignatureCheck, member_id: str) -> Intent:
    """In the write transaction: the checked signature turns the held row into
    ``LedgerForwarder.execute(request)`` sent by the relayer (the operator's key)."""
    intent = get_intent(session, check.intent_id, member_id)
    if intent.status != "held" or int(intent.nonce) != check.nonce:
        raise IntentStateError(f"intent {intent.id} changed while its signature was checked ({intent.status}, "
                               f"nonce {intent.nonce}); fetch it again", intent_id=intent.id, status=intent.status)
    earlier = list(session.scalars(select(Intent.id).where(
        Intent.account == intent.account, Intent.status == "held", Intent.nonce < intent.nonce)
        .order_by(Intent.nonce)))
    if earlier:
        raise IntentOutOfOrderError(f"intents of {intent.account} are relayed in nonce order: sign {earlier[0]} "
                                    f"first", intent_id=intent.id, earlier=earlier)
    owner = session.scalar(select(MemberAccount.member_id).where(MemberAccount.address == intent.account))
    if owner != member_id:
        raise SignatureInvalidError(f"{intent.account} is no longer an account of {member_id}",
                                    account=intent.account)
    row = session.get(OutboxRow, intent.outbox_id)
    if row is None or row.status != HELD:
        raise IntentStateError(f"intent {intent.id}'s call is no longer held", intent_id=intent.id)
    request = request_tuple(intent, check.signature)
    fn = catalogue().function(FORWARDER, "execute")
    row.contract, row.function, row.args = FORWARDER, "execute", [request]
    row.calldata = fn.encode([request])
    row.signer, row.gas_limit, row.status = runtime.operator.address, forward_gas(int(intent.gas)), "pending"
    intent.signature, intent.status, intent.relayed_at = check.signature, "relayed", utcnow()
    session.flush()
    return intent


def withdraw(session: Session, intent_id: str, member_id: str) -> Intent:
    """The member gives up an unsigned intent; the dispatcher releases it (the command is undone)."""
    intent = get_intent(session, intent_id, member_id)
    if intent.status != "held":
        raise IntentStateError(f"intent {intent.id} is {intent.status}", intent_id=intent.id, status=intent.status)
    intent.status = "withdrawing"
    return intent


def release(session: Session, now_s: int, limit: int) -> list[tuple[OutboxRow, ChainRevertError]]:
    """Held intents past their deadline, and withdrawn ones: their rows fail (the caller, the
    dispatcher, runs the kind's failure hook on each) and later held intents of the same account
    move down one nonce. Returns the released rows with the error to report."""
    released: list[tuple[OutboxRow, ChainRevertError]] = []
    due = list(session.scalars(select(Intent).where(
        ((Intent.status == "held") & (Intent.deadline <= now_s)) | (Intent.status == "withdrawing"))
        .order_by(Intent.account, Intent.nonce.desc()).limit(limit)))
    for intent in due:
        expired = intent.status == "held"
        name = "IntentExpired" if expired else "IntentWithdrawn"
        detail = (f"intent {intent.id} was not signed before its deadline {intent.deadline}" if expired
                  else f"intent {intent.id} was withdrawn by its member")
        intent.status, intent.error = ("expired" if expired else "withdrawn"), detail
        row = session.get(OutboxRow, intent.outbox_id)
        later = session.scalars(select(Intent).where(Intent.account == intent.account, Intent.status == "held",
                                                     Intent.nonce > intent.nonce))
        for other in later:
            other.nonce = int(other.nonce) - 1
        if row is not None and row.status == HELD:
            row.status, row.error_name, row.last_error = "failed", name, detail
            released.append((row, ChainRevertError(detail, error_name=name)))
    session.flush()
    return released
