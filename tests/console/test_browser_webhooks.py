"""Webhooks in the browser against a real `ledger up --demo` and a real receiver on this host: the
retailer registers an endpoint and sees its secret once (a reload no longer shows it); a
settlement's events arrive signed with exactly that secret (Standard Webhooks HMAC); the endpoint's
page lists the delivery, replays it (the receiver gets the same event id again), the endpoint is
disabled and enabled, its secret rotated (a new one, shown once); and the supplier neither lists
nor opens it (404, as in the API)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.console.conftest import api, screenshot, wait_until


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def _signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(s.split(",", 1)[1] == expected for s in headers["webhook-signature"].split())


def test_a_member_manages_its_webhooks_in_the_console(open_as, demo, receiver):
    port, received = receiver
    url = f"http://127.0.0.1:{port}/hook/{uuid.uuid4().hex[:6]}"
    page = open_as("retailer")
    page.goto(f"{demo.api}/console/webhooks")
    page.get_by_label("Endpoint URL").fill(url)
    page.get_by_label("Event types").fill("settlement.*")
    page.get_by_role("button", name="Register endpoint").click()
    expect(page.locator("#webhook-secret")).to_be_visible()
    secret = page.locator("#secret-value").inner_text()
    assert secret.startswith("whsec_")
    endpoint_id = page.locator("#webhook-secret").get_attribute("data-endpoint")
    screenshot(page, "webhooks")
    page.goto(f"{demo.api}/console/webhooks")
    expect(page.locator(f'tr[data-endpoint="{endpoint_id}"]')).to_contain_text(url)
    expect(page.locator("#webhook-secret")).to_have_count(0)  # shown once

    tag = uuid.uuid4().hex[:6]
    with api(demo, "retailer") as http:
        created = http.post("/v1/settlements", headers={"Idempotency-Key": f"wh-{tag}"}, json={
            "client_reference": f"WH-{tag}", "payee": "supplier", "source": {"value": 5_000, "currency": "CNY"},
            "target": {"currency": "CNY"}, "fx_rate": "1", "purpose_code": "GDDS", "payment_reference": f"WH-{tag}"})
        assert created.status_code == 201, created.text
    wait_until(lambda: received, "a delivery")
    headers, body = received[0]
    assert _signed_with(secret, headers, body), "signed with the secret the page showed"
    event_id = headers["webhook-id"]

    page.goto(f"{demo.api}/console/webhooks/{endpoint_id}")
    expect(page.locator(f'#deliveries tr[data-event="{event_id}"]').first).to_have_attribute("data-status",
                                                                                            "delivered")
    page.get_by_label("Event id").fill(event_id)
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-queued")).to_contain_text("1 deliveries")
    wait_until(lambda: sum(1 for h, _ in received if h["webhook-id"] == event_id) >= 2, "the replayed delivery")

    page.goto(f"{demo.api}/console/webhooks")
    row = page.locator(f'tr[data-endpoint="{endpoint_id}"]')
    row.get_by_role("button", name="Disable").click()
    expect(row).to_have_attribute("data-status", "disabled")
    row.get_by_role("button", name="Enable").click()
    expect(row).to_have_attribute("data-status", "enabled")
    row.get_by_role("button", name="Rotate secret").click()
    rotated = page.locator("#secret-value").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret

    other = open_as("supplier")
    other.goto(f"{demo.api}/console/webhooks")
    expect(other.locator(f'tr[data-endpoint="{endpoint_id}"]')).to_have_count(0)
    assert other.goto(f"{demo.api}/console/webhooks/{endpoint_id}").status == 404


def test_a_refused_url_is_shown_next_to_its_field(open_as, demo):
    page = open_as("retailer", locale="zh-CN")
    page.goto(f"{demo.api}/console/webhooks")
    page.get_by_label("推送地址 URL").fill("http://example.com/hook")  # http to a host that is not loopback
    page.get_by_role("button", name="登记").click()
    field = page.get_by_label("推送地址 URL")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-url")).to_contain_text("https")
