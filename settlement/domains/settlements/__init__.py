"""Cross-border settlements between consortium members: the service side of SettlementLedger.

- :mod:`.commands`: create (single, batch), pay (``mark_paid``), cancel, refund, look up;
- :mod:`.cycles`: netting cycles per currency (close, settle, report);
- :mod:`.postings`: the double-entry journal (chart of accounts, postings, balances, statements);
- :mod:`.fx`, :mod:`.netting`: the pure rules (the contract's FX rule; multilateral nets);
- :mod:`.queries`: lists, export, positions; :mod:`.idempotency`: Idempotency-Key records;
- :mod:`.events`: the follower's event handlers and the dispatcher's failure hooks, registered by
  :func:`.wiring.wire`.
"""

from settlement.domains.settlements.commands import (
    BATCH_SIZE_MAX,
    InstructionInput,
    cancel_settlement,
    create_batch,
    create_settlement,
    find_by_payment_ref_hash,
    find_by_payment_reference,
    get_settlement,
    mark_paid,
    operations_of,
    provider_txn_hash,
    reference_hash,
    refund_by_provider,
    refund_settlement,
    refunds_of,
    settlement_struct,
)
from settlement.domains.settlements.cycles import close_cycle, cycle_report, get_cycle, settle_cycle

__all__ = ["BATCH_SIZE_MAX", "InstructionInput", "create_settlement", "create_batch", "mark_paid",
           "cancel_settlement", "refund_settlement", "refund_by_provider", "get_settlement",
           "find_by_payment_reference", "find_by_payment_ref_hash", "provider_txn_hash", "reference_hash",
           "operations_of", "refunds_of", "settlement_struct", "close_cycle", "settle_cycle", "get_cycle",
           "cycle_report"]
