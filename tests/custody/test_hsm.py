"""Keys in a PKCS#11 token (SoftHSM2): what the token signs is a valid Ethereum transaction that a
real anvil accepts from the key's address, and the token never gives the private key out.

The first tests need no token: they check the conversion of a device's textbook ECDSA (r, s) into
an Ethereum signature against signatures made by another implementation (``cryptography``,
random nonces, s in either half, DER encoded), so the conversion is not only checked against
itself.
"""

from __future__ import annotations

import os

import coincurve
import pkcs11
import pytest
import rlp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from settlement.chain.client import ChainClient, FeePolicy
from settlement.chain.signing import (SECP256K1_HALF_N, SECP256K1_N, FeeParams, LocalSigner, Signer, address_of,
                                      ethereum_signature, keccak256, to_checksum)
from settlement.core.errors import ConfigurationError, SigningUnavailableError
from settlement.custody.hsm import SECP256K1_EC_PARAMS, HsmSigner, HsmToken, point_of, signature_rs
from tests.conftest import ANVIL_DEV_KEY

TX_COUNT = 8  # transactions sent per fee mode


def _s_of(raw_tx: bytes) -> int:
    fields = rlp.decode(raw_tx[1:]) if raw_tx[0] == 2 else rlp.decode(raw_tx)
    return int.from_bytes(fields[-1], "big")


# -- the conversion, against another ECDSA implementation ------------------------------------------


@settings(max_examples=150, deadline=None)
@given(secret=st.integers(1, SECP256K1_N - 1), digest=st.binary(min_size=32, max_size=32))
def test_a_textbook_ecdsa_signature_becomes_an_ethereum_signature(secret: int, digest: bytes) -> None:
    """Any valid (r, s) over a hash, s high or low, DER or raw, becomes (r, low s, recovery id)
    that recovers to the key's address, and is the same signature or its low-s twin."""
    key = ec.derive_private_key(secret, ec.SECP256K1())
    der = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # random k: s in either half
    r, s = decode_dss_signature(der)
    address = address_of(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    assert signature_rs(der) == (r, s) == signature_rs(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    r2, s2, recid = ethereum_signature(digest, r, s, address)
    assert r2 == r and s2 <= SECP256K1_HALF_N and s2 in (s, SECP256K1_N - s) and recid in (0, 1)
    eth_sig = r2.to_bytes(32, "big") + s2.to_bytes(32, "big") + bytes((recid + 27,))
    assert Account._recover_hash(digest, signature=eth_sig) == to_checksum(address)


def test_a_wrong_signature_or_foreign_key_is_refused() -> None:
    """Recovery checks the signature: a corrupted s, or a signature by another key, recovers to
    another address for both ids and is refused; malformed token answers are refused too."""
    signer = LocalSigner(os.urandom(32))
    other = LocalSigner(os.urandom(32))
    digest = os.urandom(32)
    r, s, _ = signer._sign_hash(digest)
    mine = bytes.fromhex(signer.address[2:])
    assert ethereum_signature(digest, r, s, mine)[:2] == (r, s)
    with pytest.raises(ValueError):
        ethereum_signature(digest, r, s ^ 1, mine)
    with pytest.raises(ValueError):
        ethereum_signature(digest, r, s, bytes.fromhex(other.address[2:]))
    with pytest.raises(ValueError):
        ethereum_signature(digest, 0, s, mine)
    for junk in (b"", b"\x00" * 63, b"\x30" + b"\x00" * 90, b"\x30\x02\x01"):
        with pytest.raises(SigningUnavailableError):
            signature_rs(junk)


def test_ec_point_forms() -> None:
    """CKA_EC_POINT comes DER-wrapped (PKCS#11) or bare; both give the same checked point."""
    pub = coincurve.PrivateKey(os.urandom(32)).public_key.format(compressed=False)
    assert point_of(b"\x04\x41" + pub) == pub == point_of(pub)
    with pytest.raises(ConfigurationError):
        point_of(b"\x04\x41" + pub[:-1] + bytes((pub[-1] ^ 1,)))  # off the curve
    with pytest.raises(ConfigurationError):
        point_of(pub[:33])


# -- the token -------------------------------------------------------------------------------------


def test_secp256k1_keys_are_made_in_the_token_and_sign(hsm_token: HsmToken) -> None:
    """SoftHSM2 supports the named curve secp256k1 (OID 1.3.132.0.10) for key generation and
    CKM_ECDSA; a signer of the key is a Signer, and every signature it makes is low-s and
    recovers to the address computed from CKA_EC_POINT, though the token's own s is often high."""
    key_id, address = hsm_token.generate("test sign")
    signer = hsm_token.signer(key_id, address)
    assert isinstance(signer, Signer) and isinstance(signer, HsmSigner) and signer.address == address
    assert hsm_token.address(key_id) == address
    raw_s = [signature_rs(hsm_token.sign_digest(key_id, os.urandom(32)))[1] for _ in range(64)]
    assert any(s > SECP256K1_HALF_N for s in raw_s), "the token never gave a high s: normalisation untested"
    recids = set()
    for nonce in range(40):
        fees = FeeParams() if nonce % 2 else FeeParams(max_fee_per_gas=7, max_priority_fee_per_gas=1)
        tx = signer.sign(chain_id=31337, nonce=nonce, to=None if nonce == 3 else "0x" + "ab" * 20,
                         data=os.urandom(nonce), gas=90_000, fees=fees, value=nonce)
        assert Account.recover_transaction(tx.raw) == address
        assert _s_of(tx.raw) <= SECP256K1_HALF_N
        assert tx.tx_hash == "0x" + keccak256(tx.raw).hex()
        fields = rlp.decode(tx.raw[1:]) if tx.raw[0] == 2 else rlp.decode(tx.raw)
        v = int.from_bytes(fields[-3], "big")
        recids.add(v if tx.raw[0] == 2 else v - 35 - 2 * 31337)
    assert recids == {0, 1}
    digest = keccak256(b"\x19\x01" + os.urandom(64))  # an EIP-712 digest, as for a member's consent
    assert Account._recover_hash(digest, signature=signer.unsafe_sign_hash(digest)) == address


def _session(hsm_token: HsmToken) -> pkcs11.Session:
    """A second session of this process on the token, as any PKCS#11 client would open one (it
    shares the login of the service's session)."""
    return pkcs11.lib(str(hsm_token.module_path)).get_token(token_label=hsm_token.label).open(rw=True)


def test_the_token_refuses_to_export_the_private_key(hsm_token: HsmToken) -> None:
    """C_GetAttributeValue of CKA_VALUE fails (CKR_ATTRIBUTE_SENSITIVE), the key cannot be
    wrapped out under a key of the caller's choosing, and the token vouches that it was always
    sensitive and never extractable."""
    key_id, _address = hsm_token.generate("test export")
    session = _session(hsm_token)
    try:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]
        assert private[Attribute.SENSITIVE] is True and private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.ALWAYS_SENSITIVE] is True and private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.DERIVE] is False and private[Attribute.EC_PARAMS] == SECP256K1_EC_PARAMS
        wrapping = session.generate_key(KeyType.AES, 256, store=False,
                                        template={Attribute.WRAP: True, Attribute.EXTRACTABLE: True})
        with pytest.raises((p11.KeyUnextractable, p11.KeyNotWrappable)):
            wrapping.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        with pytest.raises(p11.AttributeReadOnly):
            private[Attribute.EXTRACTABLE] = True  # CKA_EXTRACTABLE can only go from True to False
    finally:
        session.close()


def test_a_key_that_ever_existed_outside_the_token_is_refused(hsm_token: HsmToken) -> None:
    """A secp256k1 key imported into the token (C_CreateObject with its value) works as a PKCS#11
    key, but is not ALWAYS_SENSITIVE; one generated extractable is not NEVER_EXTRACTABLE: the
    service refuses to sign with either."""
    secret = os.urandom(32)
    local = LocalSigner(secret)
    imported_id, extractable_id = os.urandom(16), os.urandom(16)
    point = coincurve.PrivateKey(secret).public_key.format(compressed=False)
    session = _session(hsm_token)
    try:
        session.create_object({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC,
                               Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                               Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.ID: imported_id,
                               Attribute.EC_PARAMS: SECP256K1_EC_PARAMS, Attribute.VALUE: secret})
        session.create_object({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
                               Attribute.TOKEN: True, Attribute.VERIFY: True, Attribute.ID: imported_id,
                               Attribute.EC_PARAMS: SECP256K1_EC_PARAMS, Attribute.EC_POINT: b"\x04\x41" + point})
        session.generate_keypair(KeyType.EC, id=extractable_id, store=True,
                                 public_template={Attribute.EC_PARAMS: SECP256K1_EC_PARAMS},
                                 private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True})
    finally:
        session.close()
    with pytest.raises(ConfigurationError, match="ALWAYS_SENSITIVE"):
        hsm_token.signer(imported_id, local.address)
    with pytest.raises(ConfigurationError, match="EXTRACTABLE"):
        hsm_token.signer(extractable_id)


def test_a_reference_to_another_key_or_no_key_is_refused(hsm_token: HsmToken) -> None:
    """The vault records (key id, address); a key id whose key has another address (rows
    swapped) or that names no key is refused, never signed with."""
    key_a, address_a = hsm_token.generate("test a")
    key_b, address_b = hsm_token.generate("test b")
    with pytest.raises(ConfigurationError, match="belongs to"):
        hsm_token.signer(key_a, address_b)
    with pytest.raises(ConfigurationError, match="no private key|no public key"):
        hsm_token.signer(os.urandom(16), address_a)
    assert hsm_token.signer(key_b, address_b).address == address_b


def test_a_lost_session_is_reopened(softhsm, hsm_token: HsmToken, caplog: pytest.LogCaptureFixture) -> None:
    """A session the token dropped (here: closed behind the signer's back, which also logs the
    process out) is reopened once and the signature is made; a wrong PIN is a configuration
    error that does not repeat the PIN."""
    token = HsmToken(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        key_id, address = token.generate("test reopen")
        signer = token.signer(key_id, address)
        token._session.close()
        with caplog.at_level("WARNING", logger="ledger.hsm"):
            tx = signer.sign(chain_id=1, nonce=0, to=address, data=b"", gas=21_000, fees=FeeParams())
        assert Account.recover_transaction(tx.raw) == address
        assert "reopening the session" in caplog.text
    finally:
        token.close()
    wrong = "0000" + softhsm.pin  # the process is logged in (hsm_token): the PIN is still checked
    with pytest.raises(ConfigurationError, match="refused the PIN") as err:
        HsmToken(softhsm.module, softhsm.token_label, wrong)
    assert wrong not in str(err.value) and softhsm.pin not in str(err.value)
    with pytest.raises(ConfigurationError, match="no PKCS#11 token"):
        HsmToken(softhsm.module, "no-such-token", softhsm.pin)


# -- a real chain ------------------------------------------------------------------------------------


def _send_and_check(client: ChainClient, signer: HsmSigner, count: int) -> None:
    nonce0 = client.pending_nonce(signer.address)
    txs = [client.sign(signer, to="0x" + os.urandom(20).hex(), data=os.urandom(4 + i), gas=60_000,
                       nonce=nonce0 + i) for i in range(count)]
    results = client.send_raw_batch(txs)
    assert all(r.accepted for r in results), [r.error for r in results]
    receipts = client.wait_for_receipts([t.tx_hash for t in txs], timeout_s=60)
    assert len(receipts) == count
    for tx in txs:
        receipt = receipts[tx.tx_hash]
        assert receipt.status == 1 and receipt.from_.lower() == signer.address.lower()
        onchain = client.rpc("eth_getTransactionByHash", [tx.tx_hash])
        assert onchain["from"].lower() == signer.address.lower()
        assert Account.recover_transaction(tx.raw) == signer.address
        assert client.rpc("eth_getRawTransactionByHash", [tx.tx_hash]) == "0x" + tx.raw.hex()  # byte for byte
    assert client.pending_nonce(signer.address) == nonce0 + count


def test_token_signed_transactions_are_accepted_by_anvil(hsm_token: HsmToken, anvil_automine) -> None:
    """Legacy transactions signed in the token, sent through the chain client to a zero-fee
    anvil (the permissioned-network setting), are mined from the key's address; the node returns
    our bytes unchanged."""
    key_id, address = hsm_token.generate("test anvil legacy")
    _send_and_check(ChainClient(anvil_automine.rpc_url), hsm_token.signer(key_id, address), TX_COUNT)


def test_token_signed_eip1559_transactions_pay_their_fees(hsm_token: HsmToken, anvil_factory) -> None:
    """On an anvil with fees, a funded HSM account sends EIP-1559 transactions: the node takes
    the fees from that account's balance, which only a valid signature of its key allows."""
    node = anvil_factory(zero_fees=False)
    key_id, address = hsm_token.generate("test anvil 1559")
    gwei = 10**9
    client = ChainClient(node.rpc_url, FeePolicy(mode="eip1559", max_fee_per_gas_wei=50 * gwei,
                                                 max_priority_fee_per_gas_wei=gwei))
    client.transact(LocalSigner(ANVIL_DEV_KEY), to=address, data=b"", gas=21_000, value=10**18)
    before = client.balance(address)
    signer = hsm_token.signer(key_id, address)
    _send_and_check(client, signer, TX_COUNT)
    assert client.balance(address) < before
    receipt = client.transact(signer, to=address, data=b"", gas=21_000, value=1)
    assert receipt.status == 1 and receipt.from_.lower() == address.lower()
