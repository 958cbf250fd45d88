"""The event catalogue: every event type a member can receive, what it means, what it carries.

An event is one fact about one object (a settlement, a cycle, a receivable, ...), written in the
database transaction of the change it describes. Its envelope is the same for every type
(docs/events.md); ``data`` holds the object's id, its state after the change, the chain
transaction hash and block where there is one, and the object's public fields (``object``).

The payload of each type is versioned by :data:`PAYLOAD_VERSION` (in every envelope): fields are
only ever added within a version; a rename or removal is a new version.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "EVENT_TYPES", "OBJECT_TYPES", "PAYLOAD_VERSION", "EventType", "check_types"]

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class EventType:
    name: str
    object_type: str
    description: str


_TYPES = (
    # settlements
    ("settlement.recorded", "settlement", "accepted by the ledger (state instructed); its recording goes on chain"),
    ("settlement.confirmed", "settlement", "its recording is confirmed on chain (tx_hash, block_number)"),
    ("settlement.paid", "settlement", "the payment was applied (state paid)"),
    ("settlement.in_cycle", "settlement", "taken into a netting cycle (state in_cycle)"),
    ("settlement.released", "settlement", "out of its netting cycle (cancelled or refused): back to paid"),
    ("settlement.settled", "settlement", "settled net in its cycle (state settled)"),
    ("settlement.cancelled", "settlement", "cancelled before payment (state cancelled)"),
    ("settlement.refunded", "settlement", "refunded in part (state unchanged) or in full (state refunded)"),
    ("settlement.acknowledged", "settlement", "the payee acknowledged receipt of the payment (state unchanged)"),
    ("settlement.failed", "settlement", "the chain refused its recording (state rejected)"),
    ("settlement.reverted", "settlement", "the chain refused a pending change; back to the previous state"),
    # netting cycles
    ("netting_cycle.submitted", "netting_cycle", "a cycle including the member's settlements was submitted"),
    ("netting_cycle.payment_attested", "netting_cycle", "the member's payment of its net into the cycle was "
     "attested on chain (to that member and the operator only)"),
    ("netting_cycle.settled", "netting_cycle", "the cycle settled"),
    ("netting_cycle.cancelled", "netting_cycle", "the cycle was cancelled (its settlements are paid again)"),
    ("netting_cycle.failed", "netting_cycle", "the chain refused the cycle (state rejected)"),
    # receivables
    ("receivable.registered", "receivable", "registered on chain (status registered)"),
    ("receivable.confirmed", "receivable", "confirmed by the buyer (status confirmed)"),
    ("receivable.rejected", "receivable", "its registration was refused, by the chain or by its buyer before "
     "confirmation (status rejected)"),
    ("receivable.cancelled", "receivable", "withdrawn by its supplier before confirmation (status cancelled)"),
    ("receivable.split", "receivable", "a part was split into more parts (part_count grew)"),
    ("receivable.transferred", "receivable", "a part changed holder"),
    ("receivable.overdue", "receivable", "confirmed and past its due date, not repaid"),
    ("receivable.defaulted", "receivable", "declared defaulted (status defaulted)"),
    ("receivable.repayment_reported", "receivable", "the buyer reported its repayment (status repaying): each "
     "holder now confirms receipt of its part"),
    ("receivable.part_repaid", "receivable", "a holder confirmed it received the repayment of its part"),
    ("receivable.repaid", "receivable", "every part's repayment was received (status settled)"),
    # financing
    ("financing.requested", "receivable", "the holder of a part asked for financing"),
    ("financing.withdrawn", "receivable", "the holder withdrew its request for financing of a part"),
    ("financing.offered", "receivable", "a financier offered financing for a part"),
    ("financing.accepted", "receivable", "the holder accepted an offer: the part is financed"),
    # payments and reconciliation
    ("payment.received", "payment", "a provider's payment notification was applied to a settlement"),
    ("reconciliation.run_completed", "reconciliation_run", "a reconciliation run finished"),
    ("reconciliation.exception_opened", "reconciliation_exception", "an exception entered the member's queue"),
    ("reconciliation.exception_resolved", "reconciliation_exception", "an exception was resolved"),
    # anchoring
    ("anchor.anchored", "anchor_batch", "a batch holding the member's provenance events is anchored on chain"),
    # the member itself
    ("member.onboarded", "member", "the member was onboarded"),
    ("member.suspended", "member", "the member was suspended"),
    ("member.reactivated", "member", "the member was reinstated"),
    ("member.roles_changed", "member", "the member's roles changed"),
    ("member.country_changed", "member", "the member's country changed"),
    ("member.key_added", "member", "an on-chain account was added to the member"),
    ("member.key_removed", "member", "an on-chain account was removed from the member"),
    ("member.api_key_created", "member", "an API key was issued to the member"),
    ("member.api_key_revoked", "member", "an API key of the member was revoked"),
    # governance actions (docs/governance.md): to the member the action concerns, the governors'
    # members and the operator
    ("governance.proposed", "governance_proposal", "a governance action was proposed (status proposed)"),
    ("governance.approved", "governance_proposal", "a governor approved the proposal (each approval; status "
     "unchanged)"),
    ("governance.scheduled", "governance_proposal", "approved by enough governors and scheduled on the timelock: "
     "executable after the governance delay (status scheduled)"),
    ("governance.executed", "governance_proposal", "the action was executed on chain (status executed)"),
    ("governance.cancelled", "governance_proposal", "cancelled by the governors during the delay (status "
     "cancelled)"),
    ("governance.stale", "governance_proposal", "will never execute: its Safe nonce was used by another "
     "transaction, e.g. a rejection (status stale)"),
    ("governance.failed", "governance_proposal", "the chain refused its execution (status failed)"),
    # webhooks
    ("webhook_endpoint.disabled", "webhook_endpoint", "one of the member's webhook endpoints kept failing and "
     "was disabled"),
)

CATALOGUE: dict[str, EventType] = {name: EventType(name, obj, desc) for name, obj, desc in _TYPES}
EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)
OBJECT_TYPES: frozenset[str] = frozenset(t.object_type for t in CATALOGUE.values())


def check_types(types: list[str]) -> list[str]:
    """The filter as given, each a catalogued type or a family wildcard (``settlement.*``)."""
    families = {name.split(".")[0] for name in EVENT_TYPES}
    out = []
    for t in types:
        if t in CATALOGUE or (t.endswith(".*") and t[:-2] in families):
            out.append(t)
        else:
            raise ValueError(t)
    return sorted(set(out))
