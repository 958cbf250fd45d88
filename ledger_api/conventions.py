"""The API's conventions as dependencies a route declares (docs/api.md, "Lists, ids, creates").

- :data:`CursorQuery`: ``?cursor=``, the ``next_cursor`` of the previous page (opaque; one that
  this API did not hand out is 422 ``invalid-cursor``, from ``settlement.store.paging``);
- :data:`IdempotencyKey` and :func:`idempotent`: every creating POST takes a required
  ``Idempotency-Key`` with the settlements' semantics: the same key and body answer the first
  answer again with ``Idempotent-Replayed: true``; the same key with another body (or on another
  route) is 409 ``idempotency-key-reused``; no key is 400 ``idempotency-key-required``. The key
  belongs to the calling member; the answer is stored in the same transaction as the work
  (``settlement.store.idempotency``), so either both are committed or neither;
- :data:`LOCATION`: a create's ``Location`` header, declared in ``responses=``; :func:`idempotent`
  sets it from the answer's body (``location=``), so a replay names the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from settlement.runtime import Runtime
from settlement.store import idempotency as idem
from settlement.store.paging import CURSOR_LEN_MAX

__all__ = ["LOCATION", "CursorQuery", "IdempotencyKey", "Locate", "idempotent", "idempotent_outside", "located",
           "replayed_headers"]

CursorQuery = Annotated[str | None, Query(min_length=1, max_length=CURSOR_LEN_MAX,
                                          description="next_cursor of the previous page")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=idem.KEY_LEN_MAX,
                                              description="required: a new key (e.g. a UUID) per request, the "
                                                          "same on its retries")]

Work = Callable[[Session], tuple[int, dict]]
Locate = Callable[[dict], str]

# The ``Location`` header as ``/openapi.json`` declares it (``responses={201: {"headers": LOCATION}}``).
LOCATION: dict[str, Any] = {"Location": {
    "description": "the path of the object this answer is about (a create's object; a 202's status to watch)",
    "schema": {"type": "string", "maxLength": 200}}}


def located(locate: Locate | None, payload: dict) -> dict[str, str]:
    """The ``Location`` header of an answer, from its body (the stored one on a replay)."""
    return {"Location": locate(payload)} if locate is not None else {}


def replayed_headers(replayed: bool) -> dict[str, str]:
    return {"Idempotent-Replayed": "true" if replayed else "false"}


def idempotent(runtime: Runtime, member_id: str, key: str | None, operation: str, request: Any, work: Work, *,
               before: Callable[[], None] | None = None, headers: dict[str, str] | None = None,
               location: Locate | None = None) -> JSONResponse:
    """Answer a creating request once per (member, key): ``work`` runs in a write transaction
    that also stores its answer (status, JSON body); a retry with the same key and ``request``
    (the parsed body and whatever else selects the work, e.g. path ids) gets that answer again.
    ``operation`` names the route (``"POST /v1/receivables"``): a key reused on another route is
    a conflict. ``before`` runs only when the work will (chain reads, checks outside the
    transaction): a replay skips it. ``location`` names the answer's object from its body (the
    ``Location`` header, the same on a replay)."""
    checked = idem.check_key(key)
    req_hash = idem.request_hash(operation, request)
    stored = idem.lookup(runtime.db, member_id, checked, req_hash)
    if stored is not None:
        return JSONResponse(stored[1], status_code=stored[0],
                            headers={**(headers or {}), **located(location, stored[1]), **replayed_headers(True)})
    if before is not None:
        before()
    code, payload, replayed = idem.run(runtime.db, member_id, checked, req_hash, work)
    return JSONResponse(payload, status_code=code,
                        headers={**(headers or {}), **located(location, payload), **replayed_headers(replayed)})


def idempotent_outside(runtime: Runtime, member_id: str, key: str | None, operation: str, request: Any,
                       work: Callable[[], tuple[int, dict]], *, location: Locate | None = None) -> JSONResponse:
    """Like :func:`idempotent` for work that runs in transactions of its own (a reconciliation
    run, a statement import): its answer is stored right after it (``idem.remember``), so a crash
    in between, or two concurrent first requests with one key, may do the work twice."""
    checked = idem.check_key(key)
    req_hash = idem.request_hash(operation, request)
    stored = idem.lookup(runtime.db, member_id, checked, req_hash)
    if stored is not None:
        return JSONResponse(stored[1], status_code=stored[0],
                            headers={**located(location, stored[1]), **replayed_headers(True)})
    code, payload, replayed = idem.remember(runtime.db, member_id, checked, req_hash, *work())
    return JSONResponse(payload, status_code=code, headers={**located(location, payload), **replayed_headers(replayed)})
