"""The webhook delivery worker: its own threads, never the request path, dispatcher or follower.

One coordinator thread loops:

1. **fan out**: for each enabled endpoint, the member's events after the endpoint's cursor that
   its filter takes become ``webhook_deliveries`` rows (one transaction per endpoint and page);
2. **claim**: due deliveries whose object has no earlier undelivered delivery to the same endpoint
   (ordered per object), within each endpoint's in-flight bound, get a lease;
3. **send** them on a bounded thread pool: the event's envelope, signed with the
   ``standardwebhooks`` library (``webhook-id`` = the event id, so a receiver dedupes on it);
4. **record** outcomes in one transaction: 2xx delivered; otherwise the next attempt after an
   exponential backoff with jitter, until ``attempts_max`` (about three days with the defaults):
   then the delivery is kept as ``failed`` (replayable) and the endpoint is disabled, its owner
   told by a ``webhook_endpoint.disabled`` event.

At least once: a lease that runs out (the process died mid-delivery) makes the delivery due again,
sent with the same id and body. A slow receiver holds at most ``per_endpoint_in_flight_max``
threads for at most ``timeout_s`` each, so it cannot starve the others.
"""

from __future__ import annotations

import http.client
import logging
import os
import queue
import random
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, bindparam, exists, func, select, update
from sqlalchemy.orm import aliased
from standardwebhooks import Webhook  # the maintained library signs; nothing hand-written

from settlement.core.errors import ConfigurationError
from settlement.domains.events.producer import Draft, emit
from settlement.domains.events.stream import body_bytes
from settlement.domains.events.webhooks import _matches, signing_secrets
from settlement.runtime import Runtime
from settlement.store.models import utcnow
from settlement.store.models.events import EventRecipient, EventRow, WebhookDelivery, WebhookEndpoint

__all__ = ["DEFAULT_LIMITS", "DeliveryLimits", "DeliveryWorker", "backoff_s", "retry_schedule_s"]

log = logging.getLogger("ledger.webhooks")

USER_AGENT = "ledger-webhooks/1"
ERROR_TEXT_MAX = 300
RESPONSE_BYTES_MAX = 64 * 1024  # of a receiver's answer, read to keep the connection; the rest is dropped
CONNECTIONS_PER_THREAD_MAX = 32


@dataclass(frozen=True)
class DeliveryLimits:
    """Every bound of the delivery worker (env ``LEDGER_WEBHOOK_<NAME>``, upper case)."""

    threads_max: int = 16                # HTTP requests in flight, all endpoints together
    per_endpoint_in_flight_max: int = 8  # requests in flight to one endpoint
    timeout_s: float = 10.0              # one request, connect to last byte of the status line
    lease_s: float = 30.0                # a claimed delivery is due again after this (crash recovery)
    fanout_page_max: int = 500           # events fanned out per endpoint per pass
    claim_max: int = 64                  # deliveries claimed per pass
    retry_base_s: float = 5.0            # first retry after this; then x retry_factor each time
    retry_factor: float = 3.0
    retry_cap_s: float = 8 * 3600.0      # no wait longer than this
    attempts_max: int = 17               # with the defaults: about three days of retries
    jitter_ratio: float = 0.2            # each wait is scaled by a uniform factor in 1 +- this
    idle_interval_s: float = 0.2         # the loop's pause when there is nothing to do
    pass_interval_s: float = 0.05        # at most one pass per this: each pass is up to three short
                                         # write transactions, which share the store's one writer

    def __post_init__(self) -> None:
        if self.lease_s <= self.timeout_s:
            raise ConfigurationError("the webhook lease must be longer than the request timeout")
        if min(self.threads_max, self.per_endpoint_in_flight_max, self.attempts_max, self.claim_max) < 1:
            raise ConfigurationError("webhook limits must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeliveryLimits:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            text = env.get(f"LEDGER_WEBHOOK_{f.name.upper()}")
            if text is None or not text.strip():
                continue
            try:
                values[f.name] = int(text) if f.type in ("int", int) else float(text)
            except ValueError:
                raise ConfigurationError(f"LEDGER_WEBHOOK_{f.name.upper()} must be a number") from None
        return cls(**values)


DEFAULT_LIMITS = DeliveryLimits()


def backoff_s(limits: DeliveryLimits, attempts: int, rng: random.Random | None = None) -> float:
    """The wait after the ``attempts``-th failed attempt (1-based), jittered."""
    base = min(limits.retry_base_s * limits.retry_factor ** (attempts - 1), limits.retry_cap_s)
    spread = (rng or random).uniform(1 - limits.jitter_ratio, 1 + limits.jitter_ratio)
    return base * spread


def retry_schedule_s(limits: DeliveryLimits = DEFAULT_LIMITS) -> list[float]:
    """The un-jittered waits between attempts (docs/events.md shows them)."""
    return [min(limits.retry_base_s * limits.retry_factor ** (n - 1), limits.retry_cap_s)
            for n in range(1, limits.attempts_max)]


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    endpoint_id: str
    event_id: str
    attempts: int
    url: str
    body: bytes
    secrets: tuple[str, ...] = field(repr=False)  # never logged


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    ok: bool
    status_code: int | None
    error: str | None


_D = WebhookDelivery.__table__
# The outcome of one attempt (executemany); the next attempt's time is kept when there is none.
_RECORD = (_D.update().where(_D.c.id == bindparam("did"), _D.c.status == "pending")
           .values(attempts=bindparam("attempts"), lease_until=None, last_status_code=bindparam("last_status_code"),
                   last_error=bindparam("last_error"), status=bindparam("status"),
                   delivered_at=bindparam("delivered_at"),
                   next_attempt_at=func.coalesce(bindparam("next_attempt_at", type_=_D.c.next_attempt_at.type),
                                                 _D.c.next_attempt_at)))


class DeliveryWorker:
    """Delivers webhooks until :meth:`stop`. ``start()`` runs it in its own daemon threads."""

    def __init__(self, runtime: Runtime, limits: DeliveryLimits | None = None) -> None:
        self.runtime = runtime
        self.limits = limits or DeliveryLimits.from_env()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.threads_max, thread_name_prefix="ledger-webhook")
        self._local = threading.local()  # each sending thread's kept-alive connections
        self._done: queue.Queue[_Outcome] = queue.Queue()
        self._wake = threading.Event()  # a send finished: its outcome is waiting, and a slot is free
        self._in_flight: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="ledger-webhooks", daemon=True)
        self.stats = {"delivered": 0, "failed_attempts": 0}

    def start(self) -> DeliveryWorker:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a send finishing during it wakes the next wait
            started = time.monotonic()
            try:
                busy = self.run_once()
            except Exception:
                log.exception("webhook delivery pass failed; retrying")
                busy = 0
            if not busy:
                # Idle until a send finishes (its slot frees up) or the interval passes (new events).
                self._wake.wait(self.limits.idle_interval_s)
            # Paced: outcomes and new events gather for a pass, so the worker's writes stay few
            # (SQLite: the domain's transactions queue behind them on the one writer).
            rest = self.limits.pass_interval_s - (time.monotonic() - started)
            if rest > 0:
                self._stop.wait(rest)

    def run_once(self) -> int:
        """One pass: record finished sends, fan out, claim and send. Returns the work done."""
        work = self._record()
        work += self.fan_out()
        for job in self._claim():
            self._in_flight[job.endpoint_id] = self._in_flight.get(job.endpoint_id, 0) + 1
            self._pool.submit(self._send, job)
            work += 1
        return work

    def drain(self, timeout_s: float = 30.0) -> None:
        """Run passes until nothing is due or in flight (tests and tools)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = self.run_once()
            if not busy and not any(self._in_flight.values()):
                return
            if not busy:
                time.sleep(0.02)
        raise TimeoutError("webhook deliveries still in flight")

    # -- fan out ----------------------------------------------------------------------------------

    def fan_out(self) -> int:
        db = self.runtime.db
        with db.read() as session:
            endpoints = list(session.execute(select(WebhookEndpoint.id, WebhookEndpoint.member_id,
                                                    WebhookEndpoint.cursor_seq)
                                             .where(WebhookEndpoint.status == "enabled")))
            due = []
            for ep in endpoints:
                newer = session.scalar(select(EventRecipient.event_seq).where(
                    EventRecipient.member_id == ep.member_id, EventRecipient.event_seq > ep.cursor_seq).limit(1))
                if newer is not None:
                    due.append(ep.id)
        if not due:
            return 0
        with self.runtime.db.transaction() as session:  # one transaction for every endpoint due
            return sum(self._fan_out_endpoint(session, endpoint_id) for endpoint_id in due)

    def _fan_out_endpoint(self, session: Any, endpoint_id: str) -> int:
        # Locked (PostgreSQL): two worker processes never fan out one endpoint's cursor twice.
        ep = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if ep is None or ep.status != "enabled":
            return 0
        rows = list(session.execute(
            select(EventRow.seq, EventRow.id, EventRow.type, EventRow.object_type, EventRow.object_id)
            .join(EventRecipient, and_(EventRecipient.event_seq == EventRow.seq,
                                       EventRecipient.member_id == ep.member_id))
            .where(EventRow.seq > ep.cursor_seq).order_by(EventRow.seq).limit(self.limits.fanout_page_max)))
        if not rows:
            return 0
        now = utcnow()
        new = [{"endpoint_id": ep.id, "event_seq": r.seq, "event_id": r.id,
                "object_key": f"{r.object_type}:{r.object_id}", "round": 0, "status": "pending", "attempts": 0,
                "next_attempt_at": now, "created_at": now}
               for r in rows if _matches(ep.event_types, r.type)]
        if new:
            session.execute(WebhookDelivery.__table__.insert(), new)
        ep.cursor_seq = rows[-1].seq
        return len(rows)

    # -- claim ------------------------------------------------------------------------------------

    def _claim(self) -> list[_Job]:
        lim = self.limits
        room = lim.threads_max - sum(self._in_flight.values())
        if room <= 0:
            return []
        now = utcnow()
        d = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(earlier.endpoint_id == d.endpoint_id, earlier.object_key == d.object_key,
                                 earlier.status == "pending",
                                 (earlier.event_seq < d.event_seq)
                                 | and_(earlier.event_seq == d.event_seq, earlier.round < d.round))
        # Endpoints at their in-flight bound are left out of the query itself, so a slow endpoint
        # with a long backlog cannot fill every page of candidates and starve the others.
        full = [e for e, n in self._in_flight.items() if n >= lim.per_endpoint_in_flight_max]
        free = (d.lease_until.is_(None)) | (d.lease_until < now)
        jobs: list[_Job] = []
        with self.runtime.db.transaction() as session:
            q = (select(d.id, d.endpoint_id, d.event_seq, d.event_id, d.attempts)
                 .join(WebhookEndpoint, and_(WebhookEndpoint.id == d.endpoint_id, WebhookEndpoint.status == "enabled"))
                 .where(d.status == "pending", d.next_attempt_at <= now, free, ~blocked)
                 .order_by(d.next_attempt_at, d.event_seq).limit(lim.claim_max))
            if full:
                q = q.where(d.endpoint_id.not_in(full))
            candidates = list(session.execute(q))
            taken: list[Any] = []
            per_endpoint = dict(self._in_flight)
            for c in candidates:
                if len(taken) >= room or per_endpoint.get(c.endpoint_id, 0) >= lim.per_endpoint_in_flight_max:
                    continue
                per_endpoint[c.endpoint_id] = per_endpoint.get(c.endpoint_id, 0) + 1
                taken.append(c)
            if not taken:
                return []
            lease = now + timedelta(seconds=lim.lease_s)
            # Another worker process may have claimed some meanwhile: only what this UPDATE took.
            claimed = set(session.execute(update(d).where(d.id.in_([c.id for c in taken]), d.status == "pending", free)
                                          .values(lease_until=lease).returning(d.id)).scalars())
            taken = [c for c in taken if c.id in claimed]
            if not taken:
                return []
            endpoints = {e.id: e for e in session.scalars(select(WebhookEndpoint).where(
                WebhookEndpoint.id.in_({c.endpoint_id for c in taken})))}
            events = {e.seq: e for e in session.scalars(select(EventRow).where(
                EventRow.seq.in_({c.event_seq for c in taken})))}
            secrets_by_endpoint = {eid: tuple(signing_secrets(self.runtime, ep, now)) for eid, ep in endpoints.items()}
            for c in taken:
                ep, event = endpoints[c.endpoint_id], events[c.event_seq]
                jobs.append(_Job(c.id, ep.id, event.id, c.attempts, ep.url, body_bytes(event),
                                 secrets_by_endpoint[ep.id]))
        return jobs

    # -- send -------------------------------------------------------------------------------------

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        """This thread's kept-alive connection to the URL's origin, and the request target.
        (The standard library's client: a fifth of httpx's CPU per request, which matters in a
        process whose API, dispatcher and follower share the interpreter.)"""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port)
        cache: dict[tuple, http.client.HTTPConnection] = getattr(self._local, "connections", None) or {}
        self._local.connections = cache
        conn = cache.get(origin)
        if conn is None:
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=self.limits.timeout_s,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.limits.timeout_s)
            if len(cache) >= CONNECTIONS_PER_THREAD_MAX:
                cache.pop(next(iter(cache))).close()
            cache[origin] = conn
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return conn, target

    def _drop(self, url: str) -> None:
        parts = urlsplit(url)
        cache = getattr(self._local, "connections", None) or {}
        conn = cache.pop((parts.scheme, parts.hostname or "", parts.port), None)
        if conn is not None:
            conn.close()

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            conn, target = self._connection(url)
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                response.read(RESPONSE_BYTES_MAX)
                if not response.isclosed():
                    self._drop(url)  # a longer answer than we read: not reusable
                elif response.will_close:
                    self._drop(url)
                return response.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(url)
                if attempt == 2:
                    raise  # a kept-alive connection the server had closed: tried once afresh
            except Exception:
                self._drop(url)
                raise
        raise AssertionError("unreachable")

    def _send(self, job: _Job) -> None:
        try:
            now = datetime.now().astimezone()  # signed at send time: the timestamp is fresh on every attempt
            signatures = " ".join(Webhook(s).sign(job.event_id, now, job.body) for s in job.secrets)
            headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "webhook-id": job.event_id,
                       "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signatures}
            status = self._post(job.url, job.body, headers)
            ok = 200 <= status < 300
            outcome = _Outcome(job, ok, status, None if ok else f"HTTP {status}")
        except (OSError, http.client.HTTPException) as exc:
            outcome = _Outcome(job, False, None, f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_MAX])
        except Exception as exc:  # never lose the outcome: the lease would hide the delivery
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)
            outcome = _Outcome(job, False, None, f"{type(exc).__name__}"[:ERROR_TEXT_MAX])
        self._done.put(outcome)
        self._wake.set()

    # -- record -----------------------------------------------------------------------------------

    def _record(self) -> int:
        outcomes: list[_Outcome] = []
        while True:
            try:
                outcomes.append(self._done.get_nowait())
            except queue.Empty:
                break
        if not outcomes:
            return 0
        lim = self.limits
        now = utcnow()
        disable: dict[str, str] = {}
        rows = []
        for o in outcomes:
            attempts = o.job.attempts + 1
            row = {"did": o.job.delivery_id, "attempts": attempts, "last_status_code": o.status_code,
                   "last_error": o.error, "status": "pending", "delivered_at": None, "next_attempt_at": None}
            if o.ok:
                row.update(status="delivered", delivered_at=now)
                self.stats["delivered"] += 1
            elif attempts >= lim.attempts_max:
                row.update(status="failed")
                disable[o.job.endpoint_id] = o.job.event_id
                self.stats["failed_attempts"] += 1
            else:
                row.update(next_attempt_at=now + timedelta(seconds=backoff_s(lim, attempts)))
                self.stats["failed_attempts"] += 1
            rows.append(row)
        with self.runtime.db.transaction() as session:
            session.connection().execute(_RECORD, rows)  # one executemany for the pass
            for endpoint_id, event_id in disable.items():
                self._disable(session, endpoint_id, event_id)
        for o in outcomes:
            left = self._in_flight.get(o.job.endpoint_id, 1) - 1
            if left > 0:
                self._in_flight[o.job.endpoint_id] = left
            else:
                self._in_flight.pop(o.job.endpoint_id, None)
        return len(outcomes)

    def _disable(self, session: Any, endpoint_id: str, event_id: str) -> None:
        ep = session.get(WebhookEndpoint, endpoint_id)
        if ep is None or ep.status != "enabled":
            return
        reason = f"every attempt to deliver {event_id} failed ({self.limits.attempts_max} attempts)"
        ep.status, ep.disabled_reason, ep.updated_at = "disabled", reason[:200], utcnow()
        log.warning("webhook endpoint %s of %s disabled: %s", ep.id, ep.member_id, reason)
        emit(session.connection(), [Draft("webhook_endpoint.disabled", ep.id, "disabled", {ep.member_id},
                                          {"id": ep.id, "url": ep.url, "status": "disabled",
                                           "disabled_reason": ep.disabled_reason})])
