"""Structured logs (issue 15): a request id per request (the client's X-Request-ID when sane) in
every log line of that request, in the response header and in problem+json answers; one access
line per request with the path TEMPLATE (no ids, no query string), status, duration and member;
the transaction hash on chain event lines; JSON lines out. And no secret anywhere: authenticated
requests with every key, API key creation and rotation, member onboarding (custodial keys made),
provider accounts created with secrets, callbacks signed with the providers' keys (good and
forged): no API key, provider secret or private key appears in any captured record (the HSM
PIN: tests/custody/test_hsm_logs.py), captured RAW (before the formatter's masking, which is a second
line of defence tested on its own)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from ledger_api.logs import QUIET_LOGGERS, JsonFormatter, RequestContextFilter, redact
from settlement.core.money import Money
from settlement.providers.testing import demo_credentials
from settlement.store.models import MemberAccount

from .conftest import PROVIDERS, CWorld

USD = "USD"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


class RawCapture(logging.Handler):
    """Every record, unformatted: message, every attribute (extras included) and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        out = []
        for r in self.records:
            exc = logging.Formatter().formatException(r.exc_info) if r.exc_info else ""
            out.append(f"{r.name} {r.getMessage()} {vars(r)!r} {exc}")
        return "\n".join(out)


@pytest.fixture
def captured() -> Iterator[RawCapture]:
    """Everything at DEBUG, except the libraries the service itself keeps at WARNING
    (ledger_api.logs.configure_logging): the test's own HTTP client logs its URLs there."""
    root = logging.getLogger()
    handler, level = RawCapture(), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)


def _lines(records: list[logging.LogRecord]) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in records]


def test_request_ids_access_lines_and_chain_hashes(sworld: CWorld, captured: RawCapture) -> None:
    http, w = sworld.w.http, sworld.w
    me = http.get("/v1/me", headers={**w.h("retailer"), "X-Request-ID": "tour-42"})
    assert me.status_code == 200 and me.headers["x-request-id"] == "tour-42"
    insane = http.get("/v1/me", headers={**w.h("retailer"), "X-Request-ID": "a b" * 40})
    generated = insane.headers["x-request-id"]
    assert HEX_ID.match(generated)
    # a problem answer carries the same id as its header
    missing = http.get("/v1/settlements/0x" + "ab" * 32, params={"cursor": "QUERYSECRET"}, headers=w.h("retailer"))
    assert missing.status_code == 404 and missing.json()["request_id"] == missing.headers["x-request-id"]
    # a failed authentication logs inside the thread pool: that line carries the request's id too
    bad = http.get("/v1/me", headers={"Authorization": "Bearer lk_nosuch_" + "A" * 43, "X-Request-ID": "bad-1"})
    assert bad.status_code == 401 and bad.json()["request_id"] == "bad-1"
    s = sworld.settlement()
    assert sworld.post("stripe", sworld.payment("stripe", s["payment_reference"], Money(s["target"]["value"], USD))
                       ).status_code == 200
    sworld.w.sync()

    lines = _lines(captured.records)
    access = [x for x in lines if x["logger"] == "ledger.access"]
    tour = next(x for x in access if x.get("request_id") == "tour-42")
    assert tour["method"] == "GET" and tour["path"] == "/v1/me" and tour["status"] == 200
    assert tour["member_id"] == "retailer" and tour["duration_ms"] >= 0
    assert tour["ts"].endswith("Z")
    assert any(x.get("request_id") == generated for x in access)
    gone = next(x for x in access if x.get("request_id") == missing.headers["x-request-id"])
    assert gone["path"] == "/v1/settlements/{settlement_id}" and gone["status"] == 404
    assert "QUERYSECRET" not in json.dumps(lines) and "ab" * 32 not in json.dumps(access)
    rejected = [x for x in lines if x.get("request_id") == "bad-1"]
    assert {x["logger"] for x in rejected} >= {"ledger_api.auth", "ledger.access"}
    callback = next(x for x in access if x["path"] == "/v1/callbacks/{provider}/{account}")
    assert callback["status"] == 200 and callback["member_id"] is None
    # chain event lines carry the transaction hash as a field
    events = [x for x in lines if x["logger"] == "ledger.follower" and "tx_hash" in x]
    assert events and all(re.fullmatch(r"0x[0-9a-f]{64}", x["tx_hash"]) for x in events)


def test_no_secret_is_ever_logged(sworld: CWorld, captured: RawCapture) -> None:
    http, w = sworld.w.http, sworld.w
    op = w.h("operator")
    keys = [w.operator_key, *w.keys.values()]
    for key in keys:
        assert http.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # key creation and rotation
    issued = http.post("/v1/members/psp/api-keys", json={"label": "second"}, headers=op).json()["key"]
    rotated = http.post("/v1/members/psp/api-keys", json={"label": "third", "rotate": True}, headers=op)
    assert rotated.status_code == 201, rotated.text
    keys += [issued, rotated.json()["key"]]
    assert http.get("/v1/me", headers={"Authorization": f"Bearer {keys[-1]}"}).status_code == 200
    # a wrong secret with a real prefix, and a key sent in a query string
    prefix = w.operator_key.split("_")[1]
    forged = f"lk_{prefix}_" + "Z" * 43
    assert http.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert http.get("/v1/me", params={"api_key": w.operator_key}).status_code == 401
    # onboarding (a governance proposal after the seal) makes a custodial key, kept encrypted
    made = http.post("/v1/members", json={"id": "newco", "name": "New Co", "country": "SG", "roles": ["finance"]},
                     headers=op)
    assert made.status_code == 202, made.text
    # provider accounts created with their secrets
    extra = demo_credentials("stripe", "stripe-extra")
    wx = demo_credentials("wechatpay", "wechatpay-extra")
    for provider, creds in (("stripe", extra), ("wechatpay", wx)):
        r = http.post("/v1/provider-accounts", headers=op,
                      json={"provider": provider, "account": creds["account"],
                            "config": {k: v for k, v in creds.items() if not k.startswith("platform_private")}})
        assert r.status_code == 201, r.text
    # a private key offered as an account's public key is refused, and not logged either
    alipay_bad = demo_credentials("alipay", "alipay-bad")
    assert http.post("/v1/provider-accounts", headers=op, json={
        "provider": "alipay", "account": "alipay-bad",
        "config": {"app_id": alipay_bad["app_id"], "alipay_public_key_pem": alipay_bad["platform_private_key_pem"]},
    }).status_code == 422
    # callbacks signed with the providers' keys, and forged ones
    for provider in PROVIDERS:
        s = sworld.settlement()
        note = sworld.payment(provider, s["payment_reference"], Money(s["target"]["value"], USD))
        assert sworld.post(provider, note).status_code in (200, 204)
        forged_note = sworld.payment(provider, s["payment_reference"], Money(1, USD))
        tampered = forged_note.body.replace(b"1", b"2", 1) if provider != "wechatpay" else forged_note.body[:-3] + b"}}}"
        sworld.post(provider, dataclasses.replace(forged_note, body=tampered))
    sworld.w.sync()

    # what must never appear
    secrets_: dict[str, str] = {f"api key {k[:12]}": k for k in keys}
    for k in keys:
        secrets_[f"api key secret {k[:12]}"] = k.split("_", 2)[2]
    secrets_["forged key secret"] = forged.split("_", 2)[2]
    for provider in PROVIDERS:
        for name, value in sworld.creds[provider].items():
            if name in ("webhook_secret", "apiv3_key"):
                secrets_[f"{provider} {name}"] = value
            elif name == "platform_private_key_pem":
                secrets_.update({f"{provider} private key line {i}": line
                                 for i, line in enumerate(value.splitlines()[1:-1])})
    secrets_["extra webhook secret"] = extra["webhook_secret"]
    secrets_["extra apiv3 key"] = wx["apiv3_key"]
    secrets_.update({f"refused private key line {i}": line
                     for i, line in enumerate(alipay_bad["platform_private_key_pem"].splitlines()[1:-1])})
    rt = w.runtime
    with rt.db.read() as s:
        for account in s.scalars(select(MemberAccount).where(MemberAccount.encrypted_key.is_not(None))):
            secrets_[f"private key of {account.member_id}"] = rt.vault.decrypt(account.address,
                                                                              account.encrypted_key).hex()
    secrets_["operator private key"] = rt.operator._key.secret.hex()  # type: ignore[attr-defined]
    assert len([n for n in secrets_ if n.startswith("private key of")]) >= 4  # the four founding members; newco waits for governance

    text = captured.text()
    assert len(captured.records) > 30 and "ledger.access" in text  # the capture saw the traffic
    found = sorted(name for name, value in secrets_.items() if value and value.lower() in text.lower())
    assert found == []


def test_the_formatter_masks_secret_shapes() -> None:
    """Second line of defence: API keys, bearer tokens, webhook secrets and PEM private keys that
    reached a log line anyway are masked by both formatters."""
    pem = demo_credentials("alipay", "x")["platform_private_key_pem"]
    message = (f"key lk_abcd1234_{'S' * 43} header Bearer tok_{'T' * 20} whsec_{'W' * 32} and {pem} done")
    masked = redact(message)
    assert "S" * 43 not in masked and "T" * 20 not in masked and "W" * 32 not in masked
    assert pem.splitlines()[1] not in masked and masked.endswith(" done")
    assert "lk_abcd1234_***" in masked
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    try:
        logger.warning("oops %s", message, extra={"detail": message})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert "S" * 43 not in stream.getvalue() and line["level"] == "warning" and "detail" in line
