"""``ledger governance ...``: the consortium's governance from the service's side, and the seal.

- ``show``: the Safes, the timelock, the governors and whether the bootstrap is sealed;
- ``list [--pending] [--member ID]``, ``get ID``: proposals with their earliest execution time;
- ``propose ACTION --member ID ...``: a proposal (publishes it when the service holds a governor key);
- ``approve ID --governor 0x.. [--signature 0x..]``: an approval (a signature by an own-key governor,
  e.g. made with ``ledger sign`` over ``typed-data``; without one, the demo governors' custodial keys);
- ``typed-data ID --out FILE``: the Safe transaction a governor signs;
- ``execute ID``: the next step (the Safe transaction once approved; the batch after the delay);
- ``seal``: close the registry's bootstrap window (after the founding members are on chain).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from ledger_api.cli.instance import InstanceLock, InstanceLockedError
from settlement.chain.deploy import REGISTRY, SEAL_GAS, seal_bootstrap
from settlement.chain.describe import describe_call
from settlement.core.errors import LedgerError
from settlement.domains import governance as gov
from settlement.pipeline import outbox
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow

__all__ = ["register", "seal_when_applied", "BOOTSTRAP_APPLY_TIMEOUT_S"]

RuntimeFactory = Callable[[], Runtime]
BOOTSTRAP_APPLY_TIMEOUT_S = 120.0
_POLL_S = 0.2
SEAL_KIND = "registry.seal"  # the outbox kind of the bootstrap seal


def _fail(exc: LedgerError) -> int:
    print(f"error: {exc.type_slug}: {exc.detail}", file=sys.stderr)
    return 1


def _roles(text: str) -> list[str]:
    return [r.strip() for r in text.split(",") if r.strip()]


def register(subparsers: argparse._SubParsersAction, runtime_factory: RuntimeFactory) -> None:
    g = subparsers.add_parser("governance", help="governance proposals, approvals, execution; the bootstrap seal")
    gsub = g.add_subparsers(dest="governance_command", required=True)
    gsub.add_parser("show", help="Safes, timelock, governors, seal").set_defaults(
        func=lambda a, *_: _run(runtime_factory, _show, a))
    ls = gsub.add_parser("list", help="proposals, newest first")
    ls.add_argument("--pending", action="store_true", help="proposed or scheduled only")
    ls.add_argument("--member", default=None, help="about this member only")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=lambda a, *_: _run(runtime_factory, _list, a))
    get = gsub.add_parser("get", help="one proposal, decoded")
    get.add_argument("proposal_id", metavar="ID")
    get.set_defaults(func=lambda a, *_: _run(runtime_factory, _get, a))
    pr = gsub.add_parser("propose", help="propose a governance action")
    pr.add_argument("action", choices=gov.ACTIONS)
    pr.add_argument("--member", default=None)
    pr.add_argument("--name", default=None)
    pr.add_argument("--country", default=None)
    pr.add_argument("--roles", type=_roles, default=[])
    pr.add_argument("--role", default=None)
    pr.add_argument("--account", default=None)
    pr.add_argument("--proposal", default=None, help="cancel / reject: the proposal concerned")
    pr.add_argument("--description", default=None)
    pr.set_defaults(func=lambda a, *_: _run(runtime_factory, _propose, a))
    ap = gsub.add_parser("approve", help="approve as a governor")
    ap.add_argument("proposal_id", metavar="ID")
    ap.add_argument("--governor", required=True, help="the governor's address")
    ap.add_argument("--signature", default=None, help="its signature over `typed-data` (own-key governors)")
    ap.set_defaults(func=lambda a, *_: _run(runtime_factory, _approve, a))
    td = gsub.add_parser("typed-data", help="write the Safe transaction a governor signs (for `ledger sign`)")
    td.add_argument("proposal_id", metavar="ID")
    td.add_argument("--out", type=Path, required=True)
    td.set_defaults(func=lambda a, *_: _run(runtime_factory, _typed_data, a))
    ex = gsub.add_parser("execute", help="execute the proposal's next step")
    ex.add_argument("proposal_id", metavar="ID")
    ex.set_defaults(func=lambda a, *_: _run(runtime_factory, _execute, a))
    gsub.add_parser("seal", help="close the registry's bootstrap window for good").set_defaults(
        func=lambda a, *_: _run(runtime_factory, _seal, a))


def _run(factory: RuntimeFactory, command: Callable[[Runtime, argparse.Namespace], int],
         args: argparse.Namespace) -> int:
    try:
        return command(factory(), args)
    except LedgerError as exc:
        return _fail(exc)


def _when(seconds: int | None) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else "-"


def _show(runtime: Runtime, args: argparse.Namespace) -> int:
    params = runtime.governance
    if params is None or runtime.manifest is None:
        print("no governance deployed (run `ledger deploy`)")
        return 1
    a = runtime.manifest.addresses
    print(f"governors' Safe {a['GovernanceSafe']} ({params.threshold}-of-{len(params.governors)}), "
          f"timelock {a['ConsortiumTimelock']} (delay {params.delay_s} s)")
    print(f"guardian Safe {a['GuardianSafe']} ({params.guardian_threshold}-of-{len(params.governors)}, suspension only)")
    for g in params.governors:
        print(f"  governor {g.address}  member {g.member_id}{'  (custodial: demo key)' if g.address in runtime.governors else ''}")
    print(f"bootstrap: {'open (the operator may still onboard founding members)' if runtime.bootstrap_open() else 'sealed'}")
    return 0


def _row(p) -> dict:  # type: ignore[no-untyped-def]
    return {"id": p.id, "action": p.action, "member_id": p.member_id, "safe": p.safe, "nonce": int(p.safe_nonce),
            "status": p.status, "earliest_execution_at": _when(gov.earliest_execution(p)), "error": p.error}


def _list(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.db.read() as session:
        page, _more = gov.list_proposals(session, pending=args.pending, member_id=args.member,
                                         limit=gov.LIST_LIMIT_MAX)
        rows = [_row(p) for p in page]
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['id']}  {r['status']:<9} {r['safe']:<10} #{r['nonce']:<4} {r['action']:<13} "
              f"{r['member_id'] or '-':<20} earliest {r['earliest_execution_at']}")
    print(f"{len(rows)} proposal(s)")
    return 0


def _get(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.db.read() as session:
        p = gov.get_proposal(session, args.proposal_id)
        approvals = [(a.governor, a.status, "signature" if a.signature else "on chain")
                     for a in gov.approvals_of(session, p.id)]
        print(json.dumps(_row(p), indent=2))
        print(f"description: {p.description}")
        print("what it does:")
        for line in describe_call(p.data) if p.data else ["an empty Safe transaction (a rejection)"]:
            print("  " + line)
        for governor, status, how in approvals:
            print(f"approved by {governor}: {status} ({how})")
    return 0


def _propose(runtime: Runtime, args: argparse.Namespace) -> int:
    action = gov.Action(args.action, member_id=args.member, name=args.name, country=args.country,
                        roles=tuple(args.roles), role=args.role, account=args.account, proposal_id=args.proposal)
    facts = gov.read_facts(runtime)
    with runtime.db.transaction() as session:
        p = gov.propose(runtime, session, facts, action, proposed_by="operator", description=args.description)
        pid, safe, nonce = p.id, p.safe, int(p.safe_nonce)
    print(f"proposal {pid} ({args.action}) on the {safe} Safe at nonce {nonce}")
    print(f"next: `ledger governance approve {pid} --governor 0x...` by {facts.thresholds[safe]} governor(s), "
          f"then `ledger governance execute {pid}`")
    return 0


def _approve(runtime: Runtime, args: argparse.Namespace) -> int:
    facts = gov.read_facts(runtime)
    with runtime.db.transaction() as session:
        approval = gov.approve(runtime, session, facts, args.proposal_id, governor=args.governor,
                               signature=args.signature)
        state = approval.status
    print(f"approval of {args.governor}: {state}")
    return 0


def _typed_data(runtime: Runtime, args: argparse.Namespace) -> int:
    facts = gov.read_facts(runtime)
    with runtime.db.read() as session:
        typed = gov.typed_data_of(facts, gov.get_proposal(session, args.proposal_id))
    args.out.write_text(json.dumps({"typed_data": typed}, indent=2) + "\n")
    print(f"wrote the Safe transaction's typed data to {args.out}: sign it with `ledger sign {args.out} --key FILE`")
    return 0


def _execute(runtime: Runtime, args: argparse.Namespace) -> int:
    with runtime.db.read() as session:
        op_id = gov.get_proposal(session, args.proposal_id).op_id
    facts = gov.read_facts(runtime, (op_id,) if op_id else ())
    with runtime.db.transaction() as session:
        p = gov.execute(runtime, session, facts, args.proposal_id)
        step = "timelock batch" if p.status == "scheduled" else "Safe transaction"
    print(f"proposal {args.proposal_id}: {step} enqueued (relayed by the operator's key)")
    return 0


def _seal(runtime: Runtime, args: argparse.Namespace) -> int:
    """Sent directly only while no service runs on the data dir (this command holds its lock
    meanwhile, so none starts). When one runs (``ledger worker`` after ``ledger deploy``), its
    dispatcher owns the operator's nonces: a seal sent beside it would take the nonce it counted as
    its next and orphan the operator's next outbox row, so the seal goes through its outbox and this
    command waits for it to be mined."""
    say = lambda s: print(f"[ledger] {s}")  # noqa: E731
    lock = InstanceLock(runtime.home)
    try:
        lock.acquire("governance seal")
    except InstanceLockedError:
        say("a ledger service runs on this data dir: the seal goes through its outbox")
        seal_when_applied(runtime, say, through_outbox=True)
        return 0
    with lock:
        seal_when_applied(runtime, say)
    return 0


def seal_when_applied(runtime: Runtime, progress: Callable[[str], None],
                      timeout_s: float = BOOTSTRAP_APPLY_TIMEOUT_S, *, through_outbox: bool = False) -> None:
    """Seal the bootstrap once the founding members' onboardings are on chain (the workers, or
    another process, send them): a seal before that would strand them. Refuses when one failed.

    ``through_outbox``: the caller runs the dispatcher (``ledger up``), which owns the operator's
    nonces: the seal is an outbox row like any other transaction of that key. Without it (``ledger
    governance seal``, run while no service runs) the seal is sent directly."""
    if runtime.manifest is None or not runtime.bootstrap_open():
        return
    deadline = time.monotonic() + timeout_s
    while True:
        with runtime.db.read() as session:
            waiting = outbox.depth(session)
            failed = session.scalar(select(OutboxRow.aggregate_id).where(
                OutboxRow.kind == "member.onboard", OutboxRow.status == "failed").limit(1))
        if failed is not None:
            raise LedgerError(f"the bootstrap onboarding of {failed} failed on chain; not sealing (fix it, then "
                              "`ledger governance seal`)")
        if waiting == 0:
            break
        if time.monotonic() > deadline:
            raise LedgerError(f"{waiting} outbox row(s) still waiting after {timeout_s:.0f} s; not sealing yet "
                              "(run the workers, then `ledger governance seal`)")
        time.sleep(_POLL_S)
    if not through_outbox:
        seal_bootstrap(runtime.chain, runtime.operator, runtime.manifest, runtime.home, progress)
        return
    # Through the outbox, like every other transaction of the operator's key once the dispatcher
    # runs: sent directly, the seal took the nonce the dispatcher had already counted as its next
    # one, and the operator's next outbox row (the first anchor batch) was left orphaned.
    # A start that stopped before the seal was mined finds its row and waits for it again.
    with runtime.db.transaction() as session:
        row_id = session.scalar(select(OutboxRow.id).where(OutboxRow.kind == SEAL_KIND, OutboxRow.status != "failed")
                                .order_by(OutboxRow.id.desc()).limit(1))
        if row_id is None:
            row_id = outbox.enqueue(session, kind=SEAL_KIND, contract=REGISTRY, function="sealBootstrap", args=[],
                                    signer=runtime.operator.address, gas_limit=SEAL_GAS, aggregate_id="bootstrap").id
    while True:
        with runtime.db.read() as session:
            row = session.get(OutboxRow, row_id)
            status, block, error = row.status, row.block_number, row.last_error
        if status in outbox.DONE_STATUSES:
            break
        if status == "failed":
            raise LedgerError(f"sealing the bootstrap failed on chain: {error}")
        if time.monotonic() > deadline:
            raise LedgerError(f"the bootstrap seal (outbox row {row_id}) is not on chain after {timeout_s:.0f} s")
        time.sleep(_POLL_S)
    runtime.manifest.sealed_block = block
    progress(f"bootstrap sealed at block {block}: the operator's key keeps no admin power")
    seal_bootstrap(runtime.chain, runtime.operator, runtime.manifest, runtime.home, progress)
