"""Consortium members: onboarding, the service's mirror of the registry, and custodial accounts.

The on-chain ``ConsortiumRegistry`` is authoritative for a member's roles, status and accounts;
the ``members`` tables mirror it (``events.py`` keeps them in step with every registry event, also
of changes made around the API). Onboarding has two paths:

- during the registry's bootstrap window (deployment), :func:`onboard` writes the member and
  enqueues ``onboardMember`` signed by the operator, the bootstrapper, in one transaction;
- after the seal only governance may onboard: :func:`prepare_onboarding` records the member in
  waiting (``member_onboardings``) and returns the registry call the governance proposal makes;
  the member appears when the follower sees ``MemberOnboarded``.

Suspension, reinstatement, roles and accounts are governance decisions too
(``settlement.domains.governance``); a member's own keys change with its consent (``keys.py``).

:class:`RegistryView` answers "what may this member do now" for authentication: it reads the
registry (``getMember``) at most once per TTL per member, refreshes the mirror from it, and falls
back to the mirror when the chain is unreachable or has not seen the member yet.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.client import ChainClient
from settlement.chain.signing import keccak256
from settlement.core.errors import (
    BootstrapSealedError,
    ChainRevertError,
    ChainUnavailableError,
    DuplicateError,
    InvalidCountryError,
    NoCustodialAccountError,
    UnknownMemberError,
    UnknownRoleError,
    ValidationError,
)
from settlement.domains.anchoring import digest_changed
from settlement.domains.members.apikeys import IssuedKey, issue_key
from settlement.pipeline.outbox import PENDING_STATUSES, enqueue
from settlement.runtime import Runtime
from settlement.store.models import Checkpoint, Member, MemberAccount, OutboxRow
from settlement.store.models.governance import MemberOnboarding

__all__ = [
    "REGISTRY", "ROLE_NAMES", "ROLE_HASHES", "MEMBER_ID_LEN_MAX", "MEMBER_LIST_LIMIT_MAX", "NAME_LEN_MAX", "ISO_3166_ALPHA2",
    "STATUS_ACTIVE", "STATUS_SUSPENDED", "onchain_id", "country_hex", "role_hash", "roles_from_mask",
    "validate_member_id", "validate_country", "validate_roles", "validate_name",
    "Onboarded", "onboard", "onboard_member", "onboard_args", "prepare_onboarding", "check_new_member",
    "get_member", "list_members", "member_accounts", "OnchainMember", "read_onchain_member",
    "MemberView", "RegistryView", "custodial_signer", "own_accounts", "ROLE_BY_HASH", "GAS_ONBOARD",
]

log = logging.getLogger(__name__)

REGISTRY = "ConsortiumRegistry"
# In the registry's bit order (bit i of roleMask is ROLE_NAMES[i]); the on-chain role id is
# keccak256 of the upper-case name.
ROLE_NAMES: tuple[str, ...] = ("operator", "finance", "supplier", "buyer", "financier", "auditor")
ROLE_HASHES: dict[str, str] = {name: "0x" + keccak256(name.upper().encode()).hex() for name in ROLE_NAMES}
ROLE_BY_HASH: dict[str, str] = {h: name for name, h in ROLE_HASHES.items()}
STATUS_ACTIVE = "active"
STATUS_SUSPENDED = "suspended"
_ONCHAIN_STATUS = {0: "none", 1: STATUS_ACTIVE, 2: STATUS_SUSPENDED}

MEMBER_ID_LEN_MAX = 64
NAME_LEN_MAX = 200
MEMBER_LIST_LIMIT_MAX = 500
# Lower-case letters, digits and inner hyphens: stable in URLs, logs and keccak256 ids.
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

# Measured on anvil with one account and six roles (~260k); the margin covers storage-cold paths.
GAS_ONBOARD = 500_000

# ISO 3166-1 alpha-2, officially assigned codes.
ISO_3166_ALPHA2: frozenset[str] = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT
HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS
LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI
NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG
SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())
if len(ISO_3166_ALPHA2) != 249:  # a hard check, not an assert: python -O must not strip it
    raise RuntimeError("the ISO 3166-1 alpha-2 table is damaged")


# -- pure helpers ------------------------------------------------------------------------------


def onchain_id(member_id: str) -> str:
    """The registry id of a member: keccak256 of its slug, as 0x hex."""
    return "0x" + keccak256(member_id.encode("ascii")).hex()


def country_hex(country: str) -> str:
    return "0x" + country.encode("ascii").hex()


def role_hash(role: str) -> str:
    try:
        return ROLE_HASHES[role]
    except KeyError:
        raise UnknownRoleError(f"unknown role {role[:32]!r}; known: {', '.join(ROLE_NAMES)}") from None


def roles_from_mask(mask: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(ROLE_NAMES) if mask >> i & 1)


def validate_member_id(member_id: str) -> str:
    if not isinstance(member_id, str) or not _SLUG_RE.match(member_id):
        raise ValidationError("member id must be 1-64 lower-case letters, digits and inner hyphens",
                              field="id")
    return member_id


def validate_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= NAME_LEN_MAX or any(ord(c) < 32 for c in name):
        raise ValidationError(f"name must be 1-{NAME_LEN_MAX} printable characters", field="name")
    return name


def validate_country(country: str) -> str:
    if not isinstance(country, str) or country not in ISO_3166_ALPHA2:
        raise InvalidCountryError("country must be an ISO 3166-1 alpha-2 code in upper case, e.g. CN",
                                  field="country")
    return country


def validate_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Known role names, de-duplicated, in the registry's order; at least one."""
    wanted = list(roles)
    for role in wanted:
        role_hash(role)
    ordered = tuple(name for name in ROLE_NAMES if name in wanted)
    if not ordered:
        raise ValidationError("a member needs at least one role", field="roles")
    return ordered


# -- the service ---------------------------------------------------------------------------------


def _operator(runtime: Runtime) -> str:
    return runtime.operator.address


@dataclass(frozen=True)
class Onboarded:
    member: Member
    address: str
    api_key: IssuedKey
    outbox_id: int


def onboard_member(runtime: Runtime, session: Session, *, member_id: str, name: str, country: str,
                   roles: Sequence[str], key_label: str = "initial") -> tuple[Member, str]:
    """Create member ``member_id`` with a new custodial account and a first API key, and enqueue
    its ``onboardMember`` registry call, all in ``session``'s transaction.

    Returns the member and the API key's plaintext (show it once; only its hash is stored).
    Raises ValidationError (bad id, name, country, roles) or DuplicateError (id taken).
    """
    done = onboard(runtime, session, member_id=member_id, name=name, country=country, roles=roles,
                   key_label=key_label)
    return done.member, done.api_key.plaintext


def check_new_member(session: Session, *, member_id: str, name: str, country: str,
                     roles: Sequence[str]) -> tuple[str, str, str, tuple[str, ...]]:
    """Validated (id, name, country, roles) of a member to onboard; DuplicateError when the id is
    taken by a member or by an onboarding waiting for governance."""
    member_id = validate_member_id(member_id)
    name = validate_name(name)
    country = validate_country(country)
    ordered_roles = validate_roles(roles)
    oid = onchain_id(member_id)
    if session.get(Member, member_id) is not None or \
            session.scalar(select(Member.id).where(Member.onchain_id == oid)) is not None:
        raise DuplicateError(f"member {member_id!r} already exists", member_id=member_id)
    waiting = session.get(MemberOnboarding, oid)
    if waiting is not None and waiting.status == "proposed":
        raise DuplicateError(f"member {member_id!r} is already proposed for onboarding (proposal "
                             f"{waiting.proposal_id})", member_id=member_id, proposal_id=waiting.proposal_id)
    return member_id, name, country, ordered_roles


def onboard_args(member_id: str, country: str, accounts: Sequence[str], roles: Sequence[str]) -> list:
    """The registry's ``onboardMember(id, country, accounts, roles)`` arguments, JSON-safe."""
    return [onchain_id(member_id), country_hex(country), list(accounts), [ROLE_HASHES[r] for r in roles]]


def onboard(runtime: Runtime, session: Session, *, member_id: str, name: str, country: str,
            roles: Sequence[str], key_label: str = "initial") -> Onboarded:
    """A founding member, in the registry's bootstrap window: :func:`onboard_member`, returning
    everything it wrote (account, key, outbox row id). BootstrapSealedError once the window is
    closed (then onboarding is a governance proposal: :func:`prepare_onboarding`)."""
    member_id, name, country, ordered_roles = check_new_member(session, member_id=member_id, name=name,
                                                               country=country, roles=roles)
    if not runtime.bootstrap_open():
        raise BootstrapSealedError("the registry's bootstrap is sealed: onboarding is a governance proposal now "
                                   "(POST /v1/members answers with it)", member_id=member_id)
    address, blob = runtime.vault.new_account()
    member = Member(id=member_id, onchain_id=onchain_id(member_id), name=name, country=country,
                    roles=list(ordered_roles), status=STATUS_ACTIVE)
    session.add(member)
    session.flush()  # the member row must exist before rows that reference it
    session.add(MemberAccount(address=address, member_id=member_id, encrypted_key=blob))
    digest_changed(session, "member", member_id)
    digest_changed(session, "member.account", address)
    key = issue_key(session, member_id, label=key_label)
    # The operator's key is the registry's bootstrapper until the seal: the only thing it may do.
    row = enqueue(session, kind="member.onboard", contract=REGISTRY, function="onboardMember",
                  args=onboard_args(member_id, country, [address], ordered_roles),
                  signer=_operator(runtime), gas_limit=GAS_ONBOARD, aggregate_id=member_id)
    log.info("member %s onboarded in the bootstrap window (account %s, roles %s, key prefix %s)", member_id,
             address, ",".join(ordered_roles), key.prefix)
    return Onboarded(member=member, address=address, api_key=key, outbox_id=row.id)


def prepare_onboarding(runtime: Runtime, session: Session, *, member_id: str, name: str, country: str,
                       roles: Sequence[str], own_account: str | None = None) -> tuple[MemberOnboarding, list]:
    """A member waiting for governance: a new custodial account (or the member's ``own_account``,
    whose key the service never sees) and the ``onboardMember`` arguments the proposal carries.
    The caller sets ``proposal_id``; the follower creates the member on ``MemberOnboarded``."""
    member_id, name, country, ordered_roles = check_new_member(session, member_id=member_id, name=name,
                                                               country=country, roles=roles)
    if own_account is not None:
        if not re.match(r"^0x[0-9a-fA-F]{40}$", own_account or ""):
            raise ValidationError("account must be a 0x address", field="account")
        address, encrypted = to_checksum_address(own_account), None
    else:
        address, blob = runtime.vault.new_account()
        encrypted = base64.urlsafe_b64encode(blob).decode()
    if session.get(MemberAccount, address) is not None:
        raise DuplicateError(f"account {address} belongs to a member already", account=address)
    oid = onchain_id(member_id)
    waiting = session.get(MemberOnboarding, oid)
    if waiting is not None:
        session.delete(waiting)  # a dropped earlier attempt
        session.flush()
    onboarding = MemberOnboarding(onchain_id=oid, member_id=member_id, name=name, country=country,
                                  roles=list(ordered_roles), accounts=[{"address": address, "encrypted_key": encrypted}],
                                  proposal_id="", status="proposed")
    session.add(onboarding)
    return onboarding, onboard_args(member_id, country, [address], ordered_roles)


def get_member(session: Session, member_id: str) -> Member:
    member = session.get(Member, member_id) if isinstance(member_id, str) and len(member_id) <= 64 else None
    if member is None:
        raise UnknownMemberError(f"no member {member_id[:64]!r}", member_id=member_id[:64])
    return member


def list_members(session: Session, *, limit: int = 100, after: str | None = None) -> list[Member]:
    """Members ordered by id, ``limit`` (1..500) at a time after the id ``after``."""
    if not 1 <= limit <= MEMBER_LIST_LIMIT_MAX:
        raise ValidationError(f"limit must be within 1..{MEMBER_LIST_LIMIT_MAX}", field="limit")
    q = select(Member).order_by(Member.id).limit(limit)
    if after:
        q = q.where(Member.id > after)
    return list(session.scalars(q))


def member_accounts(session: Session, member_id: str) -> list[str]:
    return list(session.scalars(select(MemberAccount.address).where(MemberAccount.member_id == member_id)
                                .order_by(MemberAccount.created_at, MemberAccount.address)))


# -- reading the registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class OnchainMember:
    status: str  # none | active | suspended
    country: str
    roles: tuple[str, ...]
    accounts: tuple[str, ...]


def read_onchain_member(runtime: Runtime, member_onchain_id: str, chain: ChainClient | None = None) -> OnchainMember:
    """``getMember`` from the registry (through ``chain``, default the runtime's). Raises
    ChainUnavailableError, or LookupError when the registry is not deployed."""
    address = runtime.address(REGISTRY)
    status, country, mask, accounts = (chain or runtime.chain).call(REGISTRY, address, "getMember",
                                                                    [member_onchain_id])
    country_text = bytes(country).decode("ascii", errors="replace") if any(country) else ""
    return OnchainMember(status=_ONCHAIN_STATUS.get(int(status), "none"), country=country_text,
                         roles=roles_from_mask(int(mask)),
                         accounts=tuple(to_checksum_address(a) for a in accounts))


@dataclass(frozen=True)
class MemberView:
    """What a member may do now: ``source`` says whether the registry or the mirror decided."""

    member_id: str
    name: str
    roles: frozenset[str]
    status: str
    source: str  # chain | mirror | merged
    # Set when the mirror decided because the node could not be read (not merely because the
    # registry has not seen the member yet): how far the mirror may be behind the chain, as the
    # follower's checkpoint (block, seconds since the follower last moved it). None: unknown.
    fallback: bool = False
    mirror_block: int | None = None
    mirror_age_s: float | None = None

    @property
    def active(self) -> bool:
        return self.status == STATUS_ACTIVE


REGISTRY_CACHE_TTL_S = 2.0
REGISTRY_CACHE_ENTRIES_MAX = 10_000
# After the node failed to answer a role lookup, the mirror decides alone for this long (no
# request waits on a node that just timed out); then the registry is asked again.
REGISTRY_CHAIN_BACKOFF_S = 5.0
# The follower's checkpoint (settlement.pipeline.follower.CHECKPOINT; domains do not import the
# pipeline's internals): the block up to which the mirror has applied the chain's events.
FOLLOWER_CHECKPOINT = "contracts"


class RegistryView:
    """Members' effective roles and status, from the registry with a short TTL cache.

    - The registry knows the member and no registry change for it is waiting in the outbox: the
      registry decides, and the mirror row is brought in line if it differs.
    - Changes are waiting (enqueued, not yet mined): the stricter of both decides (roles both
      grant, suspended if either says so), so a suspension bites at once and a grant waits for
      the chain.
    - The registry has not seen the member (onboarding waiting), or the chain is unreachable, or
      no registry is deployed: the mirror decides. When the node could not be read, the view says
      so (``fallback``) with the mirror's staleness, and for ``chain_backoff_s`` the node is not
      asked again (each lookup would wait for its timeout).

    ``chain``: the client for the lookups (the request path's, with a short timeout); default the
    runtime's.
    """

    def __init__(self, runtime: Runtime, *, ttl_s: float = REGISTRY_CACHE_TTL_S,
                 clock: Callable[[], float] = time.monotonic, chain: ChainClient | None = None,
                 chain_backoff_s: float = REGISTRY_CHAIN_BACKOFF_S) -> None:
        self.runtime = runtime
        self.ttl_s = ttl_s
        self.chain = chain
        self.chain_backoff_s = chain_backoff_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, MemberView]] = {}
        self._chain_down_until = 0.0

    def invalidate(self, member_id: str | None = None) -> None:
        with self._lock:
            if member_id is None:
                self._cache.clear()
            else:
                self._cache.pop(member_id, None)

    def view(self, member_id: str) -> MemberView:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(member_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        view = self._load(member_id)
        with self._lock:
            if len(self._cache) >= REGISTRY_CACHE_ENTRIES_MAX:
                self._cache.clear()
            self._cache[member_id] = (now, view)
        return view

    def _load(self, member_id: str) -> MemberView:
        with self.runtime.db.read() as session:
            member = get_member(session, member_id)
            mirror = MemberView(member.id, member.name, frozenset(member.roles), member.status, "mirror")
            pending = session.scalar(select(OutboxRow.id).where(
                OutboxRow.aggregate_id == member_id, OutboxRow.contract == REGISTRY,
                OutboxRow.status.in_(PENDING_STATUSES)).limit(1)) is not None
            oid = member.onchain_id
            checkpoint = session.get(Checkpoint, FOLLOWER_CHECKPOINT)
            stale = MemberView(member.id, member.name, frozenset(member.roles), member.status, "mirror",
                               fallback=True, mirror_block=checkpoint.block_number if checkpoint else None,
                               mirror_age_s=_age_s(checkpoint.updated_at) if checkpoint else None)
        if self._clock() < self._chain_down_until:
            return stale
        try:
            chain = read_onchain_member(self.runtime, oid, self.chain)
        except ChainUnavailableError as exc:
            self._chain_down_until = self._clock() + self.chain_backoff_s
            log.warning("registry unreadable for member %s (%s): the mirror decides for %g s", member_id,
                        exc.type_slug, self.chain_backoff_s)
            return stale
        except (ChainRevertError, LookupError) as exc:
            log.warning("registry unreadable for member %s (%s): using the mirror", member_id, type(exc).__name__)
            return mirror
        if chain.status == "none":
            return mirror
        if pending:
            status = STATUS_SUSPENDED if STATUS_SUSPENDED in (chain.status, mirror.status) else STATUS_ACTIVE
            return MemberView(member_id, mirror.name, mirror.roles & frozenset(chain.roles), status, "merged")
        view = MemberView(member_id, mirror.name, frozenset(chain.roles), chain.status, "chain")
        if view.roles != mirror.roles or view.status != mirror.status:
            self._refresh_mirror(member_id, chain)
        return view

    def _refresh_mirror(self, member_id: str, chain: OnchainMember) -> None:
        with self.runtime.db.transaction() as session:
            member = session.get(Member, member_id)
            if member is None or session.scalar(select(OutboxRow.id).where(
                    OutboxRow.aggregate_id == member_id, OutboxRow.contract == REGISTRY,
                    OutboxRow.status.in_(PENDING_STATUSES)).limit(1)) is not None:
                return  # a change was enqueued meanwhile: the mirror is ahead of the chain
            member.roles = list(chain.roles)
            member.status = chain.status
            digest_changed(session, "member", member)
        log.info("member %s mirror refreshed from the registry: %s, roles %s", member_id, chain.status,
                 ",".join(chain.roles))


def _age_s(moment: datetime) -> float:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return max((datetime.now(timezone.utc) - aware).total_seconds(), 0.0)


def own_accounts(session: Session, member_id: str) -> list[str]:
    """The member's accounts whose keys the service does not hold (the member signs itself)."""
    return list(session.scalars(select(MemberAccount.address).where(
        MemberAccount.member_id == member_id, MemberAccount.encrypted_key.is_(None))
        .order_by(MemberAccount.created_at, MemberAccount.address)))


def custodial_signer(session: Session, member_id: str) -> str:
    """The address of an account of ``member_id`` whose key the service holds (it signs for the
    member); NoCustodialAccountError when the member signs with its own keys only."""
    address = session.scalar(select(MemberAccount.address).where(
        MemberAccount.member_id == member_id, MemberAccount.encrypted_key.is_not(None))
        .order_by(MemberAccount.created_at, MemberAccount.address).limit(1))
    if address is None:
        raise NoCustodialAccountError(f"the service holds no key for member {member_id}; sign with your own key",
                                      member_id=member_id)
    return address
