"""Fixtures for callbacks: the settlements world (real anvil, real store, the app over real HTTP)
plus one provider account of each kind whose credentials are generated here (real RSA keys, a
real APIv3 key, a real webhook secret), and helpers to post notifications and drive the chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from settlement.domains.payments import configure_demo_providers
from settlement.chain.anvil import ManagedAnvil
from settlement.core.money import Money
from settlement.providers.testing import SimulatedNotification, demo_credentials, simulator_from_credentials
from settlement.store.models import OutboxRow, SecurityEvent
from settlement.store.models.payments import ProviderCallback
from settlement.store.models.settlements import JournalTransaction
from tests.settlements.conftest import World, make_world

PROVIDERS = ("alipay", "wechatpay", "stripe")


@dataclass
class CWorld:
    w: World
    creds: dict[str, dict[str, str]]

    def sim(self, provider: str):  # type: ignore[no-untyped-def]
        return simulator_from_credentials(provider, self.creds[provider])

    def post(self, provider: str, note: SimulatedNotification, account: str | None = None) -> httpx.Response:
        account = account or self.creds[provider]["account"]
        return self.w.http.post(f"/v1/callbacks/{provider}/{account}", content=note.body, headers=note.headers)

    def settlement(self, **overrides: object) -> dict:
        """A settlement recorded and confirmed on chain (payable)."""
        s = self.w.create(**overrides)
        self.w.sync()
        return s

    def payment(self, provider: str, reference: str, amount: Money, **kw: object) -> SimulatedNotification:
        sim = self.sim(provider)
        if provider == "stripe":
            return sim.payment_intent_succeeded(reference, amount, **kw)
        return sim.payment(reference, amount, **kw)

    def count(self, model, *where) -> int:  # type: ignore[no-untyped-def]
        with self.w.runtime.db.read() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def pay_rows(self, settlement_id: str) -> int:
        return self.count(OutboxRow, OutboxRow.kind == "settlement.pay", OutboxRow.aggregate_id == settlement_id)

    def paid_postings(self, settlement_id: str) -> int:
        return self.count(JournalTransaction, JournalTransaction.kind == "settlement.paid",
                          JournalTransaction.settlement_id == settlement_id)

    def security_events(self) -> int:
        return self.count(SecurityEvent, SecurityEvent.kind.like("callback.%"))

    def callbacks(self, *where) -> list[ProviderCallback]:  # type: ignore[no-untyped-def]
        with self.w.runtime.db.read() as s:
            return list(s.scalars(select(ProviderCallback).where(*where).order_by(ProviderCallback.id)))


def _make(tmp_path: Path, database_url: str, rpc_url: str) -> Iterator[CWorld]:
    w, server = make_world(tmp_path, database_url, rpc_url)
    creds = {p: demo_credentials(p, f"{p}-test") for p in PROVIDERS}
    configure_demo_providers(w.runtime, creds)
    try:
        yield CWorld(w, creds)
    finally:
        w.http.close()
        server.stop()
        w.runtime.db.dispose()


@pytest.fixture
def cworld(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[CWorld]:
    """Once on SQLite, once on PostgreSQL."""
    yield from _make(tmp_path, database_url, anvil_automine.rpc_url)


@pytest.fixture
def sworld(tmp_path: Path, sqlite_url: str, anvil_automine: ManagedAnvil) -> Iterator[CWorld]:
    """SQLite only (the store-agnostic behaviour)."""
    yield from _make(tmp_path, sqlite_url, anvil_automine.rpc_url)
