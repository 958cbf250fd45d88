"""Provider accounts: several per provider, verification material in the store, secrets encrypted.

An account's configuration is split in two: ``public_config`` (app id, the provider's platform
public keys or certificates, merchant id) kept in clear, and the symmetric secrets (WeChat Pay's
APIv3 key, Stripe webhook secrets) kept as one KeyVault blob (AES-256-GCM under the service's
key-encryption key) whose associated data is ``provider:{provider}:{account}``. Private keys are
refused: the service only verifies, it never plays the provider.

Every account belongs to one member (``owner``, the operator's by default): the exceptions of
callbacks received on it go to that member's queue, and that member's reconciliation runs see the
payments received on it. The operator administers accounts; an owner reads its own.

Verifiers (:class:`~settlement.providers.ProviderAccount`) are cached per database for
:data:`ACCOUNT_CACHE_TTL_S`, so a callback does not read and decrypt its account every time; a
change made through this module drops the entry at once, one made by another process is seen
after the TTL.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    ConfigurationError,
    LedgerError,
    ProviderAccountExistsError,
    ProviderAccountInvalidError,
    UnknownMemberError,
    UnknownProviderAccountError,
    UnknownProviderError,
)
from settlement.domains.anchoring import digest_changed
from settlement.providers import PROVIDERS, ProviderAccount, account_from_config
from settlement.runtime import Runtime
from settlement.store.db import Database
from settlement.store.models import Member
from settlement.store.models.payments import ProviderAccountRow
from settlement.store.per_database import per_database

__all__ = [
    "ACCOUNT_CACHE_TTL_S", "ACCOUNT_NAME_RE", "AccountInfo", "add_account", "update_account", "set_status",
    "get_account", "list_accounts", "verifier", "cached_verifier", "invalidate", "split_config",
    "configure_demo_providers",
]

ACCOUNT_CACHE_TTL_S = 5.0
DEFAULT_OWNER = "operator"  # the service's own member: accounts nobody was given
ACCOUNTS_LIST_MAX = 1_000
ACCOUNT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONFIG_VALUE_CHARS_MAX = 16 * 1024
PLATFORM_KEYS_MAX = 8
WEBHOOK_SECRETS_MAX = 4
STATUSES = ("active", "disabled")

# Which configuration keys each provider reads, and which of them are secrets.
_PUBLIC_KEYS = {
    "alipay": ("app_id", "alipay_public_key_pem", "seller_id"),
    "wechatpay": ("mchid", "appid", "platform_keys"),
    "stripe": (),
}
_SECRET_KEYS = {"alipay": (), "wechatpay": ("apiv3_key",), "stripe": ("webhook_secrets",)}


def _aad(provider: str, account: str) -> str:
    return f"provider:{provider}:{account}"


@dataclass(frozen=True)
class AccountInfo:
    """What may be shown about an account: public material and the NAMES of its secrets."""

    id: int
    provider: str
    account: str
    owner: str
    status: str
    public_config: dict[str, Any]
    secret_names: tuple[str, ...]
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


def _check_names(provider: str, account: str) -> None:
    if provider not in PROVIDERS:
        raise UnknownProviderError(f"unknown provider {str(provider)[:32]!r}", allowed=list(PROVIDERS))
    if not isinstance(account, str) or not ACCOUNT_NAME_RE.match(account):
        raise ProviderAccountInvalidError("account must be 1-64 letters, digits or . _ - (starting with a letter "
                                          "or digit)", field="account")


def _refuse_private_material(config: Mapping[str, Any]) -> None:
    for key, value in config.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        if "PRIVATE KEY" in text or key.startswith("platform_private"):
            raise ProviderAccountInvalidError(
                "the service holds only the provider's public keys: remove the private key "
                f"({str(key)[:40]!r})", field=str(key)[:40])
        if len(text) > CONFIG_VALUE_CHARS_MAX:
            raise ProviderAccountInvalidError(f"{str(key)[:40]!r} is longer than {CONFIG_VALUE_CHARS_MAX} characters",
                                              field=str(key)[:40])


def split_config(provider: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Normalize a config mapping (``demo.json`` shape or the stored shape) into (public, secrets).
    Unknown keys and the ``platform_*`` private halves are dropped; a private key elsewhere is
    refused."""
    cfg = {k: v for k, v in config.items() if k not in ("account", "platform_private_key_pem")}
    _refuse_private_material(cfg)
    if provider == "alipay":
        public = {"app_id": cfg.get("app_id"),
                  "alipay_public_key_pem": cfg.get("alipay_public_key_pem") or cfg.get("platform_public_key_pem")}
        if cfg.get("seller_id"):
            public["seller_id"] = cfg["seller_id"]
        secrets: dict[str, Any] = {}
    elif provider == "wechatpay":
        keys = cfg.get("platform_keys")
        if not keys and cfg.get("platform_serial") and cfg.get("platform_certificate_pem"):
            keys = {cfg["platform_serial"]: cfg["platform_certificate_pem"]}
        public = {"mchid": cfg.get("mchid"), "platform_keys": dict(keys or {})}
        if cfg.get("appid"):
            public["appid"] = cfg["appid"]
        secrets = {"apiv3_key": cfg.get("apiv3_key")}
        if len(public["platform_keys"]) > PLATFORM_KEYS_MAX:
            raise ProviderAccountInvalidError(f"at most {PLATFORM_KEYS_MAX} platform keys", field="platform_keys")
    else:
        webhook = cfg.get("webhook_secrets") or ([cfg["webhook_secret"]] if cfg.get("webhook_secret") else [])
        if not isinstance(webhook, (list, tuple)) or len(webhook) > WEBHOOK_SECRETS_MAX:
            raise ProviderAccountInvalidError(f"webhook_secrets must be a list of 1..{WEBHOOK_SECRETS_MAX}",
                                              field="webhook_secrets")
        public, secrets = {}, {"webhook_secrets": list(webhook)}
    missing = [k for k, v in {**public, **secrets}.items() if v in (None, "", [], {})]
    if missing:
        raise ProviderAccountInvalidError(f"{provider} account needs {', '.join(missing)}", field=missing[0])
    return public, secrets


def _build(provider: str, account: str, public: Mapping[str, Any], secrets: Mapping[str, Any]) -> ProviderAccount:
    try:
        return account_from_config(provider, account, {**public, **secrets})
    except ConfigurationError as exc:
        raise ProviderAccountInvalidError(exc.detail) from None
    except (TypeError, ValueError) as exc:
        raise ProviderAccountInvalidError(f"{provider} account material is not usable ({type(exc).__name__})") from None


def _info(row: ProviderAccountRow) -> AccountInfo:
    return AccountInfo(id=row.id, provider=row.provider, account=row.account, owner=row.owner, status=row.status,
                       public_config=dict(row.public_config), secret_names=_SECRET_KEYS[row.provider],
                       version=row.version, created_by=row.created_by, created_at=row.created_at,
                       updated_at=row.updated_at)


def _encrypt(runtime: Runtime, provider: str, account: str, secrets: Mapping[str, Any]) -> bytes | None:
    if not secrets:
        return None
    plain = json.dumps(dict(secrets), sort_keys=True, separators=(",", ":")).encode("utf-8")
    return runtime.vault.encrypt(_aad(provider, account), plain)


def _decrypt(runtime: Runtime, row: ProviderAccountRow) -> dict[str, Any]:
    if row.encrypted_secrets is None:
        return {}
    return json.loads(runtime.vault.decrypt(_aad(row.provider, row.account), row.encrypted_secrets))


def _row(session: Session, provider: str, account: str, *, for_update: bool = False) -> ProviderAccountRow | None:
    q = select(ProviderAccountRow).where(ProviderAccountRow.provider == provider, ProviderAccountRow.account == account)
    if for_update:
        q = q.with_for_update()
    return session.scalar(q)


def _check_owner(session: Session, owner: str) -> str:
    # The operator's member is made by every start (ledger_api.demo.ensure_operator_member); a
    # store without it yet (a bare test store) may still hold the operator's accounts.
    if owner == DEFAULT_OWNER:
        return owner
    if not isinstance(owner, str) or session.get(Member, owner) is None:
        raise UnknownMemberError(f"no member {str(owner)[:64]!r} to own the account", member_id=str(owner)[:64])
    return owner


def add_account(runtime: Runtime, session: Session, provider: str, account: str, config: Mapping[str, Any], *,
                owner: str = DEFAULT_OWNER, created_by: str = "operator") -> AccountInfo:
    """Register a provider account of member ``owner``; its secrets are encrypted before they
    reach the store. Raises ProviderAccountExistsError, ProviderAccountInvalidError,
    UnknownProviderError, UnknownMemberError."""
    _check_names(provider, account)
    _check_owner(session, owner)
    public, secrets = split_config(provider, config)
    _build(provider, account, public, secrets)  # refuse material that cannot verify anything
    if _row(session, provider, account) is not None:
        raise ProviderAccountExistsError(f"{provider} account {account!r} exists", provider=provider, account=account)
    row = ProviderAccountRow(provider=provider, account=account, owner=owner, status="active", public_config=public,
                             encrypted_secrets=_encrypt(runtime, provider, account, secrets), version=1,
                             created_by=created_by[:64])
    session.add(row)
    session.flush()
    digest_changed(session, "provider.account", row)
    invalidate(runtime.db, provider, account)
    return _info(row)


def update_account(runtime: Runtime, session: Session, provider: str, account: str,
                   config: Mapping[str, Any], *, owner: str | None = None) -> AccountInfo:
    """Replace an account's material (key rotation: list both the old and the new platform key or
    webhook secret while the provider rolls over), and give it to member ``owner`` if set (what
    arrives on it from then on is that member's; earlier exceptions stay where they are)."""
    _check_names(provider, account)
    row = _row(session, provider, account, for_update=True)
    if row is None:
        raise UnknownProviderAccountError(f"no {provider} account {account!r}", provider=provider, account=account)
    public, secrets = split_config(provider, config)
    _build(provider, account, public, secrets)
    new_owner = _check_owner(session, owner) if owner is not None else row.owner
    if row.public_config == public and _decrypt(runtime, row) == secrets and row.owner == new_owner:
        return _info(row)  # nothing changed: no new version
    row.owner = new_owner
    row.public_config, row.encrypted_secrets = public, _encrypt(runtime, provider, account, secrets)
    row.version += 1
    session.flush()
    digest_changed(session, "provider.account", row)
    invalidate(runtime.db, provider, account)
    return _info(row)


def set_status(runtime: Runtime, session: Session, provider: str, account: str, status: str) -> AccountInfo:
    """Disable (callbacks refused as for an unknown account) or re-activate an account."""
    if status not in STATUSES:
        raise ProviderAccountInvalidError(f"status must be one of {', '.join(STATUSES)}", field="status")
    _check_names(provider, account)
    row = _row(session, provider, account, for_update=True)
    if row is None:
        raise UnknownProviderAccountError(f"no {provider} account {account!r}", provider=provider, account=account)
    if row.status != status:
        row.status = status
        row.version += 1
        session.flush()
    digest_changed(session, "provider.account", row)
    invalidate(runtime.db, provider, account)
    return _info(row)


def get_account(session: Session, provider: str, account: str, *, owner: str | None = None) -> AccountInfo:
    """The account, if ``owner`` may see it (``None``: any member's); otherwise not found."""
    _check_names(provider, account)
    row = _row(session, provider, account)
    if row is None or (owner is not None and row.owner != owner):
        raise UnknownProviderAccountError(f"no {provider} account {account!r}", provider=provider, account=account)
    return _info(row)


def list_accounts(session: Session, provider: str | None = None, *, owner: str | None = None) -> list[AccountInfo]:
    """Accounts, of one provider and of one owner when given."""
    q = select(ProviderAccountRow).order_by(ProviderAccountRow.provider, ProviderAccountRow.account)
    if provider is not None:
        q = q.where(ProviderAccountRow.provider == provider)
    if owner is not None:
        q = q.where(ProviderAccountRow.owner == owner)
    return [_info(r) for r in session.scalars(q.limit(ACCOUNTS_LIST_MAX))]


# -- verifier cache ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    checked_at: float  # time.monotonic() of the store read
    material: ProviderAccount | None  # None: no active account (or unusable material)
    stamp: tuple[int, int] | None  # (row id, version) the material was built from


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str], _Entry] = {}


_cache = per_database(_Cache)


def invalidate(db: Database, provider: str | None = None, account: str | None = None) -> None:
    cache = _cache(db)
    with cache.lock:
        if provider is None:
            cache.entries.clear()
        else:
            cache.entries.pop((provider, account or ""), None)


def _material(hit: _Entry, provider: str, account: str) -> ProviderAccount:
    if hit.material is None:
        raise UnknownProviderAccountError(f"no active {provider} account {str(account)[:64]!r}")
    return hit.material


def cached_verifier(runtime: Runtime, provider: str, account: str, *,
                    ttl_s: float = ACCOUNT_CACHE_TTL_S) -> ProviderAccount | None:
    """:func:`verifier` when the cache can answer without the store (for an event loop, which
    must not wait for a database); None when the store must be read (call :func:`verifier` in a
    worker thread then). Raises UnknownProviderError, UnknownProviderAccountError."""
    if provider not in PROVIDERS:
        raise UnknownProviderError(f"unknown provider {str(provider)[:32]!r}", allowed=list(PROVIDERS))
    cache = _cache(runtime.db)
    with cache.lock:
        hit = cache.entries.get((provider, account))
    if hit is None or time.monotonic() - hit.checked_at > ttl_s:
        return None
    return _material(hit, provider, account)


def verifier(runtime: Runtime, provider: str, account: str, *, ttl_s: float = ACCOUNT_CACHE_TTL_S) -> ProviderAccount:
    """The verification material of an ACTIVE account (cached). Raises UnknownProviderAccountError
    for an unknown or disabled account (unknown ones are remembered for the TTL too, so a flood of
    requests for made-up accounts costs no store reads). When the TTL has passed, the account row is
    read again, but its secrets are decrypted and its keys parsed again only if its version changed."""
    if provider not in PROVIDERS:
        raise UnknownProviderError(f"unknown provider {str(provider)[:32]!r}", allowed=list(PROVIDERS))
    key = (provider, account)
    cache = _cache(runtime.db)
    now = time.monotonic()
    with cache.lock:
        hit = cache.entries.get(key)
    if hit is None or now - hit.checked_at > ttl_s:
        material: ProviderAccount | None = None
        stamp: tuple[int, int] | None = None
        if isinstance(account, str) and ACCOUNT_NAME_RE.match(account):
            with runtime.db.read() as session:
                row = _row(session, provider, account)
                if row is not None and row.status == "active":
                    stamp = (row.id, row.version)
                    if hit is not None and hit.stamp == stamp and hit.material is not None:
                        material = hit.material  # the same version: no decryption, no key parsing
                    else:
                        try:
                            material = _build(provider, account, row.public_config, _decrypt(runtime, row))
                        except LedgerError:
                            material, stamp = None, None  # unusable material is treated as no account
        hit = _Entry(now, material, stamp)
        with cache.lock:
            cache.entries[key] = hit
    return _material(hit, provider, account)


# -- demo -----------------------------------------------------------------------------------------------


def configure_demo_providers(runtime: Runtime, providers: Mapping[str, Mapping[str, Any]], *,
                             owner: str = DEFAULT_OWNER) -> list[AccountInfo]:
    """Register (or refresh) the demo accounts from ``demo.json``'s ``providers`` section: only
    the public halves and the service-side secrets are stored; the ``platform_*`` private keys
    stay in demo.json for test clients. Each account belongs to its entry's ``owner`` (a member
    id), else to ``owner``. Idempotent."""
    done = []
    for provider, creds in providers.items():
        if provider not in PROVIDERS or not isinstance(creds, Mapping):
            continue
        account = str(creds.get("account") or f"{provider}-demo")
        account_owner = str(creds.get("owner") or owner)
        config = {k: v for k, v in creds.items() if k != "owner"}
        with runtime.db.transaction() as session:
            if _row(session, provider, account) is None:
                done.append(add_account(runtime, session, provider, account, config, owner=account_owner,
                                        created_by="demo"))
            else:
                done.append(update_account(runtime, session, provider, account, config, owner=account_owner))
    return done
