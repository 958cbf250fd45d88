"""Group commit of callbacks (settlement.domains.payments.writer / .record), on SQLite and PostgreSQL:
a group writes exactly the rows one-by-one writes; a failed group acknowledges nothing it did not
store and falls back to one transaction per delivery; results are handed out only after the
commit; duplicates (in one group, across groups, concurrent) have one row and one effect; the
writer's queue is bounded; the supporting caches and fast paths give the same answers as before."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from settlement.domains.anchoring.canonical import _canonical
from settlement.domains.anchoring.digests import digest_of
from settlement.domains.payments import accounts, configure_demo_providers, ingest, ingest_async
from settlement.domains.payments import record as record_module
from settlement.domains.payments import writer as writer_module
from settlement.domains.payments.record import Recorded, record_group, record_one, values_of
from settlement.domains.payments.writer import GroupWriter, writer_for
from settlement.chain.client import ChainClient
from settlement.chain.signing import LocalSigner
from settlement.core.errors import CallbackStoreUnavailableError, UnknownProviderAccountError
from settlement.custody.vault import KeyVault
from settlement.core.money import Money
from settlement.providers import adapter_for
from settlement.providers.testing import SimulatedNotification, demo_credentials, simulator_from_credentials
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.store.models.anchoring import RecordDigest
from settlement.store.models.payments import ProviderCallback, ReconciliationException
from tests.settlements.conftest import PAID

from .conftest import CWorld

STRIPE, ALIPAY = "stripe", "alipay"


# -- a store without a chain (ingestion never calls the chain) -----------------------------------------


class Store:
    def __init__(self, home: Path, url: str) -> None:
        migrate(url)
        self.runtime = Runtime(home=home, db=Database(url), chain=ChainClient.__new__(ChainClient),
                               vault=KeyVault(os.urandom(32)), operator=LocalSigner(os.urandom(32)))
        self.creds = {p: demo_credentials(p, f"{p}-g") for p in (STRIPE, ALIPAY)}
        configure_demo_providers(self.runtime, self.creds)
        self.sims = {p: simulator_from_credentials(p, c) for p, c in self.creds.items()}

    def payment(self, provider: str, reference: str, value: int = 1000) -> SimulatedNotification:
        sim = self.sims[provider]
        if provider == STRIPE:
            return sim.payment_intent_succeeded(reference, Money(value, "USD"))
        return sim.payment(reference, Money(value, "CNY"))

    def values(self, provider: str, note: SimulatedNotification) -> dict[str, Any]:
        material = accounts.verifier(self.runtime, provider, self.creds[provider]["account"])
        request = note.as_request()
        return values_of(adapter_for(provider).verify_and_parse(material, request), request)

    def ingest(self, provider: str, note: SimulatedNotification):  # type: ignore[no-untyped-def]
        return ingest(self.runtime, provider, self.creds[provider]["account"], note.body, note.headers)

    def count(self, model: Any, *where: Any) -> int:
        with self.runtime.db.read() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def callbacks(self) -> list[ProviderCallback]:
        with self.runtime.db.read() as s:
            return list(s.scalars(select(ProviderCallback).order_by(ProviderCallback.id)))


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    """Once on SQLite, once on PostgreSQL."""
    s = Store(tmp_path, database_url)
    yield s
    s.runtime.db.dispose()


def _second_store(tmp_path: Path, url: str) -> Store:
    if url.startswith("sqlite"):
        return Store(tmp_path / "b", f"sqlite:///{tmp_path / 'b.db'}")
    from tests.conftest import fresh_postgres_url

    return Store(tmp_path / "b", fresh_postgres_url())


def _rows(store: Store) -> tuple[list, list, list]:
    """Callback rows, exceptions and callback digests, without what may differ between two runs:
    clock readings, and row ids (PostgreSQL spends a sequence value on an insert that collided),
    which are replaced by the callback's rank. Each digest is checked against its JSON here."""
    with store.runtime.db.read() as s:
        found = list(s.scalars(select(ProviderCallback).order_by(ProviderCallback.id)))
        rank = {c.id: k for k, c in enumerate(found)}
        callbacks = [(rank[c.id], c.provider, c.account, c.evidence_hash, c.kind, c.outcome, c.outcome_reason,
                      c.outcome_detail, c.settlement_id, c.delivery_count, c.attempts, c.raw_body, c.parsed)
                     for c in found]
        exceptions = [(e.exception_id, rank[e.callback_id], e.bucket, e.reason, e.kind, e.reference, e.currency,
                       e.statement_amount_minor, e.detail, e.state)
                      for e in s.scalars(select(ReconciliationException).order_by(ReconciliationException.id))]
        digests = []
        for d in s.scalars(select(RecordDigest).where(RecordDigest.kind == "callback").order_by(RecordDigest.id)):
            assert d.digest == digest_of(d.canonical_json)
            record = json.loads(d.canonical_json)
            assert d.record_id == str(record["id"])  # a callback record is named by its row id
            record["id"] = rank[record["id"]]
            digests.append((d.kind, d.version, record))
    return callbacks, exceptions, digests


def test_a_group_writes_exactly_what_one_by_one_writes(store: Store, tmp_path: Path, database_url: str) -> None:
    """The same deliveries, once as ONE group and once one transaction each (into a second empty
    store): the same callback rows (outcome in the insert or after the effect), the same queued
    exceptions in the same order, the same journal digests; a fact twice in the group is one row
    counting two deliveries."""
    other = _second_store(tmp_path, database_url)
    try:
        other.creds, other.sims = store.creds, store.sims
        configure_demo_providers(other.runtime, store.creds)
        stripe_note = store.payment(STRIPE, "NO-SUCH-1")
        canceled = store.sims[STRIPE].event("payment_intent.canceled", {
            "id": "pi_canceled1", "object": "payment_intent", "amount": 500, "currency": "usd",
            "status": "canceled", "metadata": {"reference": "NO-SUCH-2"}})
        no_reference = store.sims[STRIPE].event("payment_intent.succeeded", {
            "id": "pi_noref1", "object": "payment_intent", "amount": 700, "amount_received": 700,
            "currency": "usd", "status": "succeeded", "metadata": {}})
        notes = [(STRIPE, stripe_note), (ALIPAY, store.payment(ALIPAY, "NO-SUCH-3", 4200)), (STRIPE, canceled),
                 (STRIPE, stripe_note), (STRIPE, no_reference)]
        group = [store.values(p, n) for p, n in notes]
        results = record_group(store.runtime, group)
        one_by_one = [record_one(other.runtime, other.values(p, n)) for p, n in notes]
        assert [r.outcome for r in results] == ["exception", "exception", "noted", "duplicate", "exception"]
        assert [r.outcome for r in one_by_one] == [r.outcome for r in results]
        assert results[3].callback_id == results[0].callback_id
        assert one_by_one[3].callback_id == one_by_one[0].callback_id
        assert _rows(store) == _rows(other)
        assert [c.delivery_count for c in store.callbacks()] == [2, 1, 1, 1]
    finally:
        other.runtime.db.dispose()


@contextmanager
def _first_group_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The writer's first group waits for the event: deliveries submitted meanwhile queue up and
    form the next group, deterministically."""
    release = threading.Event()
    real = writer_module.record_group
    calls = [0]

    def held(runtime: Runtime, group: list) -> list[Recorded]:  # type: ignore[type-arg]
        calls[0] += 1
        if calls[0] == 1:
            assert release.wait(30)
        return real(runtime, group)

    monkeypatch.setattr(writer_module, "record_group", held)
    try:
        yield release
    finally:
        release.set()


def test_a_group_with_a_fact_already_stored_falls_back_to_one_transaction_each(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery of a fact committed earlier makes the group's insert fail on the unique evidence
    key: nothing of the group is kept, each delivery is written alone, the known fact counts a
    delivery, the new ones are recorded, every caller gets its own result."""
    known = store.payment(STRIPE, "KNOWN")
    first = store.ingest(STRIPE, known)
    writer = GroupWriter(linger_s=0)
    with _first_group_held(monkeypatch) as release:
        blocker = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "BLOCKER")))
        group = [writer.submit(store.runtime, store.values(STRIPE, n))
                 for n in (store.payment(STRIPE, "NEW-1"), known, store.payment(STRIPE, "NEW-2"))]
        release.set()
        results = [f.result(30) for f in (blocker, *group)]
    assert writer.fallbacks == 1
    assert [r.outcome for r in results] == ["exception", "exception", "duplicate", "exception"]
    assert results[2].callback_id == first.callback_id
    by_ref = {c.merchant_reference: c for c in store.callbacks()}
    assert set(by_ref) == {"KNOWN", "BLOCKER", "NEW-1", "NEW-2"} and by_ref["KNOWN"].delivery_count == 2
    assert store.count(ReconciliationException) == 4
    assert store.count(RecordDigest, RecordDigest.kind == "callback") == 4


def test_a_delivery_that_cannot_be_recorded_fails_alone_and_is_not_acknowledged(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error while one delivery's effect is applied rolls its group back; written
    one by one, the others are recorded and acknowledged, the bad one gets the provider's retry
    answer and leaves nothing in the store."""
    real_apply = record_module.apply_callback

    def apply(runtime: Runtime, session: Any, row: Any, **kw: Any) -> Any:
        if row.merchant_reference == "POISON":
            raise RuntimeError("boom")
        return real_apply(runtime, session, row, **kw)

    monkeypatch.setattr(record_module, "apply_callback", apply)
    writer = GroupWriter(linger_s=0)
    with _first_group_held(monkeypatch) as release:
        blocker = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "BLOCKER")))
        futures = [writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, ref)))
                   for ref in ("GOOD-1", "POISON", "GOOD-2")]
        release.set()
        blocker.result(30)
        good_1, poison, good_2 = futures
        assert good_1.result(30).outcome == good_2.result(30).outcome == "exception"
        with pytest.raises(CallbackStoreUnavailableError):
            poison.result(30)
    assert sorted(c.merchant_reference for c in store.callbacks()) == ["BLOCKER", "GOOD-1", "GOOD-2"]
    assert store.count(ReconciliationException) == 3


def test_no_delivery_is_acknowledged_when_its_commit_fails(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store accepts every statement but the commit fails (disk full, connection lost): the
    group and then each delivery alone fail; every provider gets the retry answer (503), nothing
    is in the store, and a later delivery of the same fact is recorded normally."""
    db = store.runtime.db

    @contextmanager
    def failing_commit() -> Iterator[Any]:
        with db.sessions() as session:
            session.begin()
            yield session
            session.rollback()
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    notes = [store.payment(STRIPE, f"LOST-{i}") for i in range(3)]
    monkeypatch.setattr(db, "transaction", failing_commit)
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda n: store.ingest(STRIPE, n), notes))
    assert [(a.outcome, a.response.status_code) for a in answers] == [("rejected", 503)] * 3
    assert store.count(ProviderCallback) == 0
    monkeypatch.undo()
    assert store.ingest(STRIPE, notes[0]).outcome == "exception" and store.count(ProviderCallback) == 1


def test_results_are_handed_out_only_after_the_commit(store: Store) -> None:
    """When a caller learns its result (thread or event loop), another connection already sees
    the delivery's row: the provider is answered only after the durable write."""
    db = store.runtime.db

    def visible(result: Recorded) -> bool:
        with db.read() as s:
            return s.get(ProviderCallback, result.callback_id) is not None

    seen: list[bool] = []
    futures = [writer_for(db).submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, f"T-{i}")))
               for i in range(6)]
    for f in futures:
        f.add_done_callback(lambda f: seen.append(visible(f.result())))  # runs as soon as it resolves
    for f in futures:
        f.result(30)

    async def over_the_loop() -> list[bool]:
        notes = [store.payment(ALIPAY, f"A-{i}") for i in range(6)]
        results = await asyncio.gather(*(ingest_async(store.runtime, ALIPAY, store.creds[ALIPAY]["account"],
                                                      n.body, n.headers) for n in notes))
        return [r.response.body == b"success" and visible(Recorded(r.outcome, r.callback_id)) for r in results]

    # a loop of its own in a thread of its own: another test in this process (the console's browser
    # driver) may have left an event loop running in the main thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, over_the_loop()).result(60) == [True] * 6
    assert len(seen) == 6 and all(seen)


def test_concurrent_and_repeated_deliveries_have_one_row_and_one_exception_each(store: Store) -> None:
    """Twenty facts, each delivered three times, from eight threads at once, interleaved: twenty
    rows counting sixty deliveries, twenty exceptions, twenty journal digests (version 1)."""
    notes = [store.payment(STRIPE if i % 2 else ALIPAY, f"C-{i}") for i in range(20)]
    deliveries = [(STRIPE if i % 2 else ALIPAY, n) for i, n in enumerate(notes)] * 3
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda pn: store.ingest(*pn), deliveries))
    assert all(a.accepted for a in answers)
    assert sorted(a.outcome for a in answers).count("duplicate") == 40
    rows = store.callbacks()
    assert len(rows) == 20 and sum(r.delivery_count for r in rows) == 60
    assert store.count(ReconciliationException) == 20
    with store.runtime.db.read() as s:
        versions = list(s.scalars(select(RecordDigest.version).where(RecordDigest.kind == "callback")))
    assert sorted(versions) == [1] * 20


# -- the writer itself ------------------------------------------------------------------------------------


def _until_taken(writer: GroupWriter) -> None:
    """Wait until the writer has taken everything queued (and is held on it)."""
    for _ in range(3000):
        if not writer._queue:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the writer never took its queue")


def test_the_writer_queue_is_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the writer busy and its queue full, a delivery is refused at once (the provider
    retries) instead of waiting without bound."""
    writer = GroupWriter(queue_items_max=2, linger_s=0)
    with _first_group_held(monkeypatch) as release:
        held = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "Q-0")))
        _until_taken(writer)
        queued = [writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, f"Q-{i}")))
                  for i in (1, 2)]
        with pytest.raises(CallbackStoreUnavailableError):
            writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "Q-3")))
        release.set()
        assert [f.result(30).outcome for f in (held, *queued)] == ["exception"] * 3


def test_an_abandoned_delivery_is_not_written(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that gave up before its delivery was taken (its future cancelled) is never
    answered, so the delivery is not written; the provider's retry records it."""
    writer = GroupWriter(linger_s=0)
    with _first_group_held(monkeypatch) as release:
        held = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "KEPT")))
        _until_taken(writer)
        gone = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "GONE")))
        assert gone.cancel()
        release.set()
        held.result(30)
    assert [c.merchant_reference for c in store.callbacks()] == ["KEPT"]


def test_the_writer_thread_stops_when_idle_and_starts_again(store: Store) -> None:
    writer = GroupWriter(idle_exit_s=0.05)
    assert writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "I-1"))).result(30)
    for _ in range(200):
        if writer._thread is None:
            break
        threading.Event().wait(0.01)
    assert writer._thread is None
    assert writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "I-2"))).result(30)
    assert store.count(ProviderCallback) == 2


def test_under_concurrent_load_the_writer_lingers_for_larger_groups(store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """After a group of several, the writer waits (briefly) for more deliveries instead of
    writing each as it comes; a lone delivery is written at once."""
    writer = GroupWriter(linger_s=1.0, linger_items=4)
    lone = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "L-0")))
    assert lone.result(0.9).outcome == "exception"  # no linger: the previous group was not several
    with _first_group_held(monkeypatch) as release:
        first = writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, "L-1")))
        _until_taken(writer)
        second = [writer.submit(store.runtime, store.values(STRIPE, store.payment(STRIPE, f"L-{i}"))) for i in (2, 3)]
        release.set()
        for f in (first, *second):
            f.result(30)
    groups_before = writer.groups
    notes = [store.values(STRIPE, store.payment(STRIPE, f"L-{i}")) for i in range(4, 8)]
    late = [writer.submit(store.runtime, values) for values in notes]
    assert [f.result(30).outcome for f in late] == ["exception"] * 4
    assert writer.groups - groups_before == 1  # the four waited for each other: one transaction


# -- with settlements: effects in a group ------------------------------------------------------------------


def test_payments_and_a_refund_in_one_group_apply_once_each(cworld: CWorld) -> None:
    """A group holding a payment of a payable settlement, a mismatched payment of another, and a
    Stripe refund (which names no order: it finds its settlement through the payment recorded
    before it in the same group): one markPaid, one exception, the refund waits for the chain;
    exactly one payment effect, also on chain."""
    rt = cworld.w.runtime
    s1, s2 = cworld.settlement(), cworld.settlement()
    sim = cworld.sim(STRIPE)
    pay = sim.payment_intent_succeeded(s1["payment_reference"], Money(s1["target"]["value"], "USD"),
                                       payment_intent_id="pi_group_1")
    mismatch = sim.payment_intent_succeeded(s2["payment_reference"], Money(s2["target"]["value"] - 1, "USD"))
    refund = sim.refund_created("pi_group_1", Money(1_000, "USD"))
    material = accounts.verifier(rt, STRIPE, cworld.creds[STRIPE]["account"])

    def values(note: SimulatedNotification) -> dict[str, Any]:
        request = note.as_request()
        return values_of(adapter_for(STRIPE).verify_and_parse(material, request), request)

    results = record_group(rt, [values(pay), values(mismatch), values(refund), values(pay)])
    assert [r.outcome for r in results] == ["applied", "exception", "deferred", "duplicate"]
    rows = cworld.callbacks()
    assert [(c.outcome_reason, c.settlement_id) for c in rows] == [
        ("paid", s1["id"]), ("amount_mismatch", s2["id"]), ("awaiting_chain", s1["id"])]
    assert rows[0].delivery_count == 2 and rows[0].outbox_id is not None
    assert cworld.pay_rows(s1["id"]) == 1 and cworld.pay_rows(s2["id"]) == 0
    cworld.w.sync()
    assert cworld.w.onchain(s1["id"])[0] == PAID and cworld.paid_postings(s1["id"]) == 1


# -- caches and fast paths -----------------------------------------------------------------------------------


def test_the_account_cache_answers_the_event_loop_and_rebuilds_only_on_a_new_version(store: Store) -> None:
    """cached_verifier never reads the store (None on a miss); after the TTL the row is read
    again, but the material (decrypted secrets, parsed keys) is rebuilt only when the account's
    version changed; an update through the module is seen at once."""
    rt, account = store.runtime, store.creds[STRIPE]["account"]
    accounts.invalidate(rt.db)
    assert accounts.cached_verifier(rt, STRIPE, account) is None
    first = accounts.verifier(rt, STRIPE, account)
    assert accounts.cached_verifier(rt, STRIPE, account) is first
    assert accounts.verifier(rt, STRIPE, account, ttl_s=0) is first  # re-read, same version: reused
    rolled = dict(store.creds[STRIPE], webhook_secrets=[store.creds[STRIPE]["webhook_secret"], "whsec_next"])
    with rt.db.transaction() as s:
        accounts.update_account(rt, s, STRIPE, account, rolled)
    assert accounts.cached_verifier(rt, STRIPE, account) is None
    second = accounts.verifier(rt, STRIPE, account)
    assert second is not first and second.webhook_secrets[-1] == "whsec_next"
    with pytest.raises(UnknownProviderAccountError):
        accounts.verifier(rt, STRIPE, "no-such-account")
    with pytest.raises(UnknownProviderAccountError):
        accounts.cached_verifier(rt, STRIPE, "no-such-account")  # the miss is remembered too


def _reference_canonical(value: Any) -> str:
    """The journal's canonical JSON as it was written before (json.dumps per scalar)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_reference_canonical(v) for v in value) + "]"
    items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _reference_canonical(v) for k, v in items) + "}"


_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63) + 1, 2**63 - 1)
            | st.text(st.characters(blacklist_categories=("Cs",))))
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=24)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_the_journal_canonical_json_is_unchanged(value: Any) -> None:
    """The journal's faster canonical JSON (one C string encoder, literal null/true/false) is
    byte for byte what json.dumps per scalar gave: every digest an auditor recomputes stays."""
    assert _canonical(value, 0) == _reference_canonical(value)
