"""Fixtures for the web layer: a real anvil, a real database, the app served by real uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ledger_api.app import create_app
from ledger_api.settings import Settings
from settlement.chain.anvil import ManagedAnvil
from settlement.runtime import Runtime

from tests.governance.support import seal

from .support import Api, LiveServer, build_runtime, onboard_direct
from tests.http import client as http_client


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[Runtime]:
    rt = build_runtime(tmp_path / "home", database_url, anvil_automine.rpc_url)
    yield rt
    rt.db.dispose()


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], LiveServer]]:
    """Serve any app on a free port; every server started is stopped after the test."""
    servers: list[LiveServer] = []

    def start(app: FastAPI) -> LiveServer:
        server = LiveServer(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def api(runtime: Runtime, settings: Settings, serve: Callable[[FastAPI], LiveServer]) -> Iterator[Api]:
    """The app on a real HTTP server, with an operator member ("ops") onboarded in the bootstrap
    window, which is then sealed: later members go through governance. The registry cache TTL is
    zero, so every request reads the chain."""
    app = create_app(runtime, settings, registry_cache_ttl_s=0.0)
    operator_key = onboard_direct(runtime, "ops", ["operator"])
    seal(runtime)
    server = serve(app)
    with http_client(base_url=server.url, timeout=30.0) as http:
        yield Api(url=server.url, runtime=runtime, app=app, http=http, operator_key=operator_key)


@pytest.fixture
def bootstrap_api(runtime: Runtime, settings: Settings, serve: Callable[[FastAPI], LiveServer]) -> Iterator[Api]:
    """Like ``api`` with the registry's bootstrap window still open (deployment not finished):
    the operator onboards founding members at once."""
    app = create_app(runtime, settings, registry_cache_ttl_s=0.0)
    operator_key = onboard_direct(runtime, "ops", ["operator"])
    server = serve(app)
    with http_client(base_url=server.url, timeout=30.0) as http:
        yield Api(url=server.url, runtime=runtime, app=app, http=http, operator_key=operator_key)
