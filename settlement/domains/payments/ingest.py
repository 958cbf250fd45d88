"""Ingesting one provider callback: verify the raw bytes, record durably once, then answer.

:func:`ingest_async` is what ``POST /v1/callbacks/{provider}/{account}`` runs (on the event loop;
:func:`ingest` is the same for a caller in a thread):

1. the account's verifier (cached; unknown or disabled accounts are refused like bad signatures;
   a cache miss reads the store in a worker thread);
2. ``adapter.verify_and_parse`` on the raw body and headers: size, content type, signature and
   its timestamp window, and only then the body is interpreted. Any refusal is recorded as a
   security event (kind ``callback.<problem slug>``, with the body's SHA-256 and length, never
   the body or a header) and answered with the provider's own refusal (``adapter.nack``);
3. the durable write, handed to the database's group writer (:mod:`.writer`): ONE transaction
   holds the callback row (raw body, parsed fields), its effect (:mod:`.matching`), outcome and
   journal digest, written with the other deliveries waiting at that moment
   (:mod:`.record`); a fact already recorded only counts the delivery (``duplicate``);
4. only after that transaction committed the provider gets its acknowledgement
   (``adapter.ack``). A store that cannot be written gets the provider's retry answer (503), so
   nothing is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from settlement.core.errors import (
    CallbackMalformedError,
    CallbackStoreUnavailableError,
    LedgerError,
    UnknownProviderError,
)
from settlement.domains.members import apikeys
from settlement.domains.payments import accounts
from settlement.domains.payments.record import (
    CALLBACK_DIGEST_KIND,
    Recorded,
    record_callback_digest,
    values_of,
)
from settlement.domains.payments.writer import writer_for
from settlement.providers import (
    InboundRequest,
    ProviderAccount,
    ProviderAdapter,
    ProviderResponse,
    VerifiedNotification,
    adapter_for,
)
from settlement.runtime import Runtime

log = logging.getLogger("ledger.callbacks")

__all__ = ["CALLBACK_DIGEST_KIND", "RECORD_WAIT_S", "CallbackResult", "ingest", "ingest_async",
           "record_callback_digest"]

SECURITY_DETAIL_CHARS_MAX = 400
# How long a delivery waits for its transaction before the provider is told to retry (the write
# may still commit: the retry is then a duplicate, acknowledged without a second effect).
RECORD_WAIT_S = 30.0


@dataclass(frozen=True)
class CallbackResult:
    """What happened to one delivery: the answer for the provider, and for logs and tests the
    outcome (``applied``/``deferred``/``exception``/``noted``, ``duplicate``, or ``rejected``)."""

    response: ProviderResponse
    outcome: str
    callback_id: int | None = None
    problem: str | None = None  # the refusal's problem slug

    @property
    def accepted(self) -> bool:
        return self.outcome != "rejected"


def _security_event(runtime: Runtime, provider: str, account: str, error: LedgerError, body: bytes,
                    source: str) -> None:
    detail = (f"{provider}/{str(account)[:64]}: {error.title}: {error.detail[:200]}; "
              f"body_sha256={hashlib.sha256(body).hexdigest()} bytes={len(body)}")
    try:
        with runtime.db.transaction() as session:
            apikeys.record_security_event(session, f"callback.{error.type_slug}"[:64], source=source,
                                          detail=detail[:SECURITY_DETAIL_CHARS_MAX])
    except SQLAlchemyError:  # recording must not turn a refusal into a 500
        log.exception("could not record the security event of a refused %s callback", provider)


def _verify(adapter: ProviderAdapter, material: ProviderAccount, provider: str, body: bytes,
            headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
            received_at: datetime | None) -> tuple[VerifiedNotification, dict]:
    """(notification, callback row values) of an authentic notification. Raises LedgerError for a
    refusal; an adapter surprise becomes CallbackMalformedError (the sender's problem, reported
    without the body)."""
    try:
        request = InboundRequest.build(body, headers, received_at=received_at)
        notification = adapter.verify_and_parse(material, request)
        return notification, values_of(notification, request)
    except LedgerError:
        raise
    except Exception:
        log.exception("%s callback refused by an unexpected error", provider)
        raise CallbackMalformedError(f"{provider} notification could not be read") from None


def _give_up(future: asyncio.Future[Recorded]) -> None:
    """The delivery was not recorded within RECORD_WAIT_S: the provider is told to retry. A
    delivery not yet taken by the writer is then not written (its future is done)."""
    if not future.done():
        future.set_exception(CallbackStoreUnavailableError("the callback was not recorded in time"))


def _answer(adapter: ProviderAdapter, notification: VerifiedNotification, recorded: Recorded) -> CallbackResult:
    return CallbackResult(adapter.ack(notification), recorded.outcome, recorded.callback_id)


def ingest(runtime: Runtime, provider: str, account: str, body: bytes,
           headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]], *,
           received_at: datetime | None = None, source: str = "") -> CallbackResult:
    """Verify, record and answer one callback delivery (see the module doc), blocking until its
    transaction committed. Raises only UnknownProviderError (the provider's answer format is
    unknown); everything else is answered in the provider's format."""
    try:
        adapter = adapter_for(provider)
    except UnknownProviderError as exc:
        _security_event(runtime, str(provider)[:16], account, exc, body, source)
        raise
    try:
        material = accounts.verifier(runtime, provider, account)
        notification, values = _verify(adapter, material, provider, body, headers, received_at)
    except LedgerError as exc:
        _security_event(runtime, provider, account, exc, body, source)
        return CallbackResult(adapter.nack(exc), "rejected", problem=exc.type_slug)
    try:
        future = writer_for(runtime.db).submit(runtime, values)
        try:
            recorded = future.result(timeout=RECORD_WAIT_S)
        except FutureTimeoutError:
            future.cancel()
            raise CallbackStoreUnavailableError("the callback was not recorded in time") from None
    except CallbackStoreUnavailableError as exc:
        return CallbackResult(adapter.nack(exc), "rejected", problem=exc.type_slug)
    return _answer(adapter, notification, recorded)


async def ingest_async(runtime: Runtime, provider: str, account: str, body: bytes,
                       headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]], *,
                       received_at: datetime | None = None, source: str = "") -> CallbackResult:
    """:func:`ingest` for an event loop: verification runs on the loop (HMAC or one RSA public-key
    operation, on a body of at most 64 KiB); store reads and writes run in threads (the group
    writer for the callback, a worker thread for an account cache miss or a security event); the
    answer is returned after the delivery's transaction committed."""
    try:
        adapter = adapter_for(provider)
    except UnknownProviderError as exc:
        await asyncio.to_thread(_security_event, runtime, str(provider)[:16], account, exc, body, source)
        raise
    try:
        material = accounts.cached_verifier(runtime, provider, account)
        if material is None:
            material = await asyncio.to_thread(accounts.verifier, runtime, provider, account)
        notification, values = _verify(adapter, material, provider, body, headers, received_at)
    except LedgerError as exc:
        await asyncio.to_thread(_security_event, runtime, provider, account, exc, body, source)
        return CallbackResult(adapter.nack(exc), "rejected", problem=exc.type_slug)
    try:
        future = writer_for(runtime.db).submit_async(runtime, values)
        timer = asyncio.get_running_loop().call_later(RECORD_WAIT_S, _give_up, future)
        try:
            recorded = await future
        finally:
            timer.cancel()
    except CallbackStoreUnavailableError as exc:
        return CallbackResult(adapter.nack(exc), "rejected", problem=exc.type_slug)
    return _answer(adapter, notification, recorded)
