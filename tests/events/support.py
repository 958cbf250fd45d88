"""Helpers for the events tests: read a member's events over the real API, and a real receiving
HTTP server that verifies every delivery with the ``standardwebhooks`` library."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from settlement.chain.anvil import free_port


def all_events(http: httpx.Client, headers: dict[str, str], limit: int = 100, types: str | None = None) -> list[dict]:
    """Every event the caller may read (of ``types``), paging with the cursor."""
    out: list[dict] = []
    after = ""
    for _page in range(1000):
        params = {"after": after, "limit": limit} | ({"types": types} if types else {})
        r = http.get("/v1/events", params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["data"])
        if not body["has_more"]:
            return out
        after = body["next_cursor"]
    raise AssertionError("more than 1000 pages")


@dataclass
class Received:
    id: str
    timestamp: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: verifies each delivery with standardwebhooks (refusing a
    bad or stale signature with 401 and an id it has already accepted with 200, not twice), and
    can be set down (503), or to hold requests until released (so a kill lands mid-delivery)."""

    secrets: list[str] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (webhook-id, why)
    duplicates: list[str] = field(default_factory=list)
    duplicate_bodies: list[bytes] = field(default_factory=list)
    attempts: int = 0
    down: bool = False
    hold: threading.Event | None = None  # set: requests wait until it is cleared... see hold_requests
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as the worker reuses them

            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                status = receiver.handle(raw, headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def verify(self, raw: bytes, headers: dict[str, str]) -> dict:
        last: Exception | None = None
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(raw, headers)
            except WebhookVerificationError as exc:
                last = exc
        raise WebhookVerificationError(str(last))

    def handle(self, raw: bytes, headers: dict[str, str]) -> int:
        with self.lock:
            self.attempts += 1
        if self.hold is not None and self.hold.is_set():
            self.held.set()
            while self.hold.is_set():
                threading.Event().wait(0.05)
        if self.down:
            return 503
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            body = self.verify(raw, headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.refused.append((lower.get("webhook-id", ""), str(exc)))
            return 401
        with self.lock:
            if any(r.id == lower["webhook-id"] for r in self.accepted):
                self.duplicates.append(lower["webhook-id"])
                self.duplicate_bodies.append(raw)
                return 200  # idempotent: acknowledged, not processed twice
            self.accepted.append(Received(lower["webhook-id"], lower["webhook-timestamp"], body, raw, lower))
        return 204

    def ids(self) -> list[str]:
        with self.lock:
            return [r.id for r in self.accepted]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sse_events(text: str) -> list[dict]:
    """The messages of an SSE text (id, event, data parsed as JSON)."""
    out = []
    for block in text.split("\n\n"):
        msg: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            msg[name] = value[1:] if value.startswith(" ") else value
        if "data" in msg and "event" in msg:
            msg["data"] = json.loads(msg["data"])
            out.append(msg)
    return out
