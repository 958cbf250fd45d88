"""The API description matches the API (issue 15, item 5), and its docs pages load nothing from
outside the service.

The schema checks read ``/openapi.json`` from the app served by a real uvicorn; the docs checks
fetch ``/docs`` and ``/redoc`` and every asset they reference over HTTP. The description does not
depend on the store or the chain's state: one app serves the whole module, on SQLite.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from pydantic import TypeAdapter

from ledger_api.app import create_app
from ledger_api.openapi import OPERATION_IDS, REQUEST_EXAMPLES, api_routes
from ledger_api.settings import Settings
from settlement.chain.anvil import ManagedAnvil
from tests.governance.support import seal
from tests.http import client as http_client

from .support import Api, LiveServer, build_runtime, onboard_direct

PROBLEM = "application/problem+json"
DOTTED = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Operations anyone may call: liveness, readiness, and the providers' callbacks (which carry the
# provider's own signature instead of an API key).
PUBLIC = {"health.ready", "callbacks.receive"}
# Operations where a key is optional (it shows more).
OPTIONAL_KEY = {"health.get"}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in schema["paths"].items()
            for method, op in item.items() if method in ("get", "post", "put", "delete", "patch")]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, anvil_automine: ManagedAnvil) -> Iterator[Api]:
    """As tests/api/conftest.py's ``api`` (an operator onboarded, the bootstrap window sealed), once
    for the module."""
    base = tmp_path_factory.mktemp("openapi")
    runtime = build_runtime(base / "home", f"sqlite:///{base / 'ledger.db'}", anvil_automine.rpc_url)
    app = create_app(runtime, Settings(home=base / "home"), registry_cache_ttl_s=0.0)
    operator_key = onboard_direct(runtime, "ops", ["operator"])
    seal(runtime)
    server = LiveServer(app).start()
    try:
        with http_client(base_url=server.url, timeout=30.0) as http:
            yield Api(url=server.url, runtime=runtime, app=app, http=http, operator_key=operator_key)
    finally:
        server.stop()
        runtime.db.dispose()


@pytest.fixture(scope="module")
def schema(api: Api) -> dict[str, Any]:
    r = api.http.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def test_operation_ids_are_dotted_unique_and_in_the_table(schema: dict[str, Any]) -> None:
    ops = _operations(schema)
    ids = [op["operationId"] for _, _, op in ops]
    assert all(DOTTED.match(i) for i in ids), [i for i in ids if not DOTTED.match(i)]
    assert not [i for i, n in Counter(ids).items() if n > 1]
    missing = [(m, p) for m, p, _ in ops if (m, p) not in OPERATION_IDS]
    assert not missing, f"give these operations an id in ledger_api.openapi.OPERATION_IDS: {missing}"
    assert {"settlements.create", "receivables.get", "reconciliation.statements.import"} <= set(ids)


def test_bearer_scheme_and_every_operation_declares_its_security(schema: dict[str, Any]) -> None:
    """Swagger UI's Authorize button needs the scheme; each operation says whether it uses it."""
    assert schema["components"]["securitySchemes"]["bearer"] == {
        **schema["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}
    for method, path, op in _operations(schema):
        assert "security" in op, (method, path)
        if op["operationId"] in PUBLIC:
            assert op["security"] == [], op["operationId"]
        elif op["operationId"] in OPTIONAL_KEY:
            assert op["security"] == [{}, {"bearer": []}], op["operationId"]
        else:
            assert op["security"] == [{"bearer": []}], op["operationId"]
            assert {"401", "429"} <= set(op["responses"]), op["operationId"]


def test_errors_are_declared_as_problem_json_with_their_types(schema: dict[str, Any]) -> None:
    for method, path, op in _operations(schema):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            assert list(response.get("content", {})) == [PROBLEM], (op["operationId"], status)
            assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert "urn:ledger:problem:" in response["description"], (op["operationId"], status)
        has_path_ids = any(p["in"] == "path" for p in op.get("parameters", []))
        if has_path_ids:
            assert "404" in op["responses"], op["operationId"]
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(op["responses"]), op["operationId"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "request_id", "errors"} <= set(problem["properties"])


# Every creating POST (docs/api.md, "Idempotency-Key"): each answers 201 with what it made (or 202,
# ANSWERING_202 below).
TAKING_IDEMPOTENCY_KEY = {
    "settlements.create", "settlements.create_batch", "netting_cycles.create", "webhooks.create",
    "receivables.create", "receivables.parts.split", "receivables.parts.transfer",
    "receivables.parts.request_financing", "receivables.parts.offers.create", "receivables.evidence.add",
    "reconciliation.statements.import", "reconciliation.runs.create", "provider_accounts.create", "members.create",
    "members.api_keys.issue", "governance.proposals.create", "provenance.events.create"}


def test_idempotency_key_is_a_required_header_where_it_is_taken(schema: dict[str, Any]) -> None:
    taking = {}
    for _, _, op in _operations(schema):
        for p in op.get("parameters", []):
            if p["in"] == "header" and p["name"] == "Idempotency-Key":
                taking[op["operationId"]] = p
    assert set(taking) == TAKING_IDEMPOTENCY_KEY, set(taking) ^ TAKING_IDEMPOTENCY_KEY
    creating = {op["operationId"] for m, _, op in _operations(schema) if m == "POST" and "201" in op["responses"]}
    assert creating <= set(taking), f"a creating POST without Idempotency-Key: {creating - set(taking)}"
    for op_id, param in taking.items():
        assert param["required"] is True, op_id
        assert param["schema"]["type"] == "string" and param["schema"]["minLength"] == 1
        assert {"409", "400"} <= set(_op(schema, op_id)["responses"])


# Creates answer 201 with their object (docs/api.md, "Creates"). The creating POSTs that may answer
# 202 instead, and why: a financing request has no id of its own (it is its part's state on
# chain; always 202); an onboarding after the seal creates no member, only the proposal that may;
# a settlement asked with `Prefer: intent` waits for the member's own signature.
ANSWERING_202 = {"receivables.parts.request_financing", "members.create", "settlements.create"}
# ... and name their object in a `Location` header (a 202: the proposal that decides it).
LOCATED = {"receivables.create", "receivables.parts.split", "receivables.parts.transfer",
           "governance.proposals.create", "members.create", "settlements.create", "netting_cycles.create",
           "provider_accounts.create", "reconciliation.runs.create", "webhooks.create"}


def test_creates_answer_201_with_their_object_at_its_location(schema: dict[str, Any]) -> None:
    for op_id in TAKING_IDEMPOTENCY_KEY:
        answers = {code for code in _op(schema, op_id)["responses"] if code.startswith("2")}
        if op_id in ANSWERING_202:
            assert "202" in answers, op_id
        else:
            assert "201" in answers and "202" not in answers, (op_id, answers)
    for op_id in LOCATED:
        for code, answer in _op(schema, op_id)["responses"].items():
            if code in ("201", "202"):
                assert "Location" in answer.get("headers", {}), (op_id, code)
    split = _op(schema, "receivables.parts.split")["responses"]["201"]["content"]["application/json"]["schema"]
    assert split == {"$ref": "#/components/schemas/ReceivablePublic"}
    proposal = _op(schema, "governance.proposals.create")["responses"]["201"]["content"]["application/json"]
    assert proposal["schema"] == {"$ref": "#/components/schemas/ProposalPublic"}


def test_schema_names_are_clean(schema: dict[str, Any]) -> None:
    names = list(schema["components"]["schemas"])
    assert not [n for n in names if "__" in n or not re.match(r"^[A-Z][A-Za-z0-9]*$", n)]


def test_raw_uploads_have_a_request_body(schema: dict[str, Any]) -> None:
    upload = _op(schema, "reconciliation.statements.import")
    assert upload["requestBody"]["required"] is True
    assert {"text/csv", "application/xml", "application/octet-stream"} <= set(upload["requestBody"]["content"])
    assert "requestBody" in _op(schema, "callbacks.receive")


def test_request_examples_are_valid_bodies(api: Api, schema: dict[str, Any]) -> None:
    """Each example is shown in the schema and is accepted by its route's own body model."""
    bodies = {}
    for route in api_routes(api.app):
        for method in route.methods or ():
            op_id = OPERATION_IDS.get((method, route.path_format))
            if op_id in REQUEST_EXAMPLES and route.body_field is not None:
                bodies[op_id] = route.body_field.field_info.annotation
    assert set(bodies) == set(REQUEST_EXAMPLES)
    for op_id, example in REQUEST_EXAMPLES.items():
        TypeAdapter(bodies[op_id]).validate_python(example)
        assert _op(schema, op_id)["requestBody"]["content"]["application/json"]["example"] == example


def _op(schema: dict[str, Any], op_id: str) -> dict[str, Any]:
    return next(op for _, _, op in _operations(schema) if op["operationId"] == op_id)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "action", "data") and value:
                self.urls.append(value)
        if tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(api: Api, page: str) -> None:
    """The page references no outside URL (no CDN, no fonts), every asset it names loads from the
    service, and its Content-Security-Policy keeps the browser from fetching anything elsewhere."""
    r = api.http.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//", r.text), "an outside URL in " + page
    refs = _Refs()
    refs.feed(r.text)
    assert refs.inline_scripts == 0
    assert refs.urls and all(u.startswith("/") and not u.startswith("//") for u in refs.urls), refs.urls
    for url in refs.urls:
        asset = api.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
            assert not re.search(rb"//\s*cdn\.|https://(cdn|fonts)\.", asset.content[:4096])
    csp = r.headers["content-security-policy"]
    for directive in ("default-src 'self'", "connect-src 'self'", "img-src 'self' data:", "font-src 'self'"):
        assert directive in csp
    if page == "/docs":
        init = api.http.get("/static/docs/swagger-init.js").text
        assert "validatorUrl: null" in init and '"/openapi.json"' in init


def test_docs_assets_are_in_the_package_with_their_licences() -> None:
    from ledger_api.docs import ASSETS_DIR

    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "swagger-init.js",
                 "swagger-ui.LICENSE", "redoc.LICENSE", "VERSIONS"):
        assert (ASSETS_DIR / name).is_file(), name


# Answers with a `data` list that are not paged lists: bounded sets read whole, and documents
# with a list inside (docs/api.md, "Lists"). Every other `data` list is a page in the envelope.
NOT_PAGED = {"members.keys.list",  # at most 16 accounts
             "receivables.payments.list", "receivables.evidence.list",  # one receivable's, bounded
             "balances.list", "positions.list"}  # one row per account and currency
# Paged by `?after=` as the SSE stream's Last-Event-ID (docs/events.md), or read as one page.
CURSOR_AS_AFTER = {"events.list"}
ONE_PAGE = {"provider_accounts.list"}
# Not yet in the envelope (docs/api.md lists them as left).
LEFT: set[str] = set()


def _body_schema(schema: dict[str, Any], op: dict[str, Any], code: str) -> dict[str, Any] | None:
    content = op["responses"].get(code, {}).get("content", {}).get("application/json")
    ref = (content or {}).get("schema", {}).get("$ref")
    return None if ref is None else schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_list_answers_the_one_envelope(schema: dict[str, Any]) -> None:
    """Every answer carrying a `data` list (or the older `items`, `next_after`) is the one list
    envelope: `data`, `next_cursor`, `has_more`, and context fields beside them (a page's count);
    a new list that is not fails here."""
    lists = set()
    for _method, _path, op in _operations(schema):
        body = _body_schema(schema, op, "200")
        if body is None or op["operationId"] in NOT_PAGED | LEFT:
            continue
        props = body.get("properties", {})
        if "data" in props or "items" in props or "next_after" in props:
            lists.add(op["operationId"])
            assert {"data", "next_cursor", "has_more"} <= set(props), op["operationId"]
            assert "next_after" not in props and "items" not in props, op["operationId"]
            assert props["data"]["type"] == "array", op["operationId"]
            assert props["has_more"]["type"] == "boolean", op["operationId"]
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            if op["operationId"] not in ONE_PAGE:
                cursor = "after" if op["operationId"] in CURSOR_AS_AFTER else "cursor"
                assert {cursor, "limit"} <= params, op["operationId"]
    assert {"callbacks.list", "members.list", "members.api_keys.list", "governance.proposals.list",
            "intents.list", "reconciliation.runs.list"} <= lists, lists
