"""Request and response bodies of members, ``/v1/me`` and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from ledger_api.schemas.common import In, Out, Page
from settlement.domains.members import LABEL_LEN_MAX, MEMBER_ID_LEN_MAX, NAME_LEN_MAX, ROTATION_OVERLAP_S_MAX

RoleName = Literal["operator", "finance", "supplier", "buyer", "financier", "auditor"]
MemberStatus = Literal["active", "suspended"]
MemberId = Field(min_length=1, max_length=MEMBER_ID_LEN_MAX, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                 examples=["retailer-cn"])
Address = Field(min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$")


# Member and key requests strip surrounding whitespace from names and labels.
_STRIPPED = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- members -----------------------------------------------------------------------------------


class MemberCreate(In):
    model_config = _STRIPPED
    id: str = MemberId
    name: str = Field(min_length=1, max_length=NAME_LEN_MAX)
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2",
                         examples=["CN"])
    roles: list[RoleName] = Field(min_length=1, max_length=6)
    key_label: str = Field(default="initial", max_length=LABEL_LEN_MAX)
    account: str | None = Field(default=None, min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$",
                                description="after the seal: the member's own account (the service then holds no "
                                "key of it); omitted: a custodial account")


class MemberPublic(Out):
    id: str = Field(max_length=MEMBER_ID_LEN_MAX)
    onchain_id: str = Field(max_length=66, description="keccak256 of the id: the registry's member id")
    name: str = Field(max_length=NAME_LEN_MAX)
    country: str = Field(max_length=2)
    roles: list[RoleName]
    status: MemberStatus
    accounts: list[str] = Field(max_length=16)
    created_at: datetime
    updated_at: datetime


class MembersPublic(Out):
    data: list[MemberPublic]
    count: int = Field(description="members on this page")
    next_cursor: str | None = Field(default=None, max_length=64,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")


class RoleChange(In):
    model_config = _STRIPPED
    action: Literal["grant", "revoke"]
    role: RoleName


class Me(Out):
    member: MemberPublic
    effective_roles: list[RoleName]
    effective_status: MemberStatus
    roles_source: Literal["chain", "mirror", "merged"]
    key_prefix: str = Field(max_length=16)


# -- API keys ----------------------------------------------------------------------------------


class ApiKeyCreate(In):
    model_config = _STRIPPED
    label: str = Field(default="", max_length=LABEL_LEN_MAX)
    rotate: bool = Field(default=False, description="revoke the member's other active keys (or `replaces`)")
    replaces: str | None = Field(default=None, min_length=8, max_length=16, pattern=r"^[a-z0-9]+$",
                                 description="prefix of the one key to rotate out")
    overlap_s: int = Field(default=0, ge=0, le=ROTATION_OVERLAP_S_MAX,
                           description="seconds the rotated-out keys stay valid")


class ApiKeyPublic(Out):
    prefix: str = Field(max_length=16)
    member_id: str = Field(max_length=MEMBER_ID_LEN_MAX)
    label: str = Field(max_length=LABEL_LEN_MAX)
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


class ApiKeysPublic(Page):
    """A page of a member's keys, newest first, in the one list envelope (docs/api.md)."""

    data: list[ApiKeyPublic]
    count: int = Field(description="keys on this page")


class ApiKeyIssued(Out):
    """A new key. ``key`` is shown this once and cannot be recovered: store it now (a replay of
    the same ``Idempotency-Key`` answers null there: the key was shown to the first answer only)."""

    prefix: str = Field(max_length=16)
    key: str | None = Field(max_length=100)
    member_id: str = Field(max_length=MEMBER_ID_LEN_MAX)
    label: str = Field(max_length=LABEL_LEN_MAX)
    created_at: datetime
    revokes: list[str] = Field(default_factory=list, description="prefixes rotated out")
    revokes_at: datetime | None = None


class MemberCreated(Out):
    member: MemberPublic
    api_key: ApiKeyIssued
    outbox_id: int


