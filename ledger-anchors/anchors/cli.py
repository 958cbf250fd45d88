"""``ledger-anchors``: the auditor's command, installed with this package alone.

- ``ledger-anchors verify PROOF [--rpc URL] [--offline] [--wait SECONDS]``: checks a proof
  document offline, then against the chain (at the latest block: no old state needed), printing
  each step. ``PROOF`` is a file, or the API's proof URL (``--api-key`` or ``$LEDGER_API_KEY``).
  Exit 0 only if verified, 1 if not (a malformed or truncated document is "not verified" with the
  reason, never a traceback), 2 if the node cannot be asked, 3 if the proof is not anchored yet
  (the API's ``409 provenance-event-pending``, or a document whose anchor is null; with a URL,
  ``--wait`` polls until it is). ``--rpc`` defaults to ``$LEDGER_RPC_URL`` or
  http://127.0.0.1:8545; basic-auth credentials in the URL are sent and never printed.

The service's ``ledger anchors verify`` runs the same function.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from anchors.errors import AnchorsError, NodeUnavailableError
from anchors.fetch import NotAnchoredYetError, fetch_proof, pending_reason
from anchors.rpc import Rpc, as_rpc, redact_url
from anchors.verify import Step, verify_document, verify_on_chain

__all__ = ["EXIT_NOT_ANCHORED", "EXIT_NOT_VERIFIED", "EXIT_UNREACHABLE", "EXIT_VERIFIED", "main",
           "verify_proof_file", "verify_proof_source"]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
EXIT_VERIFIED, EXIT_NOT_VERIFIED, EXIT_UNREACHABLE, EXIT_NOT_ANCHORED = 0, 1, 2, 3
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
    pending = _pending_answer(raw)
    if pending is not None:
        out(f"NOT ANCHORED YET: {pending} (fetch the proof again later, or with --wait)")
        return EXIT_NOT_ANCHORED
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
        out("NOT ANCHORED YET: the document has no anchor (its batch was not anchored when it was issued)")
        return EXIT_NOT_ANCHORED
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
    out(_proof_summary(result.steps))
    out("VERIFIED" if result.verified else "NOT VERIFIED")
    return EXIT_VERIFIED if result.verified else EXIT_NOT_VERIFIED


def _proof_summary(steps: tuple[Step, ...]) -> str:
    """The proof checked twice, in one line: locally (the OpenZeppelin StandardMerkleTree fold of
    the leaf hashed from the values) and by the contract itself (its values check at the latest
    block)."""
    by_name = {s.name: s for s in steps}
    local = by_name.get("proof-to-root")
    chain = by_name.get("contract-verify-values")
    said_local = "ok" if local is not None and local.ok and by_name.get("leaf-hash", local).ok else "FAILED"
    if chain is None:
        said_chain = "not asked"
    elif chain.detail.startswith("TraceAnchor."):
        said_chain = chain.detail.split(" = ")[0].split("(")[0] + (" = true" if chain.ok else " = false")
    else:
        said_chain = "not available on this TraceAnchor (deployed before the values checks)"
    return (f"proof: locally (StandardMerkleTree, leaf hashed from the values) {said_local}; "
            f"on chain at the latest block {said_chain}")


def _pending_answer(raw: bytes) -> str | None:
    """The reason, when ``raw`` is the API's "not anchored yet" answer saved to a file."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if isinstance(body, dict) and "format" not in body:
        return pending_reason(int(body.get("status") or 0), body)
    return pending_reason(200, body)


def verify_proof_source(source: str, rpc: Rpc | str | None, out: Callable[[str], None] = print, *,
                        api_key: str | None = None, wait_s: float = 0.0, rpc_label: str | None = None) -> int:
    """:func:`verify_proof_file` for a file, or for the API's proof URL (fetched, waiting up to
    ``wait_s`` for the anchor)."""
    if not source.startswith(("http://", "https://")):
        return verify_proof_file(source, rpc, out, rpc_label=rpc_label)
    try:
        doc = fetch_proof(source, api_key or os.environ.get("LEDGER_API_KEY"), wait_s=wait_s, out=out)
    except NotAnchoredYetError as exc:
        out(f"NOT ANCHORED YET: {exc.detail}")
        return EXIT_NOT_ANCHORED
    except NodeUnavailableError as exc:
        out(f"[FAIL] {exc.detail}")
        out("NOT VERIFIED (the API could not be asked)")
        return EXIT_UNREACHABLE
    except AnchorsError as exc:
        out(f"[FAIL] {exc.detail}")
        out("NOT VERIFIED")
        return EXIT_NOT_VERIFIED
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=True) as f:
        json.dump(doc, f)
        f.flush()
        return verify_proof_file(f.name, rpc, out, rpc_label=rpc_label)


def add_verify_arguments(verify: argparse.ArgumentParser) -> None:
    verify.add_argument("proof", metavar="PROOF", help="the proof document (a JSON file, or the API's proof URL)")
    verify.add_argument("--rpc", default=None, help="JSON-RPC URL of any node of the chain "
                                                     "(default: $LEDGER_RPC_URL or http://127.0.0.1:8545)")
    verify.add_argument("--offline", action="store_true", help="check the proof only, not the anchor on chain")
    verify.add_argument("--api-key", default=None, help="API key for a proof URL (default: $LEDGER_API_KEY)")
    verify.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="with a proof URL: wait up to SECONDS for a proof that is not anchored yet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger-anchors",
                                     description="Verify ledger proofs without the operator's service")
    sub = parser.add_subparsers(dest="command", required=True)
    add_verify_arguments(sub.add_parser("verify", help="verify a proof document offline and against the chain"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rpc = None if args.offline else (args.rpc or default_rpc_url())
    return verify_proof_source(args.proof, rpc, api_key=args.api_key, wait_s=args.wait)


if __name__ == "__main__":
    sys.exit(main())
