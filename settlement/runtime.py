"""The composition root of the domain: the parts a running service (or a test) holds.

Built by the web layer or the CLI from settings; the domain never reads settings itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from settlement.chain.client import ChainClient
from settlement.chain.deploy import Manifest
from settlement.chain.signing import Signer
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

    def address(self, contract: str) -> str:
        if self.manifest is None or contract not in self.manifest.contracts:
            raise LookupError(f"{contract} is not deployed")
        return self.manifest.address(contract)
