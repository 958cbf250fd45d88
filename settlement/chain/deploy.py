"""Idempotent deployment, the bootstrap window and the deployment manifest
(``$LEDGER_HOME/deployment.json``).

``deploy`` deploys what the manifest lacks, in the order docs/governance.md fixes: the Safe
singleton and proxy factory, the governors' Safe (M-of-N) and the guardian Safe (k-of-n), the
timelock (proposer: the governors' Safe), the forwarder, the registry (admin: the timelock; suspender:
the guardian Safe; bootstrapper: the deployer), the proposal log, then the ledger contracts. It
records chain id, addresses, deploy blocks, the hash of the first deploy block, code hashes and the
governance parameters. On restart it checks that the block at the deploy block still has that hash
and that the code at every recorded address is still what was deployed, and redeploys nothing. A
manifest from another chain (another chain id, or another history under the same id) is refused.

The deployer (the operator's key) then onboards the founding members through the outbox while the
registry's bootstrap window is open, and :func:`seal_bootstrap` closes it for good. After the seal
the operator's key has no admin power: :func:`check_governance` verifies the wiring, and the
service reports not ready while the bootstrap is open.

Deployment is the one path that sends transactions outside the outbox dispatcher: it runs before
the service and its workers start, and waits for each receipt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi import encode as abi_encode

from settlement.chain.client import ChainClient
from settlement.chain.contracts import _type_str, artifact_of, checksum_address, coerce
from settlement.chain.governance import ZERO_ADDRESS, GovernanceParams
from settlement.chain.signing import Signer, keccak256
from settlement.core.errors import ChainMismatchError, ConfigurationError
from settlement.core.private_files import write_private

__all__ = ["MANIFEST_NAME", "PLAN", "Manifest", "deploy", "verify_manifest", "seal_bootstrap", "bootstrap_open",
           "check_governance", "REGISTRY", "GOVERNANCE_SAFE", "GUARDIAN_SAFE", "TIMELOCK", "PROPOSALS",
           "FORWARDER"]

MANIFEST_NAME = "deployment.json"
DEPLOY_GAS_MAX = 15_000_000
SEAL_GAS = 100_000

REGISTRY = "ConsortiumRegistry"
GOVERNANCE_SAFE = "GovernanceSafe"
GUARDIAN_SAFE = "GuardianSafe"
TIMELOCK = "ConsortiumTimelock"
PROPOSALS = "GovernanceProposals"
FORWARDER = "LedgerForwarder"
SAFE_SINGLETON = "ConsortiumSafe"
SAFE_FACTORY = "ConsortiumSafeProxyFactory"
# The Safes are proxies created by the factory, with these salt nonces (fixed: one of each).
_SAFE_SALTS = {GOVERNANCE_SAFE: 1, GUARDIAN_SAFE: 2}

# Deployment order: later contracts take earlier addresses. A contract whose artifact is absent is
# skipped, so the plan can name contracts that land in later work.
PLAN: tuple[str, ...] = (
    SAFE_SINGLETON, SAFE_FACTORY, GOVERNANCE_SAFE, GUARDIAN_SAFE, TIMELOCK, FORWARDER, REGISTRY, PROPOSALS,
    "SettlementLedger", "ReceivableRegistry", "TraceAnchor",
)

# Constructor parameters are filled by name, so a contract's constructor documents what it needs.
RECEIVABLE_GRACE_PERIOD_DAYS = 30


def constructor_value(contract: str, param: str, addresses: dict[str, str], operator: Signer,
                      governance: GovernanceParams) -> object:
    name = param.strip("_").lower()
    if name == "trustedforwarder":
        return addresses[FORWARDER]
    if name == "registry":
        return addresses[REGISTRY]
    if name in ("ledger", "settlementledger"):
        return addresses["SettlementLedger"]
    if name == "graceperioddays":
        return RECEIVABLE_GRACE_PERIOD_DAYS
    if contract == TIMELOCK:
        # Proposer (and canceller): the governors' Safe only. Executor: anyone (address zero).
        return {"mindelay": governance.delay_s, "proposers": [addresses[GOVERNANCE_SAFE]],
                "executors": [ZERO_ADDRESS]}[name]
    if contract == REGISTRY:
        return {"governance": addresses[TIMELOCK], "admintransferdelay": governance.admin_transfer_delay_s,
                "guardian": addresses[GUARDIAN_SAFE], "bootstrapper": operator.address,
                "governancesafes": [addresses[GOVERNANCE_SAFE], addresses[GUARDIAN_SAFE]]}[name]
    raise ValueError(f"{contract}: no rule to fill constructor parameter {param!r}")


@dataclass
class Manifest:
    chain_id: int
    deployer: str
    contracts: dict[str, dict] = field(default_factory=dict)
    governance: dict | None = None  # GovernanceParams.to_json() of what was deployed
    sealed_block: int | None = None  # the block of the registry's BootstrapSealed, once sealed
    # The hash of the block at deploy_block, recorded with the first contract: another chain with
    # the same id (a fresh dev chain, another data dir's) has another block there.
    deploy_block_hash: str | None = None

    @property
    def addresses(self) -> dict[str, str]:
        return {name: c["address"] for name, c in self.contracts.items()}

    @property
    def deploy_block(self) -> int:
        return min((c["block"] for c in self.contracts.values()), default=0)

    @property
    def governance_params(self) -> GovernanceParams | None:
        return GovernanceParams.from_json(self.governance) if self.governance else None

    def address(self, contract: str) -> str:
        return self.contracts[contract]["address"]

    def to_json(self) -> dict:
        data = {"chain_id": self.chain_id, "deployer": self.deployer, "deploy_block": self.deploy_block,
                "contracts": self.contracts, "governance": self.governance, "sealed_block": self.sealed_block}
        if self.deploy_block_hash is not None:
            data["deploy_block_hash"] = self.deploy_block_hash
        return data

    @classmethod
    def load(cls, home: Path) -> Manifest | None:
        path = home / MANIFEST_NAME
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(chain_id=data["chain_id"], deployer=data["deployer"], contracts=data["contracts"],
                   governance=data.get("governance"), sealed_block=data.get("sealed_block"),
                   deploy_block_hash=data.get("deploy_block_hash"))

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        # atomic and 0600: a crash leaves the old or the new manifest, never half
        write_private(home / MANIFEST_NAME, json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")


def verify_manifest(client: ChainClient, manifest: Manifest) -> None:
    """Raise ChainMismatchError unless the node is the manifest's chain: its chain id, the code
    that was deployed at every recorded address, and the recorded hash of the deploy block."""
    if manifest.chain_id != client.chain_id:
        raise ChainMismatchError(
            f"the deployment manifest is for chain id {manifest.chain_id}, but the node at "
            f"{client.rpc_url} is chain id {client.chain_id}: point LEDGER_RPC_URL at the right "
            f"chain, or use another LEDGER_HOME"
        )
    if REGISTRY in manifest.contracts and TIMELOCK not in manifest.contracts:
        raise ChainMismatchError(
            "the deployment manifest predates consortium governance (its registry is administered by one "
            "key): use a fresh LEDGER_HOME to deploy the governed contracts")
    for name, entry in manifest.contracts.items():
        if entry.get("pending"):
            continue  # a Safe whose creation was sent but not recorded: deploy() finishes it
        code = client.get_code(entry["address"])
        if not code:
            raise ChainMismatchError(
                f"{name} at {entry['address']} has no code on chain {client.chain_id}: the chain was "
                f"reset or is another network with the same id; use a fresh LEDGER_HOME to redeploy"
            )
        if "0x" + keccak256(code).hex() != entry["code_hash"]:
            raise ChainMismatchError(f"{name} at {entry['address']} runs other code than was deployed")
    if manifest.deploy_block_hash is not None:
        block = client.get_block(manifest.deploy_block)
        found = block["hash"] if block is not None else None
        if found != manifest.deploy_block_hash:
            raise ChainMismatchError(
                f"block {manifest.deploy_block} of the node at {client.rpc_url} has hash {found or '(missing)'}, "
                f"but the contracts were deployed in a block with hash {manifest.deploy_block_hash}: another chain "
                f"(or a reset one) with the same chain id {client.chain_id}; use the right node or another "
                f"LEDGER_HOME")


def _record(client: ChainClient, manifest: Manifest, home: Path, name: str, address: str, receipt_block: int,
            tx_hash: str, artifact: str) -> None:
    code = client.get_code(address)
    manifest.contracts[name] = {
        "address": address,
        "artifact": artifact,
        "block": receipt_block,
        "tx_hash": tx_hash,
        "code_hash": "0x" + keccak256(code).hex(),
        "artifact_hash": client.contracts.deployed_code_hash(artifact),
    }
    _record_deploy_block_hash(client, manifest)
    manifest.save(home)  # after each contract: a crash mid-way resumes where it stopped


def _record_deploy_block_hash(client: ChainClient, manifest: Manifest) -> None:
    """Once: the hash of the deploy block (the first contract's block; later ones are above it)."""
    if manifest.deploy_block_hash is None and manifest.contracts:
        block = client.get_block(manifest.deploy_block)
        if block is None:
            raise ChainMismatchError(f"block {manifest.deploy_block} is missing on chain {client.chain_id}")
        manifest.deploy_block_hash = block["hash"]


def _create_safe(client: ChainClient, operator: Signer, manifest: Manifest, home: Path, name: str,
                 governance: GovernanceParams) -> str:
    """A Safe proxy set up with the governors as owners (threshold M, or k for the guardian), in one
    transaction through the factory. The proxy's address is simulated first and recorded as
    pending, so a crash between sending and recording finds it again instead of failing on the
    factory's "already deployed"."""
    threshold = governance.threshold if name == GOVERNANCE_SAFE else governance.guardian_threshold
    setup = client.encode(SAFE_SINGLETON, "setup", [governance.addresses, threshold, ZERO_ADDRESS, b"",
                                                    ZERO_ADDRESS, ZERO_ADDRESS, 0, ZERO_ADDRESS])
    args = [manifest.address(SAFE_SINGLETON), setup, _SAFE_SALTS[name]]
    factory = manifest.address(SAFE_FACTORY)
    entry = manifest.contracts.get(name)
    if entry and entry.get("pending"):
        address = entry["address"]
        if client.get_code(address):
            _record(client, manifest, home, name, address, client.block_number(), entry.get("tx_hash", ""),
                    SAFE_SINGLETON)
            return address
    (predicted,) = client.call(SAFE_FACTORY, factory, "createProxyWithNonce", args, sender=operator.address)
    address = checksum_address(predicted)
    manifest.contracts[name] = {"address": address, "pending": True, "block": client.block_number()}
    manifest.save(home)
    receipt = client.transact(operator, to=factory, data=client.encode(SAFE_FACTORY, "createProxyWithNonce", args),
                              gas=DEPLOY_GAS_MAX)
    created = [lg for lg in client.decode_logs(receipt.logs) if lg.event == "ProxyCreation"]
    if [lg.args["proxy"] for lg in created] != [address]:
        raise ChainMismatchError(f"{name}: the factory created {created!r}, expected {address}")
    _record(client, manifest, home, name, address, receipt.block_number, receipt.tx_hash, SAFE_SINGLETON)
    return address


def deploy(client: ChainClient, operator: Signer, home: Path, progress: Callable[[str], None] = lambda s: None,
           *, governance: GovernanceParams) -> Manifest:
    """Deploy what the manifest lacks. ``governance`` is used for a first deployment; a manifest
    that already records governance keeps what is on chain (governors change through governance)."""
    manifest = Manifest.load(home)
    if manifest is None:
        manifest = Manifest(chain_id=client.chain_id, deployer=operator.address)
    else:
        verify_manifest(client, manifest)
        # A manifest written before deploy block hashes were recorded: verified by its code hashes
        # just now, so the hash found is the deployment's.
        _record_deploy_block_hash(client, manifest)
    if manifest.governance is None:
        manifest.governance = governance.to_json()
    elif manifest.governance != governance.to_json():
        progress("governance: the deployed governors, thresholds and delay differ from the configured ones; "
                 "the deployed ones apply (they change only through governance)")
    params = GovernanceParams.from_json(manifest.governance)
    catalogue = client.contracts
    for contract in PLAN:
        entry = manifest.contracts.get(contract)
        if entry is not None and not entry.get("pending"):
            progress(f"{contract}: already at {manifest.address(contract)}")
            continue
        if contract in _SAFE_SALTS:
            address = _create_safe(client, operator, manifest, home, contract, params)
            progress(f"{contract}: Safe at {address} ({len(params.governors)} owners)")
            continue
        art = catalogue.artifacts.get(contract)
        if art is None or not art.get("deployable"):
            continue
        ctor = next((i for i in art["abi"] if i["type"] == "constructor"), {"inputs": []})
        types = [_type_str(p) for p in ctor["inputs"]]
        args = [constructor_value(contract, p["name"], manifest.addresses, operator, params)
                for p in ctor["inputs"]]
        data = catalogue.bytecode(contract) + abi_encode(types, [coerce(t, a) for t, a in zip(types, args)])
        receipt = client.transact(operator, to=None, data=data, gas=DEPLOY_GAS_MAX)
        address = client.w3.to_checksum_address(receipt.contract_address)
        _record(client, manifest, home, contract, address, receipt.block_number, receipt.tx_hash, contract)
        progress(f"{contract}: deployed at {address} (block {receipt.block_number})")
    manifest.save(home)
    return manifest


# -- the bootstrap window ------------------------------------------------------------------------------


def bootstrap_open(client: ChainClient, manifest: Manifest) -> bool:
    """True while the registry's bootstrapper may still onboard founding members."""
    if manifest.sealed_block is not None:
        return False  # sealing is irreversible on chain: the manifest's record is final
    (bootstrapper,) = client.call(REGISTRY, manifest.address(REGISTRY), "bootstrapper")
    return int(bootstrapper, 16) != 0


def seal_bootstrap(client: ChainClient, operator: Signer, manifest: Manifest, home: Path,
                   progress: Callable[[str], None] = lambda s: None) -> int:
    """Close the bootstrap window (once, irreversibly) and record the block; returns it. Sealing a
    sealed registry only records the fact. Raises ChainMismatchError when the wiring is wrong."""
    if bootstrap_open(client, manifest):
        receipt = client.transact(operator, to=manifest.address(REGISTRY), gas=SEAL_GAS,
                                  data=client.encode(REGISTRY, "sealBootstrap", []))
        manifest.sealed_block = receipt.block_number
        progress(f"bootstrap sealed at block {receipt.block_number}: the operator's key keeps no admin power")
    elif manifest.sealed_block is None:
        manifest.sealed_block = client.block_number()
    problems = check_governance(client, manifest)
    if problems:
        raise ChainMismatchError("governance wiring is wrong: " + "; ".join(problems))
    manifest.save(home)
    return manifest.sealed_block


def check_governance(client: ChainClient, manifest: Manifest) -> list[str]:
    """What is wrong with the deployed governance wiring (empty: nothing): the bootstrap sealed,
    the timelock the registry's only admin, the governors' Safe its proposer, both Safes owned by
    the recorded governors with the recorded thresholds."""
    params = manifest.governance_params
    if params is None:
        return ["the manifest records no governance"]
    a = manifest.addresses
    problems = []
    (bootstrapper,) = client.call(REGISTRY, a[REGISTRY], "bootstrapper")
    if int(bootstrapper, 16) != 0:
        problems.append(f"bootstrap not sealed (bootstrapper {checksum_address(bootstrapper)})")
    (admin,) = client.call(REGISTRY, a[REGISTRY], "defaultAdmin")
    if admin.lower() != a[TIMELOCK].lower():
        problems.append(f"registry admin is {admin}, not the timelock")
    (proposer_role,) = client.call(TIMELOCK, a[TIMELOCK], "PROPOSER_ROLE")
    (is_proposer,) = client.call(TIMELOCK, a[TIMELOCK], "hasRole", [proposer_role, a[GOVERNANCE_SAFE]])
    if not is_proposer:
        problems.append("the governors' Safe is not the timelock's proposer")
    (delay,) = client.call(TIMELOCK, a[TIMELOCK], "getMinDelay")
    if int(delay) != params.delay_s:
        problems.append(f"timelock delay is {delay} s, recorded {params.delay_s} s")
    for name, threshold in ((GOVERNANCE_SAFE, params.threshold), (GUARDIAN_SAFE, params.guardian_threshold)):
        (owners,) = client.call(artifact_of(name), a[name], "getOwners")
        (actual,) = client.call(artifact_of(name), a[name], "getThreshold")
        if sorted(o.lower() for o in owners) != sorted(x.lower() for x in params.addresses):
            problems.append(f"{name} owners differ from the recorded governors")
        if int(actual) != threshold:
            problems.append(f"{name} threshold is {actual}, recorded {threshold}")
    return problems


def require_governance(params: GovernanceParams | None) -> GovernanceParams:
    if params is None:
        raise ConfigurationError("no governance configured: set LEDGER_GOVERNORS (and the thresholds and delay)")
    return params
