"""``GET /health`` (liveness: chain, contracts and store state; never fails because a dependency is
down) and ``GET /ready`` (readiness: 200, or 503 with the reasons; :mod:`ledger_api.readiness`).

Anyone gets the health status, chain id, head block and contract addresses (:class:`PublicHealth`);
the node URL, the store, outbox volumes, the governance state and the version only go to an API key
of the operator or an auditor (:data:`DETAIL_ROLES`). A key that is sent must be valid (401
otherwise, throttled like any failed authentication); a valid key of another role gets the public
answer.
"""

from __future__ import annotations

import logging

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ledger_api.deps import RuntimeDep, authenticate_caller, get_registry_view
from ledger_api.problems import problem_response
from ledger_api.readiness import assess, probe_client, public_rpc
from ledger_api.schemas.health import (
    ChainHealth,
    GovernanceHealth,
    Health,
    PublicChainHealth,
    PublicHealth,
    StoreHealth,
)
from settlement.domains.members import RegistryView
from settlement.chain.client import ChainClient
from settlement.chain.deploy import bootstrap_open
from settlement.core.errors import ChainUnavailableError, LedgerError, NotReadyError
from settlement.pipeline import outbox

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

# A health probe answers within a few seconds even when the node hangs.
HEALTH_RPC_TIMEOUT_S = 2.0
ERROR_TEXT_LEN_MAX = 300
READY_RETRY_AFTER_S = 5
# Who sees the detailed health (node URL, store, outbox, governance, version).
DETAIL_ROLES = frozenset({"operator", "auditor"})


def _probe_client(request: Request, rpc_url: str) -> ChainClient:
    client = getattr(request.app.state, "health_chain", None)
    if client is None or client.rpc_url != rpc_url:
        client = ChainClient(rpc_url, timeout_s=HEALTH_RPC_TIMEOUT_S)
        request.app.state.health_chain = client
    return client


def _wants_detail(request: Request, response: Response, runtime: RuntimeDep,
                  registry: Annotated[RegistryView, Depends(get_registry_view)]) -> bool:
    if "authorization" not in request.headers:
        return False
    who = authenticate_caller(request, response, runtime, registry)
    return who.active and who.has_any(DETAIL_ROLES)


@router.get("/health", response_model=Health | PublicHealth,
            summary="Service health: status, chain id, head block and contracts for anyone; the node, store, "
                    "outbox and governance for the operator's or an auditor's key")
def health(request: Request, runtime: RuntimeDep,
           detail: Annotated[bool, Depends(_wants_detail)]) -> Health | PublicHealth:
    manifest = runtime.manifest
    chain = ChainHealth(reachable=False, rpc=public_rpc(runtime.chain.rpc_url), chain_id=None, head_block=None,
                        manifest_chain_id=manifest.chain_id if manifest else None)
    try:
        probe = _probe_client(request, runtime.chain.rpc_url)
        chain.chain_id = probe.chain_id
        chain.head_block = probe.block_number()
        chain.reachable = True
    except ChainUnavailableError as exc:
        chain.error = f"{exc.type_slug}: {exc.detail}"[:ERROR_TEXT_LEN_MAX]
    store = StoreHealth(dialect=runtime.db.dialect, reachable=False, outbox_depth=None, outbox_by_status={})
    try:
        with runtime.db.read() as session:
            store.outbox_by_status = outbox.status_counts(session)
            store.outbox_depth = outbox.depth(session)
        store.reachable = True
    except Exception as exc:  # the store being down is what this endpoint must report, not raise
        log.warning("health: store unreachable: %s", type(exc).__name__)
    mismatch = manifest is not None and chain.chain_id is not None and manifest.chain_id != chain.chain_id
    if mismatch:
        chain.error = f"the deployment manifest is for chain id {manifest.chain_id}"
    sealed = None
    if manifest is not None and chain.reachable and not mismatch and "ConsortiumRegistry" in manifest.contracts:
        try:
            sealed = not bootstrap_open(_probe_client(request, runtime.chain.rpc_url), manifest)
        except LedgerError as exc:
            log.warning("health: bootstrap state unreadable: %s", exc.type_slug)
    ok = chain.reachable and store.reachable and not mismatch and sealed is not False
    if not detail:
        return PublicHealth(status="ok" if ok else "degraded", contracts=manifest.addresses if manifest else {},
                            chain=PublicChainHealth(reachable=chain.reachable, chain_id=chain.chain_id,
                                                    head_block=chain.head_block))
    return Health(status="ok" if ok else "degraded", version=request.app.version, chain=chain,
                  contracts=manifest.addresses if manifest else {}, store=store,
                  governance=GovernanceHealth(bootstrap_sealed=sealed))


@router.get("/ready", summary="Readiness (no authentication): 200 when ready, else 503 problem+json with `reasons`",
            responses={503: {"description": "not ready: `reasons` lists each failed check (code, detail), "
                                            "`checks` the figures (docs/operations.md)"}})
def ready(request: Request, runtime: RuntimeDep) -> JSONResponse:
    verdict = assess(runtime, probe_client(request.app, runtime.chain.rpc_url), request.app.state.ready_thresholds)
    if verdict.ready:
        return JSONResponse({"status": "ready", "checks": verdict.checks()})
    reasons = [{"code": r.code, "detail": r.detail} for r in verdict.reasons]
    codes = sorted({r.code for r in verdict.reasons})
    return problem_response(NotReadyError(f"not ready: {', '.join(codes)}", retry_after_s=READY_RETRY_AFTER_S),
                            instance=request.url.path, reasons=reasons, checks=verdict.checks())
