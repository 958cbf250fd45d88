"""``ledger-anchors``: the auditor's command, installed with this package alone.

- ``ledger-anchors verify PROOF.json [--rpc URL] [--offline]``: checks a proof document offline,
  then against the chain, printing each step. Exit 0 only if verified, 1 if not (a malformed or
  truncated document is "not verified" with the reason, never a traceback), 2 if the node cannot
  be asked. ``--rpc`` defaults to ``$LEDGER_RPC_URL`` or http://127.0.0.1:8545; basic-auth
  credentials in the URL are sent and never printed.

The service's ``ledger anchors verify`` runs the same function.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from anchors.errors import AnchorsError, NodeUnavailableError
from anchors.rpc import Rpc, as_rpc, redact_url
from anchors.verify import verify_document, verify_on_chain

__all__ = ["EXIT_NOT_VERIFIED", "EXIT_UNREACHABLE", "EXIT_VERIFIED", "main", "verify_proof_file"]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_UNREACHABLE = 0, 1, 2
# A proof document is a few KiB.
PROOF_FILE_BYTES_MAX = 256 * 1024


def default_rpc_url() -> str:
    return os.environ.get("LEDGER_RPC_URL") or DEFAULT_RPC_URL


def verify_proof_file(path: str | Path, rpc: Rpc | str | None, out: Callable[[str], None] = print, *,
                      rpc_label: str | None = None) -> int:
    """Verify a proof document file offline and (unless ``rpc`` is None) on chain, printing each
    step through ``out``. ``rpc`` is a node URL or a ``rpc(method, params)`` callable. Returns
    the exit code: 0 verified, 1 not verified, 2 unreachable."""
    try:
        with open(path, "rb") as f:
            raw = f.read(PROOF_FILE_BYTES_MAX + 1)
    except OSError as exc:
        out(f"[FAIL] read {path}: {exc.strerror or exc}")
        out("NOT VERIFIED")
        return EXIT_NOT_VERIFIED
    try:
        offline = verify_document(raw)
    except AnchorsError as exc:
        out(f"[FAIL] proof document: {exc.detail}")
        out("NOT VERIFIED")
        return EXIT_NOT_VERIFIED
    out("offline:")
    for step in offline.steps:
        out(f"  [{'ok' if step.ok else 'FAIL'}] {step.name}: {step.detail}")
    if not offline.verified:
        out("NOT VERIFIED")
        return EXIT_NOT_VERIFIED
    if rpc is None:
        out("VERIFIED (offline only: the anchor was not checked on chain)")
        return EXIT_VERIFIED
    if offline.document.anchor is None:
        out("  [FAIL] anchor: the document has no anchor (its batch was not anchored when it was issued)")
        out("NOT VERIFIED")
        return EXIT_NOT_VERIFIED
    label = rpc_label or (redact_url(rpc) if isinstance(rpc, str) else "node")
    out(f"on chain ({label}):")
    try:
        result = verify_on_chain(offline.document, as_rpc(rpc))
    except NodeUnavailableError as exc:
        out(f"  [FAIL] node unreachable: {exc.detail}")
        out("NOT VERIFIED (the chain could not be asked)")
        return EXIT_UNREACHABLE
    except AnchorsError as exc:
        out(f"  [FAIL] {exc.detail}")
        out("NOT VERIFIED")
        return EXIT_NOT_VERIFIED
    offline_names = {s.name for s in offline.steps}
    for step in result.steps:
        if step.name not in offline_names:
            out(f"  [{'ok' if step.ok else 'FAIL'}] {step.name}: {step.detail}")
    out("VERIFIED" if result.verified else "NOT VERIFIED")
    return EXIT_VERIFIED if result.verified else EXIT_NOT_VERIFIED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger-anchors",
                                     description="Verify ledger proofs without the operator's service")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="verify a proof document offline and against the chain")
    verify.add_argument("proof", help="the proof document (JSON)")
    verify.add_argument("--rpc", default=None, help="JSON-RPC URL of any node of the chain "
                                                     "(default: $LEDGER_RPC_URL or http://127.0.0.1:8545)")
    verify.add_argument("--offline", action="store_true", help="check the proof only, not the anchor on chain")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rpc = None if args.offline else (args.rpc or default_rpc_url())
    return verify_proof_file(args.proof, rpc)


if __name__ == "__main__":
    sys.exit(main())
