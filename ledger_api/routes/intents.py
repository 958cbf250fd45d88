"""Own-key intents: a member's calls it signs itself, relayed by the service (docs/intents.md).

Ask for one with the header ``Prefer: intent`` on a command route (optionally
``Prefer: intent; account=0x...; deadline=<unix s>``): the command is recorded as usual, its
contract call waits, and the answer carries the intent (typed data and a human-readable summary).
Sign the typed data with the member's own key and send the signature here; the service checks it
and relays ``LedgerForwarder.execute``. Each member sees its own intents only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger_api.conventions import CursorQuery
from ledger_api.deps import CurrentMember, RuntimeDep
from ledger_api.schemas import Problem
from ledger_api.schemas.governance import IntentChainPublic, IntentPublic, IntentSignature, IntentsPublic
from settlement.chain.describe import describe_typed_data
from settlement.core.errors import ValidationError
from settlement.pipeline import intents as svc
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow
from settlement.store.models.governance import Intent

router = APIRouter(prefix="/v1/intents", tags=["intents"],
                   responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem},
                              409: {"model": Problem}, 422: {"model": Problem}})

IntentIdPath = Annotated[str, Path(min_length=4, max_length=40, pattern=r"^int_[0-9a-f]{32}$")]
PreferHeader = Annotated[str | None, Header(alias="Prefer", max_length=300)]
PREFERENCE = "intent"


def own_key_preference(runtime: Runtime, member_id: str, prefer: str | None) -> svc.OwnKey | None:
    """The ``Prefer: intent`` of a command request, as the chain facts of an intent (read now,
    before the command's write transaction); None when the member wants custodial signing."""
    if not prefer:
        return None
    for preference in prefer.split(","):
        token, *params = [part.strip() for part in preference.split(";")]
        if token.lower() != PREFERENCE:
            continue
        options = {}
        for param in params:
            name, _, value = param.partition("=")
            options[name.strip().lower()] = value.strip().strip('"')
        deadline = None
        if "deadline" in options:
            if not options["deadline"].isdigit():
                raise ValidationError("Prefer: intent; deadline= takes unix seconds", field="Prefer")
            deadline = int(options["deadline"])
        return svc.own_key(runtime, member_id, account=options.get("account") or None, deadline=deadline)
    return None


def intent_public(runtime: Runtime, session: Session, intent: Intent) -> IntentPublic:
    row = session.get(OutboxRow, intent.outbox_id)
    typed = svc.typed_data(runtime.chain.chain_id, runtime.address(svc.FORWARDER), intent)
    names = {a.lower(): n for n, a in (runtime.manifest.addresses.items() if runtime.manifest else [])}
    return IntentPublic(
        id=intent.id, member_id=intent.member_id, account=intent.account, status=intent.status,  # type: ignore[arg-type]
        kind=intent.kind, aggregate_id=intent.aggregate_id, contract=intent.contract, function=intent.function,
        to=intent.to, nonce=int(intent.nonce), deadline=int(intent.deadline),
        deadline_at=datetime.fromtimestamp(int(intent.deadline), UTC), typed_data=typed,
        summary=describe_typed_data(typed, names)[:200],
        chain=IntentChainPublic(outbox_id=intent.outbox_id, status=row.status if row else "gone",
                                tx_hash=row.tx_hash if row else None, error_name=row.error_name if row else None,
                                error=(row.last_error or None) if row and row.status == "failed" else None),
        error=intent.error, created_at=intent.created_at, relayed_at=intent.relayed_at)


def intent_of_row(runtime: Runtime, session: Session, outbox_id: int) -> IntentPublic:
    intent = session.scalar(select(Intent).where(Intent.outbox_id == outbox_id))
    return intent_public(runtime, session, intent)


@router.get("", response_model=IntentsPublic, summary="Your intents, newest first")
def list_intents(runtime: RuntimeDep, member: CurrentMember,
                 status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
                 limit: Annotated[int, Query(ge=1, le=svc.LIST_LIMIT_MAX)] = 50,
                 cursor: CursorQuery = None) -> IntentsPublic:
    with runtime.db.read() as session:
        rows, next_cursor = svc.list_intents(session, member.member_id, status=status_, limit=limit, cursor=cursor)
        data = [intent_public(runtime, session, i) for i in rows]
    return IntentsPublic(data=data, count=len(data), next_cursor=next_cursor, has_more=next_cursor is not None)


@router.get("/{intent_id}", response_model=IntentPublic,
            summary="One intent, with the typed data to sign (fetch it again if its nonce moved)")
def get_intent(intent_id: IntentIdPath, runtime: RuntimeDep, member: CurrentMember) -> IntentPublic:
    with runtime.db.read() as session:
        return intent_public(runtime, session, svc.get_intent(session, intent_id, member.member_id))


@router.post("/{intent_id}/signature", status_code=status.HTTP_202_ACCEPTED, response_model=IntentPublic,
             summary="Your own key's signature of the intent's typed data: checked, then relayed")
def sign(intent_id: IntentIdPath, body: IntentSignature, runtime: RuntimeDep, member: CurrentMember) -> IntentPublic:
    check = svc.check_signature(runtime, intent_id, member.member_id, body.signature)
    with runtime.db.transaction() as session:
        intent = svc.accept_signature(session, runtime, check, member.member_id)
        return intent_public(runtime, session, intent)


@router.post("/{intent_id}/withdrawal", status_code=status.HTTP_202_ACCEPTED, response_model=IntentPublic,
             summary="Give up an unsigned intent: the command it belongs to is undone")
def withdraw(intent_id: IntentIdPath, runtime: RuntimeDep, member: CurrentMember) -> IntentPublic:
    with runtime.db.transaction() as session:
        intent = svc.withdraw(session, intent_id, member.member_id)
        return intent_public(runtime, session, intent)
