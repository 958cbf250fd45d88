"""The bodies of ``GET /health``: :class:`PublicHealth` for anyone (what the chain shows anyway),
:class:`Health` (node URL, store, outbox, governance, version) for the operator and auditors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledger_api.schemas.common import Out as Out


class ChainHealth(Out):
    reachable: bool
    rpc: str = Field(max_length=300)
    chain_id: int | None
    head_block: int | None
    manifest_chain_id: int | None = None
    error: str | None = Field(default=None, max_length=300)


class StoreHealth(Out):
    dialect: str = Field(max_length=32)
    reachable: bool
    outbox_depth: int | None
    outbox_by_status: dict[str, int]


class GovernanceHealth(Out):
    """The registry's bootstrap must be sealed: until then the operator's key may still onboard
    members, so the service is not ready (docs/governance.md)."""

    bootstrap_sealed: bool | None = Field(description="None: unknown (no deployment, or the chain is unreachable)")


class PublicChainHealth(Out):
    reachable: bool
    chain_id: int | None
    head_block: int | None


class PublicHealth(Out):
    """What an anonymous caller (or a member without the operator or auditor role) sees: the
    status, the chain id and head block, and the contract addresses (public on chain anyway)."""

    status: Literal["ok", "degraded"]
    chain: PublicChainHealth
    contracts: dict[str, str]


class Health(Out):
    """The detailed answer, for the operator's and auditors' API keys."""

    status: Literal["ok", "degraded"]
    version: str = Field(max_length=64)
    chain: ChainHealth
    contracts: dict[str, str]
    store: StoreHealth
    governance: GovernanceHealth
