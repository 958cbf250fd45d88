"""Settlements end to end over real HTTP on anvil: every state is checked in the API and on chain
(``getSettlement``), with the dispatcher and follower driven synchronously."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from settlement.core.errors import PayeeNotActiveError, SettlementExistsError
from settlement.domains.settlements.postings import verify_journal
from settlement.store.models import IdempotencyRecord, OutboxRow
from settlement.store.models.settlements import JournalEntry, Settlement

from tests.http import NO_IDEMPOTENCY_KEY

from .conftest import CANCELLED, IN_CYCLE, INSTRUCTED, PAID, REFUNDED, SETTLED, World

PROBLEM = "urn:ledger:problem:"


def _pay(w: World, s: dict, who: str = "operator", amount: int | None = None) -> dict:
    value = s["target"]["value"] if amount is None else amount
    r = w.http.post(f"/v1/settlements/{s['id']}/payments", headers=w.h(who),
                    json={"provider": "alipay", "provider_transaction_id": f"2026112200{s['id'][2:12]}",
                          "amount": {"value": value, "currency": s["target"]["currency"]}})
    assert r.status_code == 202, r.text
    return r.json()


def _counts(w: World) -> tuple[int, ...]:
    with w.runtime.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in
                     (Settlement, JournalEntry, OutboxRow, IdempotencyRecord))


def test_create_pay_net_settle(world: World) -> None:
    """A cross-currency settlement and two others are paid, netted in a USD cycle and settled; the
    cycle's nets match the flows and the report shows gross against net."""
    w = world
    s1 = w.create("retailer", payee="bank", source={"value": 123_456, "currency": "EUR"},
                  target={"value": None, "currency": "USD"}, fx_rate="1.08325", fees={"value": 250, "currency": "EUR"})
    assert s1["target"] == {"value": 133_734, "currency": "USD"}  # 133733.712 rounds half up
    assert s1["fx_rate_scaled"] == str(1_083_250_000_000) and s1["fx_rate"] == "1.08325"
    s2 = w.create("bank", payee="psp", source={"value": 50_000, "currency": "USD"},
                  target={"value": 50_000, "currency": "USD"})
    s3 = w.create("psp", payee="retailer", source={"value": 20_000, "currency": "USD"},
                  target={"value": 20_000, "currency": "USD"})
    assert s1["state"] == "instructed" and s1["chain"]["status"] == "pending"
    w.sync()
    for s in (s1, s2, s3):
        got = w.get(s["id"], "operator")
        assert (got["state"], got["chain"]["status"]) == ("instructed", "confirmed")
        assert got["chain"]["tx_hash"] and got["chain"]["block_number"] and got["chain"]["recorded_tx_hash"]
        assert w.onchain(s["id"]) == (INSTRUCTED, 0)
    _pay(w, s1)
    _pay(w, s2)
    _pay(w, s3)
    w.sync()
    for s in (s1, s2, s3):
        assert w.onchain(s["id"]) == (PAID, 0)
        got = w.get(s["id"], "operator")
        assert (got["state"], got["chain"]["operation"], got["chain"]["status"]) == ("paid", "pay", "confirmed")

    r = w.http.post("/v1/netting-cycles", json={"currency": "USD"}, headers=w.h("operator"))
    assert r.status_code == 201, r.text
    cycle = r.json()
    assert r.headers["Location"] == f"/v1/netting-cycles/{cycle['id']}"
    assert cycle["settlement_ids"] == [s1["id"], s2["id"], s3["id"]]
    nets = {m["member_id"]: m["net"]["value"] for m in cycle["members"]}
    assert nets == {"retailer": -133_734 + 20_000, "bank": 133_734 - 50_000, "psp": 50_000 - 20_000}
    assert [m["onchain_id"] for m in cycle["members"]] == sorted(m["onchain_id"] for m in cycle["members"])
    report = cycle["report"]
    assert (report["gross_count"], report["gross_value"]["value"]) == (3, 133_734 + 50_000 + 20_000)
    assert report["net_count"] == 3 and report["net_value"]["value"] == 83_734 + 30_000
    assert report["value_saved"]["value"] == 203_734 - 113_734 and report["transfers_saved"] == 0
    w.sync()
    assert [w.onchain(s["id"])[0] for s in (s1, s2, s3)] == [IN_CYCLE] * 3
    got = w.http.get(f"/v1/netting-cycles/{cycle['id']}", headers=w.h("bank")).json()
    assert got["chain"]["status"] == "confirmed" and got["chain"]["submit_block"]
    # A member sees its own net and settlements only, and no report over the others.
    assert [m["member_id"] for m in got["members"]] == ["bank"] and got["report"] is None
    assert got["settlement_ids"] == [s1["id"], s2["id"]]
    onchain_cycle = w.runtime.chain.call("SettlementLedger", w.runtime.address("SettlementLedger"),
                                         "getNettingCycle", [cycle["id"]])[0]
    assert onchain_cycle[0] == 1 and onchain_cycle[2] == 3  # Submitted, 3 settlements

    unattested = w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator"))
    assert unattested.status_code == 409 and unattested.json()["type"] == PROBLEM + "netting-payment-unattested"
    w.attest_nets(cycle)
    r = w.http.post(f"/v1/netting-cycles/{cycle['id']}/settle", headers=w.h("operator"))
    assert r.status_code == 202, r.text
    w.sync()
    assert [w.onchain(s["id"])[0] for s in (s1, s2, s3)] == [SETTLED] * 3
    for s in (s1, s2, s3):
        got = w.get(s["id"], "operator")
        assert (got["state"], got["chain"]["status"]) == ("settled", "confirmed")
    final = w.http.get(f"/v1/netting-cycles/{cycle['id']}", headers=w.h("operator")).json()
    assert final["state"] == "settled" and final["chain"]["settle_tx_hash"]
    positions = {p["currency"]: p for p in w.http.get("/v1/positions", headers=w.h("bank")).json()["data"]}
    assert positions["USD"]["net"]["value"] == 0 and positions["USD"]["net_settled"]["value"] == 83_734
    with w.runtime.db.read() as session:
        verify_journal(session)


def test_cancel_by_the_payer_only(world: World) -> None:
    """Cancel waits for the recording's confirmation, is the payer's alone, and is final."""
    w = world
    s = w.create()
    early = w.http.post(f"/v1/settlements/{s['id']}/cancel", headers=w.h("retailer"))
    assert early.status_code == 409 and early.json()["type"] == PROBLEM + "pending-on-chain"
    w.sync()
    payee = w.http.post(f"/v1/settlements/{s['id']}/cancel", headers=w.h("bank"))
    assert payee.status_code == 403 and payee.json()["type"] == PROBLEM + "not-settlement-party"
    stranger = w.http.post(f"/v1/settlements/{s['id']}/cancel", headers=w.h("psp"))
    assert stranger.status_code == 404
    r = w.http.post(f"/v1/settlements/{s['id']}/cancel", headers=w.h("retailer"))
    assert r.status_code == 202 and r.json()["state"] == "cancelled"
    w.sync()
    assert w.onchain(s["id"]) == (CANCELLED, 0)
    got = w.get(s["id"])
    assert (got["state"], got["chain"]["operation"], got["chain"]["status"]) == ("cancelled", "cancel", "confirmed")
    again = w.http.post(f"/v1/settlements/{s['id']}/cancel", headers=w.h("retailer"))
    assert again.status_code == 409 and again.json()["type"] == PROBLEM + "invalid-state-transition"
    balances = w.http.get("/v1/balances", headers=w.h("retailer")).json()["data"]
    assert all(b["balance"]["value"] == 0 for b in balances)


def test_partial_then_full_refund(world: World) -> None:
    """Refunds accumulate, never exceed what was paid, and the last one makes it Refunded."""
    w = world
    s = w.create(source={"value": 1_000, "currency": "USD"}, target={"value": 1_000, "currency": "USD"})
    w.sync()
    too_soon = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("bank"),
                           json={"amount": {"value": 1, "currency": "USD"}, "reference": "R-0"})
    assert too_soon.status_code == 409 and too_soon.json()["type"] == PROBLEM + "invalid-state-transition"
    _pay(w, s)
    w.sync()
    by_payer = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("retailer"),
                           json={"amount": {"value": 1, "currency": "USD"}, "reference": "R-0"})
    assert by_payer.status_code == 403 and by_payer.json()["type"] == PROBLEM + "not-settlement-party"
    r = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("bank"),
                    json={"amount": {"value": 300, "currency": "USD"}, "reference": "R-1"})
    assert r.status_code == 202, r.text
    assert r.json()["settlement"]["refunded"]["value"] == 300 and r.json()["refund"]["status"] == "pending"
    w.sync()
    assert w.onchain(s["id"]) == (PAID, 300)
    over = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("bank"),
                       json={"amount": {"value": 701, "currency": "USD"}, "reference": "R-2"})
    assert over.status_code == 422 and over.json()["type"] == PROBLEM + "refund-exceeds-paid"
    reused = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("bank"),
                         json={"amount": {"value": 100, "currency": "USD"}, "reference": "R-1"})
    assert reused.status_code == 409 and reused.json()["type"] == PROBLEM + "refund-exists"
    r = w.http.post(f"/v1/settlements/{s['id']}/refunds", headers=w.h("bank"),
                    json={"amount": {"value": 700, "currency": "USD"}, "reference": "R-2"})
    assert r.status_code == 202 and r.json()["settlement"]["state"] == "refunded"
    w.sync()
    assert w.onchain(s["id"]) == (REFUNDED, 1_000)
    got = w.get(s["id"], "bank")
    assert got["state"] == "refunded" and [x["status"] for x in got["refunds"]] == ["confirmed", "confirmed"]
    assert [op["kind"] for op in got["operations"]] == ["record", "pay", "refund", "refund"]
    with w.runtime.db.read() as session:
        verify_journal(session)


def test_idempotent_retries(world: World) -> None:
    """Same key and body: the same answer, nothing new written; same key, other body: 409."""
    w = world
    body = w.body()
    first = w.http.post("/v1/settlements", json=body, headers=w.h("retailer", "key-1"))
    assert first.status_code == 201 and first.headers["Idempotent-Replayed"] == "false"
    before = _counts(w)
    again = w.http.post("/v1/settlements", json=body, headers=w.h("retailer", "key-1"))
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.headers["Location"] == again.headers["Location"] == f"/v1/settlements/{first.json()['id']}"
    assert w.http.get(first.headers["Location"], headers=w.h("retailer")).json()["id"] == first.json()["id"]
    assert _counts(w) == before
    other = w.http.post("/v1/settlements", json={**body, "purpose_code": "SERV"}, headers=w.h("retailer", "key-1"))
    assert other.status_code == 409 and other.json()["type"] == PROBLEM + "idempotency-key-reused"
    missing = w.http.post("/v1/settlements", json=w.body(), headers=w.h("retailer"),
                          extensions={NO_IDEMPOTENCY_KEY: True})
    assert missing.status_code == 400 and missing.json()["type"] == PROBLEM + "idempotency-key-required"
    dup_ref = w.http.post("/v1/settlements", json={**body, "payment_reference": "X-1"},
                          headers=w.h("retailer", "key-2"))
    assert dup_ref.status_code == 409 and dup_ref.json()["type"] == PROBLEM + "settlement-exists"
    assert _counts(w) == before
    w.sync()
    assert w.onchain(first.json()["id"]) == (INSTRUCTED, 0)


def test_bad_input_is_refused_with_stable_types_and_writes_nothing(world: World) -> None:
    w = world
    today = w.today()
    w.runtime.chain  # noqa: B018  (the chain is up; refusals happen before anything is enqueued)
    before = _counts(w)
    cases = [
        ({"target": {"value": 7_821, "currency": "CNY"}, "source": {"value": 1_001, "currency": "USD"},
          "fx_rate": "7.8125"}, 422, "fx-inconsistent"),
        ({"fx_rate": "7.81250000000001", "target": {"value": None, "currency": "CNY"}}, 422,
         "fx-rate-not-representable"),
        ({"fx_rate": "2"}, 422, "fx-rate-not-representable"),  # same currency: rate must be 1
        ({"source": {"value": 1, "currency": "XXX"}}, 422, "unsupported-currency"),
        ({"source": {"value": 0, "currency": "USD"}, "target": {"value": 0, "currency": "USD"}}, 422,
         "invalid-amount"),
        ({"source": {"value": -5, "currency": "USD"}}, 422, "invalid-amount"),
        ({"source": {"value": 2**96, "currency": "USD"}, "target": {"value": 2**96, "currency": "USD"}}, 422,
         "invalid-amount"),
        ({"source": {"value": 10.5, "currency": "USD"}}, 422, "validation-failed"),
        ({"value_date": (today + timedelta(days=367)).isoformat()}, 422, "invalid-value-date"),
        ({"value_date": (today - timedelta(days=8)).isoformat()}, 422, "invalid-value-date"),
        ({"payee": "nobody"}, 422, "unknown-payee"),
        ({"payee": "retailer"}, 422, "self-payment"),
        ({"purpose_code": "gd!s"}, 422, "invalid-purpose-code"),
        ({"fees": {"value": 1, "currency": "EUR"}}, 422, "invalid-amount"),
    ]
    for i, (overrides, status, slug) in enumerate(cases):
        r = w.http.post("/v1/settlements", json=w.body(**overrides), headers=w.h("retailer", f"bad-{i}"))
        assert (r.status_code, r.json()["type"]) == (status, PROBLEM + slug), (overrides, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    fx = w.http.post("/v1/settlements", json=w.body(**cases[0][0]), headers=w.h("retailer", "bad-fx"))
    assert fx.json()["expected_target_minor"] == 7_820
    auditor = w.http.post("/v1/settlements", json=w.body(), headers=w.h("auditor", "a-1"))
    assert auditor.status_code == 403
    batch = w.http.post("/v1/settlements:batch", json={"items": [w.body() for _ in range(201)]},
                        headers=w.h("retailer", "big"))
    assert batch.status_code == 422 and batch.json()["type"] == PROBLEM + "batch-size"
    mixed = w.http.post("/v1/settlements:batch", json={"items": [w.body(), w.body(payee="nobody")]},
                        headers=w.h("retailer", "mixed"))
    assert mixed.status_code == 422 and mixed.json()["index"] == 1
    assert _counts(w) == before
    # A suspended payee is refused too.
    from tests.governance.support import suspend
    suspend(w.runtime, "psp")  # the guardians' fast path
    r = w.http.post("/v1/settlements", json=w.body(payee="psp"), headers=w.h("retailer", "susp"))
    assert r.status_code == 422 and r.json()["type"] == PROBLEM + "payee-not-active"


def test_batch_of_200_is_one_transaction_under_35k_gas_each(world: World) -> None:
    """A full batch: one outbox row, one transaction, every settlement confirmed and on chain."""
    w = world
    items = [w.body(payee=("bank", "psp")[i % 2], source={"value": 10_000 + i, "currency": "EUR"},
                    target={"value": None, "currency": "USD"}, fx_rate="1.08325") for i in range(200)]
    r = w.http.post("/v1/settlements:batch", json={"items": items}, headers=w.h("retailer", "batch-1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["count"] == 200 and {s["chain_status"] for s in body["data"]} == {"pending"}
    assert w.get(body["data"][7]["id"])["chain"]["outbox_id"] == body["outbox_id"]
    w.sync()
    with w.runtime.db.read() as session:
        row = session.get(OutboxRow, body["outbox_id"])
        assert (row.function, row.status) == ("recordBatch", "confirmed")
        assert session.scalar(select(func.count()).select_from(Settlement).where(
            Settlement.batch_outbox_id == row.id, Settlement.chain_status == "confirmed")) == 200
    receipt = w.runtime.chain.receipts([row.tx_hash])[row.tx_hash]
    assert receipt.gas_used / 200 <= 35_000
    for s in body["data"][::40]:
        assert w.onchain(s["id"]) == (INSTRUCTED, 0)


def test_chain_refusal_rejects_the_settlement_and_reverses_its_postings(world: World) -> None:
    """The payee is suspended on chain before the recording is sent: the contract refuses it, the
    failure hook marks it rejected with the decoded error, and the journal is back to zero."""
    w = world
    s = w.create(payee="psp")
    from tests.governance.support import suspend_on_chain
    suspend_on_chain(w.runtime, "psp")  # the guardians, with their own keys, around the service
    w.sync()
    got = w.get(s["id"])
    assert got["state"] == "rejected" and got["chain"]["status"] == "rejected"
    assert got["chain"]["error"]["name"] == "SettlementPayeeNotActive"
    assert w.onchain(s["id"]) == (0, 0)
    assert all(b["balance"]["value"] == 0
               for b in w.http.get("/v1/balances", headers=w.h("retailer")).json()["data"])
    with w.runtime.db.read() as session:
        verify_journal(session)


def test_list_filters_pagination_export_balances(world: World) -> None:
    w = world
    made = [w.create(payee=("bank", "psp")[i % 2]) for i in range(5)]
    w.create("bank", payee="retailer", source={"value": 5, "currency": "JPY"}, target={"value": 5, "currency": "JPY"})
    page = w.http.get("/v1/settlements", params={"limit": 2}, headers=w.h("retailer")).json()
    assert page["count"] == 2 and page["next_cursor"] and page["has_more"] is True
    ids = [s["id"] for s in page["data"]]
    cursor = page["next_cursor"]
    while cursor:
        nxt = w.http.get("/v1/settlements", params={"limit": 2, "cursor": cursor}, headers=w.h("retailer")).json()
        ids += [s["id"] for s in nxt["data"]]
        cursor = nxt["next_cursor"]
        assert nxt["has_more"] is (cursor is not None)
    assert len(ids) == 6 and len(set(ids)) == 6  # the last page is full and says has_more false
    to_psp = w.http.get("/v1/settlements", params={"counterparty": "psp"}, headers=w.h("retailer")).json()
    assert {s["id"] for s in to_psp["data"]} == {s["id"] for s in made[1::2]}
    jpy = w.http.get("/v1/settlements", params={"currency": "JPY"}, headers=w.h("retailer")).json()
    assert jpy["count"] == 1 and jpy["data"][0]["payer"] == "bank"
    as_payer = w.http.get("/v1/settlements", params={"role": "payer", "state": "instructed"},
                          headers=w.h("retailer")).json()
    assert as_payer["count"] == 5
    assert w.http.get("/v1/settlements", params={"cursor": "nonsense"}, headers=w.h("retailer")).json()["type"] \
        == PROBLEM + "invalid-cursor"
    assert w.http.get("/v1/settlements", params={"limit": 201}, headers=w.h("retailer")).status_code == 422
    psp_view = w.http.get("/v1/settlements", headers=w.h("psp")).json()
    assert psp_view["count"] == 2
    csv_text = w.http.get("/v1/settlements/export.csv", headers=w.h("retailer")).text
    lines = csv_text.strip().split("\r\n")
    assert lines[0].startswith("id,client_reference,payer") and len(lines) == 7
    balances = {(b["account"], b["balance"]["currency"]): b["balance"]["value"]
                for b in w.http.get("/v1/balances", headers=w.h("retailer")).json()["data"]}
    assert balances[("instructed_payable", "USD")] == -500_000
    assert balances[("instructed_receivable", "JPY")] == 5
    statement = w.http.get("/v1/statements", params={"currency": "USD", "limit": 3}, headers=w.h("retailer")).json()
    assert len(statement["data"]) == 3 and statement["has_more"] is True and statement["next_cursor"]
    rest = w.http.get("/v1/statements", params={"currency": "USD", "limit": 100, "cursor": statement["next_cursor"]},
                      headers=w.h("retailer")).json()
    assert rest["data"] and rest["data"][0]["entry_id"] > statement["data"][-1]["entry_id"]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    bad = w.http.get("/v1/statements", params={"currency": "USD", "cursor": "x"}, headers=w.h("retailer"))
    assert bad.status_code == 422 and bad.json()["type"] == "urn:ledger:problem:invalid-cursor"


def test_batch_validated_before_the_write_is_rechecked_inside_it(world: World) -> None:
    """The API validates a batch in a read session and writes it in a later transaction: a payee
    suspended in between, or a reference taken in between, refuses the write and nothing is kept."""
    from settlement.domains import settlements as svc
    from tests.governance.support import suspend

    w = world
    inputs = [svc.InstructionInput(client_reference=f"race-{i}", payee_id="psp", source_minor=1_000 + i,
                                   source_currency="EUR", target_currency="USD", fx_rate="1.1",
                                   purpose_code="GDDS", payment_reference=f"race-pay-{i}") for i in range(3)]
    with w.runtime.db.read() as session:
        prepared = svc.prepare_batch(session, "retailer", inputs)
    suspend(w.runtime, "psp")  # the guardians' fast path, applied by the follower
    before = _counts(w)
    with pytest.raises(PayeeNotActiveError), w.runtime.db.transaction() as session:
        svc.write_batch(session, prepared)
    assert _counts(w) == before
    # the same references taken by another request in between
    inputs = [replace(i, payee_id="bank") for i in inputs]
    with w.runtime.db.read() as session:
        prepared = svc.prepare_batch(session, "retailer", inputs)
    with w.runtime.db.transaction() as session:
        svc.create_settlement(w.runtime, session, "retailer", inputs[1])
    with pytest.raises(SettlementExistsError), w.runtime.db.transaction() as session:
        svc.write_batch(session, prepared)


def test_batch_replay_answers_from_the_store_even_when_the_input_no_longer_validates(world: World) -> None:
    """An Idempotency-Key replay returns the stored answer without validating again (a retry
    after the value-date window moved, or after the payee was suspended, gets the original 201)."""
    from tests.governance.support import suspend

    w = world
    items = [w.body(payee="psp") for _ in range(2)]
    first = w.http.post("/v1/settlements:batch", json={"items": items}, headers=w.h("retailer", "replay-b"))
    assert first.status_code == 201, first.text
    suspend(w.runtime, "psp")
    again = w.http.post("/v1/settlements:batch", json={"items": items}, headers=w.h("retailer", "replay-b"))
    assert again.status_code == 201 and again.json() == first.json()
    other = w.http.post("/v1/settlements:batch", json={"items": items[:1]}, headers=w.h("retailer", "replay-b"))
    assert other.status_code == 409
