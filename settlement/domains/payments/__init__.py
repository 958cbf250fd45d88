"""Payment-provider callbacks: provider accounts, ingestion, matching to settlements.

- :mod:`.accounts`: several accounts per provider; public material in clear, secrets encrypted at
  rest with the KeyVault (``provider:{provider}:{account}`` as associated data);
  :func:`configure_demo_providers` registers the demo accounts from ``demo.json``.
- :mod:`.ingest`: :func:`ingest` / :func:`ingest_async` verify the raw request, record the fact
  once (unique per provider, account and evidence hash) with its effect, then answer in the
  provider's format; :mod:`.record` is the durable write (one transaction per group of
  deliveries, :mod:`.writer` the group-commit thread that runs it).
- :mod:`.matching`: payment -> ``mark_paid`` through the outbox; refund -> ``refund_by_provider``;
  anything that does not fit goes to the reconciliation exceptions queue.

:func:`.wiring.wire` registers the periodic job that applies deferred callbacks and the failure
hooks that turn a callback's effect the chain refused into an exception.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from settlement.core.errors import ChainRevertError
from settlement.domains.payments.accounts import (
    AccountInfo,
    add_account,
    get_account,
    invalidate,
    list_accounts,
    set_status,
    split_config,
    update_account,
    verifier,
)
from settlement.domains.payments.accounts import (
    configure_demo_providers as _configure_demo_providers,
)
from settlement.domains.payments.ingest import CallbackResult, ingest, ingest_async, record_callback_digest
from settlement.domains.payments.matching import (
    APPLIED,
    DEFERRED,
    EXCEPTION,
    NOTED,
    apply_callback,
    apply_deferred,
)
from settlement.domains.reconciliation.exceptions import add_callback_exception
from settlement.runtime import Runtime
from settlement.store.models import OutboxRow
from settlement.store.models.payments import ProviderAccountRow, ProviderCallback
from settlement.store.models.settlements import Settlement

log = logging.getLogger("ledger.callbacks")

__all__ = [
    "APPLIED", "DEFERRED", "EXCEPTION", "NOTED", "AccountInfo", "CallbackResult", "add_account", "apply_callback",
    "apply_deferred", "configure_demo_providers", "get_account", "get_callback", "ingest", "ingest_async", "invalidate",
    "list_accounts", "list_callbacks", "on_effect_refused", "process_deferred", "set_status", "split_config", "update_account",
    "verifier",
]

CALLBACKS_PAGE_MAX = 500
DEFERRED_SWEEP_MAX = 500


def configure_demo_providers(runtime: Runtime, providers: dict, *, owner: str = "operator") -> list[AccountInfo]:
    """Register the demo provider accounts (public halves and service-side secrets only), each
    belonging to its entry's ``owner``, else to ``owner``."""
    return _configure_demo_providers(runtime, providers, owner=owner)


def _on_accounts_of(owner: str) -> ColumnElement[bool]:
    """Callbacks received on the provider accounts of member ``owner``."""
    return exists().where(ProviderAccountRow.provider == ProviderCallback.provider,
                          ProviderAccountRow.account == ProviderCallback.account, ProviderAccountRow.owner == owner)


def list_callbacks(session: Session, *, provider: str | None = None, outcome: str | None = None,
                   settlement_id: str | None = None, owner: str | None = None, provider_txn_id: str | None = None,
                   after_id: int = 0, limit: int = 100) -> tuple[list[ProviderCallback], int | None]:
    """A page of recorded callbacks, oldest first; ``owner`` limits them to those received on
    that member's accounts."""
    limit = max(1, min(int(limit), CALLBACKS_PAGE_MAX))
    q = select(ProviderCallback).where(ProviderCallback.id > after_id)
    if owner is not None:
        q = q.where(_on_accounts_of(owner))
    if provider is not None:
        q = q.where(ProviderCallback.provider == provider)
    if outcome is not None:
        q = q.where(ProviderCallback.outcome == outcome)
    if settlement_id is not None:
        q = q.where(ProviderCallback.settlement_id == settlement_id)
    if provider_txn_id is not None:
        q = q.where(ProviderCallback.provider_txn_id == provider_txn_id)
    rows = list(session.scalars(q.order_by(ProviderCallback.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def get_callback(session: Session, callback_id: int, *, owner: str | None = None) -> ProviderCallback | None:
    """The recorded callback (None if missing, or not received on an account of ``owner`` when given)."""
    if owner is None:
        return session.get(ProviderCallback, callback_id)
    return session.scalar(select(ProviderCallback).where(ProviderCallback.id == callback_id, _on_accounts_of(owner)))


def process_deferred(runtime: Runtime, *, limit: int = DEFERRED_SWEEP_MAX) -> int:
    """Retry every settlement's deferred callbacks (bounded); for a worker loop or an operator
    after a restart. Returns how many left the deferred state."""
    today = datetime.now(timezone.utc).date()
    with runtime.db.read() as session:
        # A settlement whose value date has not come waits without spending attempts.
        ids = list(session.scalars(select(ProviderCallback.settlement_id).join(
            Settlement, Settlement.id == ProviderCallback.settlement_id).where(
            ProviderCallback.outcome == DEFERRED, Settlement.value_date <= today)
            .distinct().limit(limit)))
    moved = 0
    for sid in ids:
        with runtime.db.transaction() as session:
            moved += apply_deferred(runtime, session, sid)
    return moved


# -- chain feedback ------------------------------------------------------------------------------------


def on_effect_refused(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    for cb in session.scalars(select(ProviderCallback).where(ProviderCallback.outbox_id == row.id,
                                                             ProviderCallback.outcome == APPLIED)):
        cb.outcome, cb.outcome_reason = EXCEPTION, "chain_refused"
        cb.outcome_detail = f"the chain refused the effect: {error.error_name or 'reverted'}"[:500]
        add_callback_exception(session, cb, "chain_refused", cb.outcome_detail)
        record_callback_digest(session, cb)
