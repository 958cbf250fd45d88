"""A member's own keys: list them, get the typed data to sign, add one (consent + proof of
possession), remove one (consent). Only the member itself may ask: a member's accounts change with
its own consent (or by governance, ``/v1/governance``), and the registry checks the signatures again.

The flow: ``POST /v1/members/{id}/keys/typed-data`` serves ``AddAccount`` (signer, nonce, deadline
fixed there); the new key signs it (possession) and a current key of the member signs the same
typed data (consent: the member's own key, e.g. with ``ledger sign``, or the custodial key the service
holds, asked with ``custodial_consent``); ``POST /v1/members/{id}/keys`` relays
``addAccountWithConsent``. The account appears once the follower sees ``MemberAccountAdded``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from ledger_api.deps import CurrentMember, Principal, RuntimeDep
from ledger_api.routes.members import MemberIdPath
from ledger_api.schemas import Problem
from ledger_api.schemas.governance import (
    KeyAdd,
    KeyChangeAccepted,
    KeyPublic,
    KeyRemove,
    KeysPublic,
    KeyTypedDataPublic,
    KeyTypedDataRequest,
)
from settlement.chain.describe import describe_typed_data
from settlement.core.errors import MemberKeysForbiddenError
from settlement.domains import members as svc
from settlement.domains.members import keys

router = APIRouter(prefix="/v1/members/{member_id}/keys", tags=["member keys"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem},
                              409: {"model": Problem}, 422: {"model": Problem}})

AddressPath = Annotated[str, Path(min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$")]


def _own(member: Principal, member_id: str, *, read: bool = False) -> None:
    if member.member_id == member_id or (read and "operator" in member.roles):
        return
    raise MemberKeysForbiddenError(f"only {member_id} itself may change its keys (with its own consent)",
                                   member_id=member_id)


@router.get("", response_model=KeysPublic, summary="The member's accounts, and which keys the service holds")
def list_keys(member_id: MemberIdPath, runtime: RuntimeDep, member: CurrentMember) -> KeysPublic:
    _own(member, member_id, read=True)
    with runtime.db.read() as session:
        svc.get_member(session, member_id)
        data = [KeyPublic(address=a.address, custodial=a.encrypted_key is not None, created_at=a.created_at)
                for a in keys.key_accounts(session, member_id)]
    return KeysPublic(member_id=member_id, data=data)


def _typed_public(change: keys.KeyChange) -> KeyTypedDataPublic:
    return KeyTypedDataPublic(action=change.action, account=change.account, signer=change.signer,  # type: ignore[arg-type]
                              signer_custodial=change.signer_custodial, nonce=change.nonce, deadline=change.deadline,
                              typed_data=change.typed_data, summary=describe_typed_data(change.typed_data))


@router.post("/typed-data", response_model=KeyTypedDataPublic,
             summary="The AddAccount / RemoveAccount typed data the new key and the consenting key sign")
def typed_data(member_id: MemberIdPath, body: KeyTypedDataRequest, runtime: RuntimeDep,
               member: CurrentMember) -> KeyTypedDataPublic:
    _own(member, member_id)
    return _typed_public(keys.prepare_key_change(runtime, member_id, body.action, body.account, signer=body.signer,
                                                 deadline=body.deadline))


def _accepted(change: keys.KeyChange, row_id: int, row_status: str) -> KeyChangeAccepted:
    return KeyChangeAccepted(member_id=change.member_id, action=change.action, account=change.account,  # type: ignore[arg-type]
                             signer=change.signer, outbox_id=row_id, status=row_status)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=KeyChangeAccepted,
             summary="Add an account: the new key's proof of possession and the member's consent, relayed")
def add_key(member_id: MemberIdPath, body: KeyAdd, runtime: RuntimeDep, member: CurrentMember) -> KeyChangeAccepted:
    _own(member, member_id)
    change = keys.prepare_key_change(runtime, member_id, keys.ADD, body.account, signer=body.signer,
                                     nonce=body.nonce, deadline=body.deadline)
    with runtime.db.transaction() as session:
        row = keys.change_key(runtime, session, change, possession_signature=body.possession_signature,
                              consent_signature=body.consent_signature, custodial_consent=body.custodial_consent)
        return _accepted(change, row.id, row.status)


@router.post("/{address}/removal", status_code=status.HTTP_202_ACCEPTED, response_model=KeyChangeAccepted,
             summary="Remove an account with the member's consent (never its last one)")
def remove_key(member_id: MemberIdPath, address: AddressPath, body: KeyRemove, runtime: RuntimeDep,
               member: CurrentMember) -> KeyChangeAccepted:
    _own(member, member_id)
    change = keys.prepare_key_change(runtime, member_id, keys.REMOVE, address, signer=body.signer,
                                     nonce=body.nonce, deadline=body.deadline)
    with runtime.db.transaction() as session:
        row = keys.change_key(runtime, session, change, possession_signature=None,
                              consent_signature=body.consent_signature, custodial_consent=body.custodial_consent)
        return _accepted(change, row.id, row.status)
