"""The one settings object, read from the environment (names fixed by DESIGN.md)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from settlement.core.private_files import PRIVATE_DIR_MODE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    home: Path = Field(default=Path("./.ledger"), description="LEDGER_HOME: the data dir")
    rpc_url: str | None = Field(default=None, description="LEDGER_RPC_URL; unset: managed anvil")
    database_url: str | None = Field(default=None, description="LEDGER_DATABASE_URL; unset: SQLite in LEDGER_HOME")
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # Managed anvil (only when rpc_url is unset).
    anvil_host: str = "127.0.0.1"
    anvil_port: int = 8545
    anvil_block_time_s: int | None = Field(default=None, description="None: automine; N: interval mining")

    # Fees, configured not guessed: "zero" (permissioned network, legacy gasPrice 0), "legacy"
    # (fixed gas_price_wei), "eip1559" (max_fee_per_gas_wei / max_priority_fee_per_gas_wei).
    fee_mode: Literal["zero", "legacy", "eip1559"] = "zero"
    gas_price_wei: int = 0
    max_fee_per_gas_wei: int = 0
    max_priority_fee_per_gas_wei: int = 0

    # Key-encryption key for custodial signer keys: from the environment (base64url, 32 bytes)
    # or a 0600 file in LEDGER_HOME created on first start. Never stored in the database.
    kek: str | None = Field(default=None, repr=False)
    # The operator's (registry admin's) private key on an external chain; managed chains get a
    # generated one, kept encrypted in LEDGER_HOME.
    operator_key: str | None = Field(default=None, repr=False)

    # Keys in a PKCS#11 token (docs/custody.md). Unset module: the encrypted key file above.
    # Set: new keys of the kinds in hsm_keys ("operator", "members", comma-separated) are
    # generated in the token labelled hsm_token_label, opened with hsm_pin or hsm_pin_file.
    hsm_module: Path | None = Field(default=None, description="LEDGER_HSM_MODULE: the PKCS#11 library")
    hsm_token_label: str | None = None
    hsm_pin: str | None = Field(default=None, repr=False)
    hsm_pin_file: Path | None = None
    hsm_keys: str = "operator,members"
    # Consortium governance, set at the first deployment (docs/governance.md). On an external chain
    # LEDGER_GOVERNORS is required: comma-separated member-id:0xADDRESS of the governor keys (Safe
    # owners). Unset on the managed dev chain: three deterministic demo governors (2-of-3) whose keys
    # the service holds (demo only).
    governors: str | None = Field(default=None, description="LEDGER_GOVERNORS")
    governance_threshold: int | None = Field(default=None, description="LEDGER_GOVERNANCE_THRESHOLD (M); "
                                             "default: a majority of the governors")
    guardian_threshold: int | None = Field(default=None, description="LEDGER_GUARDIAN_THRESHOLD (k) of the "
                                           "fast-path suspension; default: M")
    governance_delay_s: int | None = Field(default=None, description="LEDGER_GOVERNANCE_DELAY_S, the timelock "
                                           "delay; default 172800 (2 days), 20 on the demo chain")

    # Logs of `ledger up` and `ledger worker` (ledger_api.logs): JSON lines by default; the other
    # commands log plain text for people.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Workers.
    dispatch_batch_size: int = 200
    dispatch_interval_ms: int = 100
    # LEDGER_MAX_INFLIGHT_PER_SIGNER: transactions of one signer in the node's pool at most (sent,
    # not yet mined), so a backlog drains without parking thousands of them in the node.
    max_inflight_per_signer: int = Field(default=128, ge=1, le=5_000)
    receipt_timeout_s: float = 120.0
    follow_interval_ms: int = 250
    follow_block_range_max: int = 2_000
    confirmations: int = 0
    # Webhook deliveries (docs/events.md): "thread" in the process of `ledger up` / `ledger worker`,
    # or "external": `ledger webhooks deliver` runs them in its own process.
    webhook_delivery: Literal["thread", "external"] = "thread"

    @property
    def webhook_delivery_in_process(self) -> bool:
        return self.webhook_delivery == "thread"

    # The web console (/console): a sign-in lasts this long, then the member signs in again.
    console_session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600,
                                       description="LEDGER_CONSOLE_SESSION_TTL_S: a console sign-in lasts this long")
    # Node reads on the request path (role lookups, chain time, ...): past this the roles come from
    # the mirror (Ledger-Mirror-Staleness) or the request fails fast with 503 chain-unavailable.
    request_rpc_timeout_s: float = Field(default=1.0, gt=0, description="LEDGER_REQUEST_RPC_TIMEOUT_S")

    # Readiness (GET /ready, /metrics; docs/operations.md): not ready past these.
    ready_follower_lag_blocks_max: int = Field(default=20, ge=0, description="LEDGER_READY_FOLLOWER_LAG_BLOCKS_MAX")
    ready_outbox_age_s_max: float = Field(default=120.0, gt=0, description="LEDGER_READY_OUTBOX_AGE_S_MAX")

    @cached_property
    def home_dir(self) -> Path:
        """The data dir, created 0700 when missing (an existing one is tightened at start:
        ledger_api.bootstrap.secure_data_dir)."""
        if not self.home.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            os.chmod(self.home, PRIVATE_DIR_MODE)
        return self.home.resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'ledger.db'}"

    @property
    def managed_chain(self) -> bool:
        return not self.rpc_url

    @property
    def effective_rpc_url(self) -> str:
        return self.rpc_url or f"http://{self.anvil_host}:{self.anvil_port}"

    @property
    def hsm_key_kinds(self) -> tuple[str, ...]:
        """Which keys live in the token: none without a module."""
        if self.hsm_module is None:
            return ()
        return tuple(k.strip() for k in self.hsm_keys.split(",") if k.strip())

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"
