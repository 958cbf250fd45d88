"""Builds a Runtime from Settings: store (migrated), chain client, key vault, operator, manifest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ledger_api.settings import Settings
from settlement.chain.client import ChainClient, FeePolicy
from settlement.chain.deploy import Manifest, deploy, verify_manifest
from settlement.chain.governance import GovernanceParams, parse_governors
from settlement.chain.signing import LocalSigner
from settlement.chain.transport import redact_url
from settlement.core.private_files import Tightened, tighten
from settlement.custody.hsm import HsmToken, open_token
from settlement.core.errors import ConfigurationError
from settlement.custody.governors import DEMO_DELAY_S, demo_governance, demo_governor_signers
from settlement.custody.vault import KeyVault, load_or_create_kek, load_or_create_operator
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.wiring import install_journal_observers

log = logging.getLogger("ledger.files")

# What the service keeps in its data dir (names directly in it; "*" ends a prefix): tightened to
# the service's user at every start. The KEK is not in the list: a KEK file anyone else could read
# is refused (settlement.custody.vault), not quietly fixed, since its keys must then be rotated.
DATA_DIR_FILES = ("ledger.db*", "anvil-state.json", "anvil-state.last-good.json", "anvil-state.cut-short.json",
                  "anvil.log", "anvil.pid", "deployment.json", "deployment.tmp", "demo.json", "demo.tmp",
                  "operator-api-key", "operator.key")
DATA_DIR_FOLDERS = ("statements",)


def secure_data_dir(home: Path) -> list[Tightened]:
    """Make the data dir and what the service keeps in it private to the service's user (group
    and other permissions removed), warning about each change: files left by an older version, or
    made under a permissive umask by another tool."""
    changed = tighten(home, files=DATA_DIR_FILES, dirs=DATA_DIR_FOLDERS)
    for t in changed:
        log.warning("data dir: %s was readable by others (mode %s); now %s", t.path, oct(t.mode_before),
                    oct(t.mode_after))
    return changed


def fee_policy(settings: Settings) -> FeePolicy:
    return FeePolicy(mode=settings.fee_mode, gas_price_wei=settings.gas_price_wei,
                     max_fee_per_gas_wei=settings.max_fee_per_gas_wei,
                     max_priority_fee_per_gas_wei=settings.max_priority_fee_per_gas_wei)


def hsm_token(settings: Settings) -> HsmToken | None:
    """The PKCS#11 token of LEDGER_HSM_MODULE, logged in; None when no module is configured."""
    if settings.hsm_module is None:
        return None
    return open_token(settings.hsm_module, settings.hsm_token_label, settings.hsm_pin, settings.hsm_pin_file)
# The production default of the timelock's delay: long enough for every member to see a change coming.
GOVERNANCE_DELAY_S_DEFAULT = 2 * 86_400


def governance_params(settings: Settings) -> tuple[GovernanceParams | None, dict[str, LocalSigner]]:
    """Governance for a first deployment, and the governor keys the service holds (demo only).

    LEDGER_GOVERNORS set: those governors, the service holds none of their keys. Unset on the
    managed dev chain: the demo governors. Unset on an external chain: None (a deployment refuses
    to start without governors; a restart reads them from the manifest)."""
    if settings.governors:
        governors = parse_governors(settings.governors)
        threshold = settings.governance_threshold or len(governors) // 2 + 1
        delay = GOVERNANCE_DELAY_S_DEFAULT if settings.governance_delay_s is None else settings.governance_delay_s
        return GovernanceParams(governors=governors, threshold=threshold,
                                guardian_threshold=settings.guardian_threshold or threshold, delay_s=delay), {}
    if settings.managed_chain:
        delay = DEMO_DELAY_S if settings.governance_delay_s is None else settings.governance_delay_s
        return demo_governance(delay_s=delay)
    return None, {}


def build_runtime(settings: Settings, *, run_migrations: bool = True, deploy_contracts: bool = False,
                  progress: Callable[[str], None] = lambda s: None) -> Runtime:
    home = settings.home_dir
    secure_data_dir(home)
    url = settings.effective_database_url
    if run_migrations:
        progress("store: applying migrations")
        migrate(url)
    db = Database(url)
    vault = KeyVault(load_or_create_kek(home, settings.kek), hsm=hsm_token(settings),
                     hsm_keys=settings.hsm_key_kinds)
    operator = load_or_create_operator(home, vault, settings.operator_key)
    chain = ChainClient(settings.effective_rpc_url, fee_policy(settings))
    params, _custodial = governance_params(settings)
    if deploy_contracts:
        progress(f"chain: {redact_url(chain.rpc_url)} (chain id {chain.chain_id}); deploying what is missing")
        existing = Manifest.load(home)
        if params is None and (existing is None or existing.governance is None):
            raise ConfigurationError("an external chain needs its governors: set LEDGER_GOVERNORS "
                                     "(member-id:0xADDRESS,...), LEDGER_GOVERNANCE_THRESHOLD, "
                                     "LEDGER_GUARDIAN_THRESHOLD and LEDGER_GOVERNANCE_DELAY_S")
        manifest = deploy(chain, operator, home, progress,
                          governance=params or existing.governance_params)  # type: ignore[union-attr]
    else:
        manifest = Manifest.load(home)
        if manifest is not None:
            verify_manifest(chain, manifest)
    runtime = Runtime(home=home, db=db, chain=chain, vault=vault, operator=operator, manifest=manifest)
    install_journal_observers()  # every process built from settings writes its events (docs/events.md)
    deployed = manifest.governance_params if manifest is not None else None
    if deployed is not None and deployed.demo:
        # Only a demo deployment (its governors' keys are public test keys) gets custodial governors.
        signers = demo_governor_signers(len(deployed.governors))
        runtime.register_governors({s.address: s for s in signers if deployed.governor(s.address)})
    return runtime


# The service is many short, I/O-bound threads (the API's thread pool, the workers) around one
# SQL writer: with CPython's default 5 ms switch interval, a thread coming back from a database
# call can wait that long for the interpreter lock while it holds the store's write lock. 0.5 ms
# keeps the writer moving (measured in bench/bench_callbacks.py).
SWITCH_INTERVAL_S = 0.0005


def tune_interpreter() -> None:
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL_S)
