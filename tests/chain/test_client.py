"""The chain client on real anvil nodes: automine, production emulation and fee modes."""

from __future__ import annotations

import pytest
from eth_account import Account

from settlement.chain.client import ChainClient, FeePolicy
from settlement.chain.signing import LocalSigner, keccak256
from settlement.core.errors import ChainRevertError, ChainUnavailableError
from tests.chain.helpers import make_runtime
from tests.conftest import ANVIL_DEV_KEY

FINANCE = "0x" + keccak256(b"FINANCE").hex()


def test_reverts_decode_into_custom_errors(anvil_automine, tmp_path):
    rt = make_runtime(anvil_automine.rpc_url, f"sqlite:///{tmp_path}/l.db", tmp_path)
    registry = rt.address("ConsortiumRegistry")
    outsider = LocalSigner(bytes(Account.create().key))
    with pytest.raises(ChainRevertError) as err:
        rt.chain.transact(outsider, to=registry, gas=300_000,
                          data=rt.chain.encode("ConsortiumRegistry", "suspendMember", ["0x" + "11" * 32]))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    assert err.value.error_args["account"] == outsider.address
    with pytest.raises(ChainRevertError) as err:
        rt.chain.call("ConsortiumRegistry", registry, "requireActiveRole", [outsider.address, FINANCE])
    assert err.value.error_name == "RegistryNotAMember"


def test_production_emulation_interval_mining_zero_fees(anvil_factory):
    """1 s blocks, zero base fee and gas price (Besu QBFT-like): an unfunded key transacts."""
    node = anvil_factory(block_time_s=1, zero_fees=True)
    client = ChainClient(node.rpc_url, FeePolicy("zero"))
    signer = LocalSigner(bytes(Account.create().key))
    assert client.balance(signer.address) == 0
    txs = [client.sign(signer, to=signer.address, data=b"", gas=21_000, nonce=n) for n in range(20)]
    assert all(r.accepted for r in client.send_raw_batch(txs))
    receipts = client.wait_for_receipts([t.tx_hash for t in txs], timeout_s=10)
    assert len(receipts) == 20 and all(r.status == 1 for r in receipts.values())
    # Interval mining packs many transactions per block.
    assert len({r.block_number for r in receipts.values()}) <= 3
    # Re-broadcasting the same bytes is a no-op that reports success (idempotent dispatch).
    assert all(r.accepted or r.nonce_too_low for r in client.send_raw_batch(txs[:3]))
    assert client.pending_nonce(signer.address) == 20


@pytest.mark.parametrize("mode", ["eip1559", "legacy"])
def test_fee_modes_on_a_chain_with_fees(anvil_factory, mode):
    """On an anvil with a base fee, configured EIP-1559 and legacy fees are used as given."""
    node = anvil_factory(zero_fees=False)
    fees = (FeePolicy("eip1559", max_fee_per_gas_wei=50 * 10**9, max_priority_fee_per_gas_wei=10**9)
            if mode == "eip1559" else FeePolicy("legacy", gas_price_wei=20 * 10**9))
    client = ChainClient(node.rpc_url, fees)
    funded = LocalSigner(ANVIL_DEV_KEY)
    receipt = client.transact(funded, to=funded.address, data=b"", gas=21_000)
    assert receipt.status == 1
    tx = client.rpc("eth_getTransactionByHash", [receipt.tx_hash])
    if mode == "eip1559":
        assert tx["type"] == "0x2" and int(tx["maxFeePerGas"], 16) == 50 * 10**9
    else:
        assert tx["type"] == "0x0" and int(tx["gasPrice"], 16) == 20 * 10**9
    # Zero fees are refused by a chain that charges a base fee: fee mode is configuration.
    zero = ChainClient(node.rpc_url, FeePolicy("zero"))
    tx0 = zero.sign(funded, to=funded.address, data=b"", gas=21_000, nonce=zero.pending_nonce(funded.address))
    assert not zero.send_raw_batch([tx0])[0].accepted


def test_unreachable_node_is_a_typed_error():
    client = ChainClient("http://127.0.0.1:9", timeout_s=1)
    with pytest.raises(ChainUnavailableError):
        client.block_number()
