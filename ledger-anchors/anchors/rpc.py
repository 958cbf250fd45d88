"""JSON-RPC for the verifier: any callable ``rpc(method, params) -> result`` will do.

A service passes its own chain client's call (one JSON-RPC path for everything it does); an
auditor passes a node URL and gets :class:`HttpRpc`, a small urllib client with no dependencies.
``https://user:secret@node/`` URLs send HTTP basic auth; the secret never appears in an error
message or a ``repr`` (:func:`redact_url`).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from anchors.errors import NodeUnavailableError

__all__ = ["RPC_RESPONSE_BYTES_MAX", "RPC_TIMEOUT_S", "HttpRpc", "Rpc", "as_rpc", "redact_url"]

RPC_TIMEOUT_S = 10.0
RPC_RESPONSE_BYTES_MAX = 8 * 1024 * 1024

Rpc = Callable[[str, list[Any]], Any]


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to log)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = urllib.parse.unquote(parts.username or "")
    return urllib.parse.urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


class HttpRpc:
    """One JSON-RPC call per HTTP POST over urllib (http or https, basic auth from the URL)."""

    def __init__(self, url: str, timeout_s: float = RPC_TIMEOUT_S) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NodeUnavailableError(f"not an http(s) JSON-RPC URL: {redact_url(url)}")
        self._headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        host = parts.hostname + (f":{parts.port}" if parts.port is not None else "")
        self._url = urllib.parse.urlunsplit((parts.scheme, host, parts.path or "/", parts.query, ""))
        self.display_url = redact_url(url)
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"HttpRpc({self.display_url!r})"

    def __call__(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(self._url, data=body, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read(RPC_RESPONSE_BYTES_MAX + 1)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NodeUnavailableError(f"{method} to {self.display_url} failed: {reason}") from None
        if len(raw) > RPC_RESPONSE_BYTES_MAX:
            raise NodeUnavailableError(f"{method}: response larger than {RPC_RESPONSE_BYTES_MAX} bytes")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise NodeUnavailableError(f"{method}: the node's answer is not JSON") from None
        if not isinstance(answer, dict) or "error" in answer or "result" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise NodeUnavailableError(f"{method}: {str(error)[:500]}")
        return answer["result"]


def as_rpc(rpc: Rpc | str, timeout_s: float = RPC_TIMEOUT_S) -> Rpc:
    """A callable as given, or an :class:`HttpRpc` for a URL."""
    return HttpRpc(rpc, timeout_s) if isinstance(rpc, str) else rpc
