"""Webhooks end to end: endpoints over the real API, the delivery worker against a real receiving
HTTP server that verifies every delivery with the ``standardwebhooks`` library."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import standardwebhooks.webhooks as swh
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from settlement.domains.events.delivery import DeliveryLimits, DeliveryWorker

from tests.http import NO_IDEMPOTENCY_KEY

from .conftest import CWorld
from .support import Receiver, all_events

PROBLEM = "urn:ledger:problem:"
FAST = dict(retry_base_s=0.2, retry_factor=1.5, retry_cap_s=1.0, attempts_max=200, timeout_s=5.0, lease_s=10.0,
            idle_interval_s=0.05)


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        r = Receiver()
        made.append(r)
        return r

    yield make
    for r in made:
        if r.hold is not None:
            r.hold.clear()
        r.stop()


def register(cw: CWorld, member: str, url: str, types: list[str] | None = None, key: str = "wh-1") -> dict:
    r = cw.w.http.post("/v1/webhooks", json={"url": url, "event_types": types or []},
                       headers=cw.w.h(member, key))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v1/webhooks/{r.json()['id']}"
    return r.json()


def wait_for(predicate: Callable[[], bool], worker: DeliveryWorker, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.run_once()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for deliveries")


def in_order_per_object(ids: list[str], events: list[dict]) -> bool:
    pos = {e["id"]: i for i, e in enumerate(events)}
    by_object: dict[str, list[int]] = {}
    for i in ids:
        e = events[pos[i]]
        by_object.setdefault(e["data"]["object_id"], []).append(pos[i])
    return all(v == sorted(v) for v in by_object.values())


def test_endpoint_rules_secret_shown_once(cworld: CWorld, receivers: Callable[[], Receiver]) -> None:
    """https is required except loopback; filters are catalogued types; the secret is in the
    creating answer only; another member's endpoint is 404."""
    w = cworld.w
    rec = receivers()
    for url in ("http://example.com/hook", "ftp://127.0.0.1/x", "https://user:pw@example.com/x", "not a url"):
        r = w.http.post("/v1/webhooks", json={"url": url}, headers=w.h("retailer", f"bad-{url}"))
        assert r.status_code == 422 and r.json()["type"] == PROBLEM + "webhook-url-refused", (url, r.text)
    r = w.http.post("/v1/webhooks", json={"url": rec.url, "event_types": ["settlement.nope"]},
                    headers=w.h("retailer", "bad-type"))
    assert r.status_code == 422 and r.json()["type"] == PROBLEM + "unknown-event-type"
    assert w.http.post("/v1/webhooks", json={"url": rec.url}, headers=w.h("retailer"),
                       extensions={NO_IDEMPOTENCY_KEY: True}).status_code == 400
    created = register(cworld, "retailer", rec.url, ["settlement.*", "payment.received"])
    assert created["secret"].startswith("whsec_") and created["status"] == "enabled"
    again = w.http.post("/v1/webhooks", json={"url": rec.url, "event_types": ["settlement.*", "payment.received"]},
                        headers=w.h("retailer", "wh-1"))
    assert again.status_code == 201 and again.json()["secret"] is None and again.json()["id"] == created["id"]
    assert again.headers["Location"] == f"/v1/webhooks/{created['id']}"
    got = w.http.get(f"/v1/webhooks/{created['id']}", headers=w.h("retailer")).json()
    assert "secret" not in got and got["event_types"] == ["payment.received", "settlement.*"]
    assert w.http.get(f"/v1/webhooks/{created['id']}", headers=w.h("bank")).status_code == 404
    assert w.http.get("/v1/webhooks", headers=w.h("bank")).json()["data"] == []
    assert [e["id"] for e in w.http.get("/v1/webhooks", headers=w.h("retailer")).json()["data"]] == [created["id"]]
    https = w.http.patch(f"/v1/webhooks/{created['id']}", json={"url": "https://erp.example.com/hooks"},
                         headers=w.h("retailer"))
    assert https.status_code == 200 and https.json()["url"] == "https://erp.example.com/hooks"
    with w.runtime.db.read() as s:
        from settlement.store.models.events import WebhookEndpoint
        stored = s.get(WebhookEndpoint, created["id"]).secret
    assert created["secret"].encode() not in stored and created["secret"][6:].encode() not in stored


def test_receiver_down_then_back_gets_everything_in_order(cworld: CWorld, receivers: Callable[[], Receiver]) -> None:
    """While the receiver answers 503 nothing is lost: once back, every event is delivered, each
    verified by standardwebhooks, in order per object, the event id as webhook-id."""
    w = cworld.w
    rec = receivers()
    ep = register(cworld, "retailer", rec.url, ["settlement.*", "payment.received"])
    rec.secrets = [ep["secret"]]
    rec.down = True
    worker = DeliveryWorker(w.runtime, DeliveryLimits(**FAST))
    try:
        from settlement.core.money import Money
        made = [cworld.settlement(payee="bank") for _ in range(3)]
        worker.run_once()
        for s in made[:2]:
            cworld.post("alipay", cworld.payment("alipay", s["payment_reference"], Money(s["target"]["value"], "USD")))
        w.sync()
        wait_for(lambda: rec.attempts >= 6, worker)
        assert rec.accepted == []
        rec.down = False
        expected = all_events(w.http, w.h("retailer"))
        expected = [e for e in expected if e["type"].startswith("settlement.") or e["type"] == "payment.received"]
        assert len(expected) == 3 * 2 + 2 * 2  # recorded+confirmed each; paid+payment.received for two
        wait_for(lambda: set(rec.ids()) >= {e["id"] for e in expected}, worker)
        assert sorted(rec.ids()) == sorted(e["id"] for e in expected)  # each once (ids deduped by the receiver)
        assert in_order_per_object(rec.ids(), expected)
        by_id = {r.id: r for r in rec.accepted}
        for e in expected:
            assert by_id[e["id"]].body == {k: v for k, v in e.items() if k != "cursor"}
        deliveries = w.http.get(f"/v1/webhooks/{ep['id']}/deliveries", params={"limit": 200},
                                headers=w.h("retailer")).json()["data"]
        assert {d["status"] for d in deliveries} == {"delivered"} and max(d["attempts"] for d in deliveries) > 1
    finally:
        worker.stop()


def test_tampered_or_replayed_deliveries_are_refused(cworld: CWorld, receivers: Callable[[], Receiver]) -> None:
    """A changed body or timestamp fails verification; the same delivery replayed after the
    tolerance fails it too; replayed within it, the receiver takes the id once."""
    w = cworld.w
    rec = receivers()
    ep = register(cworld, "retailer", rec.url)
    rec.secrets = [ep["secret"]]
    worker = DeliveryWorker(w.runtime, DeliveryLimits(**FAST))
    try:
        cworld.settlement(payee="bank")
        wait_for(lambda: len(rec.accepted) >= 2, worker)
    finally:
        worker.stop()
    first = rec.accepted[0]
    hook = Webhook(ep["secret"])
    assert hook.verify(first.raw, first.headers)["id"] == first.id
    tampered = first.raw.replace(b'"retailer"', b'"mallory"', 1)
    assert tampered != first.raw
    with pytest.raises(WebhookVerificationError):
        hook.verify(tampered, first.headers)
    with pytest.raises(WebhookVerificationError):
        hook.verify(first.raw, {**first.headers, "webhook-timestamp": str(int(time.time()) + 1)})
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(first.raw, first.headers)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return datetime.now(tz) + timedelta(minutes=6)

    original = swh.datetime
    swh.datetime = Later  # the receiver's clock, six minutes on: the captured delivery is stale
    try:
        with pytest.raises(WebhookVerificationError, match="too old"):
            hook.verify(first.raw, first.headers)
    finally:
        swh.datetime = original
    # replayed over HTTP at once: verified, but the receiver has that id already
    signed = {k: v for k, v in first.headers.items() if k.startswith("webhook-")}
    r = httpx.post(rec.url, content=tampered, headers=signed)
    assert r.status_code == 401
    r = httpx.post(rec.url, content=first.raw, headers=signed)
    assert r.status_code == 200 and rec.duplicates == [first.id]


def test_rotation_overlap_and_auto_disable_then_replay(cworld: CWorld, receivers: Callable[[], Receiver]) -> None:
    """During a rotation's overlap both secrets verify; an endpoint whose delivery fails every
    attempt is disabled and its owner told by an event; the failed delivery is kept and, with
    what was missed while disabled, replayed once the endpoint is enabled again."""
    w = cworld.w
    rec, other = receivers(), receivers()
    ep = register(cworld, "retailer", rec.url, ["settlement.*"])
    watcher = register(cworld, "retailer", other.url, ["webhook_endpoint.disabled"], key="wh-2")
    rec.secrets, other.secrets = [ep["secret"]], [watcher["secret"]]
    rotated = w.http.post(f"/v1/webhooks/{ep['id']}/rotate-secret", json={"overlap_s": 600},
                          headers=w.h("retailer")).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != ep["secret"]
    worker = DeliveryWorker(w.runtime, DeliveryLimits(**{**FAST, "attempts_max": 3}))
    try:
        s1 = cworld.settlement(payee="bank")
        wait_for(lambda: len(rec.accepted) == 2, worker)  # verified with the old secret only
        rec.secrets = [rotated["secret"]]
        w.create(payee="bank")
        wait_for(lambda: len(rec.accepted) == 3, worker)  # and with the new one only
        assert len(rec.accepted[-1].headers["webhook-signature"].split(" ")) == 2
        rec.down = True
        cworld.w.sync()  # its confirmation: fails 3 times
        wait_for(lambda: w.http.get(f"/v1/webhooks/{ep['id']}", headers=w.h("retailer")).json()["status"]
                 == "disabled", worker)
        wait_for(lambda: len(other.accepted) == 1, worker)
        told = other.accepted[0].body
        assert told["type"] == "webhook_endpoint.disabled" and told["data"]["object_id"] == ep["id"]
        failed = w.http.get(f"/v1/webhooks/{ep['id']}/deliveries", params={"status": "failed"},
                            headers=w.h("retailer")).json()["data"]
        assert len(failed) == 1 and failed[0]["attempts"] == 3 and failed[0]["last_status_code"] == 503
        since = datetime.now(timezone.utc) - timedelta(minutes=5)
        cworld.settlement(payee="bank")  # made while disabled: not sent
        for _ in range(5):
            worker.run_once()
        assert len(rec.accepted) == 3
        rec.down = False
        enabled = w.http.patch(f"/v1/webhooks/{ep['id']}", json={"enabled": True}, headers=w.h("retailer"))
        assert enabled.json()["status"] == "enabled"
        queued = w.http.post(f"/v1/webhooks/{ep['id']}/replay", json={"since": since.isoformat()},
                             headers=w.h("retailer")).json()["queued"]
        assert queued == 3  # the failed confirmation, and the new settlement's two events
        wait_for(lambda: len(rec.accepted) == 6, worker)
        one = w.http.post(f"/v1/webhooks/{ep['id']}/replay", json={"event_id": rec.accepted[0].id},
                          headers=w.h("retailer")).json()["queued"]
        assert one == 1
        wait_for(lambda: rec.duplicates == [rec.accepted[0].id], worker)
        assert s1["id"] in {r.body["data"]["object_id"] for r in rec.accepted}
    finally:
        worker.stop()


def test_a_slow_receiver_does_not_hold_up_another(cworld: CWorld, receivers: Callable[[], Receiver]) -> None:
    """An endpoint whose receiver hangs holds at most its in-flight bound, and its backlog (older,
    so first in line) does not keep the other member's endpoint from being served meanwhile."""
    import threading
    w = cworld.w
    slow, fast = receivers(), receivers()
    slow.hold = threading.Event()
    slow.hold.set()
    a = register(cworld, "retailer", slow.url)
    slow.secrets = [a["secret"]]
    # claim_max 2: the slow endpoint's backlog alone would fill every page of candidates
    worker = DeliveryWorker(w.runtime, DeliveryLimits(**{**FAST, "threads_max": 4, "per_endpoint_in_flight_max": 1,
                                                         "claim_max": 2}))
    try:
        for _ in range(3):
            cworld.settlement(payee="bank")
        wait_for(slow.held.is_set, worker)
        b = register(cworld, "bank", fast.url, key="wh-b")
        fast.secrets = [b["secret"]]
        for _ in range(2):
            cworld.settlement(payee="bank")
        wait_for(lambda: len(fast.accepted) == 4, worker, timeout_s=20)
        assert slow.accepted == [] and slow.attempts == 1
        slow.hold.clear()
        wait_for(lambda: len(slow.accepted) == 10, worker)
    finally:
        worker.stop()


def test_sigkill_mid_delivery_redelivers_with_the_same_id(cworld: CWorld, receivers: Callable[[], Receiver],
                                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The delivering process is killed with SIGKILL while a delivery is in the receiver's hands
    (its outcome never recorded); a new process sends it again, same webhook-id, same body, and
    then the rest: everything arrives, in order per object."""
    import base64
    import dataclasses
    import os
    import signal
    import subprocess
    import sys
    import threading

    from settlement.custody.vault import KeyVault
    from settlement.domains.events import webhooks as wh

    w = cworld.w
    rec = receivers()
    kek = os.urandom(32)
    rt = dataclasses.replace(w.runtime, vault=KeyVault(kek))
    with rt.db.transaction() as session:
        ep, secret = wh.create_endpoint(session, rt, "retailer", rec.url, ["settlement.*"])
    rec.secrets = [secret]
    for _ in range(2):
        cworld.settlement(payee="bank")
    expected = all_events(w.http, w.h("retailer"), types="settlement.*")
    assert len(expected) == 4
    rec.hold = threading.Event()
    rec.hold.set()
    env = {**os.environ, "EVENTS_TEST_DATABASE_URL": w.runtime.db.url, "EVENTS_TEST_KEK": base64.b64encode(kek).decode(),
           "EVENTS_TEST_HOME": str(tmp_path), "LEDGER_WEBHOOK_TIMEOUT_S": "2", "LEDGER_WEBHOOK_LEASE_S": "3",
           "LEDGER_WEBHOOK_RETRY_BASE_S": "0.2", "LEDGER_WEBHOOK_IDLE_INTERVAL_S": "0.05",
           "LEDGER_WEBHOOK_PER_ENDPOINT_IN_FLIGHT_MAX": "1"}  # one in the receiver's hands at the kill
    cmd = [sys.executable, "-m", "tests.events.deliver_proc"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    second = None
    try:
        assert rec.held.wait(60), "no delivery reached the receiver"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        rec.hold.clear()  # the receiver got it and takes it; the dead sender never recorded that
        deadline = time.monotonic() + 10
        while not rec.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        held_id = rec.ids()[0]
        assert held_id == expected[0]["id"]
        second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while (len(rec.accepted) < 4 or not rec.duplicates) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rec.duplicates[:1] == [held_id]  # redelivered with the same id and the same body
        assert rec.duplicate_bodies[0] == rec.accepted[0].raw
        assert sorted(rec.ids()) == sorted(e["id"] for e in expected)
        assert in_order_per_object(rec.ids(), expected)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def test_cli_manages_a_members_endpoints(cworld: CWorld, receivers: Callable[[], Receiver],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger webhooks add/list/disable/enable/rotate-secret/deliveries/replay` on the store, the
    secret printed once; a refused URL or an unknown member exits 1."""
    import argparse
    import json

    from ledger_api.cli import webhooks as cli

    w = cworld.w
    parser = argparse.ArgumentParser(prog="ledger")
    cli.register(parser.add_subparsers(dest="command", required=True), lambda: w.runtime)

    def run(*argv: str) -> tuple[int, object]:
        args = parser.parse_args(list(argv))
        code = args.func(args)
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    rec = receivers()
    assert run("webhooks", "add", "--member", "retailer", "--url", "http://example.com/x")[0] == 1
    assert run("webhooks", "add", "--member", "nobody", "--url", rec.url)[0] == 1
    code, ep = run("webhooks", "add", "--member", "retailer", "--url", rec.url, "--types", "settlement.*")
    assert code == 0 and ep["secret"].startswith("whsec_")
    rec.secrets = [ep["secret"]]
    code, listed = run("webhooks", "list", "--member", "retailer")
    assert code == 0 and [e["id"] for e in listed] == [ep["id"]] and "secret" not in listed[0]
    assert run("webhooks", "list", "--member", "bank")[1] == []
    assert run("webhooks", "disable", "--member", "bank", ep["id"])[0] == 1  # not its endpoint
    assert run("webhooks", "disable", "--member", "retailer", ep["id"])[1]["status"] == "disabled"
    assert run("webhooks", "enable", "--member", "retailer", ep["id"])[1]["status"] == "enabled"
    worker = DeliveryWorker(w.runtime, DeliveryLimits(**FAST))
    try:
        cworld.settlement(payee="bank")
        wait_for(lambda: len(rec.accepted) == 2, worker)
        worker.drain()  # the sends are recorded by the pass after the receiver answered
        code, rotated = run("webhooks", "rotate-secret", "--member", "retailer", ep["id"], "--overlap-s", "0")
        assert code == 0 and rotated["secret"] != ep["secret"]
        rec.secrets = [rotated["secret"]]
        code, done = run("webhooks", "deliveries", "--member", "retailer", ep["id"], "--status", "delivered")
        assert code == 0 and len(done) == 2
        assert run("webhooks", "replay", "--member", "retailer", ep["id"], "--event", done[0]["event_id"])[1] \
            == {"queued": 1}
        wait_for(lambda: rec.duplicates == [done[0]["event_id"]], worker)
    finally:
        worker.stop()


def test_the_tour_receiver_gets_settlement_confirmed_and_payment_received(cworld: CWorld, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The README tour as written: register a webhook over the API, run docs/samples/webhook_receiver.py
    with the secret, record a settlement and pay it through Alipay: the sample prints
    settlement.confirmed and payment.received, each verified with standardwebhooks."""
    import subprocess
    import sys
    from pathlib import Path

    from settlement.chain.anvil import free_port
    from settlement.core.money import Money

    w = cworld.w
    port = free_port()
    r = w.http.post("/v1/webhooks", headers=w.h("retailer", "tour-wh"),
                    json={"url": f"http://127.0.0.1:{port}/hooks",
                          "event_types": ["settlement.confirmed", "payment.received"]})
    assert r.status_code == 201, r.text
    sample = Path(__file__).resolve().parents[2] / "docs" / "samples" / "webhook_receiver.py"
    out = tmp_path / "hooks.log"
    with out.open("w") as log:
        proc = subprocess.Popen([sys.executable, str(sample), str(port), r.json()["secret"]], stdout=log,
                                stderr=subprocess.STDOUT)
    worker = DeliveryWorker(w.runtime, DeliveryLimits(**FAST))
    try:
        s = cworld.settlement(payee="bank")
        assert cworld.post("alipay", cworld.payment("alipay", s["payment_reference"],
                                                    Money(s["target"]["value"], "USD"))).text == "success"
        w.sync()
        wait_for(lambda: len(out.read_text().splitlines()) >= 2, worker)
        # two objects (the settlement, the payment): events are ordered per object only, so either may come first
        lines = sorted(out.read_text().splitlines(), key=lambda line: not line.startswith("settlement."))
        assert lines[0].startswith(f"settlement.confirmed {s['id']} instructed 0x")
        assert lines[1].startswith("payment.received ") and "refused" not in out.read_text()
    finally:
        worker.stop()
        proc.terminate()
        proc.wait(10)
