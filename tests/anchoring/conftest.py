"""Fixtures: a real anvil, a real database (SQLite and PostgreSQL), the app on real uvicorn, the
operator's account holding the OPERATOR role on chain (TraceAnchor.anchor needs it), and members
with the roles the anchoring routes check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.chain.anvil import ManagedAnvil
from settlement.chain.signing import keccak256
from settlement.domains.members.service import country_hex, onchain_id
from settlement.runtime import Runtime
from tests.api.support import LiveServer, build_runtime, onboard_direct
from tests.governance.support import seal
from tests.http import client as http_client

MEMBERS = {"ops": ["operator"], "supplier-a": ["supplier"], "buyer-b": ["buyer", "finance"],
           "auditor-c": ["auditor"], "finance-d": ["finance"]}


def make_operator_anchorer(runtime: Runtime) -> None:
    """Onboard the operator's account with the OPERATOR role directly (ensure_operator_member does
    this through the outbox in `ledger up`)."""
    data = runtime.chain.encode("ConsortiumRegistry", "onboardMember",
                                [onchain_id("operator"), country_hex("SG"), [runtime.operator.address],
                                 ["0x" + keccak256(b"OPERATOR").hex()]])
    receipt = runtime.chain.transact(runtime.operator, to=runtime.address("ConsortiumRegistry"), data=data,
                                     gas=500_000)
    assert receipt.status == 1


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[Runtime]:
    rt = build_runtime(tmp_path / "home", database_url, anvil_automine.rpc_url)
    make_operator_anchorer(rt)
    yield rt
    rt.db.dispose()


@dataclass
class AnchorApi:
    url: str
    runtime: Runtime
    http: httpx.Client
    keys: dict[str, str]
    rpc_url: str

    def as_(self, member: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[member]}"}


@pytest.fixture
def api(runtime: Runtime, tmp_path: Path, anvil_automine: ManagedAnvil) -> Iterator[AnchorApi]:
    app = create_app(runtime, Settings(home=tmp_path / "home"), registry_cache_ttl_s=0.0)
    keys = {member_id: onboard_direct(runtime, member_id, roles) for member_id, roles in MEMBERS.items()}
    seal(runtime)  # the founding members are on chain, the bootstrap window closed
    server = LiveServer(app).start()
    try:
        with http_client(base_url=server.url, timeout=60.0) as http:
            yield AnchorApi(server.url, runtime, http, keys, anvil_automine.rpc_url)
    finally:
        server.stop()
