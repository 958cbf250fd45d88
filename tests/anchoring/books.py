"""A store full of books for the audit tests: every record kind written through the service (over
HTTP where the API does it), journaled, batched and anchored on a real anvil; and the tools to
tamper with a copy of the store behind the service's back (plain SQL, as someone with database
access would) and to audit it as an auditor would (the read-only store and the chain)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from settlement.core.money import Money
from settlement.domains import anchoring
from settlement.domains.members.apikeys import rotate_key
from settlement.pipeline.workers import build
from settlement.wiring import build_registry
from tests.api.support import onboard_direct
from tests.governance import support as governance
from tests.callbacks.conftest import CWorld
from tests.conftest import pg_admin_url
from tests.receivables.support import invoice

CNY, USD = "CNY", "USD"


@dataclass
class Books:
    """What the scenario wrote: the ids an audit test tampers with."""

    cw: CWorld
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self):  # type: ignore[no-untyped-def]
        return self.cw.w.runtime

    def audit(self, url: str, **kw: Any) -> anchoring.AuditReport:
        out: list[str] = []
        report = anchoring.audit_store(url, rpc=self.runtime.chain.rpc_url, contract=self.runtime.address("TraceAnchor"),
                                       out=out.append, **kw)
        report.lines = out  # type: ignore[attr-defined]
        return report


def _ok(r, status: int = 202) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code in (status, 200, 201, 202), r.text
    return r.json()


def write_books(cw: CWorld) -> Books:
    """Settlements (single, batch, FX), an Alipay payment, a Stripe payment and a refund, a netting
    cycle closed and settled, a receivable registered, confirmed, financed and disbursed, a
    reconciliation run with a resolved exception, a provenance event, member and API-key changes;
    then every batch flushed and anchored."""
    w = cw.w
    books = Books(cw)
    rt = w.runtime
    # a cross-border settlement paid through Alipay (the example: HKD 1,000.00 -> CNY 914.00)
    fx = cw.settlement(source={"value": 100_000, "currency": "HKD"}, target={"value": 91_400, "currency": CNY},
                       fx_rate="0.914")
    assert cw.post("alipay", cw.payment("alipay", fx["payment_reference"], Money(91_400, CNY))).status_code == 200
    w.sync()
    books.ids["fx"] = fx["id"]
    # two USD settlements paid through Stripe; one refunded in part; both netted and settled
    usd = []
    for i in range(2):
        s = cw.settlement(payer="retailer" if i == 0 else "bank", payee="bank" if i == 0 else "retailer")
        assert cw.post("stripe", cw.payment("stripe", s["payment_reference"], Money(s["target"]["value"], USD),
                                            payment_intent_id=f"pi_books{i}")).status_code == 200
        usd.append(s)
    w.sync()
    payee = "bank"
    _ok(w.http.post(f"/v1/settlements/{usd[0]['id']}/refunds", headers=w.h(payee),
                    json={"amount": {"value": 1_000, "currency": USD}, "reference": "RF-1"}))
    w.sync()
    cycle = _ok(w.http.post("/v1/netting-cycles", json={"currency": USD}, headers=w.h("operator")), 201)
    w.sync()
    w.attest_nets(cycle)  # each net payer's payment in, attested by the operator
    _ok(w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator")))
    w.sync()
    books.ids.update(usd=[s["id"] for s in usd], cycle=cycle["id"])
    # a batch of three
    batch = _ok(w.http.post("/v1/settlements:batch", json={"items": [w.body() for _ in range(3)]},
                            headers=w.h("retailer", "books-batch")), 201)
    books.ids["batch"] = [s["id"] for s in batch["items"]] if "items" in batch else [s["id"] for s in batch["data"]]
    w.sync()
    # a receivable: registered by a supplier, confirmed by its buyer, financed by the bank
    w.keys["supplier"] = onboard_direct(rt, "supplier", ["supplier"], country="CN")
    w.sync()
    rec = _ok(w.http.post("/v1/receivables", json=invoice(buyer="retailer", number="INV-BOOKS-1", currency=CNY,
                                                          value=5_000_000), headers=w.h("supplier")), 201)
    rid = rec["id"]
    w.sync()
    part = _ok(w.http.get(f"/v1/receivables/{rid}", headers=w.h("supplier")), 200)["parts"][0]["id"]
    _ok(w.http.post(f"/v1/receivables/{rid}/confirm", headers=w.h("retailer")))
    w.sync()
    _ok(w.http.post(f"/v1/receivables/{rid}/parts/{part}/financing-request", headers=w.h("supplier"),
                    json={"financier_id": "bank"}))
    w.sync()
    valid_until = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    _ok(w.http.post(f"/v1/receivables/{rid}/parts/{part}/offers", headers=w.h("bank"),
                    json={"discount_rate": "0.06", "day_count": "ACT/365", "fee": {"value": 500, "currency": CNY},
                          "valid_until": valid_until}), 201)
    w.sync()
    offer = _ok(w.http.get(f"/v1/receivables/{rid}", headers=w.h("supplier")), 200)["parts"][0]["offer"]
    _ok(w.http.post(f"/v1/receivables/{rid}/parts/{part}/acceptances", headers=w.h("supplier"),
                    json={"offer_id": offer["offer_id"]}))
    w.sync()
    books.ids.update(receivable=rid, part=part)
    # reconciliation: a statement with one line that differs, its exception resolved with a note
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    csv = ("provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
           f"pi_books0,{usd[0]['payment_reference']},payment,{usd[0]['target']['value'] + 5},USD,succeeded,{now}\n")
    stmt = _ok(w.http.post("/v1/reconciliation/statements", params={"kind": "normalized", "filename": "s.csv"},
                           content=csv.encode(), headers={**w.h("retailer"), "Content-Type": "text/csv"}), 201)
    run = _ok(w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]}, headers=w.h("retailer")), 201)
    report = _ok(w.http.get(f"/v1/reconciliation/runs/{run['id']}/report", headers=w.h("retailer")), 200)
    exc = report["exceptions"][0]["exception_id"]
    _ok(w.http.post(f"/v1/reconciliation/exceptions/{exc}/resolve", headers=w.h("retailer"),
                    json={"action": "provider_claimed", "note": "five cents of fees; claimed"}), 200)
    books.ids.update(run=run["id"], exception=exc)
    # members and keys: a suspension and reinstatement, a key rotation
    governance.suspend(rt, "psp")  # the guardians' fast path
    governance.reactivate(rt, "psp")  # governance, after its delay
    # Governance drove its own dispatcher: the world's one recovers its nonces afresh (one
    # dispatcher per signer is the service's rule; the test used two).
    w.dispatcher, w.follower = build(rt, build_registry())
    with rt.db.transaction() as s:
        rotate_key(s, "psp", overlap_s=60)
    w.sync()
    # a provenance event
    _ok(w.http.post("/v1/provenance/events", headers=w.h("supplier"), json={"events": [{
        "event_id": "evt-books-1", "lot_id": "LOT-1", "product": "sku:BOOKS", "event_type": "produced",
        "location": "gln:0614141000005", "occurred_at_s": 1_800_000_000}]}), 201)
    # everything into batches, anchored
    anchoring.flush(rt, force=True)
    w.sync()
    return books


# -- copies of the store to tamper with ------------------------------------------------------------


@contextmanager
def store_copy(books: Books) -> Iterator[str]:
    """A copy of the books' store (the service is idle), dropped afterwards."""
    url = books.runtime.db.url
    books.runtime.db.dispose()
    if url.startswith("sqlite"):
        source = Path(sa.engine.make_url(url).database or "")
        target = source.with_name(f"copy-{uuid.uuid4().hex[:8]}.db")
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        try:
            yield f"sqlite:///{target}"
        finally:
            target.unlink(missing_ok=True)
        return
    name = sa.engine.make_url(url).database
    copy = f"c_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'))
        try:
            yield url.rsplit("/", 1)[0] + "/" + copy
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
    finally:
        admin.dispose()


def tamper(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run SQL on the store directly (no service, no hooks), committed."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for sql, params in statements:
                conn.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def one(url: str, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).first()
    finally:
        engine.dispose()


__all__ = ["Books", "one", "store_copy", "tamper", "write_books"]
