"""A consortium for receivables tests: a real (private) anvil, a real database, the workers driven
by hand, and the API served by real uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.domains import members as members_svc
from settlement.domains.receivables.models import Actor
from settlement.domains.receivables import forget_chain_time, read_chain_facts
from settlement.runtime import Runtime
from settlement.store.models import Member
from settlement.pipeline.workers import build
from settlement.wiring import build_registry
from tests.chain_clock import clear_of_midnight
from tests.api.support import LiveServer, build_runtime, onboard_direct
from tests.governance.support import seal
from tests.governance.support import suspend as governed_suspend
from tests.http import client as http_client

DAY_S = 86_400

# member id -> roles. "finance" lets a member pay settlements (disbursements, repayments).
CONSORTIUM: dict[str, list[str]] = {
    "ops": ["operator"],
    "acme": ["supplier"],
    "tier2": ["supplier"],
    "bigbuy": ["buyer", "finance"],
    "otherbuy": ["buyer"],
    "bank": ["financier", "finance"],
    "factor": ["financier", "supplier", "finance"],
}


@dataclass
class World:
    runtime: Runtime
    keys: dict[str, str]
    step: Callable[[], None]
    http: httpx.Client | None = None
    own_keys: dict[str, LocalAccount] = field(default_factory=dict)

    def h(self, member: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[member]}"}

    def actor(self, member: str) -> Actor:
        with self.runtime.db.read() as s:
            m = s.get(Member, member)
            return Actor(member_id=member, roles=frozenset(m.roles), active=m.status == "active")

    def today(self) -> date:
        """The chain's day, with its clock first moved clear of midnight (tests.chain_clock)."""
        chain = self.runtime.chain
        clear_of_midnight(chain.rpc, chain.w3.eth.get_block("latest")["timestamp"])
        forget_chain_time()
        return read_chain_facts(self.runtime).today

    def advance_days(self, days: int) -> None:
        """Move the chain's clock (private anvil only) and mine a block."""
        self.runtime.chain.rpc("evm_increaseTime", [days * DAY_S])
        self.runtime.chain.rpc("evm_mine", [])
        forget_chain_time()

    def add_own_key(self, member: str) -> LocalAccount:
        """Give ``member`` an account whose key only the test holds: the member's consent (its
        custodial key) and the new key's proof of possession, relayed to the registry."""
        # As tests.governance.support.add_own_key, but through this world's own dispatcher: a second
        # dispatcher would sign with the operator's key behind the back of this one's nonce book.
        account = Account.create()
        change = members_svc.keys.prepare_key_change(self.runtime, member, members_svc.keys.ADD, account.address)
        possession = sign_typed(account, change.typed_data)
        with self.runtime.db.transaction() as s:
            members_svc.keys.change_key(self.runtime, s, change, possession_signature=possession,
                                        consent_signature=None, custodial_consent=True)
        self.step()
        self.own_keys[member] = account
        return account


def sign_typed(account: LocalAccount, typed: dict[str, Any]) -> str:
    return "0x" + account.sign_message(encode_typed_data(full_message=typed)).signature.hex().removeprefix("0x")


def make_world(tmp_path: Path, database_url: str, rpc_url: str, *, serve: bool) -> tuple[World, list[Any]]:
    """Deploy, onboard the consortium through the service, apply it on chain. Returns the world
    and what to stop afterwards."""
    rt = build_runtime(tmp_path / "home", database_url, rpc_url)
    dispatcher, follower = build(rt, build_registry())

    def step() -> None:
        dispatcher.drain(timeout_s=60)
        for _ in range(20):
            if not follower.run_once():
                break

    keys = {member: onboard_direct(rt, member, roles, country="CN") for member, roles in CONSORTIUM.items()}
    step()
    seal(rt)  # founding members in the bootstrap window; anything later goes through governance
    stop: list[Any] = []
    world = World(runtime=rt, keys=keys, step=step)
    if serve:
        app = create_app(rt, Settings(home=tmp_path / "home"), registry_cache_ttl_s=0.0)
        server = LiveServer(app).start()
        stop.append(server)
        world.http = http_client(base_url=server.url, timeout=30.0)
        stop.append(world.http)
    return world, stop


def invoice(buyer: str = "bigbuy", number: str = "INV-2024-001", value: int = 100_000_000, currency: str = "CNY",
            issue: date | None = None, due: date | None = None, today: date | None = None) -> dict[str, Any]:
    today = today or date.today()
    return {"buyer_id": buyer, "invoice_number": number, "face_value": {"value": value, "currency": currency},
            "issue_date": (issue or today - timedelta(days=10)).isoformat(),
            "due_date": (due or today + timedelta(days=90)).isoformat()}


def suspend(world: World, member: str) -> None:
    """The guardians' fast path (k approvals, no delay)."""
    governed_suspend(world.runtime, member)
    world.step()
