"""Reconciliation benchmark: our parse + reconcile against pandas read_csv x2 + outer merge.

    python -m bench.bench_reconcile [--lines N]

Generates N statement lines (normalized CSV) and N ledger entries (ledger export CSV) into a temp
dir, with ~1% amount mismatches, ~0.5% missing on each side and a few duplicates, then runs each
contender in its own subprocess (wall time inside the child, peak RSS of the child via
getrusage(RUSAGE_CHILDREN)). pandas is only a baseline here; production code never imports it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "reconcile.md"
WALL_BUDGET_S = 15.0
RSS_BUDGET_MB = 2048.0

OURS = """
import json, sys, time
t = time.perf_counter()
from settlement.reconciliation import reconcile_files
report = reconcile_files(sys.argv[1], sys.argv[2], statement_format="normalized-csv")
totals = report.totals()
counts = report.counts()
print(json.dumps({"wall_s": time.perf_counter() - t, "counts": {b: c["items"] for b, c in counts.items()}}))
"""

PANDAS = """
import json, sys, time
t = time.perf_counter()
import pandas as pd
a = pd.read_csv(sys.argv[1])
b = pd.read_csv(sys.argv[2])
m = a.merge(b, on="provider_txn_id", how="outer", indicator=True, suffixes=("_s", "_l"))
print(json.dumps({"wall_s": time.perf_counter() - t, "rows": len(m)}))
"""


def generate(directory: Path, n: int, seed: int = 7) -> tuple[Path, Path]:
    rng = random.Random(seed)
    statement, ledger = directory / "statement.csv", directory / "ledger.csv"
    with statement.open("w") as s, ledger.open("w") as l:
        s.write("provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n")
        l.write("entry_id,provider_txn_id,reference,kind,amount_minor,currency,status,booked_at,chain_state,tx_hash\n")
        for i in range(n):
            txn = f"2024011522001{i:012d}"
            ref = f"ORD{i:012d}"
            kind = "refund" if i % 20 == 0 else "payment"
            amount = rng.randint(1, 5_000_000)
            sec = rng.randrange(86_400)
            booked = f"2024-01-15T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}+08:00"
            roll = rng.random()
            if roll >= 0.005:  # 0.5% missing in ledger
                l_amount = amount + 1 if roll < 0.015 else amount  # 1% amount mismatch
                l.write(f"J{i:010d},{txn},{ref},{kind},{l_amount},CNY,succeeded,{booked},confirmed,0x{i:064x}\n")
            if not 0.005 <= roll < 0.01:  # 0.5% missing in statement
                s.write(f"{txn},{ref},{kind},{amount},CNY,succeeded,{booked}\n")
                if i % 100_000 == 1:
                    s.write(f"{txn},{ref},{kind},{amount},CNY,succeeded,{booked}\n")  # duplicate
    return statement, ledger


def run_child(code: str, *args: str) -> tuple[dict, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if rss_mb < before / 1024:
        rss_mb = before / 1024
    return json.loads(proc.stdout.strip().splitlines()[-1]), rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        statement, ledger = generate(Path(tmp), args.lines)
        gen_s = time.perf_counter() - t
        # pandas first: RUSAGE_CHILDREN keeps the max over children, so run the smaller one first
        # and report each child's own figure where it can be told apart.
        pandas_result, pandas_rss = run_child(PANDAS, str(statement), str(ledger))
        ours_result, ours_rss_max = run_child(OURS, str(statement), str(ledger))
    ours_rss = ours_rss_max if ours_rss_max > pandas_rss else float("nan")
    rows = [
        ("ours: parse + reconcile + totals", ours_result["wall_s"], ours_rss),
        ("pandas: read_csv x2 + outer merge", pandas_result["wall_s"], pandas_rss),
    ]
    table = ["| contender | wall (s) | peak RSS (MB) |", "|---|---:|---:|"]
    table += [f"| {name} | {wall:.2f} | {rss:.0f} |" for name, wall, rss in rows]
    verdict = (f"lines per side: {args.lines:,}; generation {gen_s:.1f} s; budget {WALL_BUDGET_S:.0f} s / "
               f"{RSS_BUDGET_MB:.0f} MB; ours/pandas wall = {ours_result['wall_s'] / pandas_result['wall_s']:.2f}")
    text = "\n".join(["# Reconciliation benchmark", "", *table, "", verdict, "",
                      "buckets (items): " + json.dumps(ours_result["counts"]), ""])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
