"""Every error is RFC 9457 problem+json with a stable type, including framework errors, oversized
bodies and unexpected exceptions (which leak nothing)."""

from __future__ import annotations

import httpx

from ledger_api.app import create_app
from ledger_api.settings import Settings

from .support import Api

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:ledger:problem:{slug}" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_unknown_route_and_wrong_method(api: Api) -> None:
    _problem(api.http.get("/v1/nope"), 404, "route-not-found")
    _problem(api.http.delete("/health"), 405, "method-not-allowed")


def test_validation_errors_list_fields_and_never_echo_input(api: Api) -> None:
    """422 names each bad field; the submitted values (which may be secrets) are not repeated."""
    secret = "s3cr3t-value-that-must-not-be-echoed"
    r = api.http.post("/v1/members", headers=api.as_(api.operator_key),
                      json={"id": secret.upper(), "name": "", "country": secret, "roles": [secret], "extra": secret})
    body = _problem(r, 422, "validation-failed")
    fields = {e["field"] for e in body["errors"]}
    assert {"body.id", "body.name", "body.country", "body.roles.0", "body.extra"} <= fields
    assert secret not in r.text and secret.upper() not in r.text


def test_body_that_is_not_json_is_400(api: Api) -> None:
    r = api.http.post("/v1/members", headers={**api.as_(api.operator_key), "Content-Type": "application/json"},
                      content=b"{not json")
    _problem(r, 400, "bad-request")


def test_oversized_body_is_413_by_length_and_by_stream(api: Api) -> None:
    """The 1 MiB bound holds for a declared Content-Length and for a chunked stream."""
    big = b"x" * (1024 * 1024 + 1)
    _problem(api.http.post("/v1/members", content=big, headers={"Content-Type": "application/json"}),
             413, "payload-too-large")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"y" * 65536

    _problem(api.http.post("/v1/members", content=chunks(), headers={"Content-Type": "application/json"}),
             413, "payload-too-large")


def test_unexpected_exception_is_500_without_internals(api: Api, serve) -> None:  # type: ignore[no-untyped-def]
    app = create_app(api.runtime, Settings(home=api.runtime.home))

    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    app.add_api_route("/boom", boom)
    server = serve(app)
    r = httpx.get(server.url + "/boom")
    body = _problem(r, 500, "internal-error")
    assert "hunter2" not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text
    assert body["instance"] == "/boom"
