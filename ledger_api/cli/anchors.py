"""``ledger anchors ...``: verify proofs, audit the store against the chain, operate the batcher.

- ``ledger anchors verify PROOF [--rpc URL] [--offline] [--api-key KEY] [--wait SECONDS]``: checks a
  proof document (a file, or the API's proof URL) offline, then on chain at the latest block.
  Exit 0 verified, 1 not verified (a malformed or truncated document is "not verified" with the
  reason, never a traceback), 2 node or API unreachable, 3 not anchored yet (``--wait`` polls a
  proof URL until it is). Needs no service and no store.
- ``ledger anchors audit [--database-url URL | --export FILE] [--rpc URL] [--contract ADDR]
  [--chain-id N] [--from-block N] [--offline] [--onchain-proofs N] [--json FILE] [--verbose]``:
  rebuilds every record from its live row (the store opened read-only: the service's database, a
  replica or a dump), checks it against the anchored journal and every anchored root on chain (and
  ``N`` leaf proofs per batch with the contract's own ``verifyJournalValues`` /
  ``verifyEventValues``), and names every changed, deleted and inserted record as ``kind/id`` with
  the anchored batch that proves it.
  Exit 0 only if nothing was found, 1 otherwise, 2 if the chain could not be asked.
- ``ledger anchors proof (--event ID | --record KIND/ID) [--out FILE] [--wait SECONDS]``: fetch a
  proof document from the API, recognising "not anchored yet".
- ``ledger anchors trial-balance [--as-of SEQUENCE] [--database-url URL] [--json]``: every account
  (the consortium's too), debits against credits per currency, from the postings anchored up to a
  journal batch.
- ``ledger anchors export [--out FILE]``: the export for auditors without database access.
- ``ledger anchors flush [--wait SECONDS]``: close every open batch (events and journal) now, and
  optionally wait until the running workers have anchored them; ``ledger anchors retry-failed``;
  ``ledger anchors backfill``: journal the live records that have no (or an outdated) version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anchors.cli import (
    DEFAULT_RPC_URL,
    EXIT_NOT_ANCHORED,
    EXIT_NOT_VERIFIED,
    EXIT_UNREACHABLE,
    EXIT_VERIFIED,
    add_verify_arguments,
    default_rpc_url,
    verify_proof_file,
    verify_proof_source,
)
from anchors.errors import AnchorsError, NodeUnavailableError
from anchors.fetch import NotAnchoredYetError, fetch_proof

from ledger_api.settings import Settings
from settlement.chain.deploy import Manifest
from settlement.core.errors import LedgerError
from settlement.domains.anchoring import (
    ONCHAIN_PROOFS_PER_BATCH_DEFAULT,
    ONCHAIN_PROOFS_PER_BATCH_MAX,
    audit_store,
    backfill,
    chain_last_sequence,
    export_lines,
    flush,
    get_batch,
    open_read_only,
    retry_failed,
    trial_balance,
)
from settlement.domains.anchoring.export import audit_export
from settlement.runtime import Runtime

__all__ = ["audit_command", "register", "verify_proof_file"]

RuntimeFactory = Callable[[], Runtime]
# How often `flush --wait` looks at the batches.
FLUSH_POLL_S = 0.5


def _manifest(settings: Settings) -> Manifest | None:
    try:
        return Manifest.load(settings.home_dir)
    except (OSError, ValueError, KeyError):
        return None


def audit_command(args: argparse.Namespace, settings: Settings, out: Callable[[str], None] = print) -> int:
    """``ledger anchors audit``; returns the exit code."""
    manifest = _manifest(settings)
    contract = args.contract or (manifest.address("TraceAnchor") if manifest else None)
    chain_id = args.chain_id if args.chain_id is not None else (manifest.chain_id if manifest else None)
    rpc = None if args.offline else (args.rpc or default_rpc_url())
    if rpc is not None and contract is None and args.export is None:
        out("no TraceAnchor address: pass --contract (the consortium's TraceAnchor) or --offline")
        return EXIT_NOT_VERIFIED
    try:
        if args.export is not None:
            with open(args.export, "rb") as f:
                report = audit_export(f, rpc=rpc, contract=contract, chain_id=args.chain_id,
                                      from_block=args.from_block, out=out, verbose=args.verbose,
                                      onchain_proofs=args.onchain_proofs)
        else:
            url = args.database_url or settings.effective_database_url
            if not url.startswith(("sqlite", "postgresql")):  # a path: a SQLite file or a dump of one
                url = f"sqlite:///{Path(url).resolve()}"
            report = audit_store(url, rpc=rpc, contract=contract, chain_id=chain_id, from_block=args.from_block,
                                 out=out, verbose=args.verbose, onchain_proofs=args.onchain_proofs)
    except OSError as exc:
        out(f"[FAIL] {exc.strerror or exc}")
        return EXIT_NOT_VERIFIED
    except NodeUnavailableError as exc:
        out(f"[FAIL] the chain could not be asked: {exc.detail}")
        return EXIT_UNREACHABLE
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1))
    if report.unreachable:
        return EXIT_UNREACHABLE
    return EXIT_VERIFIED if report.ok else EXIT_NOT_VERIFIED


def _proofs_per_batch(text: str) -> int:
    n = int(text)
    if not 0 <= n <= ONCHAIN_PROOFS_PER_BATCH_MAX:
        raise argparse.ArgumentTypeError(f"must be within 0..{ONCHAIN_PROOFS_PER_BATCH_MAX}")
    return n


def _export(runtime_factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = runtime_factory()
    manifest = runtime.manifest
    target = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        with runtime.db.read() as session:
            for line in export_lines(session.connection(), chain_id=manifest.chain_id if manifest else None,
                                     contract=runtime.address("TraceAnchor") if manifest else None):
                target.write(line)
    finally:
        if args.out:
            target.close()
    if args.out:
        print(f"[ledger] journal export written to {args.out}", file=sys.stderr)
    return 0


def _flush(runtime_factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = runtime_factory()
    made = flush(runtime, force=True)
    for m in made:
        print(f"{m.kind} batch {m.sequence}: {m.leaf_count} leaves, root {m.root} (outbox {m.outbox_id})")
    if not made:
        print("nothing waiting")
    if args.wait and made:
        deadline = time.monotonic() + args.wait
        waiting = {m.sequence for m in made}
        while waiting and time.monotonic() < deadline:
            time.sleep(FLUSH_POLL_S)
            with runtime.db.read() as s:
                waiting = {seq for seq in waiting if get_batch(s, seq).status != "anchored"}
        if waiting:
            print(f"not anchored yet after {args.wait:g} s: batches {sorted(waiting)} (are the workers running?)")
            return EXIT_NOT_ANCHORED
        print("anchored")
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


def _backfill(runtime_factory: RuntimeFactory) -> int:
    added = backfill(runtime_factory(), progress=lambda kind, n: print(f"{kind}: {n} versions added"))
    print(f"{added} record versions journaled")
    return 0


def _proof(args: argparse.Namespace, settings: Settings) -> int:
    api = (args.api or settings.api_url).rstrip("/")
    if args.event:
        url = f"{api}/v1/provenance/events/{urllib.parse.quote(args.event, safe='')}/proof"
    else:
        kind, _, record_id = args.record.partition("/")
        url = f"{api}/v1/anchors/records/{urllib.parse.quote(kind, safe='')}/{urllib.parse.quote(record_id, safe='')}/proof"
    try:
        doc = fetch_proof(url, args.api_key or os.environ.get("LEDGER_API_KEY"), wait_s=args.wait)
    except NotAnchoredYetError as exc:
        print(f"NOT ANCHORED YET: {exc.detail}")
        return EXIT_NOT_ANCHORED
    except NodeUnavailableError as exc:
        print(f"[FAIL] {exc.detail}")
        return EXIT_UNREACHABLE
    except AnchorsError as exc:
        print(f"[FAIL] {exc.detail}")
        return EXIT_NOT_VERIFIED
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"proof written to {args.out} (anchored in block {doc['anchor']['block_number']})")
    else:
        print(text)
    return 0


def _trial(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_read_only(args.database_url or settings.effective_database_url)
    try:
        with engine.connect() as conn:
            tb = trial_balance(conn, as_of_sequence=args.as_of)
    except LedgerError as exc:
        print(f"ledger: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(tb.to_json(), indent=1))
        return 0 if tb.balanced else 1
    print(tb.report())
    return 0 if tb.balanced else 1


def register(subparsers: Any, runtime_factory: RuntimeFactory) -> None:
    anchors = subparsers.add_parser("anchors", help="verify proofs, audit the store against the chain, run the batcher")
    sub = anchors.add_subparsers(dest="anchors_command", required=True)

    verify = sub.add_parser("verify", help="check a proof document offline, then on chain (exit 0 only if verified)")
    add_verify_arguments(verify)
    verify.set_defaults(func=lambda a, *_: verify_proof_source(
        a.proof, None if a.offline else (a.rpc or default_rpc_url()), api_key=a.api_key, wait_s=a.wait))

    audit = sub.add_parser("audit", help="rebuild every record from the store (read-only) and check it against the "
                                         "anchored journal on chain")
    source = audit.add_mutually_exclusive_group()
    source.add_argument("--database-url", default=None,
                        help="the store: a SQLAlchemy URL or a SQLite file/dump (default: the service's)")
    source.add_argument("--export", default=None, metavar="FILE", help="audit an export instead of the store")
    audit.add_argument("--rpc", default=None, help=f"node URL (default: $LEDGER_RPC_URL or {DEFAULT_RPC_URL})")
    audit.add_argument("--contract", default=None, help="the consortium's TraceAnchor address "
                                                        "(default: $LEDGER_HOME/deployment.json)")
    audit.add_argument("--chain-id", type=int, default=None, help="expected chain id (default: the manifest's)")
    audit.add_argument("--from-block", type=int, default=0, help="first block to list anchored roots from")
    audit.add_argument("--offline", action="store_true", help="skip the on-chain checks")
    audit.add_argument("--onchain-proofs", type=_proofs_per_batch, default=ONCHAIN_PROOFS_PER_BATCH_DEFAULT,
                       metavar="N", help="leaf proofs per anchored batch, rebuilt from the store, that the "
                       "TraceAnchor also verifies itself (verifyJournalValues / verifyEventValues at the latest "
                       f"block; default {ONCHAIN_PROOFS_PER_BATCH_DEFAULT}, 0: none, at most "
                       f"{ONCHAIN_PROOFS_PER_BATCH_MAX})")
    audit.add_argument("--json", default=None, metavar="FILE", help="also write the findings as JSON")
    audit.add_argument("--verbose", action="store_true", help="print every record's and batch's check")
    audit.set_defaults(func=lambda a, settings: audit_command(a, settings))

    proof = sub.add_parser("proof", help="fetch a proof document from the API (recognises 'not anchored yet')")
    which = proof.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", default=None, help="a provenance event id")
    which.add_argument("--record", default=None, metavar="KIND/ID", help="a journal record, e.g. settlement/0x...")
    proof.add_argument("--api", default=None, help="the API's base URL (default: the configured one)")
    proof.add_argument("--api-key", default=None, help="API key (default: $LEDGER_API_KEY)")
    proof.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for the anchor")
    proof.add_argument("--out", default=None, help="file (default: standard output)")
    proof.set_defaults(func=lambda a, settings: _proof(a, settings))

    trial = sub.add_parser("trial-balance", help="every account, debits = credits per currency, as of an "
                                                 "anchored journal batch")
    trial.add_argument("--as-of", type=int, default=None, metavar="SEQUENCE",
                       help="journal batch sequence (default: the latest anchored)")
    trial.add_argument("--database-url", default=None, help="the store (default: the service's)")
    trial.add_argument("--json", action="store_true")
    trial.set_defaults(func=lambda a, settings: _trial(a, settings))

    export = sub.add_parser("export", help="write the auditor's export (JSON lines), built from the live rows")
    export.add_argument("--out", default=None, help="file (default: standard output)")
    export.set_defaults(func=lambda a, *_: _export(runtime_factory, a))

    fl = sub.add_parser("flush", help="close every open batch (events and journal) now")
    fl.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                    help="then wait until the running workers anchored them")
    fl.set_defaults(func=lambda a, *_: _flush(runtime_factory, a))
    sub.add_parser("retry-failed", help="re-enqueue batches whose anchoring failed").set_defaults(
        func=lambda a, *_: _retry(runtime_factory))
    sub.add_parser("backfill", help="journal live records that have no (or an outdated) journal version").set_defaults(
        func=lambda a, *_: _backfill(runtime_factory))
