"""Consortium members: onboarding and the registry mirror (``service``, ``events``), their own keys
with consent (``keys``), API keys (``apikeys``). The on-chain ConsortiumRegistry is the source of
truth; the store mirrors it."""

from settlement.domains.members import apikeys, console_sessions, keys
from settlement.domains.members.apikeys import LABEL_LEN_MAX, ROTATION_OVERLAP_S_MAX, hash_key, issue_key
from settlement.domains.members.service import (
    GAS_ONBOARD,
    ISO_3166_ALPHA2,
    MEMBER_ID_LEN_MAX,
    MEMBER_LIST_LIMIT_MAX,
    NAME_LEN_MAX,
    REGISTRY,
    REGISTRY_CACHE_TTL_S,
    ROLE_BY_HASH,
    ROLE_HASHES,
    ROLE_NAMES,
    STATUS_ACTIVE,
    STATUS_SUSPENDED,
    MemberView,
    Onboarded,
    OnchainMember,
    RegistryView,
    check_new_member,
    country_hex,
    custodial_signer,
    get_member,
    list_members,
    member_accounts,
    onboard,
    onboard_args,
    onboard_member,
    onchain_id,
    own_accounts,
    prepare_onboarding,
    read_onchain_member,
    role_hash,
    roles_from_mask,
    validate_country,
    validate_member_id,
    validate_name,
    validate_roles,
)

__all__ = [
    "apikeys", "console_sessions", "keys", "LABEL_LEN_MAX", "ROTATION_OVERLAP_S_MAX", "hash_key", "issue_key", "REGISTRY_CACHE_TTL_S",
    "MEMBER_LIST_LIMIT_MAX", "REGISTRY", "ROLE_NAMES", "ROLE_HASHES", "ROLE_BY_HASH", "MEMBER_ID_LEN_MAX",
    "NAME_LEN_MAX", "ISO_3166_ALPHA2", "STATUS_ACTIVE", "STATUS_SUSPENDED", "GAS_ONBOARD", "onchain_id",
    "country_hex", "role_hash", "roles_from_mask", "validate_member_id", "validate_country", "validate_roles",
    "validate_name", "Onboarded", "onboard", "onboard_member", "onboard_args", "prepare_onboarding",
    "check_new_member", "get_member", "list_members", "member_accounts", "own_accounts", "OnchainMember",
    "read_onchain_member", "MemberView", "RegistryView", "custodial_signer",
]
