"""The audit reads the store itself and catches any change to the books, on SQLite and PostgreSQL.

One store of books is written through the service (every record kind, anchored on a real anvil).
Each test tampers with a copy of it behind the service's back (plain SQL) and runs the auditor's
audit: the store opened read-only, every record rebuilt from its live row through the same
canonical encoding, checked against the anchored journal and the chain at the latest block. The
audit names each changed, deleted and inserted record as kind/id, fails, and says which anchored
batch proves it.

On today's main (the export-based audit) an amount changed in a live row, a deleted row and an
inserted row all pass the audit, because the export reads the journal's own copies; a deleted
journal row makes the export itself fail (500) instead of naming a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger_api.cli import main as ledger_main
from settlement.chain.anvil import ManagedAnvil
from settlement.domains import anchoring
from settlement.domains.anchoring.digests import digest_of
from tests.callbacks.conftest import _make

from .books import Books, one, store_copy, tamper, write_books


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def books(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          anvil_automine: ManagedAnvil) -> Iterator[Books]:
    """The books, written once per store for the whole module."""
    from tests.conftest import fresh_postgres_url

    tmp = tmp_path_factory.mktemp(f"books-{request.param}")
    url = f"sqlite:///{tmp / 'ledger.db'}" if request.param == "sqlite" else fresh_postgres_url()
    made = _make(tmp, url, anvil_automine.rpc_url)
    cw = next(made)
    try:
        yield write_books(cw)
    finally:
        made.close()


def _subjects(report: anchoring.AuditReport, verdict: str) -> set[str]:
    return report.subjects(verdict)


def test_untouched_books_audit_clean_and_every_kind_is_journaled(books: Books) -> None:
    """Every record kind the books hold is journaled and anchored; the audit of the untouched
    store passes, on chain, with nothing pending."""
    with store_copy(books) as url:
        report = books.audit(url)
        assert report.ok, "\n".join(report.lines)  # type: ignore[attr-defined]
        assert report.chain_checked and report.versions_pending == 0 and report.batches >= 2
        # each anchored batch: a leaf proof rebuilt from the store, verified locally and by the contract
        assert report.proofs_on_chain == report.proofs_local == report.batches
        assert "verifyJournalValues" in report.proof_functions
        kinds = {row[0] for row in _rows(url, "SELECT DISTINCT kind FROM record_digests")}
    assert kinds >= {"settlement", "settlement.refund", "netting.cycle", "posting", "callback", "receivable",
                     "receivable.part", "receivable.operation", "receivable.payment", "member", "member.account",
                     "apikey", "provider.account", "reconciliation.statement", "reconciliation.run",
                     "reconciliation.exception", "reconciliation.resolution", "governance.proposal",
                     "governance.approval"}, kinds


def _rows(url: str, sql: str) -> list:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


def test_a_changed_amount_is_named_with_the_batch_that_proves_it(books: Books) -> None:
    """The issue's tampering: the settlement's target amount 91400 -> 91500 and 100 added to the
    Alipay callback's amount, in the live rows. Both are CHANGED, naming the field and the
    anchored journal batch."""
    fx = books.ids["fx"]
    with store_copy(books) as url:
        tamper(url, ("UPDATE settlements SET target_amount_minor = '91500' WHERE id = :id", {"id": fx}),
               ("UPDATE provider_callbacks SET amount_minor = '91500' WHERE provider = 'alipay'", {}))
        callback = one(url, "SELECT id FROM provider_callbacks WHERE provider = 'alipay'")[0]
        report = books.audit(url)
        # the command an auditor runs: exit 1, the findings also as JSON; 2 when the node is down
        rt = books.runtime
        findings = Path(url.rsplit("/", 1)[0].replace("sqlite:///", "")) if url.startswith("sqlite") else None
        json_path = (findings or Path("/tmp")) / f"findings-{callback}.json"
        assert ledger_main(["anchors", "audit", "--database-url", url, "--rpc", rt.chain.rpc_url, "--contract",
                            rt.address("TraceAnchor"), "--json", str(json_path)]) == 1
        assert {f["subject"] for f in json.loads(json_path.read_text())["findings"]} == \
            {f"settlement/{fx}", f"callback/{callback}"}
        json_path.unlink()
        assert ledger_main(["anchors", "audit", "--database-url", url, "--offline"]) == 1
        assert ledger_main(["anchors", "audit", "--database-url", url, "--rpc", "http://127.0.0.1:9",
                            "--contract", rt.address("TraceAnchor")]) == 2
    assert not report.ok
    assert _subjects(report, "CHANGED") == {f"settlement/{fx}", f"callback/{callback}"}
    finding = next(f for f in report.findings if f.subject == f"settlement/{fx}")
    assert "target_amount_minor" in finding.detail and '"91400"' in finding.detail and '"91500"' in finding.detail
    assert finding.proven_by and finding.proven_by.startswith("journal batch") and "tx 0x" in finding.proven_by


def test_a_changed_posting_line_is_named(books: Books) -> None:
    """One line of a journal posting gets another amount: its posting is CHANGED."""
    with store_copy(books) as url:
        entry_id, txn = one(url, "SELECT id, txn_id FROM journal_entries ORDER BY id LIMIT 1")
        tamper(url, ("UPDATE journal_entries SET amount_minor = '1' WHERE id = :id", {"id": entry_id}))
        report = books.audit(url)
    assert _subjects(report, "CHANGED") == {f"posting/{txn}"}


def test_deleted_rows_are_named(books: Books) -> None:
    """A settlement row and a refund row deleted: both DELETED; a deleted posting line makes its
    posting CHANGED."""
    sid = books.ids["batch"][0]
    with store_copy(books) as url:
        refund = one(url, "SELECT id FROM settlement_refunds")[0]
        entry_id, txn = one(url, "SELECT id, txn_id FROM journal_entries ORDER BY id DESC LIMIT 1")
        tamper(url, ("DELETE FROM settlements WHERE id = :id", {"id": sid}),
               ("DELETE FROM settlement_refunds WHERE id = :id", {"id": refund}),
               ("DELETE FROM journal_entries WHERE id = :id", {"id": entry_id}))
        report = books.audit(url)
    assert _subjects(report, "DELETED") == {f"settlement/{sid}", f"settlement.refund/{refund}"}
    assert f"posting/{txn}" in _subjects(report, "CHANGED")


def test_inserted_rows_are_named(books: Books) -> None:
    """A settlement row copied under a new id, a member inserted, a journal line added to a
    posting: each is named (INSERTED, or CHANGED for the posting that gained a line)."""
    source = books.ids["batch"][1]
    new_id = "0x" + "ab" * 32
    with store_copy(books) as url:
        txn = one(url, "SELECT txn_id FROM journal_entries ORDER BY id LIMIT 1")[0]
        cols = [c for c in _columns(url, "settlements") if c != "seq"]
        unique = {"id": ":new", "payment_ref_hash": ":new", "client_reference": "client_reference || 'x'",
                  "payment_reference": "payment_reference || 'x'"}
        copy = (f"INSERT INTO settlements ({', '.join(cols)}) SELECT {', '.join(unique.get(c, c) for c in cols)} "
                "FROM settlements WHERE id = :src")
        tamper(url, (copy, {"src": source, "new": new_id}),
               ("INSERT INTO members (id, onchain_id, name, country, roles, status, created_at, updated_at) "
                "SELECT 'ghost', :oid, 'Ghost', country, roles, status, created_at, updated_at FROM members "
                "WHERE id = 'retailer'", {"oid": "0x" + "cd" * 32}),
               ("INSERT INTO journal_entries (txn_id, owner, account, currency, side, amount_minor, created_at) "
                "SELECT txn_id, owner, account, currency, side, amount_minor, created_at FROM journal_entries "
                "WHERE id = (SELECT MIN(id) FROM journal_entries WHERE txn_id = :txn)", {"txn": txn}))
        report = books.audit(url)
    assert _subjects(report, "INSERTED") == {f"settlement/{new_id}", "member/ghost"}
    assert _subjects(report, "CHANGED") == {f"posting/{txn}"}


def test_tampered_governance_actions_are_named(books: Books) -> None:
    """The books' governance actions (psp suspended on the guardians' fast path, reinstated
    through the timelock) are journaled records: a proposal whose subject is changed, an approval
    whose governor is changed, an approval deleted and a proposal inserted behind the service's
    back are each named as governance.proposal/ID or governance.approval/ID."""
    with store_copy(books) as url:
        suspend = one(url, "SELECT id FROM governance_proposals WHERE action = 'suspend'")[0]
        reactivate = one(url, "SELECT id FROM governance_proposals WHERE action = 'reactivate'")[0]
        first, second = _rows(url, "SELECT id FROM governance_approvals WHERE status = 'approved' ORDER BY id")[:2]
        journaled = _rows(url, "SELECT kind, record_id, version FROM record_digests WHERE kind LIKE 'governance.%' "
                               "AND batch_id IS NOT NULL")
        assert {(k, r) for k, r, _v in journaled} >= {("governance.proposal", suspend),
                                                      ("governance.proposal", reactivate),
                                                      ("governance.approval", str(first[0]))}
        # the reinstatement went proposed -> scheduled -> executed: each a version, chained
        assert max(v for k, r, v in journaled if r == reactivate) >= 3
        tamper(url, ("UPDATE governance_proposals SET member_id = 'retailer' WHERE id = :id", {"id": suspend}),
               ("UPDATE governance_approvals SET governor = :g WHERE id = :id",
                {"g": "0x" + "ee" * 20, "id": first[0]}))
        report = books.audit(url)
    assert _subjects(report, "CHANGED") == {f"governance.proposal/{suspend}", f"governance.approval/{first[0]}"}, \
        report.lines  # type: ignore[attr-defined]
    finding = next(f for f in report.findings if f.subject == f"governance.proposal/{suspend}")
    assert "member_id" in finding.detail and '"psp"' in finding.detail and '"retailer"' in finding.detail
    assert finding.proven_by and finding.proven_by.startswith("journal batch")
    new_id = "0x" + "ab" * 32
    with store_copy(books) as url:
        names = _columns(url, "governance_proposals")
        quoted = ", ".join(f'"{c}"' for c in names)  # "to" is a keyword
        values = ", ".join(":new" if c == "id" else f'"{c}"' for c in names)
        copy = f"INSERT INTO governance_proposals ({quoted}) SELECT {values} FROM governance_proposals WHERE id = :src"
        tamper(url, ("DELETE FROM governance_approvals WHERE id = :id", {"id": second[0]}),
               (copy, {"new": new_id, "src": reactivate}))
        report = books.audit(url)
    assert _subjects(report, "DELETED") == {f"governance.approval/{second[0]}"}, report.lines  # type: ignore[attr-defined]
    assert _subjects(report, "INSERTED") == {f"governance.proposal/{new_id}"}, report.lines  # type: ignore[attr-defined]
    assert not _subjects(report, "CHANGED")


def _columns(url: str, table: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        return [c["name"] for c in sa.inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def test_an_edited_stored_digest_is_named(books: Books) -> None:
    """The journal row's digest edited (text kept): JOURNAL for that record. Its text and digest
    edited together, consistently, with the live row (a cover-up): the anchored root no longer
    rebuilds, and the BATCH finding lists the record."""
    fx, sid = books.ids["fx"], books.ids["batch"][2]
    with store_copy(books) as url:
        tamper(url, ("UPDATE record_digests SET digest = :d WHERE kind = 'settlement' AND record_id = :id "
                     "AND version = 1", {"d": "0x" + "11" * 32, "id": fx}))
        report = books.audit(url)
    assert _subjects(report, "JOURNAL") >= {f"settlement/{fx}"}
    assert any("is not keccak256 of its text" in f.detail for f in report.findings)
    with store_copy(books) as url:
        text = one(url, "SELECT canonical_json FROM record_digests WHERE kind = 'settlement' AND record_id = :id "
                        "ORDER BY version DESC LIMIT 1", id=sid)[0]
        forged = text.replace('"state":"instructed"', '"state":"cancelled"')
        assert forged != text
        tamper(url, ("UPDATE record_digests SET canonical_json = :t, digest = :d WHERE kind = 'settlement' "
                     "AND record_id = :id", {"t": forged, "d": digest_of(forged), "id": sid}),
               ("UPDATE settlements SET state = 'cancelled' WHERE id = :id", {"id": sid}))
        report = books.audit(url)
    batch = next(f for f in report.findings if f.verdict == "BATCH")
    assert f"settlement/{sid}" not in _subjects(report, "CHANGED")
    assert "rebuild to root" in batch.detail and batch.proven_by and "journal batch" in batch.proven_by


def test_a_deleted_or_reordered_journal_row_is_named(books: Books) -> None:
    """A journal version deleted: the record's chain breaks (JOURNAL) and its batch no longer
    rebuilds (BATCH). Two versions' numbers swapped (reordered): the same."""
    fx = books.ids["fx"]
    with store_copy(books) as url:
        versions = _rows(url, f"SELECT version FROM record_digests WHERE kind = 'settlement' AND record_id = '{fx}' "
                              "ORDER BY version")
        assert len(versions) >= 2  # instructed, paid
        tamper(url, ("DELETE FROM record_digests WHERE kind = 'settlement' AND record_id = :id AND version = 1",
                     {"id": fx}))
        report = books.audit(url)
    assert f"settlement/{fx}" in _subjects(report, "JOURNAL") and report.counts["BATCH"] >= 1
    with store_copy(books) as url:
        tamper(url, ("UPDATE record_digests SET version = 100 WHERE kind = 'settlement' AND record_id = :id "
                     "AND version = 1", {"id": fx}),
               ("UPDATE record_digests SET version = 1 WHERE kind = 'settlement' AND record_id = :id "
                "AND version = 2", {"id": fx}),
               ("UPDATE record_digests SET version = 2 WHERE kind = 'settlement' AND record_id = :id "
                "AND version = 100", {"id": fx}))
        report = books.audit(url)
    assert f"settlement/{fx}" in _subjects(report, "JOURNAL") and report.counts["BATCH"] >= 1


def test_a_deleted_batch_is_named_from_the_chain(books: Books) -> None:
    """A whole anchored journal batch deleted with its journal rows: the chain still lists its
    root (RootAnchored), so the audit names it; its records become INSERTED."""
    with store_copy(books) as url:
        batch_id, root = one(url, "SELECT id, root FROM anchor_batches WHERE kind = 'journal' ORDER BY sequence "
                                  "LIMIT 1")
        tamper(url, ("DELETE FROM record_digests WHERE batch_id = :b", {"b": batch_id}),
               ("DELETE FROM anchor_batches WHERE id = :b", {"b": batch_id}))
        report = books.audit(url)
    chain = [f for f in report.findings if f.verdict == "CHAIN"]
    assert any(root in f.detail and "no such batch" in f.detail for f in chain)
    assert report.counts["INSERTED"] > 0


def test_every_record_kind_changed_is_named(books: Books) -> None:
    """For each record kind: one row's first plain text column (no foreign or unique key) changed
    behind the service's back -> CHANGED kind/id, and nothing else is named."""
    from settlement.domains.anchoring.kinds import KINDS

    checked = []
    for name, spec in KINDS.items():
        field = next((f for f in spec.fields if f.encoder == "text" and f.source != spec.key
                      and f.name not in ("state", "status") and not spec.table.c[f.source].foreign_keys
                      and not spec.table.c[f.source].unique), None)
        with store_copy(books) as url:
            row = one(url, f"SELECT {spec.key}, {field.source} FROM {spec.table.name} "
                           f"WHERE {field.source} IS NOT NULL LIMIT 1") if field else None
            if row is None:
                continue
            tamper(url, (f"UPDATE {spec.table.name} SET {field.source} = :v WHERE {spec.key} = :k",
                         {"v": (row[1] + "~")[-len(row[1]):] if len(row[1]) > 1 else "~", "k": row[0]}))
            report = books.audit(url)
        assert _subjects(report, "CHANGED") == {f"{name}/{row[0]}"}, (name, [f.line() for f in report.findings])
        checked.append(name)
    assert len(checked) >= 15, checked


def test_the_export_is_built_from_the_live_rows_and_audits_the_same(books: Books, tmp_path: Path) -> None:
    """The remote auditor's export, built from the live rows by the service, audits clean; with the
    amount changed in the live row it fails naming the same record."""
    from ledger_api.cli.anchors import audit_command
    import argparse

    rt = books.runtime
    with rt.db.read() as s:
        lines = list(anchoring.export_lines(s.connection(), chain_id=rt.manifest.chain_id,
                                            contract=rt.address("TraceAnchor")))
    path = tmp_path / "export.jsonl"
    path.write_text("".join(lines))
    out: list[str] = []
    report = anchoring.audit_export(path.read_text().splitlines(), rpc=rt.chain.rpc_url, out=out.append)
    assert report.ok, "\n".join(out)
    assert report.proofs_on_chain == report.proofs_local == report.batches  # one leaf proof per batch, on chain too
    def edit(line: str) -> str:
        obj = json.loads(line)
        if obj.get("type") == "record" and obj["kind"] == "settlement" and obj["record_id"] == books.ids["fx"]:
            assert '"91400"' in obj["live"]
            obj["live"] = obj["live"].replace('"91400"', '"91500"')
            return json.dumps(obj, separators=(",", ":")) + "\n"
        return line

    edited = [edit(line) for line in lines]
    path.write_text("".join(edited))
    args = argparse.Namespace(contract=rt.address("TraceAnchor"), chain_id=None, offline=False,
                              rpc=rt.chain.rpc_url, export=str(path), database_url=None, from_block=0,
                              verbose=False, json=None, onchain_proofs=1)
    from ledger_api.settings import Settings

    out = []
    assert audit_command(args, Settings(home=tmp_path / "home"), out.append) == 1
    assert any(line.startswith(f"CHANGED settlement/{books.ids['fx']}") for line in out), out
