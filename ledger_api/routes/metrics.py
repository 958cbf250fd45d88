"""``GET /metrics``: Prometheus text from a per-app registry (never the process-global one), for
the operator's or an auditor's API key (``Authorization: Bearer``) only.

HTTP traffic is counted by :class:`MetricsMiddleware` (method, route template, status; a bounded
label set: unknown paths count as ``<unmatched>``). Store and worker figures are read at scrape
time: the outbox from the database, and from ``runtime.stats`` the keys the workers fill:

- ``dispatch_latency_s_sum`` (float) and ``dispatch_latency_s_count`` (int): seconds from outbox
  insert to mined receipt, summed, and the number of rows measured;
- ``follower_lag_blocks`` (int): chain head minus the follower's checkpoint.

Readiness (:mod:`ledger_api.readiness`, the same facts as ``GET /ready``), read at scrape time:
``ledger_ready`` (1/0), ``ledger_not_ready{reason}`` (1 for each failed check, 0 for the others),
``ledger_store_reachable``, ``ledger_chain_reachable``, ``ledger_chain_head_block``,
``ledger_follower_checkpoint_lag_blocks``, ``ledger_outbox_oldest_age_seconds`` and
``ledger_signer_nonce_gap{signer}`` (missing nonces below a signer's lowest in-flight one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_api.deps import Principal, require_roles
from ledger_api.readiness import READY_REASONS, Readiness
from settlement.pipeline import outbox
from settlement.runtime import Runtime

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATS_DISPATCH_SUM = "dispatch_latency_s_sum"
STATS_DISPATCH_COUNT = "dispatch_latency_s_count"
STATS_FOLLOWER_LAG = "follower_lag_blocks"


class _RuntimeCollector(Collector):
    """Figures read when scraped: outbox depth and statuses, dispatch latency, follower lag."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | SummaryMetricFamily]:
        depth = GaugeMetricFamily("ledger_outbox_depth", "Outbox rows not yet on chain (pending, signed, sent)")
        by_status = GaugeMetricFamily("ledger_outbox_rows", "Outbox rows by status", labels=["status"])
        try:
            with self.runtime.db.read() as session:
                depth.add_metric([], outbox.depth(session))
                for status, count in sorted(outbox.status_counts(session).items()):
                    by_status.add_metric([status], count)
        except Exception as exc:  # a scrape must not fail because the store is down
            log.warning("metrics: store unreadable: %s", type(exc).__name__)
        yield depth
        yield by_status
        stats = self.runtime.stats
        if STATS_DISPATCH_COUNT in stats:
            summary = SummaryMetricFamily("ledger_dispatch_latency_seconds",
                                          "Seconds from outbox insert to mined receipt")
            summary.add_metric([], count_value=int(stats[STATS_DISPATCH_COUNT]),
                               sum_value=float(stats.get(STATS_DISPATCH_SUM, 0.0)))
            yield summary
        if STATS_FOLLOWER_LAG in stats:
            lag = GaugeMetricFamily("ledger_follower_lag_blocks", "Chain head minus the follower checkpoint")
            lag.add_metric([], float(stats[STATS_FOLLOWER_LAG]))
            yield lag


class _ReadinessCollector(Collector):
    """The readiness verdict and its figures, assessed when scraped."""

    def __init__(self, assess: Callable[[], Readiness]) -> None:
        self.assess = assess

    def collect(self) -> Iterator[GaugeMetricFamily]:
        r = self.assess()
        failed = {reason.code for reason in r.reasons}
        yield GaugeMetricFamily("ledger_ready", "1 when GET /ready answers 200", value=int(r.ready))
        not_ready = GaugeMetricFamily("ledger_not_ready", "1 for each readiness check that fails", labels=["reason"])
        for code in READY_REASONS:
            not_ready.add_metric([code], int(code in failed))
        yield not_ready
        yield GaugeMetricFamily("ledger_store_reachable", "1 when the store answered", value=int(r.store_reachable))
        yield GaugeMetricFamily("ledger_chain_reachable", "1 when the node answered", value=int(r.chain_reachable))
        figures = (("ledger_chain_head_block", "The node's head block", r.head_block),
                   ("ledger_follower_checkpoint_lag_blocks", "Chain head minus the follower's stored checkpoint",
                    r.follower_lag_blocks),
                   ("ledger_outbox_oldest_age_seconds", "Age of the oldest outbox row not yet on chain",
                    r.outbox_oldest_age_s))
        for name, doc, value in figures:
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=float(value))
        gaps = GaugeMetricFamily("ledger_signer_nonce_gap", "Nonces missing on the node below a signer's lowest "
                                 "in-flight outbox nonce (0: none)", labels=["signer"])
        for signer in r.signers:
            if signer.chain_pending_nonce is not None:
                gaps.add_metric([signer.signer], signer.gap)
        yield gaps


class ApiMetrics:
    """The app's own Prometheus registry and its HTTP instruments."""

    def __init__(self, runtime: Runtime, readiness: Callable[[], Readiness] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("ledger_http_requests", "HTTP requests handled",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("ledger_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.registry.register(_RuntimeCollector(runtime))
        if readiness is not None:
            self.registry.register(_ReadinessCollector(readiness))

    def render(self) -> bytes:
        return generate_latest(self.registry)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class MetricsMiddleware:
    """Counts every HTTP request under its route template (pure ASGI, outermost)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


# Per-route volumes and the pipeline's figures are not for anyone who reaches the port: the
# operator's or an auditor's API key (Prometheus: `authorization: {type: Bearer, credentials: ...}`).
MetricsReader = Annotated[Principal, Depends(require_roles("operator", "auditor"))]


@router.get("/metrics", summary="Prometheus metrics (the operator's or an auditor's API key)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
def metrics(request: Request, _reader: MetricsReader) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
