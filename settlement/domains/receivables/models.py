"""Value objects and constants of the receivables service (the tables are in
``settlement.store.models.receivables``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from settlement.store.models.receivables import (
    AMOUNT_MINOR_MAX_STORE,
    Receivable,
    ReceivableEvent,
    ReceivableEvidence,
    ReceivableOperation,
    ReceivablePart,
    ReceivableParty,
    ReceivablePayment,
)

__all__ = [
    "CONTRACT", "PART_AMOUNT_MIN", "PARTS_PER_RECEIVABLE_MAX", "AMOUNT_MINOR_MAX_STORE", "STATUSES",
    "DISPLAY_STATUSES", "PARTY_ROLES", "OPERATION_KINDS", "Actor", "HistoryEntry", "EvidenceCheck",
    "Receivable", "ReceivablePart", "ReceivableOperation", "ReceivableEvent", "ReceivableParty",
    "ReceivablePayment", "ReceivableEvidence", "display_status",
]

CONTRACT = "ReceivableRegistry"
# Mirrors of the contract's constants (checked against the chain by the tests).
PART_AMOUNT_MIN = 100
PARTS_PER_RECEIVABLE_MAX = 32

# Stored statuses: the contract's (cancelled by the supplier, rejected by the buyer), plus pending
# (registration not mined yet); rejected also when the chain refused the registration (``rejection``
# names the custom error then, "rejected by the buyer" otherwise).
# "repaying": confirmed, the buyer reported its repayment, not every holder confirmed receipt yet.
STATUSES = ("pending", "registered", "confirmed", "repaying", "settled", "defaulted", "cancelled", "rejected")
# What clients see: OVERDUE is derived, never stored.
DISPLAY_STATUSES = STATUSES + ("overdue",)
PARTY_ROLES = ("supplier", "buyer", "holder", "financier")
OPERATION_KINDS = ("register", "cancel", "reject", "confirm", "confirm_signed", "split", "transfer", "request_financing",
                   "withdraw_financing", "offer", "offer_signed", "accept", "accept_signed", "repay", "confirm_receipt",
                   "default", "invalidate_nonce")


@dataclass(frozen=True)
class Actor:
    """Who acts: a member id with its effective roles and status (from the registry, via the API)."""

    member_id: str
    roles: frozenset[str]
    active: bool = True

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def sees_everything(self) -> bool:
        """Operators and auditors may read every receivable (never act on one)."""
        return bool(self.roles & {"operator", "auditor"})


@dataclass(frozen=True)
class HistoryEntry:
    """One contract event of a receivable, with its on-chain reference."""

    event: str
    part_id: str | None
    args: dict
    tx_hash: str
    block_number: int
    log_index: int
    operation_id: int | None


@dataclass(frozen=True)
class EvidenceCheck:
    """A cited proof and whether it verifies: offline (leaf, proof, root) and on chain (the root is
    anchored in this consortium's TraceAnchor, and its ``verify`` accepts the proof). ``anchored``
    is None when the chain could not be asked."""

    evidence: ReceivableEvidence
    offline_verified: bool
    anchored: bool | None
    by_party: bool
    steps: tuple[tuple[str, bool, str], ...]

    @property
    def verified(self) -> bool:
        return self.offline_verified and self.anchored is True


def display_status(status: str, due_date: date, today: date, grace_days: int) -> str:
    """The status a client sees: a confirmed receivable is OVERDUE from due date + grace + 1 day
    (the contract's ``statusOf``)."""
    if status in ("confirmed", "repaying") and (today - due_date).days > grace_days:
        return "overdue"
    return status
