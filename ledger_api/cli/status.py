"""``ledger status``: what runs where, and how it is doing, without starting or changing anything.

It reads the same configuration as ``ledger up`` (``LEDGER_*``) and reports:

- **api**: the URL, and the running service's ``/health`` (and ``/ready`` when served);
- **chain**: the RPC URL (credentials, path and query hidden: hosted nodes put keys there),
  managed or external, its chain id and head block;
- **store**: the database URL (password hidden), the schema revision, the outbox depth (rows not
  yet on chain, and the age of the oldest) and the follower's checkpoint and lag behind the head;
- **manifest**: the deployment manifest (chain id, contracts, first block);
- **data dir**: where it is and whether only the service's user can read it.

Exit 0 when the service answers and is healthy (and ready), 5 when it answers but is degraded or
not ready, 4 when it does not answer. ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from ledger_api.settings import Settings
from settlement.chain.transport import redact_url
from settlement.store.models import Checkpoint, OutboxRow

__all__ = ["EXIT_DEGRADED", "EXIT_UNREACHABLE", "register", "status"]

EXIT_OK, EXIT_UNREACHABLE, EXIT_DEGRADED = 0, 4, 5
PROBE_TIMEOUT_S = 3.0
WAITING_STATUSES = ("pending", "signed", "sent")


def redacted_rpc(url: str) -> str:
    """The RPC URL with its password masked and its path and query hidden."""
    parts = urllib.parse.urlsplit(redact_url(url))
    hidden = parts.path not in ("", "/") or parts.query
    return urllib.parse.urlunsplit(parts._replace(path="/***" if hidden else parts.path, query="", fragment=""))


def _api(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"url": settings.api_url, "answering": False}
    try:
        with httpx.Client(base_url=settings.api_url, timeout=PROBE_TIMEOUT_S) as http:
            health = http.get("/health")
            out["answering"] = True
            out["health"] = health.json() if health.headers.get("content-type", "").startswith("application/json") \
                else {"status": f"HTTP {health.status_code}"}
            ready = http.get("/ready")
            if ready.status_code == 404:
                out["ready"] = None  # a service without a readiness endpoint
            else:
                out["ready"] = ready.status_code == 200
                if ready.status_code != 200:
                    try:
                        out["not_ready"] = ready.json()
                    except ValueError:
                        out["not_ready"] = {"status": ready.status_code}
    except httpx.HTTPError as exc:
        out["error"] = type(exc).__name__
    return out


def _chain(settings: Settings) -> dict[str, Any]:
    url = settings.effective_rpc_url
    out: dict[str, Any] = {"rpc": redacted_rpc(url), "managed": settings.managed_chain, "reachable": False}
    try:
        from settlement.chain.client import ChainClient  # web3: imported only when asked

        client = ChainClient(url, timeout_s=PROBE_TIMEOUT_S)
        out["chain_id"] = client.chain_id
        out["head_block"] = client.block_number()
        out["reachable"] = True
    except Exception as exc:  # any failure to ask the node is what this reports
        out["error"] = type(exc).__name__
    return out


def _store(settings: Settings, head: int | None) -> dict[str, Any]:
    url = settings.database_url or f"sqlite:///{settings.home.resolve() / 'ledger.db'}"
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    out: dict[str, Any] = {"url": shown, "reachable": False}
    database = sa.engine.make_url(url).database
    if url.startswith("sqlite") and database and not Path(database).exists():
        out["error"] = "not created yet (ledger up creates it)"
        return out
    engine = sa.create_engine(url, connect_args={} if url.startswith("sqlite") else {"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            out["reachable"] = True
            out["schema"] = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            waiting = OutboxRow.status.in_(WAITING_STATUSES)
            out["outbox_depth"] = conn.execute(sa.select(sa.func.count()).select_from(OutboxRow).where(waiting)
                                               ).scalar() or 0
            oldest = conn.execute(sa.select(sa.func.min(OutboxRow.created_at)).where(waiting)).scalar()
            if oldest is not None:
                oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=timezone.utc)
                out["outbox_oldest_age_s"] = round((datetime.now(timezone.utc) - oldest).total_seconds(), 1)
            checkpoints = {name: block for name, block in conn.execute(
                sa.select(Checkpoint.name, Checkpoint.block_number))}
            out["follower_checkpoints"] = checkpoints
            if head is not None and checkpoints:
                out["follower_lag_blocks"] = max(0, head - min(checkpoints.values()))
    except sa.exc.SQLAlchemyError as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc.orig if hasattr(exc, 'orig') else exc)[:200]}"
    finally:
        engine.dispose()
    return out


def _manifest(home: Path) -> dict[str, Any]:
    path = home / "deployment.json"
    if not path.is_file():
        return {"path": str(path), "present": False}
    try:
        data = json.loads(path.read_text())
        return {"path": str(path), "present": True, "chain_id": data.get("chain_id"),
                "contracts": {n: c.get("address") for n, c in (data.get("contracts") or {}).items()},
                "deploy_block": data.get("deploy_block")}
    except (OSError, ValueError) as exc:
        return {"path": str(path), "present": True, "error": type(exc).__name__}


def status(settings: Settings) -> dict[str, Any]:
    """Everything ``ledger status`` reports, as a dict."""
    home = settings.home.resolve()
    chain = _chain(settings)
    mode = stat.S_IMODE(home.stat().st_mode) if home.exists() else None
    return {
        "api": _api(settings), "chain": chain, "store": _store(settings, chain.get("head_block")),
        "manifest": _manifest(home),
        "data_dir": {"path": str(home), "exists": mode is not None,
                     "mode": oct(mode) if mode is not None else None,
                     "private": mode is not None and not mode & 0o077},
    }


def exit_code(report: dict[str, Any]) -> int:
    api = report["api"]
    if not api["answering"]:
        return EXIT_UNREACHABLE
    healthy = (api.get("health") or {}).get("status") == "ok" and api.get("ready") is not False
    return EXIT_OK if healthy else EXIT_DEGRADED


def _text(report: dict[str, Any]) -> str:
    api, chain, store, manifest, home = (report[k] for k in ("api", "chain", "store", "manifest", "data_dir"))
    if api["answering"]:
        health = api.get("health") or {}
        ready = {None: "no readiness endpoint", True: "ready", False: "NOT READY"}[api.get("ready")]
        api_line = f"{api['url']}: answering, health {health.get('status', '?')}, {ready}"
        if api.get("not_ready"):
            api_line += f" ({json.dumps(api['not_ready'])[:300]})"
    else:
        api_line = f"{api['url']}: not answering ({api.get('error', '?')})"
    kind = "managed anvil" if chain["managed"] else "external node"
    chain_line = (f"{chain['rpc']} ({kind}): chain id {chain['chain_id']}, head block {chain['head_block']}"
                  if chain["reachable"] else f"{chain['rpc']} ({kind}): unreachable ({chain.get('error', '?')})")
    if store["reachable"]:
        age = f", oldest {store['outbox_oldest_age_s']} s" if "outbox_oldest_age_s" in store else ""
        lag = store.get("follower_lag_blocks")
        checkpoints = ", ".join(f"{n} at block {b}" for n, b in store.get("follower_checkpoints", {}).items())
        behind = f", {lag} blocks behind" if lag is not None else ""
        store_line = (f"{store['url']}: schema {store.get('schema')}; "
                      f"outbox {store['outbox_depth']} rows waiting{age}; "
                      f"follower {checkpoints or 'not started'}{behind}")
        if "error" in store:
            store_line += f" ({store['error']})"
    else:
        store_line = f"{store['url']}: {store.get('error', 'unreachable')}"
    if manifest.get("present") and "error" not in manifest:
        manifest_line = (f"{manifest['path']}: chain id {manifest['chain_id']}, {len(manifest['contracts'])} contracts "
                         f"from block {manifest.get('deploy_block')}")
    else:
        manifest_line = f"{manifest['path']}: " + ("unreadable" if manifest.get("present") else "none yet")
    home_line = (f"{home['path']} ({home['mode']}{', private' if home['private'] else ', READABLE BY OTHERS'})"
                 if home["exists"] else f"{home['path']}: does not exist")
    return "\n".join([f"api:       {api_line}", f"chain:     {chain_line}", f"store:     {store_line}",
                      f"manifest:  {manifest_line}", f"data dir:  {home_line}"])


def _run(args: argparse.Namespace) -> int:
    report = status(Settings())
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(_text(report))
    code = exit_code(report)
    if code != EXIT_OK and not args.json:
        print("status: " + ("the service is not answering" if code == EXIT_UNREACHABLE
                            else "the service answers but is degraded or not ready"), file=sys.stderr)
    return code


def register(subparsers: argparse._SubParsersAction, _runtime_factory: Callable[[], object]) -> None:
    p = subparsers.add_parser("status", help="what runs where (API, chain, store, manifest) and how it is doing",
                              description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=lambda a, *_: _run(a))
