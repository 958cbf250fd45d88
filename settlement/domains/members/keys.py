"""A member's keys change with its own consent: ``addAccountWithConsent`` /
``removeAccountWithConsent`` of the registry, relayed by the service.

The registry checks two EIP-712 signatures over ``AddAccount(memberId, account, signer, nonce,
deadline)`` (domain "ConsortiumRegistry" "1"): the consent of ``signer``, a current account of the
member, and the proof of possession by the new ``account`` (it signs the same typed data, so no one
can bind a stranger's address to a member). Removal needs the consent only. The consenting key is
the member's own (its signature comes with the request) or, when the member has a custodial
account and asks for it, the service signs the consent with that account's key. Anyone may relay:
the service's relayer (the operator's key) sends the call; it adds nothing to the member's authority.

The service checks both signatures before it writes anything (the registry checks them again), and
the mirror follows the registry's ``MemberAccountAdded`` / ``MemberAccountRemoved`` events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.chain.contracts import checksum_address
from settlement.chain.signing import recover_typed_data, sign_typed_data
from settlement.core.errors import (
    DuplicateError,
    InvalidStateError,
    MemberSuspendedError,
    NoCustodialAccountError,
    SignatureExpiredError,
    SignatureInvalidError,
    ValidationError,
)
from settlement.domains.members.service import REGISTRY, STATUS_ACTIVE, get_member
from settlement.pipeline.outbox import PENDING_STATUSES, enqueue
from settlement.runtime import Runtime
from settlement.store.models import MemberAccount, OutboxRow

__all__ = ["ADD", "REMOVE", "CONSENT_DEADLINE_S_DEFAULT", "CONSENT_DEADLINE_S_MAX", "KeyChange", "prepare_key_change",
           "consent_typed_data", "change_key", "key_accounts"]

ADD = "add"
REMOVE = "remove"
CONSENT_DEADLINE_S_DEFAULT = 3_600
CONSENT_DEADLINE_S_MAX = 7 * 86_400
# Measured (docs/governance.md): addAccountWithConsent 120k, removeAccountWithConsent 55k; margins.
GAS_ADD_WITH_CONSENT = 250_000
GAS_REMOVE_WITH_CONSENT = 150_000
_KINDS = {ADD: "member.add_key", REMOVE: "member.remove_key"}
_PRIMARY = {ADD: "AddAccount", REMOVE: "RemoveAccount"}
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CHANGE_TYPE = [
    {"name": "memberId", "type": "bytes32"}, {"name": "account", "type": "address"},
    {"name": "signer", "type": "address"}, {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"},
]
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
]


def consent_typed_data(chain_id: int, registry: str, action: str, member_onchain_id: str, account: str, signer: str,
                       nonce: int, deadline: int) -> dict[str, Any]:
    """``AddAccount`` / ``RemoveAccount`` for ``eth_signTypedData_v4``."""
    return {"types": {"EIP712Domain": _DOMAIN_TYPE, _PRIMARY[action]: _CHANGE_TYPE}, "primaryType": _PRIMARY[action],
            "domain": {"name": "ConsortiumRegistry", "version": "1", "chainId": chain_id,
                       "verifyingContract": registry},
            "message": {"memberId": member_onchain_id, "account": account, "signer": signer, "nonce": nonce,
                        "deadline": deadline}}


@dataclass(frozen=True)
class KeyChange:
    """A key change as the member signs it: read from the chain before the write transaction."""

    action: str
    member_id: str
    member_onchain_id: str
    account: str
    signer: str
    signer_custodial: bool
    nonce: int
    deadline: int
    chain_id: int
    registry: str
    now_s: int

    @property
    def typed_data(self) -> dict[str, Any]:
        return consent_typed_data(self.chain_id, self.registry, self.action, self.member_onchain_id, self.account,
                                  self.signer, self.nonce, self.deadline)


def _address(value: str, field: str) -> str:
    if not isinstance(value, str) or not _ADDRESS_RE.match(value):
        raise ValidationError(f"{field} must be a 0x address", field=field)
    return value


def key_accounts(session: Session, member_id: str) -> list[MemberAccount]:
    return list(session.scalars(select(MemberAccount).where(MemberAccount.member_id == member_id)
                                .order_by(MemberAccount.created_at, MemberAccount.address)))


def _in_flight(session: Session, signer: str) -> int:
    """Consents of ``signer`` enqueued and not yet mined: each will use one registry nonce."""
    rows = session.scalars(select(OutboxRow.args).where(
        OutboxRow.kind.in_(tuple(_KINDS.values())), OutboxRow.status.in_(PENDING_STATUSES)))
    return sum(1 for args in rows if str(args[2]).lower() == signer.lower())


def prepare_key_change(runtime: Runtime, member_id: str, action: str, account: str, *, signer: str | None = None,
                       nonce: int | None = None, deadline: int | None = None) -> KeyChange:
    """The typed data the member signs for adding (``add``) or removing (``remove``) ``account``.
    ``signer``: the consenting account (default: the member's custodial account, else its oldest own
    one). ``nonce`` / ``deadline``: as served earlier (checked), else fresh. Reads the chain."""
    if action not in _KINDS:
        raise ValidationError("action must be add or remove", field="action")
    account = _address(account, "account")
    with runtime.db.read() as session:
        member = get_member(session, member_id)
        if member.status != STATUS_ACTIVE:
            raise MemberSuspendedError(f"member {member_id} is suspended: its keys change only by governance",
                                       member_id=member_id)
        accounts = key_accounts(session, member_id)
        custodial = [a.address for a in accounts if a.encrypted_key is not None]
        if signer is None:
            if not accounts:
                raise InvalidStateError(f"member {member_id} has no account to consent with", member_id=member_id)
            signer = custodial[0] if custodial else accounts[0].address
        signer = _address(signer, "signer")
        match = next((a.address for a in accounts if a.address.lower() == signer.lower()), None)
        if match is None:
            raise SignatureInvalidError(f"{signer} is not an account of {member_id}: only a current key consents",
                                        field="signer")
        in_flight = _in_flight(session, match)
        oid = member.onchain_id
    registry = runtime.address(REGISTRY)
    (chain_nonce,) = runtime.chain.call(REGISTRY, registry, "nonces", [match])
    expected = int(chain_nonce) + in_flight
    if nonce is not None and nonce != expected:
        raise SignatureInvalidError(f"nonce {nonce} is not the consent's next nonce {expected}: fetch the typed data "
                                    "again", field="nonce", expected=expected)
    now = runtime.chain.chain_time()
    if deadline is None:
        deadline = now + CONSENT_DEADLINE_S_DEFAULT
    elif type(deadline) is not int or deadline > now + CONSENT_DEADLINE_S_MAX:
        raise ValidationError(f"deadline must be unix seconds within {CONSENT_DEADLINE_S_MAX} s from now",
                              field="deadline")
    elif deadline <= now:
        raise SignatureExpiredError(f"deadline {deadline} has passed (chain time {now})", deadline=deadline)
    return KeyChange(action=action, member_id=member_id, member_onchain_id=oid, account=checksum_address(account),
                     signer=match, signer_custodial=match in custodial, nonce=expected, deadline=deadline,
                     chain_id=runtime.chain.chain_id, registry=registry, now_s=now)


def _signature(hex_text: str | None, field: str) -> bytes:
    try:
        raw = bytes.fromhex((hex_text or "").removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 65:
        raise SignatureInvalidError(f"{field} must be 65 bytes as 0x-hex (r, s, v)", field=field)
    return raw


def _recovered(typed: dict, signature: bytes, field: str) -> str:
    try:
        return recover_typed_data(typed, signature)
    except ValueError as exc:
        raise SignatureInvalidError(str(exc), field=field) from None


def change_key(runtime: Runtime, session: Session, change: KeyChange, *, possession_signature: str | None,
               consent_signature: str | None, custodial_consent: bool = False) -> OutboxRow:
    """Checks the signatures and enqueues ``addAccountWithConsent`` / ``removeAccountWithConsent``,
    relayed by the operator's key. Consent: ``consent_signature`` by ``change.signer``, or (asked
    with ``custodial_consent``) signed here with the custodial key of ``change.signer``."""
    typed = change.typed_data
    member = get_member(session, change.member_id)
    if member.status != STATUS_ACTIVE:
        raise MemberSuspendedError(f"member {member.id} is suspended: its keys change only by governance",
                                   member_id=member.id)
    owner = session.scalar(select(MemberAccount.member_id).where(
        func.lower(MemberAccount.address) == change.account.lower()))
    if change.action == ADD:
        if owner is not None:
            raise DuplicateError(f"{change.account} is an account of a member already", account=change.account)
        possession = _signature(possession_signature, "possession_signature")
        if _recovered(typed, possession, "possession_signature") != change.account:
            raise SignatureInvalidError("the proof of possession is not a signature of the new account over this "
                                        "typed data", field="possession_signature")
    else:
        possession = b""
        if owner != member.id:
            raise SignatureInvalidError(f"{change.account} is not an account of {member.id}", field="account")
        if len(key_accounts(session, member.id)) <= 1:
            # The registry refuses it too (RegistryLastAccount): no signature can lock a member out.
            raise InvalidStateError(f"{change.account} is {member.id}'s last account: add another one first",
                                    member_id=member.id)
    if consent_signature is not None:
        consent = _signature(consent_signature, "consent_signature")
        if _recovered(typed, consent, "consent_signature") != change.signer:
            raise SignatureInvalidError(f"the consent is not a signature of {change.signer} over this typed data",
                                        field="consent_signature")
    elif custodial_consent:
        blob = session.scalar(select(MemberAccount.encrypted_key).where(MemberAccount.address == change.signer,
                                                                        MemberAccount.member_id == member.id))
        if blob is None:
            raise NoCustodialAccountError(f"the service holds no key of {change.signer}; consent with your own key",
                                          member_id=member.id)
        consent = sign_typed_data(runtime.vault.signer(change.signer, blob), typed)
    else:
        raise SignatureInvalidError("send consent_signature (a current key of the member over the typed data), or "
                                    "ask for custodial_consent", field="consent_signature")
    args: list = [change.member_onchain_id, change.account, change.signer, change.deadline, "0x" + consent.hex()]
    if change.action == ADD:
        args.append("0x" + possession.hex())
        function, gas = "addAccountWithConsent", GAS_ADD_WITH_CONSENT
    else:
        function, gas = "removeAccountWithConsent", GAS_REMOVE_WITH_CONSENT
    return enqueue(session, kind=_KINDS[change.action], contract=REGISTRY, function=function, args=args,
                   signer=runtime.operator.address, gas_limit=gas, aggregate_id=member.id)
