"""``ledger webhooks ...``: a member's webhook endpoints, managed on the service's host (the store
directly, like ``ledger providers``); the API offers the same to the member itself
(``/v1/webhooks``, docs/events.md).

- ``ledger webhooks add --member M --url URL [--types T ...] [--description TEXT]``: prints the
  endpoint and its secret (shown once);
- ``ledger webhooks list --member M [--json]``;
- ``ledger webhooks rotate-secret --member M ID [--overlap-s N]``: prints the new secret;
- ``ledger webhooks enable|disable --member M ID``;
- ``ledger webhooks deliveries --member M ID [--status failed]``;
- ``ledger webhooks replay --member M ID (--event EVT | --since ISO-TIME)``;
- ``ledger webhooks deliver``: the delivery worker alone, in its own process (its own core), until
  SIGTERM/SIGINT; run it beside ``ledger up`` / ``ledger worker`` started with
  ``LEDGER_WEBHOOK_DELIVERY=external`` (otherwise they deliver in a thread of their own process).

Exit 0 done, 1 refused (unknown member or endpoint, a URL or filter not allowed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone

from settlement.core.errors import LedgerError
from settlement.domains.events import webhooks as wh
from settlement.runtime import Runtime
from settlement.store.models import Member

__all__ = ["register"]

RuntimeFactory = Callable[[], Runtime]
EXIT_OK, EXIT_FAILED = 0, 1


def _endpoint_json(row) -> dict:  # type: ignore[no-untyped-def]
    return {"id": row.id, "owner": row.member_id, "url": row.url, "event_types": list(row.event_types),
            "status": row.status, "disabled_reason": row.disabled_reason, "description": row.description}


def _run(factory: RuntimeFactory, args: argparse.Namespace, action: Callable[[Runtime, object], object]) -> int:
    runtime = factory()
    try:
        with runtime.db.transaction() as session:
            if session.get(Member, args.member) is None:
                print(f"ledger: no member {args.member!r} (see `ledger members list`)", file=sys.stderr)
                return EXIT_FAILED
            out = action(runtime, session)
    except LedgerError as exc:
        print(f"ledger: {exc.detail}", file=sys.stderr)
        return EXIT_FAILED
    if out is not None:
        print(json.dumps(out, ensure_ascii=False, indent=1, default=str))
    return EXIT_OK


def _add(runtime: Runtime, session, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    row, secret = wh.create_endpoint(session, runtime, args.member, args.url, args.types or [], args.description)
    return {**_endpoint_json(row), "secret": secret, "note": "the secret is shown once: keep it now"}


def _list(_runtime: Runtime, session, args: argparse.Namespace) -> list[dict]:  # type: ignore[no-untyped-def]
    rows, _more = wh.list_endpoints(session, args.member, None, wh.PAGE_MAX)
    return [_endpoint_json(r) for r in rows]


def _rotate(runtime: Runtime, session, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    row, secret = wh.rotate_secret(session, runtime, args.member, args.id, args.overlap_s)
    return {**_endpoint_json(row), "secret": secret, "previous_secret_expires_at": row.previous_secret_expires_at}


def _enable(enabled: bool) -> Callable:
    def action(_runtime: Runtime, session, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
        return _endpoint_json(wh.update_endpoint(session, args.member, args.id, enabled=enabled))
    return action


def _deliveries(_runtime: Runtime, session, args: argparse.Namespace) -> list[dict]:  # type: ignore[no-untyped-def]
    rows, _more = wh.list_deliveries(session, args.member, args.id, args.status, 0, wh.PAGE_MAX)
    return [{"id": v.row.id, "event_id": v.row.event_id, "type": v.event_type, "object_id": v.object_id,
             "round": v.row.round, "status": v.row.status, "attempts": v.row.attempts,
             "last_status_code": v.row.last_status_code, "last_error": v.row.last_error} for v in rows]


def _replay(_runtime: Runtime, session, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    since = None
    if args.since:
        since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    return {"queued": wh.replay(session, args.member, args.id, event_id=args.event, since=since)}


def _deliver(factory: RuntimeFactory) -> int:
    import signal
    import threading

    from settlement.domains.events.delivery import DeliveryWorker

    runtime = factory()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = DeliveryWorker(runtime).start()
    print("[ledger] delivering webhooks; Ctrl-C to stop", flush=True)
    stop.wait()
    worker.stop()
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction, runtime_factory: RuntimeFactory) -> None:
    p = subparsers.add_parser("webhooks", help="members' webhook endpoints (signed deliveries of their events)")
    sub = p.add_subparsers(dest="webhooks_command", required=True)

    def command(name: str, help_text: str, action: Callable, with_id: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text)
        c.add_argument("--member", required=True, metavar="ID", help="the member the endpoint belongs to")
        if with_id:
            c.add_argument("id", metavar="ENDPOINT", help="ep_...")
        c.set_defaults(func=lambda a, *_: _run(runtime_factory, a, lambda rt, s: action(rt, s, a)))
        return c

    add = command("add", "register an endpoint; prints its secret once", _add, with_id=False)
    add.add_argument("--url", required=True, help="https://..., or http:// to a loopback address")
    add.add_argument("--types", nargs="*", default=[], metavar="TYPE",
                     help="catalogued types or family.* (default: every type)")
    add.add_argument("--description", default="")
    command("list", "the member's endpoints", _list, with_id=False)
    rot = command("rotate-secret", "a new secret (printed once); the old one signs too for --overlap-s", _rotate)
    rot.add_argument("--overlap-s", type=int, default=86_400)
    command("enable", "enable (new events from now on; replay what was missed)", _enable(True))
    command("disable", "disable (nothing is sent until enabled)", _enable(False))
    dl = command("deliveries", "the endpoint's deliveries", _deliveries)
    dl.add_argument("--status", choices=("pending", "delivered", "failed"), default=None)
    rp = command("replay", "deliver again one event, or every undelivered event since a time", _replay)
    group = rp.add_mutually_exclusive_group(required=True)
    group.add_argument("--event", default=None, metavar="EVT")
    group.add_argument("--since", default=None, metavar="ISO-TIME")
    sub.add_parser("deliver", help="run the webhook delivery worker alone (its own process)").set_defaults(
        func=lambda a, *_: _deliver(runtime_factory))
