"""Request and response bodies of governance (proposals, approvals, execution), members' keys and
own-key intents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ledger_api.schemas.common import In, Out, Page

Address = Field(min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$")
Signature = Field(min_length=132, max_length=132, pattern=r"^0x[0-9a-fA-F]{130}$",
                  description="65 bytes (r, s, v) as 0x-hex")
ActionName = Literal["onboard", "suspend", "reactivate", "grant_role", "revoke_role", "set_country", "add_account",
                     "remove_account", "cancel", "reject"]
RoleName = Literal["operator", "finance", "supplier", "buyer", "financier", "auditor"]
SUMMARY_LINES_MAX = 200
_STRIPPED = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- governance ----------------------------------------------------------------------------------------


class GovernorPublic(Out):
    member_id: str = Field(max_length=64)
    address: str = Field(max_length=42)
    custodial: bool = Field(description="the service holds this governor's key (demo governors only)")


class GovernancePublic(Out):
    governance_safe: str = Field(max_length=42)
    guardian_safe: str = Field(max_length=42)
    timelock: str = Field(max_length=42)
    proposal_log: str = Field(max_length=42)
    forwarder: str = Field(max_length=42)
    threshold: int = Field(description="M: approvals a registry change needs")
    guardian_threshold: int = Field(description="k: approvals a fast-path suspension needs")
    delay_s: int = Field(description="the timelock's delay before a scheduled change may run")
    governors: list[GovernorPublic] = Field(max_length=20)
    bootstrap_sealed: bool
    demo: bool


class ProposalCreate(In):
    """A decision to propose. ``member_id`` names the member it is about; the other fields are the
    action's parameters (onboard: name, country, roles, optional own ``account``; roles: role;
    set_country: country; add/remove_account: account; cancel/reject: proposal_id)."""

    model_config = _STRIPPED
    action: ActionName
    member_id: str | None = Field(default=None, min_length=1, max_length=64,
                                  pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    country: str | None = Field(default=None, min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")
    roles: list[RoleName] = Field(default_factory=list, max_length=6)
    role: RoleName | None = None
    account: str | None = Field(default=None, min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$")
    proposal_id: str | None = Field(default=None, min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")
    description: str | None = Field(default=None, max_length=1024)


class ApprovalPublic(Out):
    governor: str = Field(max_length=42)
    governor_member_id: str | None = Field(default=None, max_length=64)
    method: Literal["on_chain", "signature"]
    status: Literal["pending", "approved", "failed"]
    tx_hash: str | None = Field(default=None, max_length=66)
    created_at: datetime


class CallPublic(Out):
    target: str = Field(max_length=42)
    value: int
    data: str = Field(max_length=200_000)
    summary: list[str] = Field(max_length=SUMMARY_LINES_MAX)


class ProposalPublic(Out):
    id: str = Field(max_length=66)
    safe: Literal["governance", "guardian"]
    safe_address: str = Field(max_length=42)
    safe_nonce: int
    action: str = Field(max_length=32)
    member_id: str | None = Field(default=None, max_length=64)
    description: str = Field(max_length=1024)
    params: dict[str, Any]
    status: Literal["proposed", "scheduled", "executed", "cancelled", "stale", "failed"]
    approvals: list[ApprovalPublic] = Field(max_length=20)
    approvals_needed: int | None = Field(default=None, description="the Safe's threshold (None when unknown)")
    delay_s: int | None = Field(default=None, description="the timelock's delay (None: fast path, no delay)")
    earliest_execution_at: datetime | None = Field(
        default=None, description="when the call may run: set once scheduled (or at once, for a fast-path proposal)")
    op_id: str | None = Field(default=None, max_length=66)
    calls: list[CallPublic] = Field(max_length=20)
    summary: list[str] = Field(max_length=SUMMARY_LINES_MAX)
    proposed_by: str = Field(max_length=64)
    proposer: str | None = Field(default=None, max_length=42)
    published_tx_hash: str | None = Field(default=None, max_length=66)
    scheduled_tx_hash: str | None = Field(default=None, max_length=66)
    executed_tx_hash: str | None = Field(default=None, max_length=66)
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime
    updated_at: datetime


class ProposalsPublic(Page):
    """A page of proposals, newest first, in the one list envelope (docs/api.md)."""

    data: list[ProposalPublic]
    count: int = Field(description="proposals on this page")


class ProposalAccepted(Out):
    """A governance proposal made (or moved a step); nothing changes until its quorum and delay."""

    proposal: ProposalPublic


class ApprovalCreate(In):
    governor: str = Address
    signature: str | None = Field(default=None, description="the governor's own signature over the proposal's "
                                  "typed data; omitted: the service approves with the governor's key if it holds it "
                                  "(demo governors only)", min_length=132, max_length=132,
                                  pattern=r"^0x[0-9a-fA-F]{130}$")


class TypedDataPublic(Out):
    """EIP-712 typed data to sign (``eth_signTypedData_v4`` input, or a file for ``ledger sign``)."""

    typed_data: dict[str, Any]
    summary: list[str] = Field(max_length=SUMMARY_LINES_MAX)


# -- members' keys -------------------------------------------------------------------------------------


class KeyPublic(Out):
    address: str = Field(max_length=42)
    custodial: bool = Field(description="the service holds this key")
    created_at: datetime


class KeysPublic(Out):
    member_id: str = Field(max_length=64)
    data: list[KeyPublic] = Field(max_length=16)


class KeyTypedDataRequest(In):
    action: Literal["add", "remove"] = "add"
    account: str = Address
    signer: str | None = Field(default=None, description="the consenting account (default: the custodial one, else "
                               "the oldest own one)", min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$")
    deadline: int | None = Field(default=None, ge=0, description="unix seconds; default one hour of chain time")


class KeyTypedDataPublic(Out):
    action: Literal["add", "remove"]
    account: str = Field(max_length=42)
    signer: str = Field(max_length=42)
    signer_custodial: bool
    nonce: int
    deadline: int
    typed_data: dict[str, Any]
    summary: list[str] = Field(max_length=SUMMARY_LINES_MAX)


class KeyAdd(In):
    """The new key's proof of possession and the member's consent over the served typed data."""

    account: str = Address
    signer: str = Address
    nonce: int = Field(ge=0)
    deadline: int = Field(ge=0)
    possession_signature: str = Signature
    consent_signature: str | None = Field(default=None, min_length=132, max_length=132,
                                          pattern=r"^0x[0-9a-fA-F]{130}$")
    custodial_consent: bool = Field(default=False, description="let the service consent with the member's custodial "
                                    "key (signer must be it)")


class KeyRemove(In):
    signer: str = Address
    nonce: int = Field(ge=0)
    deadline: int = Field(ge=0)
    consent_signature: str | None = Field(default=None, min_length=132, max_length=132,
                                          pattern=r"^0x[0-9a-fA-F]{130}$")
    custodial_consent: bool = False


class KeyChangeAccepted(Out):
    member_id: str = Field(max_length=64)
    action: Literal["add", "remove"]
    account: str = Field(max_length=42)
    signer: str = Field(max_length=42)
    outbox_id: int
    status: str = Field(max_length=16, description="the relayed call's outbox status")


# -- intents -------------------------------------------------------------------------------------------


class IntentChainPublic(Out):
    outbox_id: int
    status: str = Field(max_length=16, description="held (waiting for the signature), pending, signed, sent, "
                        "mined, confirmed, failed")
    tx_hash: str | None = Field(default=None, max_length=66)
    error_name: str | None = Field(default=None, max_length=100)
    error: str | None = Field(default=None, max_length=2000)


class IntentPublic(Out):
    """A call the member signs with its own key: sign ``typed_data`` (EIP-712 ForwardRequest of the
    LedgerForwarder) and send the signature to ``POST /v1/intents/{id}/signature``."""

    id: str = Field(max_length=40)
    member_id: str = Field(max_length=64)
    account: str = Field(max_length=42, description="the member's own account: the request's from")
    status: Literal["held", "relayed", "expired", "withdrawing", "withdrawn"]
    kind: str = Field(max_length=64)
    aggregate_id: str = Field(max_length=128)
    contract: str = Field(max_length=64)
    function: str = Field(max_length=64)
    to: str = Field(max_length=42)
    nonce: int
    deadline: int = Field(description="unix seconds (chain time) after which the request is void")
    deadline_at: datetime
    typed_data: dict[str, Any]
    summary: list[str] = Field(max_length=SUMMARY_LINES_MAX)
    chain: IntentChainPublic
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime
    relayed_at: datetime | None = None


class IntentsPublic(Page):
    """A page of the caller's intents, newest first, in the one list envelope (docs/api.md)."""

    data: list[IntentPublic]
    count: int = Field(description="intents on this page")


class IntentSignature(In):
    signature: str = Signature
