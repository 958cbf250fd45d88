"""Fixtures for settlements: a real anvil, a real store, the app on a real HTTP server, a small
consortium onboarded on chain, and the dispatcher + follower driven synchronously."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger_api.app import create_app
from ledger_api.demo import ensure_operator_member
from ledger_api.settings import Settings
from settlement.chain.anvil import ManagedAnvil
from settlement.pipeline.dispatcher import Dispatcher
from settlement.pipeline.follower import Follower
from settlement.domains.members.service import onchain_id
from settlement.runtime import Runtime
from settlement.pipeline.workers import build
from settlement.wiring import build_registry
from tests.api.support import LiveServer, build_runtime, onboard_direct
from tests.governance.support import seal
from tests.http import client as http_client

# name -> roles
CONSORTIUM = {"retailer": ["finance", "buyer"], "bank": ["finance", "financier"], "psp": ["finance"],
              "auditor": ["auditor"]}
LEDGER = "SettlementLedger"
# ISettlementLedger.State
NONE, INSTRUCTED, PAID, IN_CYCLE, SETTLED, CANCELLED, REFUNDED = range(7)


@dataclass
class World:
    runtime: Runtime
    http: httpx.Client
    dispatcher: Dispatcher
    follower: Follower
    keys: dict[str, str]
    operator_key: str
    counter: list[int] = field(default_factory=lambda: [0])

    def h(self, who: str, idem: str | None = None) -> dict[str, str]:
        key = self.operator_key if who == "operator" else self.keys[who]
        headers = {"Authorization": f"Bearer {key}"}
        if idem is not None:
            headers["Idempotency-Key"] = idem
        return headers

    def sync(self) -> None:
        """Send everything waiting in the outbox, apply what the chain says back, and run the
        workers' periodic jobs (deferred callbacks, ...), until nothing moves."""
        jobs = build_registry().jobs()
        for _round in range(20):
            self.dispatcher.drain(timeout_s=60)
            while self.follower.run_once():
                pass
            if not sum(job.run(self.runtime) for job in jobs):
                return
        raise AssertionError("the outbox, follower and jobs did not settle in 20 rounds")

    def attest_nets(self, cycle: dict) -> None:
        """The operator attests each net payer's payment into ``cycle`` (one provider transaction
        each, exactly the net owed), then syncs: what a cycle needs before it can settle."""
        for m in cycle["members"]:
            if m["net"]["value"] < 0:
                r = self.http.post(f"/v1/netting-cycles/{cycle['id']}/payments", headers=self.h("operator"), json={
                    "member": m["member_id"], "provider": "wechatpay",
                    "provider_transaction_id": f"net-in-{cycle['id'][2:14]}-{m['member_id']}",
                    "amount": {"value": -m["net"]["value"], "currency": m["net"]["currency"]}})
                assert r.status_code == 202, r.text
        self.sync()

    def onchain(self, settlement_id: str) -> tuple[int, int]:
        state, refunded, _commitment = self.runtime.chain.call(
            LEDGER, self.runtime.address(LEDGER), "getSettlement", [settlement_id])
        return int(state), int(refunded)

    def today(self) -> date:
        return datetime.now(timezone.utc).date()

    def body(self, payee: str = "bank", **overrides: Any) -> dict:
        self.counter[0] += 1
        n = self.counter[0]
        body = {"client_reference": f"INV-{n:05d}", "payee": payee,
                "source": {"value": 100_000, "currency": "USD"}, "target": {"value": 100_000, "currency": "USD"},
                "fx_rate": "1", "purpose_code": "GDDS", "payment_reference": f"ORDER-{n:05d}"}
        body.update(overrides)
        return body

    def create(self, payer: str = "retailer", **overrides: Any) -> dict:
        r = self.http.post("/v1/settlements", json=self.body(**overrides), headers=self.h(payer, f"k-{self.counter[0] + 1}"))
        assert r.status_code == 201, r.text
        return r.json()

    def get(self, settlement_id: str, who: str = "retailer") -> dict:
        r = self.http.get(f"/v1/settlements/{settlement_id}", headers=self.h(who))
        assert r.status_code == 200, r.text
        return r.json()


def make_world(tmp_path: Path, database_url: str, rpc_url: str) -> tuple[World, LiveServer]:
    rt = build_runtime(tmp_path / "home", database_url, rpc_url)
    operator_key = ensure_operator_member(rt)
    keys = {name: onboard_direct(rt, name, roles, country="SG") for name, roles in CONSORTIUM.items()}
    seal(rt)  # founding members in the bootstrap window; anything later goes through governance
    dispatcher, follower = build(rt, build_registry())
    app = create_app(rt, Settings(home=tmp_path / "home"), registry_cache_ttl_s=0.0)
    server = LiveServer(app).start()
    world = World(rt, http_client(base_url=server.url, timeout=60.0), dispatcher, follower, keys, operator_key)
    world.sync()
    return world, server


@pytest.fixture
def world(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[World]:
    """Once on SQLite, once on PostgreSQL."""
    w, server = make_world(tmp_path, database_url, anvil_automine.rpc_url)
    yield w
    w.http.close()
    server.stop()
    w.runtime.db.dispose()


__all__ = ["World", "make_world", "onchain_id"]
