"""The canonical encodings of the record kinds: one text per record, whichever way it is made.

- The write paths' compiled projection and fast encoder give exactly the field-by-field record
  and the canonical JSON of the checked encoder (hypothesis: any strings, including quotes,
  controls and non-ASCII; amounts up to 2**96).
- A row digested from the values a bulk insert wrote is the row the audit reads back, on SQLite
  and PostgreSQL (dates, amounts beyond 64 bits, time zones).
- A record changed twice in one transaction gets one version; a savepoint's release does not
  digest early; a rolled-back transaction digests nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from settlement.domains.anchoring import KINDS, digest_changed, digest_new
from settlement.domains.anchoring.canonical import canonical_record_json
from settlement.store.db import Database, migrate
from settlement.store.models import Member
from settlement.store.models.anchoring import RecordDigest
from settlement.store.models.settlements import Settlement

SETTLEMENT = KINDS["settlement"]
COLUMNS = tuple(c.key for c in Settlement.__table__.columns if c.key != "seq")
text = st.text(max_size=40)
amount = st.integers(min_value=0, max_value=2**96 - 1)


def _row(**over: object) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(id="0x" + "12" * 32, payer_id="payer", payee_id="payee", payer_onchain_id="0x" + "aa" * 32,
               payee_onchain_id="0x" + "bb" * 32, client_reference="REF-1", client_reference_hash="0x" + "cc" * 32,
               source_amount_minor=100_000, source_currency="HKD", target_amount_minor=91_400, target_currency="CNY",
               fx_rate_scaled=914_000_000_000, fees_minor=0, value_date=date(2026, 12, 4), purpose_code="GDDS",
               payment_reference="ORDER-1", payment_ref_hash="0x" + "dd" * 32, state="instructed", paid_minor=0,
               refunded_minor=0, chain_op="record", chain_status="pending",
               created_at=datetime(2026, 12, 4, tzinfo=timezone.utc), updated_at=datetime(2026, 12, 4, tzinfo=timezone.utc))
    row.update(over)
    return row


@settings(max_examples=300, deadline=None)
@given(reference=text, payment=text, provider=st.none() | text, source=amount, target=amount, fees=amount)
def test_the_fast_encoder_writes_the_canonical_text(reference: str, payment: str, provider: str | None,
                                                     source: int, target: int, fees: int) -> None:
    """For any values, the write path's text is the canonical JSON of the record."""
    row = _row(client_reference=reference, payment_reference=payment, provider=provider,
               source_amount_minor=source, target_amount_minor=target, fees_minor=fees)
    record = SETTLEMENT.project(row)
    assert record == SETTLEMENT.project_reference(row)  # the compiled projection, field by field
    assert SETTLEMENT.canonical(row) == canonical_record_json(record)
    assert record["target_amount_minor"] == str(target) and record["value_date"] == "2026-12-04"


def test_bulk_digests_are_what_the_audit_reads_back(database_url: str) -> None:
    """Rows inserted in bulk and digested from the inserted values; the kind's loader reads the
    same records back (amount 2**96 - 1, a date, strings with quotes and non-ASCII)."""
    migrate(database_url)
    db = Database(database_url)
    try:
        with db.transaction() as s:
            s.add_all([Member(id=m, onchain_id="0x" + c * 32, name=m, country="SG", roles=["finance"])
                       for m, c in (("payer", "aa"), ("payee", "bb"))])
        rows = [_row(id="0x" + f"{i:02x}" * 32, client_reference=f'RÉF "{i}"', payment_reference=f"付款-{i}",
                     payment_ref_hash="0x" + f"{i + 50:02x}" * 32, target_amount_minor=2**96 - 1 - i)
                for i in range(5)]
        with db.transaction() as s:
            s.execute(Settlement.__table__.insert(), rows)
            digest_new(s, "settlement", rows)
        with db.read() as s:
            conn = s.connection()
            stored = dict(s.execute(select(RecordDigest.record_id, RecordDigest.canonical_json)).all())
            live = SETTLEMENT.load(conn, list(stored))
        assert {rid: SETTLEMENT.text_of(rec) for rid, rec in live.items()} == stored
    finally:
        db.dispose()


def test_changes_are_digested_once_at_commit_and_not_on_rollback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    migrate(url)
    db = Database(url)
    with db.transaction() as s:
        s.add(Member(id="m1", onchain_id="0x" + "01" * 32, name="One", country="SG", roles=["finance"]))
        digest_changed(s, "member", "m1")
    with db.transaction() as s:
        m = s.get(Member, "m1")
        m.status = "suspended"
        digest_changed(s, "member", m)
        with s.begin_nested():  # a savepoint's release must not digest the record half-changed
            digest_changed(s, "member", m)
        m.roles = ["finance", "buyer"]
        digest_changed(s, "member", m)
    try:
        with db.transaction() as s:
            s.execute(update(Member).where(Member.id == "m1").values(name="Changed"))
            digest_changed(s, "member", "m1")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with db.read() as s:
        versions = list(s.execute(select(RecordDigest.version, RecordDigest.canonical_json, RecordDigest.prev_digest,
                                         RecordDigest.digest).where(RecordDigest.kind == "member")
                                  .order_by(RecordDigest.version)))
        assert s.scalar(select(func.count()).select_from(RecordDigest)) == 2
    assert [v[0] for v in versions] == [1, 2]
    assert '"status":"suspended"' in versions[1][1] and '["finance","buyer"]' in versions[1][1]
    assert versions[0][2] == "0x" + "00" * 32 and versions[1][2] == versions[0][3]
    db.dispose()


def test_docs_list_every_kind_with_its_fields() -> None:
    """docs/anchors.md's table of record kinds names every kind, its table and key, and each field."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "anchors.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    for name, kind in KINDS.items():
        row = rows.get(name)
        assert row is not None, f"docs/anchors.md lacks kind {name}"
        assert f"`{kind.table.name}`.`{kind.key}`" in row, name
        for field in kind.fields:
            assert f"`{field.name}`" in row, (name, field.name)


def test_the_migration_chains_existing_versions(tmp_path: Path) -> None:
    """A store migrated from before the chain: each existing version gets its predecessor's digest
    (zero for version 1), so versions not yet batched anchor under the chained leaf."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from settlement.store.db import MIGRATIONS_DIR

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0005")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for kind, rid, version, digest in (("callback", "1", 1, "0x" + "a1" * 32), ("callback", "1", 2, "0x" + "a2" * 32),
                                           ("callback", "2", 1, "0x" + "b1" * 32)):
            conn.execute(sa.text("INSERT INTO record_digests (kind, record_id, version, canonical_json, digest, "
                                 "recorded_at_s, value, leaf_hash, created_at) VALUES (:k, :r, :v, '{}', :d, 1, '[]', "
                                 ":d, '2026-01-01 00:00:00')"), {"k": kind, "r": rid, "v": version, "d": digest})
    engine.dispose()
    migrate(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT record_id, version, prev_digest FROM record_digests "
                                    "ORDER BY record_id, version")).all()
    engine.dispose()
    assert rows == [("1", 1, "0x" + "00" * 32), ("1", 2, "0x" + "a1" * 32), ("2", 1, "0x" + "00" * 32)]
