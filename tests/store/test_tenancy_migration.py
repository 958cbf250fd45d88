"""Migration 0008 (tenancy) gives every existing row an owner, on SQLite and PostgreSQL: accounts to
the operator, statements and runs to who uploaded or ran them, run exceptions to their run's
owner, callback exceptions to the owner of the account the callback arrived on."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from settlement.store.db import MIGRATIONS_DIR

NOW = "2026-01-01 00:00:00"


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def test_existing_rows_get_their_owner(database_url: str) -> None:
    cfg = _config(database_url)
    command.upgrade(cfg, "0005")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO provider_accounts (id, provider, account, status, public_config, version, created_by, "
            "created_at, updated_at) VALUES (1, 'stripe', 'stripe-old', 'active', '{}', 1, 'demo', :t, :t)"), {"t": NOW})
        conn.execute(sa.text(
            "INSERT INTO provider_callbacks (id, provider, account, evidence_hash, kind, provider_status, succeeded, "
            "provider_txn_id, occurred_at, notification_id, body_sha256, raw_body, content_type, parsed, outcome, "
            "amount_is_cumulative, delivery_count, attempts, received_at, last_delivered_at) VALUES (7, 'stripe', "
            "'stripe-old', '0xe', 'payment', 'succeeded', true, 'pi_1', :t, 'evt', 'ab', :b, '', '{}', 'exception', "
            "false, 1, 1, :t, :t)"), {"t": NOW, "b": b"{}"})
        conn.execute(sa.text(
            "INSERT INTO recon_statements (id, format, provider, filename, size_bytes, sha256, line_count, "
            "row_error_count, uploaded_by, uploaded_at) VALUES ('s1', 'normalized-csv', 'normalized', 'f', 1, "
            "'00', 1, 0, 'retailer', :t)"), {"t": NOW})
        conn.execute(sa.text(
            "INSERT INTO recon_runs (id, statement_id, config, status, summary, row_errors, ledger_entries, "
            "exception_count, started_by, started_at) VALUES ('r1', 's1', '{}', 'completed', '{}', '[]', 0, 1, "
            "'retailer', :t)"), {"t": NOW})
        for pk, eid, origin, run_id, callback_id in ((1, "e-run", "run", "r1", None), (2, "cb-1", "callback", None, 7)):
            conn.execute(sa.text(
                "INSERT INTO recon_exceptions (id, exception_id, origin, run_id, callback_id, bucket, reason, kind, "
                "currency, statement_line_nos, state, created_at) VALUES (:pk, :eid, :origin, :run, :cb, "
                "'missing_in_ledger', 'no_ledger_entry', 'payment', 'USD', '[]', 'open', :t)"),
                {"pk": pk, "eid": eid, "origin": origin, "run": run_id, "cb": callback_id, "t": NOW})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        owners = {
            "account": conn.execute(sa.text("SELECT owner FROM provider_accounts")).scalar(),
            "statement": conn.execute(sa.text("SELECT owner FROM recon_statements")).scalar(),
            "run": conn.execute(sa.text("SELECT owner FROM recon_runs")).scalar(),
            **dict(conn.execute(sa.text("SELECT exception_id, owner FROM recon_exceptions")).all()),
        }
    engine.dispose()
    assert owners == {"account": "operator", "statement": "retailer", "run": "retailer", "e-run": "retailer",
                      "cb-1": "operator"}
    command.downgrade(cfg, "0005")  # and back: the columns go
    command.upgrade(cfg, "head")
