"""Building a runtime on a real anvil and a real database, for chain-side tests."""

from __future__ import annotations

import os
from pathlib import Path

from eth_account import Account

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
