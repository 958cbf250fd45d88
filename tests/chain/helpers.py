"""Building a runtime on a real anvil and a real database, and a node that crashes back to an
older state, for chain-side tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from eth_account import Account

from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient, FeePolicy
from settlement.chain.deploy import deploy
from settlement.chain.signing import LocalSigner
from settlement.custody.vault import KeyVault
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from tests.governance.support import test_governance


def make_runtime(rpc_url: str, database_url: str, home: Path, *, fees: FeePolicy | None = None,
                 operator_key: bytes | None = None, deploy_contracts: bool = True) -> Runtime:
    migrate(database_url)
    vault = KeyVault(os.urandom(32))
    operator = LocalSigner(operator_key or bytes(Account.create().key))
    vault.register(operator)
    chain = ChainClient(rpc_url, fees)
    params, governors = test_governance()
    manifest = deploy(chain, operator, home, governance=params) if deploy_contracts else None
    runtime = Runtime(home=home, db=Database(database_url), chain=chain, vault=vault, operator=operator,
                      manifest=manifest)
    runtime.register_governors(governors)
    return runtime


class RestartableChain:
    """One anvil with a state file, restarted the way a crashed node comes back: ``save()`` stops
    it cleanly (anvil writes its state: the dump the node will come back to) and starts it again;
    ``crash()`` kills it (SIGKILL) and starts it from that saved dump, so every block since is
    lost. The port stays the same across restarts. ``close()`` stops every node it started."""

    def __init__(self, folder: Path, *, block_time_s: int | None = None) -> None:
        self.state = folder / "anvil-state.json"
        self.saved = folder / "saved-state.json"
        self.config = AnvilConfig(port=free_port(), state_path=self.state, log_path=folder / "anvil.log",
                                  block_time_s=block_time_s)
        self.nodes: list[ManagedAnvil] = []

    @property
    def node(self) -> ManagedAnvil:
        return self.nodes[-1]

    @property
    def rpc_url(self) -> str:
        return self.node.rpc_url

    def start(self) -> ManagedAnvil:
        self.nodes.append(ManagedAnvil(self.config).start())
        return self.node

    def save(self) -> ManagedAnvil:
        self.node.stop()
        shutil.copy(self.state, self.saved)
        return self.start()

    def crash(self) -> ManagedAnvil:
        self.node.kill()
        shutil.copy(self.saved, self.state)
        return self.start()

    def close(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RestartableChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
