"""``ledger members ...``, ``ledger apikeys rotate`` and ``ledger besu-permissions``.

``register(subparsers, runtime_factory)`` adds the commands to the ``ledger`` parser; each sets
``func`` (``func(args, settings=None) -> int`` exit code; extra positional arguments are ignored). ``runtime_factory`` is a zero-argument callable that
returns a ready Runtime; it is called only by a command that runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from settlement.chain import besu
from settlement.core.errors import LedgerError
from settlement.domains import members as svc
from settlement.domains.members import apikeys
from settlement.runtime import Runtime

__all__ = ["register"]

RuntimeFactory = Callable[[], Runtime]


def _roles(text: str) -> list[str]:
    return [r.strip() for r in text.split(",") if r.strip()]


def register(subparsers: argparse._SubParsersAction, runtime_factory: RuntimeFactory) -> None:
    members = subparsers.add_parser("members", help="onboard, list, suspend and reactivate members")
    msub = members.add_subparsers(dest="members_command", required=True)

    add = msub.add_parser("add", help="onboard a member; prints its API key once")
    add.add_argument("--id", required=True, help="slug, e.g. retailer-cn")
    add.add_argument("--name", required=True)
    add.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. CN")
    add.add_argument("--roles", required=True, type=_roles,
                     help=f"comma-separated, of: {','.join(svc.ROLE_NAMES)}")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(func=lambda a, *_: _members_add(runtime_factory, a))

    ls = msub.add_parser("list", help="list members")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=lambda a, *_: _members_list(runtime_factory, a))

    for name, change in (("suspend", svc.suspend_member), ("reactivate", svc.reactivate_member)):
        p = msub.add_parser(name, help=f"{name} a member (enqueues the registry call)")
        p.add_argument("member_id", metavar="ID")
        p.set_defaults(func=lambda a, *_, change=change: _members_change(runtime_factory, a, change))

    keys = subparsers.add_parser("apikeys", help="API keys")
    ksub = keys.add_subparsers(dest="apikeys_command", required=True)
    rotate = ksub.add_parser("rotate", help="issue a new key for MEMBER and revoke its other keys")
    rotate.add_argument("member_id", metavar="MEMBER")
    rotate.add_argument("--overlap-s", type=int, default=0, help="seconds the old keys stay valid")
    rotate.add_argument("--label", default="rotated")
    rotate.set_defaults(func=lambda a, *_: _apikeys_rotate(runtime_factory, a))

    perm = subparsers.add_parser("besu-permissions",
                                 help="write a Besu permissions_config.toml from the on-chain registry")
    perm.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    perm.set_defaults(func=lambda a, *_: _besu_permissions(runtime_factory, a))


def _fail(exc: LedgerError) -> int:
    print(f"error: {exc.type_slug}: {exc.detail}", file=sys.stderr)
    return 1


def _members_add(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = factory()
    try:
        with runtime.db.transaction() as session:
            done = svc.onboard(runtime, session, member_id=args.id, name=args.name, country=args.country,
                               roles=args.roles)
            member = done.member
            summary = {"id": member.id, "name": member.name, "country": member.country, "roles": list(member.roles),
                       "address": done.address, "onchain_id": member.onchain_id, "outbox_id": done.outbox_id,
                       "api_key_prefix": done.api_key.prefix}
            plaintext = done.api_key.plaintext
    except LedgerError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps({**summary, "api_key": plaintext}))
    else:
        print(f"member {summary['id']} onboarded: account {summary['address']}, roles {','.join(summary['roles'])}")
        print(f"registry call enqueued (outbox #{summary['outbox_id']})")
        print(f"API key (shown once, store it now): {plaintext}")
    return 0


def _members_list(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = factory()
    rows = []
    with runtime.db.read() as session:
        after = None
        while True:
            page = svc.list_members(session, limit=svc.MEMBER_LIST_LIMIT_MAX, after=after)
            for m in page:
                rows.append({"id": m.id, "name": m.name, "country": m.country, "roles": list(m.roles),
                             "status": m.status, "accounts": svc.member_accounts(session, m.id)})
            if len(page) < svc.MEMBER_LIST_LIMIT_MAX:
                break
            after = page[-1].id
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['id']:<24} {r['status']:<10} {r['country']}  {','.join(r['roles']):<32} "
                  f"{' '.join(r['accounts'])}")
        print(f"{len(rows)} member(s)")
    return 0


def _members_change(factory: RuntimeFactory, args: argparse.Namespace, change: Callable) -> int:
    runtime = factory()
    try:
        with runtime.db.transaction() as session:
            member, row = change(runtime, session, args.member_id)
            status, outbox_id = member.status, row.id
    except LedgerError as exc:
        return _fail(exc)
    print(f"member {args.member_id} is now {status}; registry call enqueued (outbox #{outbox_id})")
    return 0


def _apikeys_rotate(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = factory()
    try:
        with runtime.db.transaction() as session:
            key, revoked = apikeys.rotate_key(session, args.member_id, overlap_s=args.overlap_s, label=args.label)
            plaintext, prefix = key.plaintext, key.prefix
    except LedgerError as exc:
        return _fail(exc)
    when = f"in {args.overlap_s}s" if args.overlap_s else "now"
    print(f"new key {prefix} for {args.member_id}; revoked {when}: {', '.join(revoked) or 'none'}")
    print(f"API key (shown once, store it now): {plaintext}")
    return 0


def _besu_permissions(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = factory()
    try:
        registry = runtime.address(svc.REGISTRY)
    except LookupError:
        print("error: the ConsortiumRegistry is not deployed (run `ledger up` first)", file=sys.stderr)
        return 1
    try:
        accounts = besu.registry_allowlist(runtime.chain, registry, runtime.operator.address)
    except LedgerError as exc:
        return _fail(exc)
    text = besu.render_permissions_toml(accounts)
    if args.out is None:
        sys.stdout.write(text)
    else:
        besu.write_permissions_file(args.out, text)
        print(f"wrote {len(accounts)} account(s) to {args.out}")
    return 0
