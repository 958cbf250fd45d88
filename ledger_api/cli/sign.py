"""``ledger sign FILE --key KEYFILE``: show what is signed in human terms, then sign it with a local
key; ``ledger keygen KEYFILE``: make such a key.

FILE is EIP-712 typed data as the API serves it: an intent (``POST /v1/settlements`` with
``Prefer: intent``, ``GET /v1/intents/{id}``), a key change (``/v1/members/{id}/keys/typed-data``), a
governance proposal (``/v1/governance/proposals/{id}/typed-data``), or bare typed data. The summary
is computed from the typed data itself, never from the service's own summary: which contract and
function, the decoded arguments, amounts with their currency's exponent, dates, deadlines.

KEYFILE: an Ethereum keystore JSON (passphrase from ``LEDGER_KEY_PASSPHRASE`` or a prompt) or a
0600 file holding a 0x-hex private key (see settlement.custody.keyfiles). The signature (65 bytes,
0x-hex) goes to ``--out`` (mode 0600 is not needed: a signature is not a secret) or stdout.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from settlement.chain.describe import describe_typed_data
from settlement.chain.signing import recover_typed_data, sign_typed_data
from settlement.core.errors import LedgerError
from settlement.custody.keyfiles import load_key_file, write_key_file

__all__ = ["register", "typed_data_of", "TYPED_FILE_BYTES_MAX"]

TYPED_FILE_BYTES_MAX = 1024 * 1024
PASSPHRASE_ENV = "LEDGER_KEY_PASSPHRASE"


def register(subparsers: argparse._SubParsersAction, runtime_factory: object = None) -> None:
    s = subparsers.add_parser("sign", help="show typed data in human terms and sign it with a local key file")
    s.add_argument("file", type=Path, metavar="FILE", help="typed data, or an API answer holding it")
    s.add_argument("--key", type=Path, required=True, metavar="KEYFILE")
    s.add_argument("--out", type=Path, default=None, help="write the signature here (default: stdout)")
    s.add_argument("--yes", action="store_true", help="sign without asking")
    s.set_defaults(func=lambda a, *_: cmd_sign(a))
    k = subparsers.add_parser("keygen", help="a new key in KEYFILE (a keystore with --keystore, else 0600 hex)")
    k.add_argument("file", type=Path, metavar="KEYFILE")
    k.add_argument("--keystore", action="store_true", help=f"encrypt it (passphrase from {PASSPHRASE_ENV} or a prompt)")
    k.set_defaults(func=lambda a, *_: cmd_keygen(a))


def typed_data_of(document: Any) -> dict[str, Any]:
    """The typed data in an API answer (``typed_data``, ``intent.typed_data``) or bare."""
    if isinstance(document, dict):
        if {"types", "primaryType", "domain", "message"} <= set(document):
            return document
        for key in ("typed_data", "intent"):
            if key in document:
                return typed_data_of(document[key])
    raise ValueError("no EIP-712 typed data (types, primaryType, domain, message) in the file")


def _passphrase() -> str:
    return os.environ.get(PASSPHRASE_ENV) or getpass.getpass("key passphrase: ")


def cmd_sign(args: argparse.Namespace) -> int:
    try:
        if args.file.stat().st_size > TYPED_FILE_BYTES_MAX:
            raise ValueError(f"{args.file} is larger than {TYPED_FILE_BYTES_MAX} bytes")
        typed = typed_data_of(json.loads(args.file.read_text()))
        lines = describe_typed_data(typed)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        signer = load_key_file(args.key, _passphrase)
    except LedgerError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    print("You are asked to sign:")
    for line in lines:
        print("  " + line)
    print(f"with the key of {signer.address}")
    if not args.yes:
        answer = input("sign? [y/N] ").strip().lower() if sys.stdin.isatty() else ""
        if answer not in ("y", "yes"):
            print("not signed", file=sys.stderr)
            return 1
    signature = sign_typed_data(signer, typed)
    if recover_typed_data(typed, signature) != signer.address:  # a hard check: never hand out a bad signature
        raise RuntimeError("the signature does not recover to the key's address")
    text = "0x" + signature.hex()
    if args.out is None:
        print(f"signature: {text}")
    else:
        args.out.write_text(text + "\n")
        print(f"signature written to {args.out}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    try:
        address = write_key_file(args.file, passphrase=_passphrase() if args.keystore else None)
    except FileExistsError:
        print(f"error: {args.file} exists; not overwriting a key", file=sys.stderr)
        return 2
    print(f"new key for {address} in {args.file}")
    return 0
