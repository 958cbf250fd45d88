"""Signed provider callbacks become attested evidence (issue 12): the operator's key attests the
payment on chain and the provider transaction is spent there; one provider transaction pays one
settlement; a payment before the settlement's value date waits, without spending its attempts."""

from __future__ import annotations

from datetime import timedelta

from settlement.core.money import Money
from settlement.domains.payments import process_deferred
from settlement.domains.settlements import provider_txn_hash
from tests.settlements.conftest import INSTRUCTED, PAID

from .conftest import CWorld

USD = "USD"
ALIPAY = "0x" + b"alipay".ljust(16, b"\0").hex()


def test_a_verified_callback_is_attested_on_chain_and_spends_its_transaction(cworld: CWorld) -> None:
    """The callback's markPaid is signed by the operator (the attestor, no party); the chain records
    the provider transaction as spent by that settlement, and the operation says who attested it."""
    w = cworld.w
    s = cworld.settlement()
    trade = "2026" + "5" * 24
    assert cworld.post("alipay", cworld.payment("alipay", s["payment_reference"], Money(s["target"]["value"], USD),
                                                trade_no=trade)).text == "success"
    w.sync()
    assert w.onchain(s["id"])[0] == PAID
    ledger = w.runtime.address("SettlementLedger")
    (used_by,) = w.runtime.chain.call("SettlementLedger", ledger, "evidenceUsedBy",
                                      [ALIPAY, provider_txn_hash(trade), False])
    assert (used_by if isinstance(used_by, str) else "0x" + bytes(used_by).hex()).lower() == s["id"]
    pay = [op for op in w.get(s["id"])["operations"] if op["kind"] == "pay"]
    assert [(op["requested_by"], op["status"]) for op in pay] == [("operator", "confirmed")]


def test_a_payment_before_the_value_date_waits_for_it(cworld: CWorld) -> None:
    """An authentic payment of a settlement dated tomorrow is deferred (awaiting_value_date): nothing
    goes on chain, and the deferred sweep leaves it alone (its attempts are not spent) until that day."""
    w = cworld.w
    s = cworld.settlement(value_date=(w.today() + timedelta(days=1)).isoformat())
    assert cworld.post("alipay", cworld.payment("alipay", s["payment_reference"],
                                                Money(s["target"]["value"], USD))).text == "success"
    [row] = cworld.callbacks()
    assert (row.outcome, row.outcome_reason) == ("deferred", "awaiting_value_date")
    for _ in range(3):
        process_deferred(w.runtime)
    w.sync()
    [again] = cworld.callbacks()
    assert again.outcome == "deferred" and again.attempts == row.attempts
    assert w.onchain(s["id"]) == (INSTRUCTED, 0) and cworld.pay_rows(s["id"]) == 0
