"""Our fast signer produces byte-for-byte what eth-account produces, for every fee mode."""

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.chain.signing import FeeParams, LocalSigner

KEY = Account.create().key
SIGNER = LocalSigner(bytes(KEY))
TO = Account.create().address


@settings(max_examples=60, deadline=None)
@given(nonce=st.integers(0, 2**32), gas=st.integers(21_000, 30_000_000), data=st.binary(max_size=300),
       chain_id=st.sampled_from([1, 1337, 31337, 2018]), mode=st.sampled_from(["zero", "legacy", "eip1559"]),
       price=st.integers(1, 10**12), value=st.integers(0, 10**18))
def test_same_raw_transaction_as_eth_account(nonce, gas, data, chain_id, mode, price, value):
    to = TO
    if mode == "zero":
        fees, extra = FeeParams(gas_price=0), {"gasPrice": 0}
    elif mode == "legacy":
        fees, extra = FeeParams(gas_price=price), {"gasPrice": price}
    else:
        fees = FeeParams(max_fee_per_gas=price * 2, max_priority_fee_per_gas=price)
        extra = {"maxFeePerGas": price * 2, "maxPriorityFeePerGas": price, "type": 2}
    ours = SIGNER.sign(chain_id=chain_id, nonce=nonce, to=to, data=data, gas=gas, fees=fees, value=value)
    ref = Account.sign_transaction(dict(to=to, value=value, gas=gas, nonce=nonce, chainId=chain_id, data=data, **extra), KEY)
    assert ours.raw == bytes(ref.raw_transaction)
    assert ours.tx_hash == "0x" + bytes(ref.hash).hex()


def test_signer_repr_hides_the_key():
    assert KEY.hex()[2:] not in repr(SIGNER) and SIGNER.address in repr(SIGNER)
