"""Deployment is idempotent, checks code on restart and refuses a manifest of another chain."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from settlement.chain.client import ChainClient
from settlement.chain.deploy import Manifest, deploy, verify_manifest
from settlement.chain.signing import LocalSigner
from settlement.core.errors import ChainMismatchError
from tests.governance.support import test_governance

GOV = test_governance()[0]


def test_deploy_is_idempotent_and_verifies_code(anvil_automine, tmp_path):
    client = ChainClient(anvil_automine.rpc_url)
    operator = LocalSigner(bytes(Account.create().key))
    first = deploy(client, operator, tmp_path, governance=GOV)
    assert {"ConsortiumRegistry"} <= set(first.contracts)
    nonce = client.pending_nonce(operator.address)
    second = deploy(client, operator, tmp_path, governance=GOV)
    assert second.addresses == first.addresses
    assert client.pending_nonce(operator.address) == nonce  # nothing sent
    data = json.loads((tmp_path / "deployment.json").read_text())
    assert data["chain_id"] == 31337
    for entry in data["contracts"].values():
        assert entry["code_hash"].startswith("0x") and entry["block"] >= 1


def test_manifest_of_another_chain_is_refused(anvil_factory, tmp_path):
    a = anvil_factory()
    b = anvil_factory(chain_id=4242)
    operator = LocalSigner(bytes(Account.create().key))
    deploy(ChainClient(a.rpc_url), operator, tmp_path, governance=GOV)
    with pytest.raises(ChainMismatchError, match="chain id 31337.*4242"):
        deploy(ChainClient(b.rpc_url), operator, tmp_path, governance=GOV)


def test_manifest_without_code_on_chain_is_refused(anvil_factory, tmp_path):
    operator = LocalSigner(bytes(Account.create().key))
    deploy(ChainClient(anvil_factory().rpc_url), operator, tmp_path, governance=GOV)
    fresh = anvil_factory()  # same chain id, but nothing deployed
    with pytest.raises(ChainMismatchError, match="no code"):
        deploy(ChainClient(fresh.rpc_url), operator, tmp_path, governance=GOV)
    assert Manifest.load(tmp_path) is not None


def test_same_code_on_another_history_is_refused_by_the_deploy_block_hash(anvil_factory, tmp_path):
    """The same operator key on a fresh chain with the same id puts the same code at the same
    addresses; only the recorded deploy block hash tells the chains apart."""
    operator = LocalSigner(bytes(Account.create().key))
    first = deploy(ChainClient(anvil_factory().rpc_url), operator, tmp_path / "a", governance=GOV)
    assert first.deploy_block_hash is not None
    assert json.loads((tmp_path / "a" / "deployment.json").read_text())["deploy_block_hash"] == first.deploy_block_hash
    other = ChainClient(anvil_factory().rpc_url)
    other.rpc("evm_mine")  # one empty block first: same contracts, one block later
    twin = deploy(other, operator, tmp_path / "b", governance=GOV)
    assert twin.addresses == first.addresses
    assert {c["code_hash"] for c in twin.contracts.values()} == {c["code_hash"] for c in first.contracts.values()}
    with pytest.raises(ChainMismatchError, match=f"block {first.deploy_block} of the node .* has hash"):
        verify_manifest(other, first)


def test_a_manifest_without_deploy_block_hash_gets_it_on_restart(anvil_automine, tmp_path):
    client = ChainClient(anvil_automine.rpc_url)
    operator = LocalSigner(bytes(Account.create().key))
    recorded = deploy(client, operator, tmp_path, governance=GOV).deploy_block_hash
    old = json.loads((tmp_path / "deployment.json").read_text())
    del old["deploy_block_hash"]  # as written before the hash was recorded
    (tmp_path / "deployment.json").write_text(json.dumps(old))
    assert deploy(client, operator, tmp_path, governance=GOV).deploy_block_hash == recorded
    assert Manifest.load(tmp_path).deploy_block_hash == recorded
