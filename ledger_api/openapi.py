"""The API description (``/openapi.json``): FastAPI's schema, completed in one place so that it
matches what the routes really do (issue 15, item 5).

FastAPI derives paths, parameters and bodies from the handlers; this module adds what it cannot
see, without touching the route modules:

- **operation ids**: stable dotted names (``settlements.create``) from :data:`OPERATION_IDS`;
  a route missing from the table gets ``<tag>.<handler name>`` (still dotted and unique;
  ``tests/api/test_openapi.py`` asks for an entry);
- **security**: the ``bearer`` scheme (so the docs' Authorize button works) on every operation
  whose handler authenticates the caller (it depends on ``authenticate_caller``), and an explicit
  empty ``security`` on the others (health, provider callbacks, which carry their own signatures);
- **problems**: every error answer an operation can give, as ``application/problem+json`` with the
  stable ``type`` values of that status (:data:`PROBLEM_TYPES`), derived from what the route
  depends on: authentication (401, 429), roles and member status (403), path ids (404), parameters
  and bodies (422, 400, 413), ``Idempotency-Key`` (400, 409), plus what the route declares;
- **headers**: ``Idempotency-Key`` required wherever it is taken (every route taking it requires
  it), with its real bounds;
- **raw bodies**: the statement upload and the provider callbacks read the raw request body;
  their ``requestBody`` is declared here (:data:`RAW_BODIES`);
- **schema names**: two models of the same name in different modules get a clean name
  (:data:`SCHEMA_RENAMES`) instead of FastAPI's ``ledger_api__schemas__...`` mangling;
- **request examples** (:data:`REQUEST_EXAMPLES`), the same bodies the README tour sends.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ledger_api.deps import authenticate_caller, current_member
from settlement.core.errors import PROBLEM_TYPE_PREFIX
from settlement.store import idempotency as idem

__all__ = ["OPERATION_IDS", "PROBLEM_TYPES", "SECURITY_SCHEME", "api_routes", "install_openapi", "operation_id"]

SECURITY_SCHEME = "bearer"
# Operations that take an API key but do not need one (a key shows more).
OPTIONAL_AUTH = frozenset({"health.get"})
_METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM_MEDIA_TYPE = "application/problem+json"

# (METHOD, path as in the schema) -> operation id: <resource>[.<sub-resource>].<action>.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("GET", "/health"): "health.get",
    ("GET", "/ready"): "health.ready",
    ("GET", "/metrics"): "metrics.get",
    # members, keys, API keys
    ("POST", "/v1/members"): "members.create",
    ("GET", "/v1/members"): "members.list",
    ("GET", "/v1/members/{member_id}"): "members.get",
    ("POST", "/v1/members/{member_id}/suspend"): "members.suspend",
    ("POST", "/v1/members/{member_id}/reactivate"): "members.reactivate",
    ("POST", "/v1/members/{member_id}/roles"): "members.roles.change",
    ("GET", "/v1/me"): "me.get",
    ("GET", "/v1/members/{member_id}/keys"): "members.keys.list",
    ("POST", "/v1/members/{member_id}/keys"): "members.keys.add",
    ("POST", "/v1/members/{member_id}/keys/typed-data"): "members.keys.typed_data",
    ("POST", "/v1/members/{member_id}/keys/{address}/removal"): "members.keys.remove",
    ("POST", "/v1/members/{member_id}/api-keys"): "members.api_keys.issue",
    ("GET", "/v1/members/{member_id}/api-keys"): "members.api_keys.list",
    ("DELETE", "/v1/api-keys/{prefix}"): "api_keys.revoke",
    # governance, intents
    ("GET", "/v1/governance"): "governance.get",
    ("POST", "/v1/governance/proposals"): "governance.proposals.create",
    ("GET", "/v1/governance/proposals"): "governance.proposals.list",
    ("GET", "/v1/governance/proposals/{proposal_id}"): "governance.proposals.get",
    ("GET", "/v1/governance/proposals/{proposal_id}/typed-data"): "governance.proposals.typed_data",
    ("POST", "/v1/governance/proposals/{proposal_id}/approvals"): "governance.proposals.approve",
    ("POST", "/v1/governance/proposals/{proposal_id}/execute"): "governance.proposals.execute",
    ("GET", "/v1/intents"): "intents.list",
    ("GET", "/v1/intents/{intent_id}"): "intents.get",
    ("POST", "/v1/intents/{intent_id}/signature"): "intents.sign",
    ("POST", "/v1/intents/{intent_id}/withdrawal"): "intents.withdraw",
    # settlements, the journal, netting
    ("POST", "/v1/settlements"): "settlements.create",
    ("GET", "/v1/settlements"): "settlements.list",
    ("POST", "/v1/settlements:batch"): "settlements.create_batch",
    ("GET", "/v1/settlements/export.csv"): "settlements.export_csv",
    ("GET", "/v1/settlements/{settlement_id}"): "settlements.get",
    ("POST", "/v1/settlements/{settlement_id}/payments"): "settlements.payments.create",
    ("POST", "/v1/settlements/{settlement_id}/cancel"): "settlements.cancel",
    ("POST", "/v1/settlements/{settlement_id}/refunds"): "settlements.refunds.create",
    ("POST", "/v1/settlements/{settlement_id}/acknowledgement"): "settlements.acknowledge",
    ("GET", "/v1/balances"): "balances.list",
    ("GET", "/v1/positions"): "positions.list",
    ("GET", "/v1/statements"): "account_statements.get",
    ("POST", "/v1/netting-cycles"): "netting_cycles.create",
    ("GET", "/v1/netting-cycles/{cycle_id}"): "netting_cycles.get",
    ("POST", "/v1/netting-cycles/{cycle_id}/settle"): "netting_cycles.settle",
    ("POST", "/v1/netting-cycles/{cycle_id}/payments"): "netting_cycles.payments.attest",
    # provider callbacks and accounts
    ("POST", "/v1/callbacks/{provider}/{account}"): "callbacks.receive",
    ("GET", "/v1/callbacks"): "callbacks.list",
    ("GET", "/v1/callbacks/{callback_id}"): "callbacks.get",
    ("GET", "/v1/provider-accounts"): "provider_accounts.list",
    ("POST", "/v1/provider-accounts"): "provider_accounts.create",
    ("GET", "/v1/provider-accounts/{provider}/{account}"): "provider_accounts.get",
    ("PUT", "/v1/provider-accounts/{provider}/{account}"): "provider_accounts.update",
    ("POST", "/v1/provider-accounts/{provider}/{account}/disable"): "provider_accounts.disable",
    ("POST", "/v1/provider-accounts/{provider}/{account}/enable"): "provider_accounts.enable",
    # reconciliation
    ("POST", "/v1/reconciliation/statements"): "reconciliation.statements.import",
    ("GET", "/v1/reconciliation/statements"): "reconciliation.statements.list",
    ("POST", "/v1/reconciliation/runs"): "reconciliation.runs.create",
    ("GET", "/v1/reconciliation/runs"): "reconciliation.runs.list",
    ("GET", "/v1/reconciliation/runs/{run_id}"): "reconciliation.runs.get",
    ("GET", "/v1/reconciliation/runs/{run_id}/report"): "reconciliation.runs.report",
    ("GET", "/v1/reconciliation/exceptions"): "reconciliation.exceptions.list",
    ("GET", "/v1/reconciliation/exceptions/{exception_id}"): "reconciliation.exceptions.get",
    ("POST", "/v1/reconciliation/exceptions/{exception_id}/resolve"): "reconciliation.exceptions.resolve",
    # receivables and financing
    ("POST", "/v1/receivables"): "receivables.create",
    ("GET", "/v1/receivables"): "receivables.list",
    ("GET", "/v1/receivables/{receivable_id}"): "receivables.get",
    ("GET", "/v1/receivables/{receivable_id}/history"): "receivables.history",
    ("POST", "/v1/receivables/{receivable_id}/confirm"): "receivables.confirm",
    ("GET", "/v1/receivables/{receivable_id}/confirmation-typed-data"): "receivables.confirmation_typed_data",
    ("POST", "/v1/receivables/{receivable_id}/confirmations"): "receivables.confirm_signed",
    ("POST", "/v1/receivables/nonce-invalidations"): "receivables.nonces.invalidate",
    ("POST", "/v1/receivables/{receivable_id}/cancellation"): "receivables.cancel",
    ("POST", "/v1/receivables/{receivable_id}/rejection"): "receivables.reject",
    ("GET", "/v1/receivables/{receivable_id}/parts/{part_id}/offer-typed-data"): "receivables.parts.offer_typed_data",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/repayment-receipt"):
        "receivables.parts.repayment_receipt",
    # events out
    ("GET", "/v1/events"): "events.list",
    ("GET", "/v1/events/stream"): "events.stream",
    ("POST", "/v1/webhooks"): "webhooks.create",
    ("GET", "/v1/webhooks"): "webhooks.list",
    ("GET", "/v1/webhooks/{endpoint_id}"): "webhooks.get",
    ("PATCH", "/v1/webhooks/{endpoint_id}"): "webhooks.update",
    ("DELETE", "/v1/webhooks/{endpoint_id}"): "webhooks.delete",
    ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret"): "webhooks.rotate_secret",
    ("GET", "/v1/webhooks/{endpoint_id}/deliveries"): "webhooks.deliveries.list",
    ("POST", "/v1/webhooks/{endpoint_id}/replay"): "webhooks.replay",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/split"): "receivables.parts.split",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/transfer"): "receivables.parts.transfer",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/financing-request"):
        "receivables.parts.request_financing",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/financing-request/withdraw"):
        "receivables.parts.withdraw_financing",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/offers"): "receivables.parts.offers.create",
    ("GET", "/v1/receivables/{receivable_id}/parts/{part_id}/acceptance-typed-data"):
        "receivables.parts.acceptance_typed_data",
    ("POST", "/v1/receivables/{receivable_id}/parts/{part_id}/acceptances"): "receivables.parts.accept",
    ("POST", "/v1/receivables/{receivable_id}/repayment"): "receivables.repay",
    ("POST", "/v1/receivables/{receivable_id}/default"): "receivables.default",
    ("GET", "/v1/receivables/{receivable_id}/payments"): "receivables.payments.list",
    ("POST", "/v1/receivables/{receivable_id}/evidence"): "receivables.evidence.add",
    ("GET", "/v1/receivables/{receivable_id}/evidence"): "receivables.evidence.list",
    # provenance and anchors
    ("POST", "/v1/provenance/events"): "provenance.events.create",
    ("GET", "/v1/provenance/lots/{lot_id}/trace"): "provenance.lots.trace",
    ("GET", "/v1/provenance/products/{product}/lots"): "provenance.products.lots",
    ("GET", "/v1/provenance/events/{event_id}/proof"): "provenance.events.proof",
    ("GET", "/v1/anchors/batches"): "anchors.batches.list",
    ("GET", "/v1/anchors/batches/{sequence}"): "anchors.batches.get",
    ("GET", "/v1/anchors/batches/{sequence}/dump"): "anchors.batches.dump",
    ("GET", "/v1/anchors/records/{kind}/{record_id}/proof"): "anchors.records.proof",
    ("GET", "/v1/anchors/trial-balance"): "anchors.trial_balance",
    ("POST", "/v1/anchors/flush"): "anchors.flush",
    ("GET", "/v1/anchors/journal/export"): "anchors.journal.export",
}

# The stable problem types each error status can carry (slugs of settlement.core.errors); an
# operation lists those of the statuses it can answer.
PROBLEM_TYPES: dict[int, tuple[str, ...]] = {
    400: ("bad-request", "idempotency-key-required", "callback-malformed"),
    401: ("unauthenticated", "callback-signature-invalid"),
    403: ("forbidden", "member-suspended", "not-settlement-party"),
    404: ("not-found", "unknown-member", "settlement-not-found", "netting-cycle-not-found", "unknown-provider",
          "unknown-api-key", "unknown-lot"),
    409: ("conflict", "duplicate", "idempotency-key-reused", "invalid-state-transition", "pending-on-chain"),
    413: ("payload-too-large",),
    415: ("unsupported-media-type",),
    422: ("validation-failed", "invalid-amount", "unsupported-currency", "fx-inconsistent", "chain-revert"),
    429: ("authentication-throttled",),
    503: ("chain-unavailable", "signing-unavailable"),
}
_PROBLEM_TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
                   409: "Conflict", 413: "Payload too large", 415: "Unsupported media type",
                   422: "Invalid input", 429: "Too many failed authentications", 503: "Unavailable"}
_PROBLEM_EXAMPLE_DETAIL = {
    400: "send an Idempotency-Key header of 1-200 printable ASCII characters (e.g. a UUID)",
    401: "send the API key as Authorization: Bearer <key>",
    403: "this needs one of the roles: finance",
    404: "no settlement 0x0000000000000000000000000000000000000000000000000000000000000000",
    409: "this Idempotency-Key was used with another request body",
    413: "the request body exceeds 1048576 bytes",
    415: "this endpoint takes another media type",
    422: "1 invalid field",
    429: "too many failed authentications from this address; retry in 42 s",
    503: "the chain node does not answer",
}

# Routes that read the raw body themselves (no body parameter FastAPI could describe).
RAW_BODIES: dict[str, dict[str, Any]] = {
    "reconciliation.statements.import": {
        "description": "The statement file as it is, at most 1 MiB (larger files: `ledger reconcile`): an Alipay "
                       "or WeChat Pay bill (CSV, UTF-8 or GBK), a normalized CSV or a camt.053 XML, per `kind`.",
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"},
                         "example": "账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,"
                                    "支出金额（-元）,账户余额（元）,交易渠道,业务类型,备注\n"},
            "application/xml": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "callbacks.receive": {
        "description": "The provider's notification in its own wire format (Alipay: form-encoded, RSA2-signed; "
                       "WeChat Pay: JSON with an AES-GCM resource and signature headers; Stripe: JSON with a "
                       "`Stripe-Signature` header), verified on these raw bytes.",
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
}

# Two models of one name in two modules: their names in the schema.
SCHEMA_RENAMES: dict[str, str] = {
    "ledger_api__schemas__governance__TypedDataPublic": "ProposalTypedDataPublic",
    "ledger_api__schemas__receivables__TypedDataPublic": "ReceivableTypedDataPublic",
}

# Request bodies as the README tour sends them (valid against their schemas: a test checks).
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "settlements.create": {
        "client_reference": "INV-2026-0042", "payee": "supplier",
        "source": {"value": 100000, "currency": "HKD"}, "target": {"value": 91400, "currency": "CNY"},
        "fx_rate": "0.914", "purpose_code": "GDDS", "payment_reference": "ORDER-88123"},
    "netting_cycles.create": {"currency": "CNY"},
    "receivables.create": {
        "buyer_id": "buyer", "invoice_number": "PRC-2026-118",
        "face_value": {"value": 50000000, "currency": "CNY"}, "issue_date": "2026-11-20",
        "due_date": "2027-02-18"},
    "provenance.events.create": {"events": [{
        "event_id": "evt-0001", "lot_id": "LOT-7731", "product": "gtin:09506000134352", "event_type": "produced",
        "location": "gln:0614141000005", "occurred_at_s": 1795300000}]},
    "reconciliation.runs.create": {"statement_id": "3f1c2a9b7d6e5f40"},
    "reconciliation.exceptions.resolve": {"action": "written_off", "note": "a test order the provider never settled; written off"},
}


def api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes with their full paths (``path_format``, ``methods``, ``dependant``),
    also through the included routers that recent FastAPI keeps nested."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.16x: included routers nest
    except ImportError:  # older FastAPI: include_router copies the routes, with their prefix
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(getattr(context, "original_route", context), APIRoute):
            yield context


def operation_id(route: APIRoute) -> str:
    """``generate_unique_id_function``: the table's id, else ``<tag>.<handler name>``."""
    for method in sorted(route.methods or ()):
        found = OPERATION_IDS.get((method, route.path_format))
        if found is not None:
            return found
    tag = str(route.tags[0]) if route.tags else "api"
    return f"{re.sub(r'[^a-z0-9]+', '_', tag.lower()).strip('_')}.{route.name}"


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _calls(route: Any) -> set[Any]:
    return {d.call for d in _dependencies(route.dependant)}


def _problem_response(status: int, statuses_types: tuple[str, ...], description: str | None) -> dict[str, Any]:
    types = ", ".join(f"`{PROBLEM_TYPE_PREFIX}{slug}`" for slug in statuses_types)
    example = {"type": PROBLEM_TYPE_PREFIX + statuses_types[0], "title": _PROBLEM_TITLES.get(status, "Error"),
               "status": status, "detail": _PROBLEM_EXAMPLE_DETAIL.get(status, "see the type"),
               "instance": "/v1/...", "request_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    text = (description + ". " if description and description not in ("Error", "Successful Response")
            and not description.startswith("Validation") else "")
    return {"description": f"{text}Problem types: {types}",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"},
                                             "example": example}}}


def _error_statuses(route: Any, op: dict[str, Any], authenticated: bool) -> set[int]:
    calls = _calls(route)
    statuses = {int(code) for code in op.get("responses", {}) if code.isdigit() and int(code) >= 400}
    params = op.get("parameters", [])
    has_body = "requestBody" in op
    if authenticated:
        statuses |= {401, 429}
        if current_member in calls:  # an active member, and maybe certain roles
            statuses.add(403)
    if params or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413}
    if any(p["in"] == "path" for p in params) or (authenticated and has_body):
        statuses.add(404)  # a path, or a body, naming an object (a member, a statement) that is not there
    if any(p["in"] == "header" and p["name"].lower() == "idempotency-key" for p in params):
        statuses |= {400, 409}
    return statuses


def _require_idempotency_key(op: dict[str, Any]) -> None:
    for param in op.get("parameters", []):
        if param["in"] == "header" and param["name"].lower() == "idempotency-key":
            param["required"] = True
            param["schema"] = {"type": "string", "minLength": 1, "maxLength": idem.KEY_LEN_MAX,
                               "pattern": r"^[!-~](?:[ -~]*[!-~])?$"}
            param["description"] = (
                "Required. The same key with the same body answers the first answer again "
                "(`Idempotent-Replayed: true`); with another body, 409 `idempotency-key-reused`. "
                f"1-{idem.KEY_LEN_MAX} printable ASCII characters, e.g. a UUID.")
            param["example"] = "3b241101-e2bb-4255-8caf-4136c566a962"


def _rename_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.get("components", {}).get("schemas", {})
    renames = {old: new for old, new in SCHEMA_RENAMES.items() if old in components}
    for old, new in renames.items():
        components[new] = components.pop(old)
        components[new]["title"] = new
    if not renames:
        return schema

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (_renamed_ref(v, renames) if k == "$ref" and isinstance(v, str) else walk(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _renamed_ref(ref: str, renames: dict[str, str]) -> str:
    prefix = "#/components/schemas/"
    name = ref[len(prefix):] if ref.startswith(prefix) else None
    return prefix + renames[name] if name in renames else ref


def complete_schema(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Add security, problems, required headers, raw bodies and examples to FastAPI's schema."""
    schema = _rename_schemas(schema)
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "lk_<prefix>_<secret>",
        "description": "A member's API key (`Authorization: Bearer lk_...`); roles come from the on-chain "
                       "registry. `ledger up --demo` writes the demo members' keys to `$LEDGER_HOME/demo.json`."}
    # FastAPI's default 422 model is not what is sent: every error is a Problem.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    routes = {(m.lower(), r.path_format): r for r in api_routes(app) if r.include_in_schema for m in (r.methods or ())}
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            route = routes.get((method, path))
            if op is None or route is None:
                continue
            calls = _calls(route)
            authenticated = authenticate_caller in calls
            op["security"] = [{SECURITY_SCHEME: []}] if authenticated else []
            if op.get("operationId") in OPTIONAL_AUTH:
                op["security"] = [{}, {SECURITY_SCHEME: []}]
                authenticated = True  # a key sent must be valid: 401, 429
            raw = RAW_BODIES.get(op.get("operationId", ""))
            if raw is not None and "requestBody" not in op:
                op["requestBody"] = copy.deepcopy(raw)
            _require_idempotency_key(op)
            responses = op.setdefault("responses", {})
            for status in sorted(_error_statuses(route, op, authenticated)):
                declared = responses.get(str(status), {})
                responses[str(status)] = _problem_response(status, PROBLEM_TYPES.get(status, ("internal-error",)),
                                                           declared.get("description"))
            example = REQUEST_EXAMPLES.get(op.get("operationId", ""))
            if example is not None:
                content = op.get("requestBody", {}).get("content", {}).get("application/json")
                if content is not None:
                    content["example"] = example
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the completed schema at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                                 description=app.description, routes=app.routes, tags=app.openapi_tags,
                                 servers=app.servers, webhooks=app.webhooks.routes)
            app.openapi_schema = complete_schema(app, schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
