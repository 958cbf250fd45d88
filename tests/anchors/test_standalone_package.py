"""The auditor's package installs and verifies by itself.

``ledger-anchors`` goes into a fresh virtualenv with nothing else of the project: none of the
service's dependencies come with it, and its own ``ledger-anchors verify`` checks a real proof
against a running anvil, including through a node URL that carries basic-auth credentials
(which it never prints).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from eth_account import Account
import pytest
from web3 import Web3

from anchors import AnchorRef, StandardMerkleTree, build_proof_document
from tests.conftest import ANVIL_DEV_KEY

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "settlement" / "chain" / "artifacts"
SERVICE_DEPENDENCIES = ("web3", "fastapi", "sqlalchemy", "pyarrow", "numpy", "eth-account", "pydantic", "uvicorn")


def _send(w3: Web3, fn) -> dict:  # type: ignore[no-untyped-def]
    account = Account.from_key(ANVIL_DEV_KEY)
    tx = fn.build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(account.address),
                               "gasPrice": 0, "chainId": w3.eth.chain_id, "gas": 3_000_000})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=30)
    assert receipt["status"] == 1
    return dict(receipt)


def _deploy(w3: Web3, name: str, *args: object):  # type: ignore[no-untyped-def]
    art = json.loads((ARTIFACTS / f"{name}.json").read_text())
    receipt = _send(w3, w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def _anchored_proof(rpc_url: str) -> dict:
    """A TraceAnchor with one anchored batch, and the proof document of one of its leaves."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    admin = Account.from_key(ANVIL_DEV_KEY).address
    # The admin is governance and guardian here (no bootstrap): the contract tests of the registry
    # cover the consortium's own governance; this module is about the anchor.
    registry = _deploy(w3, "ConsortiumRegistry", admin, 0, admin, "0x" + "00" * 20, [])
    _send(w3, registry.functions.onboardMember(Web3.keccak(text="operator"), b"SG", [admin],
                                               [Web3.keccak(text="OPERATOR")]))
    anchor = _deploy(w3, "TraceAnchor", registry.address, _deploy(w3, "LedgerForwarder").address)
    tree = StandardMerkleTree.of([["0x" + bytes([i]).hex() * 32] for i in range(1, 9)], ["bytes32"])
    receipt = _send(w3, anchor.functions.anchor(tree.root_bytes, anchor.functions.lastSequence().call() + 1,
                                                len(tree), 1, 1_700_000_000, 1_700_000_060))
    block = w3.eth.get_block(receipt["blockNumber"])
    ref = AnchorRef(w3.eth.chain_id, anchor.address, "0x" + receipt["transactionHash"].hex().removeprefix("0x"),
                    receipt["blockNumber"], block["timestamp"], anchor.functions.lastSequence().call())
    return build_proof_document(tree, 3, anchor=ref).to_json()


@pytest.mark.slow(seconds=25)
def test_auditor_package_installs_alone_and_verifies_a_proof_against_anvil(tmp_path: Path, anvil_factory) -> None:  # type: ignore[no-untyped-def]
    """A fresh venv gets ledger-anchors alone (no web3, FastAPI, SQLAlchemy, pyarrow...) and its
    command verifies an anchored proof on a running anvil; a tampered proof is refused; a node
    URL with credentials works and the secret never shows."""
    node = anvil_factory()
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(_anchored_proof(node.rpc_url)))

    venv = tmp_path / "auditor"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    # A copy: pip builds in the source tree (build/, *.egg-info), and the suite runs in parallel.
    source = shutil.copytree(ROOT / "ledger-anchors", tmp_path / "ledger-anchors",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([*pip, "install", "-q", str(source)], check=True, capture_output=True)
    installed = subprocess.run([*pip, "list", "--format=json"], check=True, capture_output=True, text=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert "ledger-anchors" in names
    assert not names & set(SERVICE_DEPENDENCIES), names & set(SERVICE_DEPENDENCIES)

    command = str(venv / "bin" / "ledger-anchors")
    ok = subprocess.run([command, "verify", str(proof), "--rpc", node.rpc_url], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.rstrip().endswith("VERIFIED") and "[FAIL]" not in ok.stdout

    secret_url = node.rpc_url.replace("http://", "http://auditor:s3cr3t-token@")
    with_auth = subprocess.run([command, "verify", str(proof), "--rpc", secret_url], capture_output=True, text=True)
    assert with_auth.returncode == 0, with_auth.stdout + with_auth.stderr
    assert "s3cr3t-token" not in with_auth.stdout + with_auth.stderr
    assert "auditor:***@" in with_auth.stdout

    doc = json.loads(proof.read_text())
    doc["anchor"]["batch_sequence"] += 1
    proof.write_text(json.dumps(doc))
    bad = subprocess.run([command, "verify", str(proof), "--rpc", node.rpc_url], capture_output=True, text=True)
    assert bad.returncode == 1 and "NOT VERIFIED" in bad.stdout

    down = subprocess.run([command, "verify", str(proof), "--rpc", "http://u:s3cr3t-token@127.0.0.1:9/"],
                          capture_output=True, text=True)
    assert down.returncode == 2 and "s3cr3t-token" not in down.stdout + down.stderr
