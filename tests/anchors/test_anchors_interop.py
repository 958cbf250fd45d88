"""Interoperability with @openzeppelin/merkle-tree 1.0.8, run through node (oz_merkle.js).

Proves that our trees are the JS library's trees: same roots, proofs, multiproofs and dumps for
every size 1..300 and for a 10,000-leaf tree, and that each side verifies the other's proofs.
All JS work happens in one node call per module (the JS library builds ~1,500 leaves/s).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from anchors.events import LEAF_ENCODING_V1, EventType, ProvenanceEvent
from anchors.merkle import StandardMerkleTree, verify, verify_multiproof

HELPER = Path(__file__).with_name("oz_merkle.js")
SIZES = range(1, 301)
LARGE_SIZE = 10_000
ENC_SMALL = ["bytes32"]
ENC_PAIR = ["address", "uint256"]


def run_oz(ops: list[dict]) -> list[dict]:
    out = subprocess.run(["node", str(HELPER)], input=json.dumps({"ops": ops}), capture_output=True,
                         text=True, check=True, timeout=120)
    answers = json.loads(out.stdout)["answers"]
    errors = [a for a in answers if "error" in a]
    assert not errors, errors[:3]
    return answers


def _events(count: int, rng: random.Random) -> list[list[str]]:
    return [
        ProvenanceEvent(
            event_id=f"evt-{i}", lot_id=f"LOT-{i % 7}", product="gtin:09506000134352",
            event_type=list(EventType)[i % len(EventType)], location=f"gln:95060000000{i % 10}",
            member_id="0x" + rng.randbytes(32).hex(), occurred_at_s=1_700_000_000 + i,
            document_hash="0x" + rng.randbytes(32).hex(), attributes={"qty": i, "unit": "kg"},
        ).leaf_value()
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def world() -> dict:
    rng = random.Random(20240601)
    cases = []
    for n in SIZES:
        values = [["0x" + rng.randbytes(32).hex()] for _ in range(n)]
        cases.append(("small", n, ENC_SMALL, values))
    pair_values = [["0x" + rng.randbytes(20).hex(), str(rng.randrange(1 << 256))] for _ in range(97)]
    pair_values.append(list(pair_values[5]))  # a duplicate value, as the JS library allows
    cases.append(("pair", len(pair_values), ENC_PAIR, pair_values))
    cases.append(("events", 64, list(LEAF_ENCODING_V1), _events(64, rng)))
    large = [["0x" + rng.randbytes(32).hex()] for _ in range(LARGE_SIZE)]
    cases.append(("large", LARGE_SIZE, ENC_SMALL, large))

    ops, ours = [], []
    for kind, n, enc, values in cases:
        tree = StandardMerkleTree.of(values, enc)
        proof_idx = list(range(n)) if n <= 40 or kind in ("pair", "events") else sorted({0, n // 2, n - 1})
        multis = [sorted(rng.sample(range(n), min(n, k))) for k in (1, 3, 9)] if n > 1 else [[0]]
        multis.append([])
        ops.append({"op": "of", "encoding": enc, "values": values, "proofs": proof_idx,
                    "multiproofs": multis, "dump": kind != "small" or n in (1, 2, 3, 77, 300)})
        ours.append((kind, tree, proof_idx, multis))
    # Our dumps, proofs and multiproofs, checked by the JS library in the same node call.
    checks = []
    for kind, tree, _, _ in ours:
        if kind in ("pair", "events") or len(tree) in (1, 5, 300):
            ops.append({"op": "load", "dump": tree.dump(), "proofs": [0]})
            checks.append(("load", tree))
            i = len(tree) - 1
            ops.append({"op": "verify", "root": tree.root, "encoding": list(tree.leaf_encoding),
                        "leaf": tree.dump()["values"][i]["value"], "proof": tree.get_proof(i)})
            checks.append(("verify", tree))
            if len(tree) > 2:
                mp = tree.get_multiproof([0, 1, len(tree) - 1]).to_json()
                mp["leaves"] = [[_json(t, v) for t, v in zip(tree.leaf_encoding, leaf)] for leaf in mp["leaves"]]
                ops.append({"op": "verifyMulti", "root": tree.root, "encoding": list(tree.leaf_encoding),
                            "multiproof": mp})
                checks.append(("verifyMulti", tree))
    answers = run_oz(ops)
    return {"ours": ours, "answers": answers[: len(ours)], "checks": list(zip(checks, answers[len(ours):]))}


def _json(abi_type: str, value: object) -> object:
    from anchors.abi import to_json_value

    return to_json_value(abi_type, value)


@pytest.mark.slow(seconds=40)
def test_same_root_for_every_size_and_large_tree(world: dict) -> None:
    """Every tree (sizes 1..300, 20,000 leaves, pair and event leaves) has the JS library's root."""
    mismatched = [(k, len(t)) for (k, t, _, _), a in zip(world["ours"], world["answers"]) if t.root != a["root"]]
    assert not mismatched
    assert any(len(t) == LARGE_SIZE for _, t, _, _ in world["ours"])


def test_same_proofs_and_theirs_verify_with_ours(world: dict) -> None:
    """Our proofs equal theirs element by element, and their proofs verify with our verifier."""
    for (_, tree, proof_idx, _), answer in zip(world["ours"], world["answers"]):
        for i, their_proof in zip(proof_idx, answer["proofs"]):
            assert tree.get_proof(i) == their_proof
            assert verify(tree.root, tree.leaf_encoding, tree.at(i), their_proof)


def test_same_multiproofs_and_theirs_verify_with_ours(world: dict) -> None:
    """Multiproofs (including the empty one) match theirs and theirs verify with ours."""
    for (_, tree, _, multis), answer in zip(world["ours"], world["answers"]):
        for idx, theirs in zip(multis, answer["multiproofs"]):
            ours = tree.get_multiproof(idx).to_json()
            assert ours["proof"] == theirs["proof"] and ours["proofFlags"] == theirs["proofFlags"]
            assert [tree.leaf_hash(v) for v in ours["leaves"]] == [tree.leaf_hash(v) for v in theirs["leaves"]]
            assert verify_multiproof(tree.root, tree.leaf_encoding, theirs)


def test_dumps_load_both_ways(world: dict) -> None:
    """Their dump equals ours, loads with us to the same tree, and ours loads with them."""
    for (_, tree, _, _), answer in zip(world["ours"], world["answers"]):
        if "dump" in answer:
            assert tree.dump() == answer["dump"]
            loaded = StandardMerkleTree.load(answer["dump"])
            assert loaded.root == tree.root and loaded.dump() == answer["dump"]
    for (kind, tree), answer in world["checks"]:
        if kind == "load":
            assert answer["root"] == tree.root and answer["proofs"][0] == tree.get_proof(0)
        else:
            assert answer["ok"] is True, kind
