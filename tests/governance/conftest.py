"""A sealed consortium served over HTTP: the operator ("ops"), the three governors' members
(gov-a, gov-b, gov-c, whose demo governor keys the service holds) and a few members, all founding
members onboarded in the bootstrap window before the seal; real anvil, real database, real uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.chain.anvil import ManagedAnvil
from settlement.runtime import Runtime
from tests.api.support import LiveServer, build_runtime, onboard_direct
from tests.governance.support import GOVERNOR_MEMBERS, seal
from tests.http import client as http_client

FOUNDERS: dict[str, list[str]] = {"ops": ["operator"], "gov-a": ["finance", "financier"],
                                  "gov-b": ["finance", "financier"], "gov-c": ["finance"],
                                  "supplier": ["supplier", "finance"], "buyer": ["buyer", "finance"]}


@dataclass
class Gov:
    runtime: Runtime
    http: httpx.Client
    keys: dict[str, str]

    def h(self, member: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[member]}"}

    def governor(self, member: str) -> str:
        """The address of ``member``'s governor key."""
        params = self.runtime.governance
        assert params is not None
        return params.governors_of(member)[0].address


@pytest.fixture
def gworld(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[Gov]:
    rt = build_runtime(tmp_path / "home", database_url, anvil_automine.rpc_url)
    assert {g.member_id for g in rt.governance.governors} == set(GOVERNOR_MEMBERS)  # type: ignore[union-attr]
    keys = {m: onboard_direct(rt, m, roles) for m, roles in FOUNDERS.items()}
    seal(rt)
    server = LiveServer(create_app(rt, Settings(home=tmp_path / "home"), registry_cache_ttl_s=0.0)).start()
    try:
        with http_client(base_url=server.url, timeout=60.0) as http:
            yield Gov(rt, http, keys)
    finally:
        server.stop()
        rt.db.dispose()


__all__ = ["Gov", "gworld", "FOUNDERS", "Callable", "FastAPI"]
