"""Run every benchmark in sequence (`make bench`); each writes its table to bench/out/*.md.

The figures in docs/benchmarks.md come from these runs. Run on a quiet machine: every benchmark
measures its baseline in the same run, so the ratios hold on any machine, the absolute numbers
do not.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHES = [
    ("bench.bench_chain", ["--count", "2000"]),
    ("bench.bench_settlements", []),
    ("bench.bench_merkle", []),
    ("bench.bench_journal", []),
    ("bench.bench_reconcile", []),
    ("bench.bench_callbacks", []),
    ("bench.bench_receivables", []),
    ("bench.bench_hsm", []),
    ("bench.bench_governance", []),
    ("bench.bench_events", []),
]


def main() -> int:
    failed = []
    for module, args in BENCHES:
        try:
            __import__(module)
        except ModuleNotFoundError:
            continue
        print(f"== {module} {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", module, *args])
        print(f"== {module}: exit {code} in {time.perf_counter() - t0:.0f}s", flush=True)
        if code:
            failed.append(module)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
