"""Fetch a proof document from the service's API, recognising "not anchored yet", and wait for it.

Right after events are posted (or a record changed) the proof endpoint answers ``409`` with the
problem type ``...provenance-event-pending`` (not batched yet), then a document whose ``anchor``
is null (batched, the anchoring transaction not confirmed yet), then the anchored document. Each
of the first two is "not anchored yet", not a failure: :func:`fetch_proof` says so, and with
``wait_s`` polls (every ``poll_s``, bounded) until the anchor is there.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from anchors.errors import AnchorsError, NodeUnavailableError
from anchors.rpc import redact_url

__all__ = ["FETCH_BYTES_MAX", "FETCH_TIMEOUT_S", "POLL_S_DEFAULT", "WAIT_S_MAX", "NotAnchoredYetError",
           "fetch_proof", "pending_reason"]

FETCH_TIMEOUT_S = 10.0
FETCH_BYTES_MAX = 256 * 1024
POLL_S_DEFAULT = 1.0
# However long a caller asks to wait, never more than this.
WAIT_S_MAX = 3_600.0
PENDING_TYPES = ("provenance-event-pending", "journal-record-pending")


class NotAnchoredYetError(AnchorsError):
    """The proof exists but its batch is not anchored yet (or not even batched): retry later."""


def pending_reason(status: int, body: Any) -> str | None:
    """Why ``body`` (an API answer with HTTP ``status``) is "not anchored yet", or None if it is
    not such an answer."""
    if isinstance(body, Mapping):
        kind = str(body.get("type") or "")
        if status == 409 and kind.rsplit(":", 1)[-1] in PENDING_TYPES:
            return str(body.get("detail") or "waiting for the batcher: not in a batch yet")
        if status == 200 and "format" in body and body.get("anchor", 0) is None:
            return "batched, the anchoring transaction is not confirmed yet"
    return None


def _get(url: str, api_key: str | None) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
            status, raw = response.status, response.read(FETCH_BYTES_MAX + 1)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(FETCH_BYTES_MAX + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise NodeUnavailableError(f"GET {redact_url(url)} failed: {getattr(exc, 'reason', exc)}") from None
    if len(raw) > FETCH_BYTES_MAX:
        raise AnchorsError(f"GET {redact_url(url)}: answer larger than {FETCH_BYTES_MAX} bytes")
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def fetch_proof(url: str, api_key: str | None = None, *, wait_s: float = 0.0, poll_s: float = POLL_S_DEFAULT,
                out: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """GET a proof document. Raises NotAnchoredYetError when it is not anchored (after waiting up
    to ``wait_s``), AnchorsError for any other refusal, NodeUnavailableError when the API cannot
    be reached."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise AnchorsError(f"not an http(s) URL: {redact_url(url)}")
    deadline = time.monotonic() + min(max(wait_s, 0.0), WAIT_S_MAX)
    poll = min(max(poll_s, 0.05), 60.0)
    while True:
        status, body = _get(url, api_key)
        reason = pending_reason(status, body)
        if reason is None:
            if status == 200 and isinstance(body, dict):
                return body
            detail = body.get("detail") if isinstance(body, Mapping) else None
            raise AnchorsError(f"GET {redact_url(url)}: HTTP {status}" + (f": {detail}" if detail else ""))
        if time.monotonic() + poll > deadline:
            raise NotAnchoredYetError(f"not anchored yet: {reason}")
        out(f"not anchored yet ({reason}); waiting")
        sleep(poll)
