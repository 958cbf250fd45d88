"""The journal record of a provider callback (kind ``callback``): its current version, digested
when the caller's transaction commits and anchored with the journal
(``settlement.domains.anchoring``; the record's fields are in ``anchoring.kinds``).

``row`` is a stored :class:`~settlement.store.models.payments.ProviderCallback` or the writer's
in-memory record of one (same attribute names).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from settlement.domains.anchoring import KINDS, digest_changed

__all__ = ["CALLBACK_DIGEST_KIND", "callback_digest_record", "record_callback_digest"]

CALLBACK_DIGEST_KIND = "callback"


def callback_digest_record(row: Any) -> tuple[str, dict[str, Any]]:
    """(record id, record) of the callback row's current version, as the journal digests it."""
    kind = KINDS[CALLBACK_DIGEST_KIND]
    return kind.record_id(row), kind.project(row)


def record_callback_digest(session: Session, row: Any) -> None:
    """Journal the callback record as it is when the caller's transaction commits."""
    digest_changed(session, CALLBACK_DIGEST_KIND, row)
