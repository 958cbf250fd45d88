"""``ledger anchors ...``: verify a proof, audit a journal export, and operate the batcher.

- ``ledger anchors verify PROOF.json [--rpc URL] [--offline]``: checks the proof document offline,
  then on chain, printing each step; exit 0 only if verified, 1 if not (a malformed or truncated
  document is "not verified" with the reason, never a traceback), 2 if the node cannot be asked.
  Needs no service and no store: an auditor runs it with only a node URL.
- ``ledger anchors audit EXPORT [--rpc URL] [--offline] [--verbose]``: recomputes every digest,
  leaf and root of a journal export (``GET /v1/anchors/journal/export`` or ``ledger anchors
  export``) and compares with the chain; exit 0 only if every step passed.
- ``ledger anchors export [--out FILE] [--from-sequence N]``: write the journal export.
- ``ledger anchors flush``: close every waiting batch now; ``ledger anchors retry-failed``:
  re-enqueue batches whose anchoring failed (after fixing the cause, e.g. the operator role).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from anchors.cli import DEFAULT_RPC_URL, EXIT_NOT_VERIFIED, EXIT_VERIFIED, default_rpc_url, verify_proof_file

from settlement.domains.anchoring import (
    audit_journal,
    chain_last_sequence,
    export_journal,
    flush,
    retry_failed,
)
from settlement.runtime import Runtime

__all__ = ["register", "verify_proof_file", "audit_export_file"]

RuntimeFactory = Callable[[], Runtime]


def _default_rpc() -> str:
    return default_rpc_url()


def audit_export_file(path: str | Path, rpc_url: str | None, out: Callable[[str], None] = print, *,
                      verbose: bool = False) -> int:
    """Audit a journal export file; returns 0 only if every step passed."""
    try:
        with open(path, "rb") as f:
            report = audit_journal(f, rpc_url, out, verbose=verbose)
    except OSError as exc:
        out(f"[FAIL] read {path}: {exc.strerror or exc}")
        out("AUDIT FAILED")
        return EXIT_NOT_VERIFIED
    return EXIT_VERIFIED if report.ok else EXIT_NOT_VERIFIED


def _export(runtime_factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = runtime_factory()
    target = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        with runtime.db.read() as session:
            for line in export_journal(runtime, session, from_sequence=args.from_sequence):
                target.write(line)
    finally:
        if args.out:
            target.close()
    if args.out:
        print(f"[ledger] journal export written to {args.out}", file=sys.stderr)
    return 0


def _flush(runtime_factory: RuntimeFactory) -> int:
    made = flush(runtime_factory(), force=True)
    for m in made:
        print(f"{m.kind} batch {m.sequence}: {m.leaf_count} leaves, root {m.root} (outbox {m.outbox_id})")
    if not made:
        print("nothing waiting")
    return 0


def _retry(runtime_factory: RuntimeFactory) -> int:
    runtime = runtime_factory()
    floor = chain_last_sequence(runtime)
    with runtime.db.transaction() as session:
        batches = retry_failed(session, runtime.operator.address, floor)
        done = [(b.kind, b.sequence, b.root) for b in batches]
    for kind, sequence, root in done:
        print(f"{kind} batch re-enqueued as sequence {sequence}: root {root}")
    if not done:
        print("no failed batches")
    return 0


def register(subparsers: argparse._SubParsersAction, runtime_factory: RuntimeFactory) -> None:
    anchors = subparsers.add_parser("anchors", help="verify anchor proofs, audit the journal, run the batcher")
    sub = anchors.add_subparsers(dest="anchors_command", required=True)

    verify = sub.add_parser("verify", help="check a proof document offline, then on chain (exit 0 only if verified)")
    verify.add_argument("proof", metavar="PROOF.json")
    verify.add_argument("--rpc", default=None, help=f"node URL (default: $LEDGER_RPC_URL or {DEFAULT_RPC_URL})")
    verify.add_argument("--offline", action="store_true", help="skip the on-chain checks")
    verify.set_defaults(func=lambda a, *_: verify_proof_file(a.proof, None if a.offline else (a.rpc or _default_rpc())))

    audit = sub.add_parser("audit", help="recompute a journal export's digests and roots and compare with the chain")
    audit.add_argument("export", metavar="EXPORT")
    audit.add_argument("--rpc", default=None, help=f"node URL (default: $LEDGER_RPC_URL or {DEFAULT_RPC_URL})")
    audit.add_argument("--offline", action="store_true", help="skip the on-chain checks")
    audit.add_argument("--verbose", action="store_true", help="print every record's check")
    audit.set_defaults(func=lambda a, *_: audit_export_file(a.export, None if a.offline else (a.rpc or _default_rpc()),
                                                            verbose=a.verbose))

    export = sub.add_parser("export", help="write the auditor's journal export (JSON lines)")
    export.add_argument("--out", default=None, help="file (default: standard output)")
    export.add_argument("--from-sequence", type=int, default=0)
    export.set_defaults(func=lambda a, *_: _export(runtime_factory, a))

    sub.add_parser("flush", help="close every waiting batch now").set_defaults(
        func=lambda a, *_: _flush(runtime_factory))
    sub.add_parser("retry-failed", help="re-enqueue batches whose anchoring failed").set_defaults(
        func=lambda a, *_: _retry(runtime_factory))
