"""Migration 0014p (provenance by product) gives every stored provenance event its normalised
product from the event itself, on SQLite and PostgreSQL, so the search by product finds events
recorded before it."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from tests.store.test_tenancy_migration import NOW, _config


def test_existing_events_get_their_product(database_url: str) -> None:
    cfg = _config(database_url)
    command.upgrade(cfg, "0013c")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for i, product in enumerate(("gtin:09506000134352", "sku:OLD-1")):
            conn.execute(sa.text(
                "INSERT INTO provenance_events (event_id, lot_id, member_id, occurred_at_s, schema_version, event, "
                "event_bytes, value, leaf_hash, created_at) VALUES (:e, 'LOT-OLD', 'supplier', 1700000000, 1, :doc, "
                "10, '[]', :h, :t)"),
                {"e": f"old-{i}", "doc": json.dumps({"event_id": f"old-{i}", "product": product}),
                 "h": "0x" + f"{i:064x}", "t": NOW})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT event_id, product FROM provenance_events ORDER BY event_id")).all())
    engine.dispose()
    assert rows == {"old-0": "gtin:09506000134352", "old-1": "sku:OLD-1"}
