"""The one place where errors become HTTP answers: RFC 9457 ``application/problem+json``.

- :class:`~settlement.core.errors.LedgerError` -> its status, ``type`` (``urn:ledger:problem:<slug>``,
  stable: clients match on it), title, detail and extra fields;
- request validation -> 422 ``validation-failed`` with an ``errors`` list (field path, message,
  code; the rejected input is never echoed, it may hold a secret);
- Starlette HTTP errors (unknown route, wrong method) -> problem+json with a stable type;
- the store unreachable or its writer busy past the wait bound (SQLAlchemy ``OperationalError``)
  -> 503 ``store-unavailable`` with ``Retry-After`` (nothing was written: the transaction rolled back);
- anything else -> 500 ``internal-error``, logged here with its traceback, the client told nothing.

:class:`ProblemGuard` is an ASGI middleware that bounds request bodies (413
``payload-too-large``, by Content-Length and by counting a streamed body) and turns an exception
escaping the app into the 500 problem, so no framework HTML or traceback ever reaches a client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from anchors.errors import AnchorsError, NodeUnavailableError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_api.logs import current_request_id
from settlement.core.errors import (
    AuthenticationError,
    BadRequestError,
    ChainUnavailableError,
    ForbiddenError,
    LedgerError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    StoreUnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
)

__all__ = ["PROBLEM_MEDIA_TYPE", "BODY_BYTES_MAX", "problem_response", "install_problem_handlers",
           "ProblemGuard"]

log = logging.getLogger("ledger_api.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"
BODY_BYTES_MAX = 1024 * 1024
VALIDATION_ERRORS_MAX = 50
VALIDATION_MESSAGE_LEN_MAX = 300
# Fields a problem always has; extras from a LedgerError may not overwrite them.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "request_id"})

_HTTP_STATUS_ERRORS: dict[int, type[LedgerError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: RouteNotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
}


def problem_response(error: LedgerError, *, instance: str | None = None,
                     headers: dict[str, str] | None = None, **fields: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": error.type_uri, "title": error.title, "status": error.status,
                            "detail": error.detail}
    if instance:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id is not None:  # the same id as the X-Request-ID header and the request's log lines
        body["request_id"] = request_id
    for key, value in {**error.extra, **fields}.items():
        if key not in _RESERVED and value is not None:
            body[key] = _jsonable(value)
    all_headers = dict(headers or {})
    retry_after_s = error.extra.get("retry_after_s")
    if isinstance(retry_after_s, int) and retry_after_s > 0:
        all_headers.setdefault("Retry-After", str(retry_after_s))
    if isinstance(error, AuthenticationError) and error.status == 401:
        # RFC 6750: a 401 names the scheme; error="invalid_token" when one was presented.
        reason = error.extra.get("reason")
        all_headers.setdefault("WWW-Authenticate",
                               'Bearer realm="ledger"' + (', error="invalid_token"' if reason else ""))
    return JSONResponse(body, status_code=error.status, headers=all_headers, media_type=PROBLEM_MEDIA_TYPE)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


async def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    if exc.status >= 500:
        log.error("%s on %s %s: %s", exc.type_slug, request.method, request.url.path, exc.detail)
    return problem_response(exc, instance=request.url.path)


async def _anchors_error(request: Request, exc: Exception) -> JSONResponse:
    """An error of the standalone ``anchors`` package that reached the web layer as it is: a bad
    value is a validation problem, a node that cannot be asked a chain-unavailable one."""
    assert isinstance(exc, AnchorsError)
    error: LedgerError
    if isinstance(exc, NodeUnavailableError):
        error = ChainUnavailableError(exc.detail, **exc.extra)
    else:
        error = ValidationError(exc.detail, **exc.extra)
    return await _ledger_error(request, error)


def _field_path(loc: tuple | list) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for item in exc.errors()[:VALIDATION_ERRORS_MAX]:
        # Only where and why: "input" and "ctx" can carry what the client sent (a key, a secret).
        errors.append({"field": _field_path(item.get("loc", ())),
                       "message": str(item.get("msg", ""))[:VALIDATION_MESSAGE_LEN_MAX],
                       "code": str(item.get("type", ""))})
    if any(e["code"] == "json_invalid" for e in errors):
        return problem_response(BadRequestError("the body is not valid JSON"), instance=request.url.path,
                                errors=errors)
    count = len(exc.errors())
    return problem_response(ValidationError(f"{count} invalid field{'s' if count != 1 else ''}"),
                            instance=request.url.path, errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_cls = _HTTP_STATUS_ERRORS.get(exc.status_code)
    if error_cls is None:
        error = LedgerError(str(exc.detail)[:VALIDATION_MESSAGE_LEN_MAX])
        error.status, error.type_slug, error.title = exc.status_code, f"http-{exc.status_code}", "HTTP error"
    elif exc.status_code == 404 and exc.detail == "Not Found":
        error = error_cls(f"no resource at {request.url.path[:200]}")
    elif exc.status_code == 405:
        error = error_cls(f"{request.method} is not allowed on {request.url.path[:200]}")
    else:
        error = error_cls(str(exc.detail)[:VALIDATION_MESSAGE_LEN_MAX])
    return problem_response(error, instance=request.url.path, headers=dict(exc.headers or {}))


STORE_RETRY_AFTER_S = 2


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The driver's message can name hosts and users: logged, never sent.
    log.error("store unavailable on %s %s: %s", request.method, request.url.path, str(exc).splitlines()[0][:300])
    return problem_response(StoreUnavailableError("the store is unavailable or busy; nothing was written",
                                                  retry_after_s=STORE_RETRY_AFTER_S),
                            instance=request.url.path)


def internal_error_response(path: str | None) -> JSONResponse:
    return problem_response(LedgerError("the service failed to handle this request; it has been logged"),
                            instance=path)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return internal_error_response(request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(AnchorsError, _anchors_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _store_unavailable)
    app.add_exception_handler(Exception, _unhandled)


class _BodyTooLarge(Exception):
    pass


class ProblemGuard:
    """Bounds the request body and catches what escapes the app (pure ASGI: no body copies
    beyond the bound, works for streamed bodies)."""

    def __init__(self, app: ASGIApp, body_bytes_max: int = BODY_BYTES_MAX) -> None:
        self.app = app
        self.body_bytes_max = body_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        declared = _content_length(scope)
        if declared is not None and declared > self.body_bytes_max:
            await self._too_large(scope, send, path)
            return
        try:
            body = await self._read_body(receive)
        except _BodyTooLarge:
            await self._too_large(scope, send, path)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), path, exc_info=exc)
            if not started:
                await internal_error_response(path)(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_bytes_max:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, send: Send, path: str) -> None:
        response = problem_response(
            PayloadTooLargeError(f"the request body exceeds {self.body_bytes_max} bytes",
                                 limit_bytes=self.body_bytes_max),
            instance=path, headers={"Connection": "close"})

        async def no_more_input() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_more_input, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
