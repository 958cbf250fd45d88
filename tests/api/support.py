"""Test helpers: a Runtime assembled from real parts, and the app served by a real uvicorn."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from settlement.domains import members as svc
from settlement.chain.anvil import free_port
from settlement.chain.client import ChainClient
from settlement.chain.deploy import deploy
from settlement.chain.signing import LocalSigner
from settlement.custody.vault import KeyVault
from settlement.runtime import Runtime
from settlement.store.db import Database, migrate
from settlement.store.models import OutboxRow
from tests.governance.support import onboard_governed, test_governance

SERVER_START_TIMEOUT_S = 15.0


def build_runtime(home: Path, database_url: str, rpc_url: str, *, deploy_contracts: bool = True) -> Runtime:
    """Deployed with the demo governors (custodial) and the bootstrap window still open: the
    caller onboards its founding members, then seals (tests.governance.support.seal)."""
    home.mkdir(parents=True, exist_ok=True)
    migrate(database_url)
    db = Database(database_url)
    chain = ChainClient(rpc_url)
    vault = KeyVault(os.urandom(32))
    operator = LocalSigner(os.urandom(32))
    vault.register(operator)
    params, governors = test_governance()
    manifest = deploy(chain, operator, home, governance=params) if deploy_contracts else None
    runtime = Runtime(home=home, db=db, chain=chain, vault=vault, operator=operator, manifest=manifest)
    runtime.register_governors(governors)
    return runtime


def dead_rpc_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


class LiveServer:
    """uvicorn in a thread on a free port; stop() waits for it to finish."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Api:
    """A served app: base URL, its runtime, an HTTP client, and an operator member's key."""

    url: str
    runtime: Runtime
    app: FastAPI
    http: httpx.Client
    operator_key: str

    def as_(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}


def apply_outbox_directly(runtime: Runtime, aggregate_id: str | None = None) -> list[int]:
    """Play the dispatcher for registry rows: send each pending row's call with its own gas limit,
    in order, and mark it confirmed. Returns the row ids sent."""
    sent = []
    with runtime.db.transaction() as session:
        q = session.query(OutboxRow).filter(OutboxRow.status == "pending").order_by(OutboxRow.id)
        if aggregate_id is not None:
            q = q.filter(OutboxRow.aggregate_id == aggregate_id)
        for row in q.all():
            data = runtime.chain.encode(row.contract, row.function, row.args)
            to = runtime.address(row.contract)
            receipt = runtime.chain.transact(runtime.operator, to=to, data=data, gas=row.gas_limit)
            row.status = "confirmed"
            row.tx_hash = receipt.tx_hash
            row.block_number = receipt.block_number
            sent.append(row.id)
    return sent


def onboard_direct(runtime: Runtime, member_id: str, roles: list[str], *, country: str = "SG",
                   name: str | None = None) -> str:
    """Onboard through the service and return the API key: in the bootstrap window, one
    transaction (its registry call waits in the outbox); after the seal, the whole governed path
    (proposed, approved by the demo governors, executed after the delay, the clock moved)."""
    if runtime.bootstrap_open():
        with runtime.db.transaction() as session:
            _member, key = svc.onboard_member(runtime, session, member_id=member_id, name=name or member_id,
                                              country=country, roles=roles)
        return key
    return onboard_governed(runtime, member_id, roles, country=country, name=name)
