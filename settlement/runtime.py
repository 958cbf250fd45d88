"""The composition root of the domain: the parts a running service (or a test) holds.

Built by the web layer or the CLI from settings; the domain never reads settings itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from settlement.chain.client import ChainClient
from settlement.chain.deploy import Manifest, bootstrap_open
from settlement.chain.governance import GovernanceParams
from settlement.chain.signing import LocalSigner, Signer
from settlement.custody.vault import KeyVault
from settlement.store.db import Database


@dataclass
class Runtime:
    home: Path
    db: Database
    chain: ChainClient
    vault: KeyVault
    operator: Signer  # the operator's key: in memory (LocalSigner) or in an HSM (HsmSigner)
    manifest: Manifest | None = None
    # Filled by the workers: seconds from outbox insert to receipt, and follower lag in blocks.
    stats: dict = field(default_factory=dict)
    # Governor keys the service holds, by address: the demo governors of a dev chain only (empty on
    # a real network, where each governor approves with its own key).
    governors: dict[str, LocalSigner] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Code that holds only a connection (the events producer's journal observer) learns the
        # governors' members here (docs/events.md: governance.* go to them).
        self.db.info["governor_members"] = self.governor_members

    def governor_members(self) -> dict[str, str]:
        """Governor address -> the member id it belongs to, as deployed (empty: no governance)."""
        params = self.governance
        return {g.address: g.member_id for g in params.governors} if params is not None else {}

    def address(self, contract: str) -> str:
        if self.manifest is None or contract not in self.manifest.contracts:
            raise LookupError(f"{contract} is not deployed")
        return self.manifest.address(contract)

    @property
    def governance(self) -> GovernanceParams | None:
        """The deployed governance (governors, thresholds, delay), from the manifest."""
        return self.manifest.governance_params if self.manifest is not None else None

    def bootstrap_open(self) -> bool:
        """True while the registry's bootstrap window is open (the operator may onboard founding
        members). Reads the registry until it is sealed; sealed is final."""
        if self.manifest is None:
            return False
        is_open = bootstrap_open(self.chain, self.manifest)
        if not is_open and self.manifest.sealed_block is None:
            # Sealed by another process: remembered (the head is an upper bound of its block).
            self.manifest.sealed_block = self.chain.block_number()
        return is_open

    def register_governors(self, signers: dict[str, LocalSigner]) -> None:
        """Hold these governor keys custodially (demo only) and let the dispatcher sign with them."""
        for signer in signers.values():
            self.vault.register(signer)
        self.governors.update(signers)
