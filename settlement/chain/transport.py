"""JSON-RPC over HTTP(S) with one persistent connection per thread, on the standard library.

The dispatcher, the follower and the API threads each poll the node many times a second. Going
through web3.py's provider and requests cost ~1.1 ms of CPU per call on this machine; a kept-alive
``http.client`` connection costs ~0.15 ms (``eth_blockNumber`` against a local anvil, 2,000
calls). This module is that connection, nothing more: no retries of JSON-RPC errors, no
caching, no middleware.

A call made on a connection the node closed in the meantime (keep-alive timeout, node restart)
is retried once on a fresh connection: every request the service sends is safe to repeat
(reads, and raw transactions, which the node answers "already known" the second time). A call
that timed out is not: a hung node is waited for once, for the client's timeout.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from itertools import count
from typing import Any

from settlement.core.errors import ChainUnavailableError

# What a broken or closed connection raises (http.client's own errors, socket errors).
_CONNECTION_ERRORS = (http.client.HTTPException, OSError)
_ERROR_BODY_CHARS = 200


def redact_url(url: str) -> str:
    """``url`` without the password of its user part, for logs and progress lines."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class JsonRpcTransport:
    """Posts JSON-RPC payloads to one URL. Thread-safe: each thread has its own connection."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) JSON-RPC URL: {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:  # https://user:secret@node/ (never logged: see __repr__)
            token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        self._local = threading.local()
        self._ids = count(1)

    def __repr__(self) -> str:
        return f"JsonRpcTransport({self._host}:{self._port}{self._path})"

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout_s)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def next_id(self) -> int:
        return next(self._ids)

    def post(self, payload: Any, what: str) -> Any:
        """Sends ``payload`` (a request or a batch) and returns the decoded JSON answer.
        ChainUnavailableError when the node cannot be reached or answers HTTP >= 400."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in (1, 2):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=body, headers=self._headers)
                response = conn.getresponse()
                data = response.read()
            except _CONNECTION_ERRORS as exc:
                self._drop()
                if reused and attempt == 1 and not isinstance(exc, TimeoutError):
                    # The node closed a kept-alive connection: once more on a new one. Not after a
                    # timeout: a node that does not answer would be waited for twice.
                    continue
                raise ChainUnavailableError(f"{what}: {type(exc).__name__}: {exc}") from exc
            if response.status >= 400:
                self._drop()
                snippet = data[:_ERROR_BODY_CHARS].decode("utf-8", "replace")
                raise ChainUnavailableError(f"{what}: HTTP {response.status} from the node: {snippet}")
            if response.will_close:
                self._drop()
            try:
                return json.loads(data)
            except ValueError as exc:
                raise ChainUnavailableError(f"{what}: the node's answer is not JSON") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Closes this thread's connection (others close when their threads end)."""
        self._drop()


__all__ = ["JsonRpcTransport", "redact_url"]
