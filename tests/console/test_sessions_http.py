"""The console's sign-in over real HTTP against `ledger up --demo`: the cookie's flags, CSRF on
every POST (a forged form writes nothing), sign-out revokes the session server-side (a copied
cookie stops working), an expired session and a revoked key send the browser back to sign-in,
and the key is never written to the service's log."""

from __future__ import annotations

import hashlib
import re
import uuid

import httpx
import sqlalchemy as sa

from tests.console.conftest import api

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _client(demo) -> httpx.Client:
    return httpx.Client(base_url=demo.api, follow_redirects=False, timeout=30)


def sign_in(demo, key: str) -> tuple[httpx.Client, str, httpx.Response]:
    c = _client(demo)
    form = c.get("/console/sign-in")
    answer = c.post("/console/sign-in", data={"csrf": CSRF.search(form.text).group(1), "api_key": key,
                                              "next": "/console/"})
    page = c.get("/console/")
    match = CSRF.search(page.text)
    return c, match.group(1) if match else "", answer


def test_the_session_cookie_is_httponly_samesite_strict_and_scoped(demo):
    _, _, answer = sign_in(demo, demo.key("retailer"))
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = next(v for k, v in answer.headers.multi_items()
                  if k == "set-cookie" and v.startswith("ledger_console="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
    assert "secure" not in flags  # plain http here; set when the console is served over https
    page = _client(demo).get("/console/sign-in")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(demo):
    c, csrf, _ = sign_in(demo, demo.key("retailer"))
    reference = f"CSRF-{uuid.uuid4().hex[:6]}"
    form = {"idempotency_key": reference, "client_reference": reference, "payee": "supplier",
            "source.value": "1.00", "source.currency": "CNY", "target.currency": "USD", "fx_rate": "0.14",
            "purpose_code": "GDDS", "payment_reference": reference}
    for forged in ({}, {"csrf": "x" * 43}, {"csrf": csrf[:-1]}):
        answer = c.post("/console/settlements/new", data={**form, **forged})
        assert answer.status_code == 403, answer.text
        assert "CSRF" in answer.text
    # another member's valid token does not pass either
    _, other_csrf, _ = sign_in(demo, demo.key("bank"))
    assert c.post("/console/settlements/new", data={**form, "csrf": other_csrf}).status_code == 403
    with api(demo, "retailer") as http:
        refs = [s["client_reference"] for s in http.get("/v1/settlements", params={"limit": 200}).json()["data"]]
    assert reference not in refs
    assert c.post("/console/settlements/new", data={**form, "csrf": csrf}).status_code == 303


def test_the_sign_in_form_needs_its_own_csrf_token(demo):
    c = _client(demo)
    c.get("/console/sign-in")
    answer = c.post("/console/sign-in", data={"csrf": "forged", "api_key": demo.key("retailer")})
    assert answer.status_code == 403 and "ledger_console=" not in answer.headers.get("set-cookie", "")


def test_sign_out_revokes_the_session_on_the_server(demo):
    c, csrf, _ = sign_in(demo, demo.key("supplier"))
    stolen = c.cookies.get("ledger_console", path="/console")
    assert c.post("/console/sign-out", data={"csrf": csrf}).status_code == 303
    replay = _client(demo)
    replay.cookies.set("ledger_console", stolen, path="/console")
    answer = replay.get("/console/balances")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")


def test_an_expired_session_and_a_revoked_key_send_back_to_sign_in(demo):
    with api(demo, "operator") as http:
        issued = http.post("/v1/members/payments/api-keys", json={"label": "console-test"})
        assert issued.status_code == 201, issued.text
        key, prefix = issued.json()["key"], issued.json()["prefix"]
    c, _, _ = sign_in(demo, key)
    assert c.get("/console/").status_code == 200
    c2, _, _ = sign_in(demo, key)
    # expiry: the session's row says it ended a second ago
    engine = sa.create_engine(f"sqlite:///{demo.home / 'ledger.db'}")
    try:
        with engine.begin() as conn:
            token = c.cookies.get("ledger_console", path="/console")

            conn.execute(sa.text("UPDATE console_sessions SET expires_at = :t WHERE token_hash = :h"),
                         {"t": "2000-01-01 00:00:00.000000", "h": hashlib.sha256(token.encode()).hexdigest()})
    finally:
        engine.dispose()
    assert c.get("/console/").status_code == 303
    assert c2.get("/console/").status_code == 200
    with httpx.Client(base_url=demo.api, headers={"Authorization": f"Bearer {key}"}) as http:
        assert http.delete(f"/v1/api-keys/{prefix}").status_code == 200
    answer = c2.get("/console/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")


def test_keys_are_never_logged(demo):
    sign_in(demo, demo.key("auditor"))
    c = _client(demo)
    c.get("/console/sign-in")
    log = (demo.home / "up.log").read_text()
    for member in demo.demo["members"]:
        secret = member["api_key"].split("_", 2)[2]
        assert secret not in log
