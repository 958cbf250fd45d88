"""The tenancy and role matrix (issue 15, item 2): every operation of ``/openapi.json`` x every
demo member, no key and a revoked key -> the expected status, and no other member's data in any
answer. Runs against a real ``ledger up --demo``.

How each cell is asked, without changing anything the next cells rely on:

- reads (GET) use real objects: a settlement retailer -> supplier, a receivable supplier -> buyer,
  a statement, run and exception of the retailer, a provenance event of the supplier;
- writes send a body their schema refuses (or leave out a required query parameter or header), so
  a caller the route admits gets 422 (400 for a missing ``Idempotency-Key``) and nothing is
  written, while one it refuses gets 401/403 first (authentication and roles are checked before
  the body); writes with a path name an object that does not exist, so an admitted caller gets 404;
- every JSON or CSV answer is searched for the markers of the objects the caller is no party to.

A new operation without a row in :data:`EXPECTED` fails the test: give it one. Set
``LEDGER_MATRIX_PRINT=1`` to print the observed matrix in the table's format.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .demo_service import DemoService, start_demo
from tests.http import client as http_client

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = ("operator", "retailer", "supplier", "buyer", "bank", "payments", "auditor")
# The columns of EXPECTED: each demo member, no key, a revoked key of the retailer.
COLUMNS = (*MEMBERS, "no key", "revoked")
GHOST_HEX = "0x" + "ab" * 32
# Path parameters of objects that do not exist (writes, and reads of missing things).
GHOST = {"settlement_id": GHOST_HEX, "cycle_id": GHOST_HEX, "receivable_id": GHOST_HEX, "part_id": GHOST_HEX,
         "proposal_id": GHOST_HEX, "intent_id": "int_" + "0" * 32, "member_id": "nobody", "address": "0x" + "cd" * 20,
         "prefix": "zzzzzzzz", "provider": "alipay", "account": "no-such-account", "callback_id": "999999",
         "run_id": "ffffffff", "exception_id": "no-such-exception", "sequence": "999999", "lot_id": "NO-LOT",
         "event_id": "no-such-event", "kind": "settlement", "record_id": GHOST_HEX,
         "endpoint_id": "ep_" + "0" * 24, "product": "sku:NO-PRODUCT"}
REFUSED_BODY = {"matrix_not_a_field": True}  # every request schema forbids unknown fields
_ADDRESS = "0x" + "cd" * 20
_SIGNATURE = "0x" + "11" * 65
_ONE_CNY = {"value": 100, "currency": "CNY"}
# Writes whose route checks roles or parties in the handler (after the body is parsed): a valid
# body on an object that does not exist, so an admitted caller gets 404 and nothing is written.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "members.roles.change": {"action": "grant", "role": "auditor"},
    "members.keys.add": {"account": _ADDRESS, "signer": _ADDRESS, "nonce": 0, "deadline": 0,
                         "possession_signature": _SIGNATURE},
    "members.keys.typed_data": {"action": "add", "account": _ADDRESS},
    "members.keys.remove": {"signer": _ADDRESS, "nonce": 0, "deadline": 0},
    "governance.proposals.create": {"action": "suspend", "member_id": "nobody"},
    "members.create": {"id": "matrix-newcomer", "name": "Matrix Newcomer", "country": "SG", "roles": ["finance"]},
    "governance.proposals.approve": {"governor": _ADDRESS},
    "intents.sign": {"signature": _SIGNATURE},
    "settlements.payments.create": {"provider": "alipay", "provider_transaction_id": "matrix", "amount": _ONE_CNY},
    "settlements.refunds.create": {"amount": _ONE_CNY, "reference": "matrix"},
    "netting_cycles.create": {"currency": "JPY"},
    "receivables.parts.split": {"amounts": [_ONE_CNY, _ONE_CNY]},
    "receivables.parts.transfer": {"to_member_id": "bank"},
    "reconciliation.runs.create": {"statement_id": "ffffffff"},
    "reconciliation.exceptions.resolve": {"action": "written_off", "note": "matrix"},
}
UNAUTHENTICATED_PER_ADDRESS_MAX = 10  # below the failed-authentication throttle (20 a minute)

# operation id -> the expected status per column of COLUMNS ("403|409": either, where a rule is
# being changed in parallel work and both answers refuse).
EXPECTED: dict[str, str] = {
    #                                   operator retailer supplier buyer bank payments auditor no-key revoked
    "health.get": "200 200 200 200 200 200 200 200 401",
    "metrics.get": "200 403 403 403 403 403 200 401 401",
    # /ready is public and reads no key (a revoked one included).
    "health.ready": "200 200 200 200 200 200 200 200 200",
    # Added with the money duties, the receivable rules, events and webhooks (a member's own
    # webhooks and events: every member; bodies refused by their schema give 422 to each).
    "settlements.acknowledge": "403 404 404 404 404 404 403 401 401",
    "netting_cycles.payments.attest": "422 403 403 403 403 403 403 401 401",
    "receivables.nonces.invalidate": "422 422 422 422 422 422 422 401 401",
    "receivables.cancel": "404 404 404 404 404 404 404 401 401",
    "receivables.reject": "403 404 403 404 403 403 403 401 401",
    "receivables.parts.offer_typed_data": "403 403 403 403 422 403 403 401 401",
    "receivables.parts.repayment_receipt": "404 404 404 404 404 404 404 401 401",
    "events.list": "200 200 200 200 200 200 200 401 401",
    "events.stream": "200 200 200 200 200 200 200 401 401",
    "webhooks.create": "422 422 422 422 422 422 422 401 401",
    "webhooks.list": "200 200 200 200 200 200 200 401 401",
    "webhooks.get": "404 404 404 404 404 404 404 401 401",
    "webhooks.update": "422 422 422 422 422 422 422 401 401",
    "webhooks.delete": "404 404 404 404 404 404 404 401 401",
    "webhooks.rotate_secret": "422 422 422 422 422 422 422 401 401",
    "webhooks.deliveries": "404 404 404 404 404 404 404 401 401",
    "webhooks.replay": "422 422 422 422 422 422 422 401 401",
    "members.create": "202 403 403 409 409 409 403 401 401",
    "members.list": "200 403 403 403 403 403 403 401 401",
    "members.get": "200 403 403 403 403 403 403 401 401",
    "members.suspend": "404 403 403 404 404 404 403 401 401",
    "members.reactivate": "404 403 403 404 404 404 403 401 401",
    "members.roles.change": "404 403 403 404 404 404 403 401 401",
    "me.get": "200 200 200 200 200 200 200 401 401",
    "members.keys.list": "200 200 403 403 403 403 403 401 401",
    "members.keys.add": "403 422 403 403 403 403 403 401 401",
    "members.keys.typed_data": "403 200 403 403 403 403 403 401 401",
    "members.keys.remove": "403 422 403 403 403 403 403 401 401",
    "members.api_keys.issue": "422 403 403 403 403 403 403 401 401",
    "members.api_keys.list": "200 403 403 403 403 403 403 401 401",
    "api_keys.revoke": "404 404 404 404 404 404 404 401 401",
    "governance.get": "200 200 200 200 200 200 200 401 401",
    "governance.proposals.create": "404 403 403 404 404 404 403 401 401",
    "governance.proposals.list": "200 200 200 200 200 200 200 401 401",
    "governance.proposals.get": "404 404 404 404 404 404 404 401 401",
    "governance.proposals.typed_data": "404 403 403 404 404 404 403 401 401",
    "governance.proposals.approve": "404 404 404 404 404 404 404 401 401",
    "governance.proposals.execute": "404 403 403 404 404 404 403 401 401",
    "intents.list": "200 200 200 200 200 200 200 401 401",
    "intents.get": "404 404 404 404 404 404 404 401 401",
    "intents.sign": "404 404 404 404 404 404 404 401 401",
    "intents.withdraw": "404 404 404 404 404 404 404 401 401",
    "settlements.create": "403 422 422 422 422 422 403 401 401",
    "settlements.list": "200 200 200 200 200 200 403 401 401",
    "settlements.create_batch": "403 422 422 422 422 422 403 401 401",
    "settlements.export_csv": "200 200 200 200 200 200 403 401 401",
    "settlements.get": "200 200 200 404 404 404 403 401 401",
    "settlements.payments.create": "404 404 404 404 404 404 403 401 401",
    "settlements.cancel": "403 404 404 404 404 404 403 401 401",
    "settlements.refunds.create": "404 404 404 404 404 404 403 401 401",
    "balances.list": "200 200 200 200 200 200 200 401 401",
    "positions.list": "200 200 200 200 200 200 403 401 401",
    "account_statements.get": "200 200 200 200 200 200 200 401 401",
    "netting_cycles.create": "409 403 403 403 403 403 403 401 401",
    "netting_cycles.get": "404 404 404 404 404 404 403 401 401",
    "netting_cycles.settle": "404 403 403 403 403 403 403 401 401",  # the operator only (issue 12)
    "callbacks.receive": "404 404 404 404 404 404 404 404 404",
    "provider_accounts.list": "200 200 200 200 200 200 403 401 401",
    "provider_accounts.create": "422 403 403 403 403 403 403 401 401",
    "provider_accounts.get": "200 404 404 404 404 200 403 401 401",
    "provider_accounts.update": "422 403 403 403 403 403 403 401 401",
    "provider_accounts.disable": "404 403 403 403 403 403 403 401 401",
    "provider_accounts.enable": "404 403 403 403 403 403 403 401 401",
    "callbacks.list": "200 200 200 200 200 200 200 401 401",
    "callbacks.get": "404 404 404 404 404 404 404 401 401",
    "reconciliation.statements.import": "422 422 422 422 422 422 403 401 401",
    "reconciliation.statements.list": "200 200 200 200 200 200 200 401 401",
    "reconciliation.runs.create": "404 404 404 404 404 404 403 401 401",
    "reconciliation.runs.list": "200 200 200 200 200 200 200 401 401",
    "reconciliation.runs.get": "200 200 404 404 404 404 200 401 401",
    "reconciliation.runs.report": "200 200 404 404 404 404 200 401 401",
    "reconciliation.exceptions.list": "200 200 200 200 200 200 200 401 401",
    "reconciliation.exceptions.get": "200 200 404 404 404 404 200 401 401",
    "reconciliation.exceptions.resolve": "404 404 404 404 404 404 403 401 401",
    "receivables.create": "403 403 422 403 403 403 403 401 401",
    "receivables.list": "200 200 200 200 200 200 200 401 401",
    "receivables.get": "200 404 200 200 404 404 200 401 401",
    "receivables.history": "200 404 200 200 404 404 200 401 401",
    "receivables.confirm": "403 404 403 404 403 403 403 401 401",
    "receivables.confirmation_typed_data": "403 404 403 200 403 403 403 401 401",
    "receivables.confirm_signed": "403 422 403 422 403 403 403 401 401",
    "receivables.parts.split": "404 404 404 404 404 404 404 401 401",
    "receivables.parts.transfer": "404 404 404 404 404 404 404 401 401",
    "receivables.parts.request_financing": "403 403 422 403 403 403 403 401 401",
    "receivables.parts.withdraw_financing": "404 404 404 404 404 404 404 401 401",
    "receivables.parts.offers.create": "403 403 403 403 422 403 403 401 401",
    "receivables.parts.acceptance_typed_data": "403 403 404 403 403 403 403 401 401",
    "receivables.parts.accept": "403 403 422 403 403 403 403 401 401",
    "receivables.repay": "403 404 403 404 403 403 403 401 401",
    "receivables.default": "403 403 403 403 404 403 403 401 401",
    "receivables.payments.list": "200 404 200 200 404 404 200 401 401",
    "receivables.evidence.add": "403 422 422 422 403 403 403 401 401",
    "receivables.evidence.list": "200 404 200 200 404 404 200 401 401",
    "provenance.events.create": "422 422 422 422 403 403 403 401 401",
    "provenance.lots.trace": "200 403 403 403 403 403 200 401 401",
    "provenance.products.lots": "200 403 403 403 403 403 200 401 401",
    "provenance.events.proof": "200 403 403 403 403 403 200 401 401",
    "anchors.batches.list": "200 403 403 403 403 403 200 401 401",
    "anchors.batches.get": "404 403 403 403 403 403 404 401 401",
    "anchors.batches.dump": "404 403 403 403 403 403 404 401 401",
    "anchors.records.proof": "404 403 403 403 403 403 404 401 401",
    "anchors.trial_balance": "409 403 403 403 403 403 409 401 401",
    "anchors.flush": "200 403 403 403 403 403 403 401 401",
    "anchors.journal.export": "200 403 403 403 403 403 200 401 401",
}


class World:
    """The running demo and the objects the matrix reads."""

    def __init__(self, service: DemoService) -> None:
        self.service = service
        self.http = http_client(base_url=service.api, timeout=60.0)
        # Failed authentications are throttled per client address: the cells without a valid key
        # come from addresses of their own (127.0.x.y, all loopback), a few each.
        self._anonymous: httpx.Client | None = None
        self._anonymous_sent = 0
        self._addresses = (f"127.0.{i // 200 + 1}.{i % 200 + 2}" for i in range(10_000))
        self.ids: dict[str, str] = {}
        # marker -> the members that may see it (the operator and auditors as the docs say)
        self.markers: dict[str, set[str]] = {}

    def as_(self, member: str | None) -> dict[str, str]:
        if member is None:
            return {}
        key = self.revoked_key if member == "revoked" else self.service.key(member)
        return {"Authorization": f"Bearer {key}"}

    def setup(self) -> None:
        http = self.http
        s = http.post("/v1/settlements", headers={**self.as_("retailer"), "Idempotency-Key": "matrix-s1"}, json={
            "client_reference": "MX-S1-RETAILER-SUPPLIER", "payee": "supplier",
            "source": {"value": 100000, "currency": "HKD"}, "target": {"value": 91400, "currency": "CNY"},
            "fx_rate": "0.914", "purpose_code": "GDDS", "payment_reference": "MX-PAYREF-S1"})
        assert s.status_code == 201, s.text
        self.ids["settlement_id"] = s.json()["id"]
        # auditors read every member's books through the journal export (docs/api.md)
        self.markers["MX-S1-RETAILER-SUPPLIER"] = {"retailer", "supplier", "operator", "auditor"}
        r = http.post("/v1/receivables", headers=self.as_("supplier"), json={
            "buyer_id": "buyer", "invoice_number": "MX-INV-SUPPLIER-BUYER",
            "face_value": {"value": 50000000, "currency": "CNY"}, "issue_date": "2026-11-20",
            "due_date": "2027-02-18"})
        assert r.status_code == 201, r.text
        self.ids["receivable_id"] = r.json()["id"]
        self.markers["MX-INV-SUPPLIER-BUYER"] = {"supplier", "buyer", "operator", "auditor"}
        bill = (ROOT / "docs" / "samples" / "alipay-bill.csv").read_bytes()
        st = http.post("/v1/reconciliation/statements", params={"kind": "alipay", "filename": "mx-retailer-bill.csv"},
                       headers={**self.as_("retailer"), "Content-Type": "text/csv"}, content=bill)
        assert st.status_code == 201, st.text
        self.ids["statement_id"] = st.json()["id"]
        self.markers["mx-retailer-bill.csv"] = {"retailer", "operator", "auditor"}
        run = http.post("/v1/reconciliation/runs", headers=self.as_("retailer"),
                        json={"statement_id": self.ids["statement_id"]})
        assert run.status_code == 201, run.text
        self.ids["run_id"] = run.json()["id"]
        self.markers[self.ids["run_id"]] = {"retailer", "operator", "auditor"}
        exceptions = http.get("/v1/reconciliation/exceptions", headers=self.as_("retailer")).json()
        items = exceptions.get("data", exceptions.get("items", []))
        assert items, exceptions
        self.ids["exception_id"] = items[0]["exception_id"]
        self.markers[self.ids["exception_id"]] = {"retailer", "operator", "auditor"}
        ev = http.post("/v1/provenance/events", headers=self.as_("supplier"), json={"events": [{
            "event_id": "mx-evt-1", "lot_id": "MX-LOT-1", "product": "gtin:09506000134352",
            "event_type": "produced", "location": "gln:0614141000005", "occurred_at_s": 1795300000}]})
        assert ev.status_code in (200, 201), ev.text
        # a revoked key of the retailer
        issued = http.post("/v1/members/retailer/api-keys", headers=self.as_("operator"), json={"label": "matrix"})
        assert issued.status_code == 201, issued.text
        self.revoked_key = issued.json()["key"]
        revoked = http.delete(f"/v1/api-keys/{issued.json()['prefix']}", headers=self.as_("operator"))
        assert revoked.status_code == 200, revoked.text

    # -- one cell ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, op: dict[str, Any], member: str | None) -> httpx.Response:
        reads = method == "GET"
        real = {"settlement_id": self.ids["settlement_id"], "receivable_id": self.ids["receivable_id"],
                "run_id": self.ids["run_id"], "exception_id": self.ids["exception_id"],
                "member_id": "retailer", "lot_id": "MX-LOT-1", "event_id": "mx-evt-1",
                "provider": "alipay", "account": "alipay-demo"}

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "member_id" and "/keys" in path:  # consent: the member itself acts on its keys
                return "retailer"
            return str(real[name]) if reads and name in real else GHOST[name]

        url = re.sub(r"\{([a-z_]+)\}", fill, path)
        headers = dict(self.as_(member))
        kwargs: dict[str, Any] = {}
        if reads:
            required = [p for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")]
            kwargs["params"] = {p["name"]: _query_value(p) for p in required}
        elif "requestBody" in op:
            content = op["requestBody"]["content"]
            if "application/json" in content:
                kwargs["json"] = VALID_BODIES.get(op["operationId"], REFUSED_BODY)
            else:  # a raw body: a required query parameter is left out instead
                kwargs["content"] = b"matrix"
                headers["Content-Type"] = next(iter(content))
        if "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {}):
            return _first_of_stream(self._client(member), url, headers, kwargs.get("params"))
        return self._client(member).request(method, url, headers=headers, **kwargs)

    def _client(self, member: str | None) -> httpx.Client:
        if member is not None and member != "revoked":
            return self.http
        if self._anonymous is None or self._anonymous_sent >= UNAUTHENTICATED_PER_ADDRESS_MAX:
            if self._anonymous is not None:
                self._anonymous.close()
            transport = httpx.HTTPTransport(local_address=next(self._addresses))
            self._anonymous = httpx.Client(base_url=self.service.api, timeout=60.0, transport=transport)
            self._anonymous_sent = 0
        self._anonymous_sent += 1
        return self._anonymous


def _first_of_stream(client: httpx.Client, url: str, headers: dict[str, str],
                     params: dict[str, str] | None) -> httpx.Response:
    """A Server-Sent Events answer never ends: its status, headers and first message (or the
    whole body of a refusal), then hang up."""
    with client.stream("GET", url, headers=headers, params=params) as answer:
        if answer.status_code >= 300:
            body = answer.read()
        else:
            # The first message (``retry:``) only: the events themselves are what events.list
            # answers (the same page read), whose row checks every marker.
            lines = []
            for line in answer.iter_lines():
                if line == "":
                    break
                lines.append(line)
            body = "\n".join(lines).encode()
        return httpx.Response(answer.status_code, headers=answer.headers, content=body)


def _query_value(param: dict[str, Any]) -> str:
    schema = param.get("schema", {})
    if "enum" in schema:
        return schema["enum"][0]
    return {"currency": "CNY"}.get(param["name"], "x")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    service = start_demo(tmp_path_factory.mktemp("matrix") / "home")
    try:
        w = World(service)
        w.setup()
        yield w
        w.http.close()
    finally:
        service.stop()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in schema["paths"].items()
            for method, op in item.items() if method in ("get", "post", "put", "delete", "patch")]


@pytest.mark.slow(seconds=50)
def test_every_operation_x_every_member(world: World) -> None:
    schema = world.http.get("/openapi.json").json()
    ops = _operations(schema)
    observed: dict[str, list[int]] = {}
    leaks: list[str] = []
    for method, path, op in ops:
        op_id = op["operationId"]
        row = []
        for member in (*MEMBERS, None, "revoked"):
            r = world.request(method, path, op, member)
            row.append(r.status_code)
            if r.status_code < 300:
                for marker, allowed in world.markers.items():
                    if marker in r.text and member not in allowed:
                        leaks.append(f"{op_id} as {member}: {marker}")
            if r.status_code >= 400:
                assert r.headers["content-type"].startswith(("application/problem+json", "text/plain",
                                                              "application/json", "application/xml")), op_id
        observed[op_id] = row
    if os.environ.get("LEDGER_MATRIX_PRINT"):
        for op_id, row in observed.items():
            print(f'    "{op_id}": "{" ".join(str(c) for c in row)}",')
    assert not leaks, leaks
    missing = sorted(set(observed) - set(EXPECTED))
    assert not missing, f"operations without a row in EXPECTED (tests/api/test_matrix.py): {missing}"
    wrong = []
    for op_id, row in observed.items():
        for who, got, want in zip(COLUMNS, row, EXPECTED[op_id].split(), strict=True):
            if str(got) not in want.split("|"):
                wrong.append(f"{op_id} as {who}: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)


