"""Deployment is idempotent, checks code on restart and refuses a manifest of another chain."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from settlement.chain.client import ChainClient
from settlement.chain.deploy import Manifest, deploy
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
