"""Idempotent deployment and the deployment manifest (``$LEDGER_HOME/deployment.json``).

``deploy`` deploys what the manifest lacks and records chain id, addresses, deploy blocks and
code hashes. On restart it checks that the code at every recorded address is still what was
deployed, and redeploys nothing. A manifest from another chain is refused.

Deployment is the one path that sends transactions outside the outbox dispatcher: it runs
before the service and its workers start, and waits for each receipt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi import encode as abi_encode

from settlement.chain.client import ChainClient
from settlement.chain.contracts import _type_str, coerce
from settlement.chain.signing import Signer, keccak256
from settlement.core.errors import ChainMismatchError
from settlement.core.private_files import write_private

MANIFEST_NAME = "deployment.json"
DEPLOY_GAS_MAX = 15_000_000


# Deployment order: later contracts take earlier addresses. A contract whose artifact is absent is
# skipped, so the plan can name contracts that land in later work.
PLAN: tuple[str, ...] = (
    "LedgerForwarder", "ConsortiumRegistry", "SettlementLedger", "ReceivableRegistry", "TraceAnchor",
)

# Constructor parameters are filled by name, so a contract's constructor documents what it needs.
RECEIVABLE_GRACE_PERIOD_DAYS = 30


def constructor_value(contract: str, param: str, addresses: dict[str, str], operator: Signer) -> object:
    name = param.strip("_").lower()
    if name in ("admin", "operator"):
        return operator.address
    if name == "trustedforwarder":
        return addresses["LedgerForwarder"]
    if name == "registry":
        return addresses["ConsortiumRegistry"]
    if name in ("ledger", "settlementledger"):
        return addresses["SettlementLedger"]
    if name == "graceperioddays":
        return RECEIVABLE_GRACE_PERIOD_DAYS
    raise ValueError(f"{contract}: no rule to fill constructor parameter {param!r}")


@dataclass
class Manifest:
    chain_id: int
    deployer: str
    contracts: dict[str, dict] = field(default_factory=dict)

    @property
    def addresses(self) -> dict[str, str]:
        return {name: c["address"] for name, c in self.contracts.items()}

    @property
    def deploy_block(self) -> int:
        return min((c["block"] for c in self.contracts.values()), default=0)

    def address(self, contract: str) -> str:
        return self.contracts[contract]["address"]

    def to_json(self) -> dict:
        return {"chain_id": self.chain_id, "deployer": self.deployer, "deploy_block": self.deploy_block,
                "contracts": self.contracts}

    @classmethod
    def load(cls, home: Path) -> Manifest | None:
        path = home / MANIFEST_NAME
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(chain_id=data["chain_id"], deployer=data["deployer"], contracts=data["contracts"])

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        # atomic and 0600: a crash leaves the old or the new manifest, never half
        write_private(home / MANIFEST_NAME, json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")


def verify_manifest(client: ChainClient, manifest: Manifest) -> None:
    """Raise ChainMismatchError unless the node is the manifest's chain and every recorded
    contract still has the code that was deployed."""
    if manifest.chain_id != client.chain_id:
        raise ChainMismatchError(
            f"the deployment manifest is for chain id {manifest.chain_id}, but the node at "
            f"{client.rpc_url} is chain id {client.chain_id}: point LEDGER_RPC_URL at the right "
            f"chain, or use another LEDGER_HOME"
        )
    for name, entry in manifest.contracts.items():
        code = client.get_code(entry["address"])
        if not code:
            raise ChainMismatchError(
                f"{name} at {entry['address']} has no code on chain {client.chain_id}: the chain was "
                f"reset or is another network with the same id; use a fresh LEDGER_HOME to redeploy"
            )
        if "0x" + keccak256(code).hex() != entry["code_hash"]:
            raise ChainMismatchError(f"{name} at {entry['address']} runs other code than was deployed")


def deploy(client: ChainClient, operator: Signer, home: Path,
           progress: Callable[[str], None] = lambda s: None) -> Manifest:
    manifest = Manifest.load(home)
    if manifest is None:
        manifest = Manifest(chain_id=client.chain_id, deployer=operator.address)
    else:
        verify_manifest(client, manifest)
    catalogue = client.contracts
    for contract in PLAN:
        if contract in manifest.contracts:
            progress(f"{contract}: already at {manifest.address(contract)}")
            continue
        art = catalogue.artifacts.get(contract)
        if art is None or not art.get("deployable"):
            continue
        ctor = next((i for i in art["abi"] if i["type"] == "constructor"), {"inputs": []})
        types = [_type_str(p) for p in ctor["inputs"]]
        args = [constructor_value(contract, p["name"], manifest.addresses, operator) for p in ctor["inputs"]]
        data = catalogue.bytecode(contract) + abi_encode(types, [coerce(t, a) for t, a in zip(types, args)])
        receipt = client.transact(operator, to=None, data=data, gas=DEPLOY_GAS_MAX)
        address = client.w3.to_checksum_address(receipt.contract_address)
        code = client.get_code(address)
        manifest.contracts[contract] = {
            "address": address,
            "block": receipt.block_number,
            "tx_hash": receipt.tx_hash,
            "code_hash": "0x" + keccak256(code).hex(),
            "artifact_hash": catalogue.deployed_code_hash(contract),
        }
        manifest.save(home)  # after each contract: a crash mid-way resumes where it stopped
        progress(f"{contract}: deployed at {address} (block {receipt.block_number})")
    return manifest
