"""``ledger members ...``, ``ledger apikeys rotate`` and ``ledger besu-permissions``.

``members add`` onboards at once in the registry's bootstrap window and proposes the onboarding to
governance after the seal; ``suspend`` proposes the guardians' fast path, ``reactivate`` a
governance decision (see ``ledger governance``). ``key-typed-data``, ``add-key`` and ``remove-key``
change a member's own keys with its consent (typed data signed with ``ledger sign``).

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
from settlement.domains import governance
from settlement.domains import members as svc
from settlement.domains.members import apikeys, keys
from settlement.runtime import Runtime

__all__ = ["register"]

RuntimeFactory = Callable[[], Runtime]


def _roles(text: str) -> list[str]:
    return [r.strip() for r in text.split(",") if r.strip()]


def register(subparsers: argparse._SubParsersAction, runtime_factory: RuntimeFactory) -> None:
    members = subparsers.add_parser("members", help="onboard, list, suspend and reactivate members")
    msub = members.add_subparsers(dest="members_command", required=True)

    add = msub.add_parser("add", help="onboard a member (bootstrap window: at once, printing its API key once; "
                                      "after the seal: a governance proposal)")
    add.add_argument("--id", required=True, help="slug, e.g. retailer-cn")
    add.add_argument("--name", required=True)
    add.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. CN")
    add.add_argument("--roles", required=True, type=_roles,
                     help=f"comma-separated, of: {','.join(svc.ROLE_NAMES)}")
    add.add_argument("--account", default=None, help="after the seal: the member's own account (no custodial key)")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(func=lambda a, *_: _members_add(runtime_factory, a))

    ls = msub.add_parser("list", help="list members")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=lambda a, *_: _members_list(runtime_factory, a))

    for name, kind in (("suspend", "suspend"), ("reactivate", "reactivate")):
        p = msub.add_parser(name, help=f"propose to {name} a member (governance)")
        p.add_argument("member_id", metavar="ID")
        p.set_defaults(func=lambda a, *_, kind=kind: _members_govern(runtime_factory, a, kind))

    td = msub.add_parser("key-typed-data", help="write the AddAccount/RemoveAccount typed data to sign")
    td.add_argument("member_id", metavar="MEMBER")
    td.add_argument("--account", required=True, help="the account to add or remove")
    td.add_argument("--remove", action="store_true", help="RemoveAccount instead of AddAccount")
    td.add_argument("--signer", default=None, help="the consenting account (default: custodial, else own)")
    td.add_argument("--out", type=Path, required=True)
    td.set_defaults(func=lambda a, *_: _key_typed_data(runtime_factory, a))
    for name, remove in (("add-key", False), ("remove-key", True)):
        k = msub.add_parser(name, help=f"{name.split('-')[0]} a member's account with its consent (relayed)")
        k.add_argument("member_id", metavar="MEMBER")
        k.add_argument("--typed-data", type=Path, required=True, help="the file `key-typed-data` wrote")
        if not remove:
            k.add_argument("--possession-signature", required=True, help="the new key's signature of the file")
        k.add_argument("--consent-signature", default=None, help="a current key's signature of the file")
        k.add_argument("--custodial-consent", action="store_true", help="consent with the custodial key")
        k.set_defaults(func=lambda a, *_, remove=remove: _key_change(runtime_factory, a, remove))

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
        if not runtime.bootstrap_open():
            return _propose(runtime, governance.Action("onboard", member_id=args.id, name=args.name,
                                                       country=args.country, roles=tuple(args.roles),
                                                       account=args.account), args.json)
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
        print(f"registry call enqueued (outbox #{summary['outbox_id']}), in the bootstrap window")
        print(f"API key (shown once, store it now): {plaintext}")
    return 0


def _propose(runtime: Runtime, action: governance.Action, as_json: bool = False) -> int:
    facts = governance.read_facts(runtime)
    with runtime.db.transaction() as session:
        p = governance.propose(runtime, session, facts, action, proposed_by="operator")
        out = {"proposal_id": p.id, "action": p.action, "member_id": p.member_id, "safe": p.safe,
               "safe_nonce": int(p.safe_nonce), "status": p.status}
    if as_json:
        print(json.dumps(out))
    else:
        print(f"governance proposal {out['proposal_id']}: {action.kind} {action.member_id} (the {out['safe']} Safe)")
        print(f"it takes effect once approved (`ledger governance approve`) and executed (`ledger governance execute`)")
    return 0


def _members_govern(factory: RuntimeFactory, args: argparse.Namespace, kind: str) -> int:
    runtime = factory()
    try:
        return _propose(runtime, governance.Action(kind, member_id=args.member_id))
    except LedgerError as exc:
        return _fail(exc)


def _key_typed_data(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = factory()
    try:
        change = keys.prepare_key_change(runtime, args.member_id, keys.REMOVE if args.remove else keys.ADD,
                                         args.account, signer=args.signer)
    except LedgerError as exc:
        return _fail(exc)
    args.out.write_text(json.dumps({"typed_data": change.typed_data, "signer": change.signer,
                                    "signer_custodial": change.signer_custodial}, indent=2) + "\n")
    who = "the service (custodial consent)" if change.signer_custodial else f"the key of {change.signer}"
    print(f"wrote {args.out}: sign it with the new key (`ledger sign {args.out} --key NEWKEY`) and consent by {who}")
    return 0


def _key_change(factory: RuntimeFactory, args: argparse.Namespace, remove: bool) -> int:
    runtime = factory()
    try:
        served = json.loads(args.typed_data.read_text())["typed_data"]["message"]
        change = keys.prepare_key_change(runtime, args.member_id, keys.REMOVE if remove else keys.ADD,
                                         served["account"], signer=served["signer"], nonce=int(served["nonce"]),
                                         deadline=int(served["deadline"]))
        with runtime.db.transaction() as session:
            row = keys.change_key(runtime, session, change,
                                  possession_signature=None if remove else args.possession_signature,
                                  consent_signature=args.consent_signature, custodial_consent=args.custodial_consent)
            row_id = row.id
    except LedgerError as exc:
        return _fail(exc)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot read {args.typed_data}: {exc}", file=sys.stderr)
        return 2
    print(f"{'removal' if remove else 'addition'} of {change.account} for {args.member_id} relayed "
          f"(outbox #{row_id}); the account changes once the registry says so")
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
