"""The test suite's HTTP client: an ``httpx.Client`` that, like any well-behaved client of this
API, sends a new ``Idempotency-Key`` with every POST that carries none (every creating POST
requires one, docs/api.md). A test that means to send none says so:
``extensions={NO_IDEMPOTENCY_KEY: True}``; a test that retries sends its own key."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

__all__ = ["NO_IDEMPOTENCY_KEY", "add_idempotency_key", "client"]

NO_IDEMPOTENCY_KEY = "test-no-idempotency-key"


def add_idempotency_key(request: httpx.Request) -> None:
    if request.method == "POST" and "idempotency-key" not in request.headers \
            and not request.extensions.get(NO_IDEMPOTENCY_KEY):
        request.headers["Idempotency-Key"] = f"test-{uuid.uuid4().hex}"


def client(**kwargs: Any) -> httpx.Client:
    hooks = kwargs.pop("event_hooks", {})
    hooks = {**hooks, "request": [*hooks.get("request", []), add_idempotency_key]}
    return httpx.Client(event_hooks=hooks, **kwargs)
