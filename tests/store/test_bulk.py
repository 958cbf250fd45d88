"""insert_rows stores exactly what SQLAlchemy's Core insert stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from settlement.store.bulk import insert_rows
from settlement.store.db import Database, migrate
from settlement.store.models import Member
from settlement.store.models.settlements import JournalEntry, JournalTransaction, Settlement

AMOUNTS = st.integers(min_value=0, max_value=10**40)


def _settlement(sid: str, amount: int, fx: int, error: dict | None, when: datetime) -> dict:
    return dict(
        id=sid, payer_id="m1", payee_id="m2", payer_onchain_id="0x" + "11" * 32, payee_onchain_id="0x" + "22" * 32,
        client_reference=f"ref-{sid[2]}{sid[-20:]}", client_reference_hash=sid, source_amount_minor=amount, source_currency="CNY",
        target_amount_minor=amount + 1, target_currency="USD", fx_rate_scaled=fx, fees_minor=0,
        value_date=date(2026, 11, 22), purpose_code="GDDS", payment_reference=f"pay-{sid}", payment_ref_hash=f"0x{sid[2]}e{sid[4:]}",
        state="instructed", paid_minor=0, refunded_minor=0, provider=None, provider_tx_hash=None, cycle_id=None,
        batch_outbox_id=7, chain_op="record", chain_status="pending", outbox_id=7, tx_hash=None, block_number=None,
        recorded_tx_hash=None, recorded_block=None, chain_error=error, created_at=when, updated_at=when)


def _raw(db: Database, sql: str) -> list[tuple]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(text(sql)).all()]


def test_same_stored_values_as_core_insert(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    with db.transaction() as s:
        for m in ("m1", "m2"):
            s.add(Member(id=m, onchain_id="0x" + m[-1] * 64, name=m, country="SG", roles=["finance"], status="active"))
    when = datetime(2026, 11, 22, 5, 6, 7, 123456, tzinfo=timezone.utc)
    seen = 0

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(amount=AMOUNTS, fx=st.integers(0, 2**63), error=st.sampled_from([None, {"name": "X", "args": [1, "a"]}]))
    def check(amount: int, fx: int, error: dict | None) -> None:
        nonlocal seen
        seen += 1
        a, b = f"0xa{seen:063x}", f"0xb{seen:063x}"
        ta, tb = "a" + a[-31:], "b" + b[-31:]
        with db.transaction() as s:
            s.execute(Settlement.__table__.insert(), [_settlement(a, amount, fx, error, when)])
            insert_rows(s, Settlement.__table__, [_settlement(b, amount, fx, error, when)])
            # columns left out (memo, created_at) take the model's defaults, as with Core
            s.execute(JournalTransaction.__table__.insert(), [{"id": ta, "kind": "k", "settlement_id": a}])
            insert_rows(s, JournalTransaction.__table__, [{"id": tb, "kind": "k", "settlement_id": a}])
            s.execute(JournalEntry.__table__.insert(), [{"txn_id": ta, "owner": "m1", "account": "x",
                                                         "currency": "CNY", "side": "D", "amount_minor": amount}])
            insert_rows(s, JournalEntry.__table__, [{"txn_id": tb, "owner": "m1", "account": "x", "currency": "CNY",
                                                    "side": "D", "amount_minor": amount}])
        cols = [c.name for c in Settlement.__table__.columns if c.name not in ("seq", "id", "client_reference",
                                                                                "client_reference_hash",
                                                                                "payment_reference",
                                                                                "payment_ref_hash")]
        rows = _raw(db, f"SELECT {', '.join(cols)} FROM settlements WHERE id IN ('{a}', '{b}') ORDER BY id")
        assert len(rows) == 2 and rows[0] == rows[1]
        entries = _raw(db, f"SELECT e.owner, e.account, e.currency, e.side, e.amount_minor, t.kind, t.memo, "
                           f"e.created_at IS NOT NULL, t.created_at IS NOT NULL FROM journal_entries e "
                           f"JOIN journal_transactions t ON t.id = e.txn_id WHERE e.txn_id IN ('{ta}', '{tb}')")
        assert len(entries) == 2 and entries[0] == entries[1]

    check()
    db.dispose()
