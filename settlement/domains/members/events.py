"""The registry's events, mirrored into the members tables by the follower.

The registry is the truth about members; every change it makes (through governance, the guardian's
fast path, a member's own consent, or the bootstrap) arrives here as an event, including changes made
around the API. Handlers run in the follower's transaction and are idempotent (an event applied
twice changes nothing):

- ``MemberOnboarded``: the member waiting in ``member_onboardings`` (onboarded by governance) is
  created with its accounts; a member the service never heard of gets a placeholder row
  (``onchain-<hex>``) so that its accounts and roles are mirrored too;
- ``MemberAccountAdded`` / ``MemberAccountRemoved``: accounts; a removed custodial account's key is
  deleted with its row (the service keeps no key of an account the member gave up);
- role, country, suspension and reactivation events: the member row.
"""

from __future__ import annotations

import base64
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.domains.anchoring import digest_changed
from settlement.domains.members.service import (
    ROLE_BY_HASH,
    ROLE_NAMES,
    STATUS_ACTIVE,
    STATUS_SUSPENDED,
    roles_from_mask,
)
from settlement.store.models import Member, MemberAccount
from settlement.store.models.governance import MemberOnboarding

__all__ = ["REGISTRY_CONTRACTS", "EVENT_HANDLERS"]

log = logging.getLogger("ledger.members")

# The catalogue names an event after the first artifact declaring it.
REGISTRY_CONTRACTS = frozenset({"ConsortiumRegistry", "IConsortiumRegistry"})
PLACEHOLDER_PREFIX = "onchain-"


def _country(raw: str) -> str:
    text = bytes.fromhex(raw[2:]).decode("ascii", errors="replace")
    return text if len(text) == 2 and text.isalpha() else "ZZ"


def _member(session: Session, onchain_id: str) -> Member | None:
    return session.scalar(select(Member).where(Member.onchain_id == onchain_id.lower()))


def on_onboarded(session: Session, lg: DecodedLog) -> None:
    oid = lg.args["id"].lower()
    roles = list(roles_from_mask(int(lg.args["roleMask"])))
    member = _member(session, oid)
    if member is not None:  # onboarded in the bootstrap window: the row was written then
        member.status = STATUS_ACTIVE
        digest_changed(session, "member", member)
        return
    waiting = session.get(MemberOnboarding, oid)
    if waiting is not None:
        member = Member(id=waiting.member_id, onchain_id=oid, name=waiting.name, country=_country(lg.args["country"]),
                        roles=roles, status=STATUS_ACTIVE)
        session.add(member)
        session.flush()
        for account in waiting.accounts:
            if session.get(MemberAccount, account["address"]) is None:
                blob = account.get("encrypted_key")
                session.add(MemberAccount(address=account["address"], member_id=member.id,
                                          encrypted_key=base64.urlsafe_b64decode(blob) if blob else None))
        waiting.status = "onboarded"
        digest_changed(session, "member", member)
        digest_changed(session, "member.account", *(a["address"] for a in waiting.accounts))
        log.info("member %s onboarded by governance (tx %s)", member.id, lg.tx_hash)
        return
    member_id = PLACEHOLDER_PREFIX + oid[2:18]
    session.add(Member(id=member_id, onchain_id=oid, name=f"(onboarded on chain, id {oid[:18]}...)",
                       country=_country(lg.args["country"]), roles=roles, status=STATUS_ACTIVE))
    session.flush()
    digest_changed(session, "member", member_id)
    log.warning("member %s onboarded on chain without the service (tx %s): mirrored as %s", oid, lg.tx_hash,
                member_id)


def on_account_added(session: Session, lg: DecodedLog) -> None:
    member = _member(session, lg.args["id"])
    if member is None:
        return
    account = session.get(MemberAccount, lg.args["account"])
    if account is None:
        session.add(MemberAccount(address=lg.args["account"], member_id=member.id, encrypted_key=None))
        digest_changed(session, "member.account", lg.args["account"])
        log.info("member %s: account %s added (tx %s)", member.id, lg.args["account"], lg.tx_hash)
    elif account.member_id != member.id:
        log.error("account %s is %s's in the store but %s's on chain: following the chain", account.address,
                  account.member_id, member.id)
        account.member_id = member.id
        digest_changed(session, "member.account", account)


def on_account_removed(session: Session, lg: DecodedLog) -> None:
    account = session.get(MemberAccount, lg.args["account"])
    if account is None:
        return
    member = _member(session, lg.args["id"])
    if member is not None and account.member_id == member.id:
        log.info("member %s: account %s removed (tx %s)%s", member.id, account.address, lg.tx_hash,
                 "; its custodial key is deleted" if account.encrypted_key else "")
        session.delete(account)
        digest_changed(session, "member.account", lg.args["account"])  # a tombstone version


def _set_roles(session: Session, lg: DecodedLog, grant: bool) -> None:
    member = _member(session, lg.args["id"])
    role = ROLE_BY_HASH.get(lg.args["role"].lower())
    if member is None or role is None:
        return
    wanted = set(member.roles) | {role} if grant else set(member.roles) - {role}
    member.roles = [r for r in ROLE_NAMES if r in wanted]  # a new list: JSON columns track assignment
    digest_changed(session, "member", member)


def on_role_granted(session: Session, lg: DecodedLog) -> None:
    _set_roles(session, lg, True)


def on_role_revoked(session: Session, lg: DecodedLog) -> None:
    _set_roles(session, lg, False)


def on_country_changed(session: Session, lg: DecodedLog) -> None:
    member = _member(session, lg.args["id"])
    if member is not None:
        member.country = _country(lg.args["country"])
        digest_changed(session, "member", member)


def on_suspended(session: Session, lg: DecodedLog) -> None:
    member = _member(session, lg.args["id"])
    if member is not None:
        member.status = STATUS_SUSPENDED
        digest_changed(session, "member", member)
        log.info("member %s suspended on chain (tx %s)", member.id, lg.tx_hash)


def on_reactivated(session: Session, lg: DecodedLog) -> None:
    member = _member(session, lg.args["id"])
    if member is not None:
        member.status = STATUS_ACTIVE
        digest_changed(session, "member", member)
        log.info("member %s reactivated on chain (tx %s)", member.id, lg.tx_hash)


EVENT_HANDLERS = (
    ("MemberOnboarded", on_onboarded),
    ("MemberAccountAdded", on_account_added),
    ("MemberAccountRemoved", on_account_removed),
    ("MemberRoleGranted", on_role_granted),
    ("MemberRoleRevoked", on_role_revoked),
    ("MemberCountryChanged", on_country_changed),
    ("MemberSuspended", on_suspended),
    ("MemberReactivated", on_reactivated),
)
