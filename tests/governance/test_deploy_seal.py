"""The service deploys the consortium's governance as docs/governance.md orders it, resumes a
deployment that crashed mid-way, and ends with the bootstrap sealed; its pure encodings (Safe
transaction hash, timelock operation id, approval signatures) are the ones the contracts compute."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account

from ledger_api.bootstrap import build_runtime as build_service_runtime
from ledger_api.bootstrap import governance_params
from ledger_api.settings import Settings
from settlement.chain import deploy as deploy_mod
from settlement.chain.client import ChainClient
from settlement.chain.deploy import (
    GOVERNANCE_SAFE,
    GUARDIAN_SAFE,
    Manifest,
    bootstrap_open,
    check_governance,
    deploy,
    seal_bootstrap,
)
from settlement.chain.governance import ZERO_BYTES32, operation_id, parse_governors, safe_tx_hash
from settlement.chain.signing import LocalSigner
from settlement.core.errors import ChainMismatchError, ChainRevertError, ConfigurationError
from tests.governance.support import test_governance


def test_deployment_wires_governance_and_the_seal_leaves_the_operator_nothing(anvil_automine, tmp_path: Path) -> None:
    """After deploy: the timelock is the registry's only admin, the governors' Safe its proposer,
    both Safes owned by the governors with their thresholds; the bootstrap is open (the operator
    may onboard). After the seal: it is closed for good, and onboarding by the operator reverts."""
    client = ChainClient(anvil_automine.rpc_url)
    operator = LocalSigner(bytes(Account.create().key))
    params, _signers = test_governance()
    manifest = deploy(client, operator, tmp_path, governance=params)
    assert list(manifest.contracts)[:8] == ["ConsortiumSafe", "ConsortiumSafeProxyFactory", GOVERNANCE_SAFE,
                                            GUARDIAN_SAFE, "ConsortiumTimelock", "LedgerForwarder",
                                            "ConsortiumRegistry", "GovernanceProposals"]
    assert manifest.governance == params.to_json()
    assert bootstrap_open(client, manifest)
    assert check_governance(client, manifest) == [f"bootstrap not sealed (bootstrapper {operator.address})"]
    block = seal_bootstrap(client, operator, manifest, tmp_path)
    assert block >= 1 and not bootstrap_open(client, manifest) and check_governance(client, manifest) == []
    assert Manifest.load(tmp_path).sealed_block == block
    registry = manifest.address("ConsortiumRegistry")
    onboard = client.encode("ConsortiumRegistry", "onboardMember", ["0x" + "11" * 32, "0x5347", [operator.address], []])
    with pytest.raises(ChainRevertError) as refused:
        client.transact(operator, to=registry, data=onboard, gas=500_000)
    assert refused.value.error_name == "AccessControlUnauthorizedAccount"
    assert seal_bootstrap(client, operator, manifest, tmp_path) == block  # sealing again only records it


def test_local_governance_encodings_match_the_contracts(anvil_automine, tmp_path: Path) -> None:
    """safe_tx_hash == Safe.getTransactionHash and operation_id == hashOperationBatch, so the
    proposal ids the service stores are the hashes the Safes approve."""
    client = ChainClient(anvil_automine.rpc_url)
    operator = LocalSigner(bytes(Account.create().key))
    manifest = deploy(client, operator, tmp_path, governance=test_governance()[0])
    a = manifest.addresses
    data = os.urandom(100)
    for nonce in (0, 7):
        (on_chain,) = client.call(GOVERNANCE_SAFE, a[GOVERNANCE_SAFE], "getTransactionHash",
                                  [a["ConsortiumTimelock"], 0, data, 0, 0, 0, 0, "0x" + "00" * 20, "0x" + "00" * 20,
                                   nonce])
        assert safe_tx_hash(client.chain_id, a[GOVERNANCE_SAFE], a["ConsortiumTimelock"], data, nonce) == \
            "0x" + on_chain.hex()
    salt = "0x" + os.urandom(32).hex()
    targets, values, payloads = [a["ConsortiumRegistry"]] * 2, [0, 0], [b"\x01\x02", os.urandom(68)]
    (on_chain,) = client.call("ConsortiumTimelock", a["ConsortiumTimelock"], "hashOperationBatch",
                              [targets, values, payloads, ZERO_BYTES32, salt])
    assert operation_id(targets, values, payloads, salt) == "0x" + on_chain.hex()


def test_a_deployment_that_crashed_after_creating_a_safe_resumes(anvil_automine, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The governors' Safe is created but the process dies before recording it: the manifest has
    its simulated address as pending, and the next run finds the Safe there instead of failing on
    the factory's "already deployed"."""
    client = ChainClient(anvil_automine.rpc_url)
    operator = LocalSigner(bytes(Account.create().key))
    real_record = deploy_mod._record

    def crash_on_safe(client_, manifest, home, name, *args):  # type: ignore[no-untyped-def]
        if name == GOVERNANCE_SAFE:
            raise KeyboardInterrupt("killed mid-deployment")
        return real_record(client_, manifest, home, name, *args)

    monkeypatch.setattr(deploy_mod, "_record", crash_on_safe)
    with pytest.raises(KeyboardInterrupt):
        deploy(client, operator, tmp_path, governance=test_governance()[0])
    pending = Manifest.load(tmp_path).contracts[GOVERNANCE_SAFE]
    assert pending["pending"] and client.get_code(pending["address"])
    monkeypatch.setattr(deploy_mod, "_record", real_record)
    manifest = deploy(client, operator, tmp_path, governance=test_governance()[0])
    assert manifest.address(GOVERNANCE_SAFE) == pending["address"] and "pending" not in manifest.contracts[GOVERNANCE_SAFE]
    seal_bootstrap(client, operator, manifest, tmp_path)
    assert check_governance(client, manifest) == []


def test_governance_configuration(tmp_path: Path, anvil_automine) -> None:
    """LEDGER_GOVERNORS is member-id:0xADDRESS (or bare addresses); the threshold defaults to a
    majority; an external chain without governors refuses to deploy; a pre-governance manifest is
    refused; the managed chain gets the demo governors (custodial, marked demo)."""
    a, b, c = (Account.create().address for _ in range(3))
    governors = parse_governors(f"bank-a:{a}, bank-b:{b},{c}")
    assert [(g.member_id, g.address) for g in governors] == [("bank-a", a), ("bank-b", b), ("governor-3", c)]
    for bad in ("", "bank:0x12", f"Bad Name:{a}"):
        with pytest.raises(ConfigurationError):
            parse_governors(bad)
    params, held = governance_params(Settings(home=tmp_path, rpc_url="http://127.0.0.1:1",
                                              governors=f"bank-a:{a},bank-b:{b},bank-c:{c}"))
    assert (params.threshold, params.guardian_threshold, params.delay_s, params.demo, held) == (2, 2, 172_800, False, {})
    demo, held = governance_params(Settings(home=tmp_path))
    assert demo.demo and set(held) == {g.address for g in demo.governors} and demo.delay_s == 20
    external = Settings(home=tmp_path / "ext", rpc_url=anvil_automine.rpc_url,
                        database_url=f"sqlite:///{tmp_path / 'ext.db'}")
    with pytest.raises(ConfigurationError, match="LEDGER_GOVERNORS"):
        build_service_runtime(external, deploy_contracts=True)
    old = Manifest(chain_id=31337, deployer=a, contracts={"ConsortiumRegistry": {"address": a, "block": 1,
                                                                                  "code_hash": "0x"}})
    with pytest.raises(ChainMismatchError, match="predates consortium governance"):
        deploy_mod.verify_manifest(ChainClient(anvil_automine.rpc_url), old)
