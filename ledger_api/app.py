"""The app factory: ``create_app(runtime, settings)`` builds the FastAPI app around a Runtime.

The runtime (store, chain, vault, operator, manifest) is built by the caller (``ledger up`` or a
test); ``app.state.runtime`` is a view of it whose chain client has the request path's short
timeout (``LEDGER_REQUEST_RPC_TIMEOUT_S``). The app never starts or stops it.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from ledger_api.console import install_console
from ledger_api.docs import install_docs
from ledger_api.logs import RequestLogMiddleware
from ledger_api.openapi import install_openapi, operation_id
from ledger_api.problems import BODY_BYTES_MAX, ProblemGuard, install_problem_handlers
from ledger_api.readiness import ReadyThresholds, assess, probe_client
from ledger_api.routes import api_router
from ledger_api.routes.metrics import ApiMetrics, MetricsMiddleware
from ledger_api.routes.webhooks import document_deliveries
from ledger_api.settings import Settings
from ledger_api.throttle import FailedAuthThrottle
from settlement.domains.members import REGISTRY_CACHE_TTL_S, RegistryView
from settlement.runtime import Runtime

__all__ = ["create_app", "service_version"]

DESCRIPTION = """\
A permissioned ledger for cross-border payments and supply-chain finance.

Authenticate with `Authorization: Bearer <api key>` (the **Authorize** button); each key belongs to
one consortium member, whose roles come from the on-chain `ConsortiumRegistry`. Errors are RFC 9457
`application/problem+json` with a stable `type` (`urn:ledger:problem:<slug>`) and the request's
`request_id` (also the `X-Request-ID` header). Every creating POST that says so takes a required
`Idempotency-Key`. The conventions (tenancy, lists, timestamps, ids) are in the project's
`docs/api.md`.
"""


def service_version() -> str:
    try:
        return version("ledger")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def create_app(runtime: Runtime, settings: Settings, *, registry_cache_ttl_s: float = REGISTRY_CACHE_TTL_S,
               body_bytes_max: int = BODY_BYTES_MAX, auth_throttle: FailedAuthThrottle | None = None) -> FastAPI:
    app = FastAPI(title="Ledger API", description=DESCRIPTION, version=service_version(),
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  generate_unique_id_function=operation_id)
    # Requests read the node through a client of their own with a short timeout: a hung node
    # makes them fall back (roles from the mirror) or fail fast (503), never hang. The workers keep
    # the runtime's client and its longer timeout. Nothing in a request sends to the chain.
    request_chain = runtime.chain.with_timeout(settings.request_rpc_timeout_s)
    runtime = dataclasses.replace(runtime, chain=request_chain)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.registry_view = RegistryView(runtime, ttl_s=registry_cache_ttl_s, chain=request_chain)
    thresholds = ReadyThresholds(follower_lag_blocks_max=settings.ready_follower_lag_blocks_max,
                                 outbox_age_s_max=settings.ready_outbox_age_s_max, confirmations=settings.confirmations)
    app.state.ready_thresholds = thresholds
    app.state.metrics = ApiMetrics(
        runtime, readiness=lambda: assess(runtime, probe_client(app, runtime.chain.rpc_url), thresholds))
    app.state.auth_throttle = FailedAuthThrottle() if auth_throttle is None else auth_throttle
    install_problem_handlers(app)
    # add_middleware wraps: the last added is outermost. Metrics sees every answer, including the
    # guard's 413 and 500 problems.
    app.add_middleware(ProblemGuard, body_bytes_max=body_bytes_max)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestLogMiddleware)  # outermost: request id and access log for every answer
    app.include_router(api_router)
    document_deliveries(app.webhooks)  # the OpenAPI `webhooks` section: what members' receivers get
    install_openapi(app)
    install_docs(app, openapi_url="/openapi.json")
    install_console(app, session_ttl_s=settings.console_session_ttl_s)
    return app
