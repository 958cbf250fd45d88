"""The journal record of a provider callback: its current version, digested in the caller's
transaction and anchored with the journal (``settlement.domains.anchoring``).

``row`` is a stored :class:`~settlement.store.models.payments.ProviderCallback` or the writer's
in-memory record of one (same attribute names).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from settlement.domains.anchoring import record_digest

__all__ = ["CALLBACK_DIGEST_KIND", "callback_digest_record", "record_callback_digest"]

CALLBACK_DIGEST_KIND = "callback"


def callback_digest_record(row: Any) -> tuple[str, dict[str, Any]]:
    """(record id, record) of the callback row's current version, as the journal digests it."""
    return f"{row.provider}:{row.account}:{row.id}", {
        "id": row.id, "provider": row.provider, "account": row.account, "evidence_hash": row.evidence_hash,
        "kind": row.kind, "provider_status": row.provider_status, "succeeded": row.succeeded,
        "provider_txn_id": row.provider_txn_id, "merchant_reference": row.merchant_reference,
        "refund_reference": row.refund_reference, "provider_refund_id": row.provider_refund_id,
        "amount_minor": None if row.amount_minor is None else str(row.amount_minor), "currency": row.currency,
        "amount_is_cumulative": row.amount_is_cumulative, "notification_id": row.notification_id,
        "body_sha256": row.body_sha256, "occurred_at": row.occurred_at.isoformat(),
        "outcome": row.outcome, "outcome_reason": row.outcome_reason, "settlement_id": row.settlement_id,
    }


def record_callback_digest(session: Session, row: Any) -> None:
    """Journal the callback record's current version (anchored with the journal)."""
    record_id, record = callback_digest_record(row)
    record_digest(session, CALLBACK_DIGEST_KIND, record_id, record)
