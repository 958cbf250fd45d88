"""The record journal's cost: digest per record on the write paths, anchoring per record, and the
audit of 1,000,000 records from the store.

    python -m bench.bench_journal [--records 1000000] [--batch 10000] [--write-batches 50]

One managed anvil (zero fees, automine), one SQLite store, the real code:

1. write path, bulk (the settlement batch path): ``digest_new`` of 200 settlements and their 200
   postings (4 lines each) per transaction, against the same transaction's inserts without it;
2. write path, per change (``digest_changed``: a state change of 200 settlements, digested at
   commit from the rows), against the same UPDATEs without it;
3. anchoring: ``flush_journal`` of ``--batch`` versions per batch (leaves, tree, claim, outbox)
   and the dispatcher's ``TraceAnchor.anchor`` transaction; gas per record;
4. the audit of ``--records`` records (half settlements, half postings with 4 lines each, all
   journaled with the service's own code and anchored in batches of ``--batch``): the store read
   read-only, every record rebuilt from its live row, every batch rebuilt and checked on chain.

Writes a markdown table to bench/out/journal.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import update

from ledger_api.demo import ensure_operator_member
from settlement.chain.anvil import AnvilConfig, ManagedAnvil, free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import deploy
from settlement.chain.signing import LocalSigner, keccak256
from settlement.custody.vault import KeyVault
from settlement.domains import anchoring
from settlement.domains.anchoring import digest_changed, digest_new
from settlement.domains.anchoring.batcher import flush_journal
from settlement.domains.members.service import onboard_member
from settlement.domains.settlements import postings as jr
from settlement.pipeline.workers import build
from settlement.runtime import Runtime
from settlement.store.bulk import insert_rows
from settlement.store.db import Database, migrate
from settlement.store.models import Member
from settlement.store.models.settlements import JournalEntry, JournalTransaction, Settlement
from settlement.wiring import build_registry

BATCH = 200
OUT = Path(__file__).resolve().parent / "out" / "journal.md"
_SETTLEMENTS = Settlement.__table__
_COLUMNS = tuple(c.key for c in _SETTLEMENTS.columns if c.key != "seq")


def scratch(rt: Runtime) -> Runtime:
    """A second store on the same chain for the write-path measurements (their rows, half of
    them written without digests on purpose, stay out of the audited store)."""
    url = f"sqlite:///{rt.home / 'scratch.db'}"
    migrate(url)
    db = Database(url)
    with db.transaction() as s:
        s.add_all([Member(id=m, onchain_id="0x" + c * 32, name=m, country="SG", roles=["finance"])
                   for m, c in (("payer", "aa"), ("payee", "bb"))])
    return Runtime(home=rt.home, db=db, chain=rt.chain, vault=rt.vault, operator=rt.operator, manifest=rt.manifest)


def setup() -> tuple[ManagedAnvil, Runtime]:
    node = ManagedAnvil(AnvilConfig(port=free_port())).start()
    home = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    url = f"sqlite:///{home / 'ledger.db'}"
    migrate(url)
    vault = KeyVault(os.urandom(32))
    operator = LocalSigner(os.urandom(32))
    vault.register(operator)
    chain = ChainClient(node.rpc_url)
    rt = Runtime(home=home, db=Database(url), chain=chain, vault=vault, operator=operator,
                 manifest=deploy(chain, operator, home))
    ensure_operator_member(rt)
    for name in ("payer", "payee"):
        with rt.db.transaction() as s:
            onboard_member(rt, s, member_id=name, name=name, country="SG", roles=["finance"])
    dispatcher, follower = build(rt, build_registry())
    dispatcher.drain(timeout_s=120)
    follower.run_once()
    return node, rt


def settlement_rows(count: int, tag: str) -> list[dict]:
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(count):
        ref = f"{tag}-{i}"
        h = "0x" + keccak256(ref.encode()).hex()
        rows.append(dict(
            id=h, payer_id="payer", payee_id="payee", payer_onchain_id="0x" + "11" * 32, payee_onchain_id="0x" + "22" * 32,
            client_reference=ref, client_reference_hash=h, source_amount_minor=10_000 + i, source_currency="EUR",
            target_amount_minor=10_833 + i, target_currency="USD", fx_rate_scaled=1_083_300_000_000, fees_minor=0,
            value_date=date.today(), purpose_code="GDDS", payment_reference=f"pay-{ref}",
            payment_ref_hash="0x" + keccak256(b"pay-" + ref.encode()).hex(), state="instructed", paid_minor=0,
            refunded_minor=0, provider=None, provider_tx_hash=None, cycle_id=None, batch_outbox_id=None,
            chain_op="record", chain_status="pending", outbox_id=None, tx_hash=None, block_number=None,
            recorded_tx_hash=None, recorded_block=None, chain_error=None, created_at=now, updated_at=now))
    return rows


def specs_of(rows: list[dict]) -> list[jr.TxnSpec]:
    return [jr.TxnSpec("settlement.instructed", [
        jr.debit("@consortium", jr.FX_CLEARING, "EUR", r["source_amount_minor"]),
        jr.credit("payer", jr.INSTRUCTED_PAYABLE, "EUR", r["source_amount_minor"]),
        jr.debit("payee", jr.INSTRUCTED_RECEIVABLE, "USD", r["target_amount_minor"]),
        jr.credit("@consortium", jr.FX_CLEARING, "USD", r["target_amount_minor"])], settlement_id=r["id"])
        for r in rows]


def write_path(rt: Runtime, batches: int) -> dict[str, float]:
    """CPU seconds (this process: the service's code and SQLite, which runs in it; the machine's
    other load does not count) per settlement, in batches of 200 settlements + 200 postings:
    inserts alone, inserts + digests."""
    plain = digested = 0.0
    for b in range(batches):
        for with_digest in (False, True):
            rows = settlement_rows(BATCH, f"w{b}{int(with_digest)}-{uuid.uuid4().hex[:6]}")
            specs = specs_of(rows)
            values = [{k: r[k] for k in _COLUMNS} for r in rows]
            t0 = time.process_time()
            with rt.db.transaction() as s:
                insert_rows(s, _SETTLEMENTS, values)
                if with_digest:
                    jr.post_many(s, specs, checked=True)  # journal + balances + posting digests
                    digest_new(s, "settlement", values)
                else:
                    _post_without_digest(s, specs)
            took = time.process_time() - t0
            if with_digest:
                digested += took
            else:
                plain += took
    per = BATCH * batches
    return {"plain_us": plain / per * 1e6, "digested_us": digested / per * 1e6}


def _post_without_digest(session, specs: list[jr.TxnSpec]) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc)
    insert_rows(session, JournalTransaction.__table__, [
        {"id": s.id, "kind": s.kind, "settlement_id": s.settlement_id, "cycle_id": None, "reverses": None,
         "memo": "", "created_at": now} for s in specs])
    insert_rows(session, JournalEntry.__table__, [
        {"txn_id": s.id, "owner": p.owner, "account": p.account, "currency": p.currency, "side": p.side,
         "amount_minor": p.amount_minor, "created_at": now} for s in specs for p in s.postings])
    jr._apply_to_balances(session, [p for s in specs for p in s.postings], now)


def state_changes(rt: Runtime, batches: int) -> dict[str, float]:
    """Seconds per settlement for a state change of 200 settlements per transaction, with and
    without digest_changed (the digest is made at commit from the rows)."""
    with rt.db.read() as s:
        ids = list(s.scalars(Settlement.__table__.select().with_only_columns(Settlement.id).limit(BATCH * batches)))
    plain = digested = 0.0
    for b in range(batches):
        chunk = ids[b * BATCH:(b + 1) * BATCH]
        for with_digest, state in ((False, "paid"), (True, "in_cycle")):
            t0 = time.process_time()
            with rt.db.transaction() as s:
                s.execute(update(Settlement).where(Settlement.id.in_(chunk)).values(state=state, paid_minor=b)
                          .execution_options(synchronize_session=False))
                if with_digest:
                    digest_changed(s, "settlement", *chunk)
            took = time.process_time() - t0
            digested += took if with_digest else 0
            plain += 0 if with_digest else took
    per = BATCH * batches
    return {"plain_us": plain / per * 1e6, "digested_us": digested / per * 1e6}


def fill(rt: Runtime, records: int) -> None:
    """``records`` journaled records: half settlements, half postings (4 lines), with the
    service's own digest code, in transactions of 2,000."""
    half = records // 2
    step = 1_000
    for start in range(0, half, step):
        rows = settlement_rows(min(step, half - start), f"a{start}-{uuid.uuid4().hex[:6]}")
        with rt.db.transaction() as s:
            values = [{k: r[k] for k in _COLUMNS} for r in rows]
            insert_rows(s, _SETTLEMENTS, values)
            for k in range(0, len(values), 500):
                digest_new(s, "settlement", values[k:k + 500])
            specs = specs_of(rows)
            for k in range(0, len(specs), 500):
                jr.post_many(s, specs[k:k + 500], checked=True)


def anchor_all(rt: Runtime, batch: int) -> dict[str, float]:
    """Close journal batches of ``batch`` versions until none is left; anchor them on chain."""
    limits = anchoring.BatchLimits(journal_records_max=batch)
    flush_s, made, leaves = 0.0, 0, 0
    while True:
        t0 = time.process_time()
        with rt.db.transaction() as s:
            b = flush_journal(s, rt.operator.address, limits, force=True)
            count = b.leaf_count if b is not None else 0
        flush_s += time.process_time() - t0
        if not count:
            break
        made += 1
        leaves += count
    dispatcher, follower = build(rt, build_registry())
    t0 = time.perf_counter()
    dispatcher.drain(timeout_s=600)
    while follower.run_once():
        pass
    anchoring.run_once(rt)
    send_s = time.perf_counter() - t0
    receipts = rt.chain.receipts(_anchor_txs(rt))
    gas = sum(r.gas_used for r in receipts.values() if r is not None)
    return {"batches": made, "leaves": leaves, "flush_us": flush_s / max(leaves, 1) * 1e6,
            "send_s": send_s, "gas_per_record": gas / max(leaves, 1), "gas_per_batch": gas / max(made, 1)}


def _anchor_txs(rt: Runtime) -> list[str]:
    from sqlalchemy import select

    from settlement.store.models.anchoring import AnchorBatch

    with rt.db.read() as s:
        return [h for h in s.scalars(select(AnchorBatch.tx_hash).where(AnchorBatch.kind == "journal")) if h]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--write-batches", type=int, default=50)
    args = parser.parse_args()
    node, rt = setup()
    side = scratch(rt)
    try:
        wp = write_path(side, args.write_batches)
        sc = state_changes(side, args.write_batches)
        side.db.dispose()
        t0 = time.perf_counter()
        fill(rt, args.records)
        fill_s = time.perf_counter() - t0
        anchored = anchor_all(rt, args.batch)
        lines: list[str] = []
        t0 = time.perf_counter()
        report = anchoring.audit_store(rt.db.url, rpc=node.rpc_url, contract=rt.address("TraceAnchor"),
                                       out=lines.append)
        audit_s = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        rt.db.dispose()
        node.stop()
    table = [
        f"Record journal: SQLite, anvil automine, {os.cpu_count()} cores shared (load {os.getloadavg()[0]:.1f} at the end).",
        "",
        "| measure | result |",
        "|---|---|",
        f"| bulk write path (settlement batch): settlement + posting (4 lines) per settlement, inserts alone | "
        f"{wp['plain_us']:.0f} µs CPU per settlement |",
        f"| the same with both journal digests (`digest_new`) | {wp['digested_us']:.0f} µs CPU per settlement "
        f"(+{wp['digested_us'] - wp['plain_us']:.0f} µs, {wp['digested_us'] / wp['plain_us'] - 1:.0%}) |",
        f"| a state change of 200 settlements per transaction, UPDATE alone | {sc['plain_us']:.0f} µs CPU per settlement |",
        f"| the same with `digest_changed` (record read back and digested at commit) | {sc['digested_us']:.0f} µs CPU per "
        f"settlement (+{sc['digested_us'] - sc['plain_us']:.0f} µs) |",
        f"| anchoring: `flush_journal` (leaf, tree, claim, outbox row) | {anchored['flush_us']:.1f} µs CPU per record "
        f"({anchored['batches']} batches of up to {args.batch:,}) |",
        f"| anchoring: `TraceAnchor.anchor` gas | {anchored['gas_per_batch']:,.0f} per batch = "
        f"{anchored['gas_per_record']:.2f} per record |",
        f"| journal filled: {args.records:,} records ({args.records // 2:,} settlements + {args.records // 2:,} postings "
        f"of 4 lines) | {fill_s:.0f} s |",
        f"| **audit of {report.records:,} records** ({report.versions:,} versions, {report.batches} anchored batches "
        f"checked on chain) | **{audit_s:.0f} s** = {report.records / audit_s:,.0f} records/s, "
        f"{'passed' if report.ok else 'FAILED'}, peak RSS {rss_mb:,.0f} MB |",
    ]
    text = "\n".join(table)
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")


if __name__ == "__main__":
    main()
