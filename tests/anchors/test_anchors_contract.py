"""TraceAnchor on a real anvil: anchoring rules, on-chain verify, and our JSON-RPC verifier."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from anchors import AnchorRef, StandardMerkleTree, build_proof_document, verify_on_chain
from anchors.verify import call_anchor_of, call_verify
from tests.conftest import ANVIL_DEV_KEY

ARTIFACTS = Path(__file__).resolve().parents[2] / "settlement" / "chain" / "artifacts"
ENC = ["bytes32"]
T0 = 1_700_000_000
GAS = {}


def _artifact(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def _send(w3: Web3, fn, key: str = ANVIL_DEV_KEY) -> dict:  # type: ignore[no-untyped-def]
    account = Account.from_key(key)
    tx = fn.build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(account.address),
                               "gasPrice": 0, "chainId": w3.eth.chain_id, "gas": 3_000_000})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    return dict(receipt)


def _deploy(w3: Web3, name: str, *args: object):  # type: ignore[no-untyped-def]
    art = _artifact(name)
    receipt = _send(w3, w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args))
    assert receipt["status"] == 1
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


@pytest.fixture(scope="module")
def chain(anvil_automine) -> dict:  # type: ignore[no-untyped-def]
    w3 = Web3(Web3.HTTPProvider(anvil_automine.rpc_url))
    admin = Account.from_key(ANVIL_DEV_KEY).address
    # The admin is governance and guardian here (no bootstrap): the contract tests of the registry
    # cover the consortium's own governance; this module is about the anchor.
    registry = _deploy(w3, "ConsortiumRegistry", admin, 0, admin, "0x" + "00" * 20, [])
    _send(w3, registry.functions.onboardMember(Web3.keccak(text="operator"), b"SG", [admin],
                                               [Web3.keccak(text="OPERATOR")]))
    forwarder = _deploy(w3, "LedgerForwarder")
    anchor = _deploy(w3, "TraceAnchor", registry.address, forwarder.address)
    return {"w3": w3, "anchor": anchor, "rpc": anvil_automine.rpc_url}


def _tree(n: int, seed: int) -> StandardMerkleTree:
    rng = random.Random(seed)
    return StandardMerkleTree.of([["0x" + rng.randbytes(32).hex()] for _ in range(n)], ENC)


def _anchor(chain: dict, tree: StandardMerkleTree, seq: int) -> dict:
    receipt = _send(chain["w3"], chain["anchor"].functions.anchor(tree.root_bytes, seq, len(tree), 1, T0, T0 + 60))
    assert receipt["status"] == 1
    return receipt


def test_anchor_then_verify_true_only_for_anchored_root_and_valid_proof(chain: dict) -> None:
    """verify is true for a valid proof of an anchored root, false for a bad proof or unknown root;
    our eth_call client and the full document check agree."""
    tree = _tree(1000, 1)
    receipt = _anchor(chain, tree, 1)
    GAS["anchor"] = receipt["gasUsed"]
    contract = chain["anchor"]
    proof = [bytes.fromhex(p[2:]) for p in tree.get_proof(7)]
    leaf = tree.leaf_hash_at(7)
    assert contract.functions.verify(tree.root_bytes, proof, leaf).call()
    assert not contract.functions.verify(tree.root_bytes, proof[::-1], leaf).call()
    assert not contract.functions.verify(tree.root_bytes, proof, b"\x01" * 32).call()
    other = _tree(1000, 2)
    assert not contract.functions.verify(other.root_bytes, [bytes.fromhex(p[2:]) for p in other.get_proof(7)],
                                         other.leaf_hash_at(7)).call()
    assert call_verify(chain["rpc"], contract.address, tree.root, tree.get_proof(7), leaf)
    record = call_anchor_of(chain["rpc"], contract.address, tree.root, receipt["blockNumber"])
    block = chain["w3"].eth.get_block(receipt["blockNumber"])
    assert (record.block_number, record.timestamp, record.sequence, record.leaf_count) == (
        receipt["blockNumber"], block["timestamp"], 1, 1000)

    ref = AnchorRef(chain["w3"].eth.chain_id, contract.address, "0x" + receipt["transactionHash"].hex().removeprefix("0x"),
                    receipt["blockNumber"], block["timestamp"], 1)
    doc = build_proof_document(tree, 7, anchor=ref).to_json()
    result = verify_on_chain(doc, chain["rpc"])
    assert result.verified, result.report()
    doc["anchor"]["batch_sequence"] = 2
    assert not verify_on_chain(doc, chain["rpc"]).verified


def test_anchoring_rules(chain: dict) -> None:
    """Duplicate roots, non-increasing sequences and non-members revert with custom errors."""
    w3, contract = chain["w3"], chain["anchor"]
    tree = _tree(3, 3)
    last = contract.functions.lastSequence().call()
    _anchor(chain, tree, last + 5)
    admin = Account.from_key(ANVIL_DEV_KEY).address

    def revert_name(fn, sender: str) -> str:  # type: ignore[no-untyped-def]
        try:
            fn.call({"from": sender})
        except Exception as exc:  # web3 raises ContractCustomError with the selector
            data = getattr(exc, "data", None) or (exc.args[1] if len(exc.args) > 1 else exc.args[0])
            selector = str(data)[:10]
            abi = _artifact("TraceAnchor")["abi"] + _artifact("IConsortiumRegistry")["abi"]
            for item in abi:
                if item["type"] == "error":
                    sig = item["name"] + "(" + ",".join(i["type"] for i in item["inputs"]) + ")"
                    if "0x" + Web3.keccak(text=sig)[:4].hex().removeprefix("0x") == selector:
                        return item["name"]
            return selector
        return "no revert"

    fresh = _tree(4, 4)
    a = contract.functions
    assert revert_name(a.anchor(tree.root_bytes, last + 9, 3, 1, T0, T0), admin) == "TraceAnchorRootExists"
    assert revert_name(a.anchor(fresh.root_bytes, last + 5, 4, 1, T0, T0), admin) == "TraceAnchorSequenceNotIncreasing"
    assert revert_name(a.anchor(fresh.root_bytes, last + 6, 0, 1, T0, T0), admin) == "TraceAnchorEmptyBatch"
    assert revert_name(a.anchor(fresh.root_bytes, last + 6, 4, 1, T0 + 1, T0), admin) == "TraceAnchorInvalidTimeRange"
    assert revert_name(a.anchor(b"\x00" * 32, last + 6, 4, 1, T0, T0), admin) == "TraceAnchorZeroRoot"
    stranger = Account.create().address
    assert revert_name(a.anchor(fresh.root_bytes, last + 6, 4, 1, T0, T0), stranger) == "RegistryNotAMember"
    assert not contract.functions.isAnchored(fresh.root_bytes).call()


def test_depth_20_proof_verifies_on_chain_and_anchor_gas_is_constant(chain: dict) -> None:
    """A depth-20 proof (the path of one leaf in a 2^20-leaf tree: 20 random siblings) verifies
    on chain; anchoring a 1-leaf and a 2^20-leaf batch costs the same gas (calldata bytes aside)."""
    from anchors.merkle import process_proof

    rng = random.Random(5)
    leaf = rng.randbytes(32)
    proof = [rng.randbytes(32) for _ in range(20)]
    root = process_proof(leaf, proof)
    contract = chain["anchor"]
    seq = contract.functions.lastSequence().call() + 1
    small = _send(chain["w3"], contract.functions.anchor(rng.randbytes(32), seq, 1, 1, T0, T0))
    big = _send(chain["w3"], contract.functions.anchor(root, seq + 1, 1 << 20, 1, T0, T0))
    assert small["status"] == big["status"] == 1
    assert abs(small["gasUsed"] - big["gasUsed"]) <= 16 * 8  # only calldata zero bytes may differ
    assert contract.functions.verify(root, proof, leaf).call()
    assert not contract.functions.verify(root, proof[:-1], leaf).call()
    verify_gas = contract.functions.verify(root, proof, leaf).estimate_gas()
    print(f"\ngas: first anchor={GAS.get('anchor')} anchor={big['gasUsed']} verify(depth 20)={verify_gas}")
