"""Structured logs: JSON lines, a request id in every line of a request, an access log line per
request (issue 15).

- :func:`configure_logging` sets the root logger to one stream handler writing either JSON lines
  (``ledger up`` and ``ledger worker``, for log collectors) or plain text (the CLI's other
  commands, for people). Each JSON line holds ``ts`` (RFC 3339 UTC, ``Z``), ``level``,
  ``logger``, ``msg``, the ``request_id`` of the request it belongs to (if any), the structured
  fields passed as ``extra=`` (``tx_hash`` on chain events, the access log's fields), and
  ``exc`` for a traceback.
- :class:`RequestLogMiddleware` (outermost ASGI middleware) gives each request an id (the
  client's ``X-Request-ID`` when it is sane: 1-64 letters, digits and ``._:-``; else a new
  one), keeps it in a context variable for every log line of that request (thread-pool work
  included: Starlette copies the context into its threads), sends it back in ``X-Request-ID``
  (problem+json answers carry it as ``request_id`` too), and writes one ``ledger.access`` line
  when the answer is sent: method, path TEMPLATE (``/v1/settlements/{settlement_id}``: never the
  query string, which may carry a secret, nor ids), status, duration, the member id once
  authenticated.
- Secrets are never logged in the first place (tests/callbacks/test_logs.py drives authenticated
  requests, signed callbacks and key creation, tests/custody/test_hsm_logs.py HSM logins, and
  neither finds one in the captured lines); as a second line of defence the formatter masks the shapes it can recognise: API keys
  (``lk_<prefix>_<secret>``), bearer tokens, Stripe webhook secrets and PEM private keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ACCESS_LOGGER", "QUIET_LOGGERS", "REQUEST_ID_HEADER", "JsonFormatter", "RequestContextFilter", "RequestLogMiddleware",
    "configure_logging", "current_request_id", "redact",
]

REQUEST_ID_HEADER = "X-Request-ID"
ACCESS_LOGGER = "ledger.access"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
LOG_MESSAGE_CHARS_MAX = 8_000  # one line stays one line a collector accepts
_UNMATCHED = "<unmatched>"
# Libraries kept at WARNING: their INFO and DEBUG lines (request URLs, RPC payloads) are noise,
# and a URL may carry credentials.
QUIET_LOGGERS = ("web3", "urllib3", "alembic", "httpx", "httpcore", "asyncio")

_request_id: ContextVar[str | None] = ContextVar("ledger_request_id", default=None)

# What a LogRecord carries by itself; anything else on it came through ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                    "request_id"}
_SECRET_SHAPES = (
    (re.compile(r"\b(lk_[a-z0-9]{4,16}_)[A-Za-z0-9_-]{8,}"), r"\1***"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"), "whsec_***"),
    (re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
     "[private key redacted]"),
)


def current_request_id() -> str | None:
    """The id of the request being handled in this context (None outside a request)."""
    return _request_id.get()


def redact(text: str) -> str:
    """``text`` with the secret shapes this module recognises masked."""
    for pattern, replacement in _SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


class RequestContextFilter(logging.Filter):
    """Puts the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))[:LOG_MESSAGE_CHARS_MAX]


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module doc)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": _timestamp(record.created), "level": record.levelname.lower(),
                               "logger": record.name,
                               "msg": redact(record.getMessage())[:LOG_MESSAGE_CHARS_MAX]}
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            doc["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                doc[key] = _jsonable(value)
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))[:LOG_MESSAGE_CHARS_MAX]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Plain lines for people, with the request id when there is one; secrets masked as above."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        request_id = getattr(record, "request_id", None)
        return f"{line} [request {request_id}]" if request_id else line


def configure_logging(fmt: str = "json", level: str | int = "INFO", stream: IO[str] | None = None, *,
                      force: bool = True) -> logging.Handler | None:
    """Send every log record to one handler on ``stream`` (stderr), as JSON lines or text,
    replacing the root logger's handlers; returns the handler. With ``force=False`` a root logger
    that already has handlers (an embedding program's, a test runner's) is left as it is, like
    ``logging.basicConfig``, and None is returned."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format is json or text, got {fmt!r}")
    root = logging.getLogger()
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if root.handlers and not force:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if REQUEST_ID_RE.match(text) else None
    return None


class RequestLogMiddleware:
    """Request ids and the access log (pure ASGI; add it last, so it is outermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*(h for h in message.get("headers", []) if h[0] != header[0]), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            state = scope.get("state") or {}
            self.log.info("%s %s %d", scope.get("method", ""), getattr(route, "path", None) or _UNMATCHED, status,
                          extra={"method": scope.get("method", ""), "path": getattr(route, "path", None) or _UNMATCHED,
                                 "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                                 "member_id": state.get("member_id")})
            _request_id.reset(token)
