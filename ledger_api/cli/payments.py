"""``ledger reconcile``, ``ledger simulate-payment`` and ``ledger providers ...``.

- ``ledger reconcile FILE --provider alipay|wechatpay|normalized|camt053 --member ID [--account A]
  [--tolerance-minor N] [--window-days N] [--out report.json] [--csv exceptions.csv]``: imports the
  statement as member ID's, runs the three-way reconciliation against that member's own ledger
  entries and their chain state (docs/api.md, Tenancy), prints the
  summary (totals per currency); progress on stderr (a bar on a terminal, plain lines otherwise).
  Exit 0 when everything matched, 3 when there are exceptions (queued for resolution), 1 on an
  unreadable file.
- ``ledger simulate-payment --provider P --settlement ID [--provider-txn-id ID] [--api URL]``: reads
  ``$LEDGER_HOME/demo.json``, looks the settlement up through the API (operator key), POSTs a
  correctly signed "paid" notification of that provider to the running API, prints the
  provider-style answer, then what the server recorded for it (``GET /v1/callbacks``: applied,
  deferred, noted or exception, with its reason). Exit 0 applied/deferred/noted, 3 when the
  server recorded an exception, 1 refused, 4 the API did not answer.
- ``ledger providers add PROVIDER ACCOUNT --config FILE.json`` / ``ledger providers list``: manage
  provider accounts (public keys only; secrets are encrypted at rest).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from ledger_api.cli.progress import progress_for
from ledger_api.settings import Settings
from settlement.core.errors import LedgerError
from settlement.core.money import Money
from settlement.domains import payments as cb
from settlement.domains import reconciliation as rs
from settlement.providers.testing import simulated_payment
from settlement.runtime import Runtime
from settlement.store.models import Member

__all__ = ["register"]

RuntimeFactory = Callable[[], Runtime]
EXIT_OK, EXIT_FAILED, EXIT_EXCEPTIONS, EXIT_UNREACHABLE = 0, 1, 3, 4
CONFIG_FILE_BYTES_MAX = 256 * 1024
HTTP_TIMEOUT_S = 30.0


def _reconcile(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"ledger: no such file {path}", file=sys.stderr)
        return EXIT_FAILED
    runtime = factory()
    with runtime.db.read() as session:
        if session.get(Member, args.member) is None:
            print(f"ledger: no member {args.member!r} (see `ledger members list`)", file=sys.stderr)
            return EXIT_FAILED
    bar = progress_for(sys.stderr)
    try:
        config = rs.check_tolerances(args.tolerance_minor, args.window_days)
        stmt, parsed = rs.import_statement(runtime, args.provider, path, owner=args.member, filename=path.name,
                                           uploaded_by="cli", account=args.account, progress=bar)
        run = rs.run_reconciliation(runtime, stmt.id, owner=args.member, started_by="cli", config=config,
                                    parsed=parsed, progress=bar)
    except LedgerError as exc:
        bar.close()
        print(f"ledger: {exc.detail}", file=sys.stderr)
        return EXIT_FAILED
    bar.close()
    with runtime.db.read() as session:
        if args.out:
            Path(args.out).write_text(json.dumps(rs.report_document(session, run.id, owner=args.member),
                                                 ensure_ascii=False, indent=1), encoding="utf-8")
        if args.csv:
            Path(args.csv).write_text(rs.report_csv(session, run.id, owner=args.member), encoding="utf-8")
    print(rs.summary_text(run.summary))
    if parsed.errors:
        print(f"  {len(parsed.errors)} statement rows could not be read; first: line {parsed.errors[0].line_no}: "
              f"{parsed.errors[0].reason}")
    if args.out:
        print(f"report: {args.out}")
    return EXIT_EXCEPTIONS if run.exception_count or parsed.errors else EXIT_OK


def _load_demo(home: Path) -> dict:
    path = home / "demo.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: start the service with `ledger up --demo` first")
    return json.loads(path.read_text(encoding="utf-8"))


def _new_txn_id(provider: str) -> str:
    """A provider transaction id in the provider's own shape (so a bill can list it)."""
    digits = "".join(secrets.choice("0123456789") for _ in range(20))
    if provider == "alipay":
        return time.strftime("%Y%m%d", time.gmtime()) + digits  # 28 digits, like Alipay's trade_no
    if provider == "wechatpay":
        return "4200" + digits + digits[:4]  # 28 digits, like WeChat Pay's transaction_id
    return "pi_" + secrets.token_hex(12)


# What the server did with the notification, as `ledger simulate-payment` reports it.
_OUTCOME_TEXT = {
    "applied": "applied: the payment goes on chain through the outbox",
    "deferred": "deferred: applied once the settlement's previous chain operation is confirmed",
    "noted": "noted: authentic, moves no money",
    "exception": "EXCEPTION: not applied; queued in the reconciliation exceptions of the account's owner "
                 "(GET /v1/reconciliation/exceptions?origin=callback)",
}


def _simulate_payment(args: argparse.Namespace) -> int:
    try:
        demo = _load_demo(Settings().home.resolve())
    except (OSError, ValueError) as exc:
        print(f"ledger: {exc}", file=sys.stderr)
        return EXIT_FAILED
    creds = (demo.get("providers") or {}).get(args.provider)
    if not creds:
        print(f"ledger: demo.json has no {args.provider} account", file=sys.stderr)
        return EXIT_FAILED
    api = args.api or demo.get("api") or "http://127.0.0.1:8000"
    operator = next((m for m in demo.get("members", []) if "operator" in m.get("roles", [])), None)
    if operator is None:
        print("ledger: demo.json has no operator member to look the settlement up with", file=sys.stderr)
        return EXIT_FAILED
    auth = {"Authorization": f"Bearer {operator['api_key']}"}
    account = creds.get("account") or f"{args.provider}-demo"
    txn_id = args.provider_txn_id or _new_txn_id(args.provider)
    with httpx.Client(base_url=api, timeout=HTTP_TIMEOUT_S) as http:
        try:
            r = http.get(f"/v1/settlements/{args.settlement}", headers=auth)
            if r.status_code != 200:
                print(f"ledger: settlement lookup failed: {r.status_code} {r.text[:300]}", file=sys.stderr)
                return EXIT_FAILED
            s = r.json()
            amount = Money(s["target"]["value"], s["target"]["currency"])
            note = simulated_payment(args.provider, creds, s["payment_reference"], amount, provider_txn_id=txn_id)
            answer = http.post(f"/v1/callbacks/{args.provider}/{account}", content=note.body, headers=note.headers)
            print(f"POST /v1/callbacks/{args.provider}/{account}: {answer.status_code} {answer.text[:200]!r}")
            found = http.get("/v1/callbacks", params={"provider": args.provider, "provider_txn_id": txn_id},
                             headers=auth)
        except httpx.HTTPError as exc:
            print(f"ledger: the API at {api} is not reachable ({type(exc).__name__})", file=sys.stderr)
            return EXIT_UNREACHABLE
    recorded = found.json().get("data", []) if found.status_code == 200 else []
    if not recorded:
        print(f"server: refused the notification ({answer.status_code}); nothing was recorded")
        return EXIT_FAILED
    cb = recorded[-1]
    outcome = cb["outcome"]
    why = f" ({cb['outcome_reason']}: {cb['outcome_detail']})" if cb.get("outcome_reason") and outcome != "applied" \
        else ""
    again = f"; delivered {cb['delivery_count']} times, recorded once" if cb.get("delivery_count", 1) > 1 else ""
    print(f"server: {_OUTCOME_TEXT.get(outcome, outcome)}{why} [callback {cb['id']}, {args.provider} "
          f"transaction {txn_id}{again}]")
    verb = "paid" if outcome in ("applied", "deferred") else "NOT paid by this notification"
    print(f"settlement {args.settlement}: {amount} {verb} via {args.provider} (reference {s['payment_reference']})")
    return EXIT_EXCEPTIONS if outcome == "exception" else EXIT_OK


def _providers_add(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    raw = Path(args.config).read_bytes()[:CONFIG_FILE_BYTES_MAX + 1]
    if len(raw) > CONFIG_FILE_BYTES_MAX:
        print(f"ledger: {args.config} is larger than {CONFIG_FILE_BYTES_MAX} bytes", file=sys.stderr)
        return EXIT_FAILED
    try:
        config = json.loads(raw)
    except ValueError:
        print(f"ledger: {args.config} is not JSON", file=sys.stderr)
        return EXIT_FAILED
    runtime = factory()
    with runtime.db.transaction() as session:
        if args.update:
            info = cb.update_account(runtime, session, args.provider, args.account, config, owner=args.owner)
        else:
            info = cb.add_account(runtime, session, args.provider, args.account, config,
                                  owner=args.owner or "operator", created_by="cli")
    print(f"{info.provider}/{info.account} (owner {info.owner}): {info.status}, version {info.version}; "
          f"secrets held (encrypted): "
          f"{', '.join(info.secret_names) or 'none'}")
    return EXIT_OK


def _providers_list(factory: RuntimeFactory, args: argparse.Namespace) -> int:
    runtime = factory()
    with runtime.db.read() as session:
        infos = cb.list_accounts(session, args.provider)
    if args.json:
        print(json.dumps([{"provider": i.provider, "account": i.account, "owner": i.owner, "status": i.status,
                           "version": i.version, "secrets": list(i.secret_names),
                           "public_config": {k: v for k, v in i.public_config.items() if not k.endswith("pem")
                                             and k != "platform_keys"}} for i in infos], indent=1))
        return EXIT_OK
    for i in infos:
        print(f"{i.provider:<10} {i.account:<32} {i.owner:<16} {i.status:<9} v{i.version}  "
              f"callback URL: /v1/callbacks/{i.provider}/{i.account}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction, runtime_factory: RuntimeFactory) -> None:
    rec = subparsers.add_parser("reconcile", help="reconcile a provider or bank statement against the ledger")
    rec.add_argument("file", metavar="FILE")
    rec.add_argument("--provider", required=True, choices=("alipay", "wechatpay", "normalized", "camt053"),
                     help="statement format")
    rec.add_argument("--member", required=True, metavar="ID",
                     help="the member whose statement it is: the run is that member's and reconciles only its "
                          "own ledger entries (settlements it is party to, payments on its provider accounts)")
    rec.add_argument("--account", default=None, help="provider account the statement belongs to")
    rec.add_argument("--tolerance-minor", type=int, default=0, help="amount tolerance in minor units")
    rec.add_argument("--window-days", type=int, default=3, help="date window for reference matching")
    rec.add_argument("--out", default=None, help="write the JSON report here")
    rec.add_argument("--csv", default=None, help="write the exceptions as CSV here")
    rec.set_defaults(func=lambda a, *_: _reconcile(runtime_factory, a))

    sim = subparsers.add_parser("simulate-payment",
                                help="send a correctly signed provider notification for a settlement (demo)")
    sim.add_argument("--provider", required=True, choices=("alipay", "wechatpay", "stripe"))
    sim.add_argument("--settlement", required=True, metavar="ID")
    sim.add_argument("--api", default=None, help="API base URL (default: demo.json's)")
    sim.add_argument("--provider-txn-id", default=None, metavar="ID",
                     help="the provider's transaction id to send (default: a new one), e.g. the one a sample "
                          "bill lists")
    sim.set_defaults(func=lambda a, *_: _simulate_payment(a))

    prov = subparsers.add_parser("providers", help="payment-provider accounts")
    psub = prov.add_subparsers(dest="providers_command", required=True)
    add = psub.add_parser("add", help="add (or --update) an account from a JSON config file")
    add.add_argument("provider", choices=("alipay", "wechatpay", "stripe"))
    add.add_argument("account")
    add.add_argument("--config", required=True, help="JSON: public keys and service-side secrets")
    add.add_argument("--update", action="store_true", help="replace an existing account's material")
    add.add_argument("--owner", default=None, metavar="MEMBER",
                     help="the member the account belongs to (new accounts: default the operator; --update: "
                          "unchanged unless given)")
    add.set_defaults(func=lambda a, *_: _providers_add(runtime_factory, a))
    ls = psub.add_parser("list", help="list accounts")
    ls.add_argument("--provider", default=None)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=lambda a, *_: _providers_list(runtime_factory, a))
