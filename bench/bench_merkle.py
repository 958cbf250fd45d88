"""Merkle benchmark: our StandardMerkleTree vs @openzeppelin/merkle-tree, 1M leaves, proofs/s.

Run: ``python -m bench.bench_merkle`` (``--quick`` for a smaller run). Prints a markdown table
and writes it to bench/out/merkle.md. Leaves are provenance events of schema v1 (10 fields).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from anchors.events import LEAF_ENCODING_V1
from anchors.keccak import KECCAK_BACKEND
from anchors.merkle import StandardMerkleTree, verify

ROOT = Path(__file__).resolve().parent.parent
HELPER = ROOT / "tests" / "anchors" / "oz_merkle.js"
OUT = ROOT / "bench" / "out" / "merkle.md"


def leaf_values(count: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)

    def h() -> str:
        return "0x" + rng.randbytes(32).hex()

    return [["1", h(), h(), h(), str(1 + i % 10), h(), h(), str(1_700_000_000 + i), h(), h()] for i in range(count)]


def oz_build_s(values: list[list[str]]) -> tuple[float, str]:
    req = {"ops": [{"op": "bench", "encoding": list(LEAF_ENCODING_V1), "values": values, "repeat": 1}]}
    out = subprocess.run(["node", str(HELPER)], input=json.dumps(req), capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)["answers"][0]
    return min(answer["seconds"]), answer["root"]


def big_tree_child(count: int) -> None:
    """In a fresh process: build a tree of ``count`` leaves; print seconds and peak RSS."""
    values = leaf_values(count)
    rss_values_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    tree = StandardMerkleTree.of(values, LEAF_ENCODING_V1)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024, "values_mb": rss_values_kb / 1024,
                      "root": tree.root}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--big-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_child:
        big_tree_child(args.big_child)
        return 0
    oz_n = 2_000 if args.quick else 10_000
    big_n = 50_000 if args.quick else 1_000_000
    rows: list[tuple[str, str]] = [("keccak backend", KECCAK_BACKEND)]

    values = leaf_values(oz_n)
    t0 = time.perf_counter()
    tree = StandardMerkleTree.of(values, LEAF_ENCODING_V1)
    ours_s = time.perf_counter() - t0
    oz_s, oz_root = oz_build_s(values)
    if oz_root != tree.root:
        raise SystemExit(f"roots differ: ours {tree.root}, @openzeppelin/merkle-tree {oz_root}")
    rows += [
        (f"build {oz_n:,} leaves, ours", f"{ours_s:.3f} s = {oz_n / ours_s:,.0f} leaves/s"),
        (f"build {oz_n:,} leaves, @openzeppelin/merkle-tree", f"{oz_s:.3f} s = {oz_n / oz_s:,.0f} leaves/s"),
        ("speed-up (same values, same root)", f"{oz_s / ours_s:.1f}x"),
    ]

    child = subprocess.run([sys.executable, "-m", "bench.bench_merkle", "--big-child", str(big_n)],
                           capture_output=True, text=True, check=True, cwd=ROOT)
    big = json.loads(child.stdout)
    rows += [
        (f"build {big_n:,} leaves", f"{big['seconds']:.1f} s = {big_n / big['seconds']:,.0f} leaves/s"),
        (f"peak RSS, {big_n:,} leaves (values alone: {big['values_mb']:,.0f} MB)", f"{big['peak_mb']:,.0f} MB"),
    ]

    proofs = [(i, tree.get_proof(i)) for i in range(min(oz_n, 5_000))]
    t0 = time.perf_counter()
    for i, proof in proofs:
        if not verify(tree.root, LEAF_ENCODING_V1, values[i], proof):
            raise SystemExit("a proof failed to verify")
    verify_s = time.perf_counter() - t0
    rows.append((f"offline proof verification (depth {len(proofs[0][1])}, from values)",
                 f"{len(proofs) / verify_s:,.0f} proofs/s"))

    table = ["| measure | result |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    text = (f"Merkle benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}; leaves: provenance events schema v1)\n\n" + "\n".join(table) + "\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
