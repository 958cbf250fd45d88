"""The body of ``GET /health``."""

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


class Health(Out):
    status: Literal["ok", "degraded"]
    version: str = Field(max_length=64)
    chain: ChainHealth
    contracts: dict[str, str]
    store: StoreHealth
    governance: GovernanceHealth
