"""`ledger up --demo` end to end: the real command starts anvil, deploys, migrates, seeds the
demo consortium, serves the API with its workers, stops cleanly on SIGTERM, and a restart keeps
all chain and store data (persisted anvil state, same manifest, same demo keys)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from settlement.chain.anvil import free_port


def start(home, api_port, rpc_port) -> subprocess.Popen:
    env = dict(os.environ, LEDGER_HOME=str(home), LEDGER_API_PORT=str(api_port), LEDGER_ANVIL_PORT=str(rpc_port))
    env.pop("LEDGER_RPC_URL", None)
    env.pop("LEDGER_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "up", "--demo"], env=env,
                            stdout=open(home / "up.log", "ab"), stderr=subprocess.STDOUT)


def _operator_key(home: Path) -> str | None:
    try:
        demo = json.loads((home / "demo.json").read_text())
    except (OSError, ValueError):
        return None
    return next((m["api_key"] for m in demo["members"] if "operator" in m["roles"]), None)


def wait_healthy(api: str, proc: subprocess.Popen, timeout_s: float = 90, *, home: Path) -> dict:
    """The detailed health (the operator's key from demo.json: the store's outbox is not public)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ledger up exited early"
        key = _operator_key(home)
        try:
            if key is None:
                raise httpx.HTTPError("no demo.json yet")
            health = httpx.get(f"{api}/health", timeout=2, headers={"Authorization": f"Bearer {key}"}).json()
            if health["status"] == "ok" and health["store"]["outbox_depth"] == 0:
                return health
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("not healthy in time")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


@pytest.mark.slow(seconds=25)
def test_up_demo_then_restart_keeps_everything(tmp_path):
    api_port, rpc_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    proc = start(tmp_path, api_port, rpc_port)
    try:
        health = wait_healthy(api, proc, home=tmp_path)
    except BaseException:
        proc.kill()
        raise
    demo = json.loads((tmp_path / "demo.json").read_text())
    assert oct((tmp_path / "demo.json").stat().st_mode & 0o777) == "0o600"
    assert demo["chain_id"] == health["chain"]["chain_id"] == 31337
    assert demo["api"] == api and demo["rpc"] == f"http://127.0.0.1:{rpc_port}"
    assert set(demo["contracts"]) >= {"ConsortiumRegistry", "SettlementLedger", "ReceivableRegistry", "TraceAnchor"}
    assert demo["contracts"] == health["contracts"]
    roles = {m["id"]: m["roles"] for m in demo["members"]}
    assert {"retailer", "supplier", "buyer", "bank", "payments", "auditor"} <= set(roles)
    for member in demo["members"]:
        assert member["address"].startswith("0x") and member["api_key"]
    assert set(demo["providers"]) == {"alipay", "wechatpay", "stripe"}
    # Governance: the bootstrap was sealed after the founding members; demo governors 2-of-3.
    assert health["governance"] == {"bootstrap_sealed": True}
    g = demo["governance"]
    assert g["threshold"] == 2 and g["guardian_threshold"] == 2 and g["delay_s"] > 0
    assert {g["governance_safe"], g["guardian_safe"], g["timelock"], g["proposal_log"]} <= set(demo["contracts"].values())
    assert [x["member_id"] for x in g["governors"]] == ["bank", "payments", "buyer"]
    from eth_account import Account
    assert all(Account.from_key(x["private_key"]).address == x["address"] for x in g["governors"])
    assert demo["providers"]["stripe"]["webhook_secret"].startswith("whsec_")
    assert "BEGIN" in demo["providers"]["alipay"]["platform_private_key_pem"]
    assert "BEGIN CERTIFICATE" in demo["providers"]["wechatpay"]["platform_certificate_pem"]
    supplier = next(m for m in demo["members"] if m["id"] == "supplier")
    me = httpx.get(f"{api}/v1/me", headers={"Authorization": f"Bearer {supplier['api_key']}"}).json()
    assert me["effective_roles"] == sorted(supplier["roles"]) and me["roles_source"] == "chain"
    head_before = health["chain"]["head_block"]
    manifest_before = (tmp_path / "deployment.json").read_text()
    stop(proc)
    assert "stopped" in (tmp_path / "up.log").read_text()

    proc = start(tmp_path, api_port, rpc_port)
    try:
        health = wait_healthy(api, proc, home=tmp_path)
        assert health["chain"]["head_block"] >= head_before  # anvil state persisted
        assert (tmp_path / "deployment.json").read_text() == manifest_before  # nothing redeployed
        again = json.loads((tmp_path / "demo.json").read_text())
        assert again["members"] == demo["members"]  # same members, same keys, idempotent
        me = httpx.get(f"{api}/v1/me", headers={"Authorization": f"Bearer {supplier['api_key']}"})
        assert me.status_code == 200
    finally:
        stop(proc)
