"""Cross-border settlements between consortium members: the service side of SettlementLedger.

- :mod:`.commands`: create (single, batch), look up; :mod:`.transitions`: pay (``mark_paid``,
  attested evidence), the payee's acknowledgement, cancel, refund (payee, or attested provider refund);
- :mod:`.cycles`: netting cycles per currency (close, settle, report);
- :mod:`.postings`: the double-entry journal (chart of accounts, postings, balances, statements);
- :mod:`.fx`, :mod:`.netting`: the pure rules (the contract's FX rule; multilateral nets);
- :mod:`.queries`: lists, export, positions;
- :mod:`.events`: the follower's event handlers and the dispatcher's failure hooks, registered by
  :func:`.wiring.wire`.
"""

from settlement.domains.settlements.commands import (
    BATCH_SIZE_MAX,
    InstructionInput,
    create_batch,
    create_settlement,
    find_by_payment_ref_hash,
    find_by_payment_reference,
    get_settlement,
    operations_of,
    prepare_batch,
    provider_txn_hash,
    reference_hash,
    settlement_struct,
    write_batch,
)
from settlement.domains.settlements.cycles import (
    attest_net_payment,
    close_cycle,
    cycle_report,
    get_cycle,
    net_payments_of,
    party_settlement_ids,
    settle_cycle,
)
from settlement.domains.settlements.fx import rate_to_decimal
from settlement.domains.settlements.postings import STATEMENT_LIMIT_MAX, SYSTEM_OWNER, balances, statement
from settlement.domains.settlements.queries import (
    EXPORT_COLUMNS,
    LIST_LIMIT_MAX,
    SettlementFilter,
    export_rows,
    list_settlements,
    positions,
)
from settlement.domains.settlements.transitions import (
    acknowledge_receipt,
    cancel_settlement,
    mark_paid,
    refund_by_provider,
    refund_settlement,
    refunds_of,
)

__all__ = ["acknowledge_receipt", "attest_net_payment", "net_payments_of", "party_settlement_ids", "BATCH_SIZE_MAX", "EXPORT_COLUMNS", "LIST_LIMIT_MAX", "STATEMENT_LIMIT_MAX", "InstructionInput",
           "SYSTEM_OWNER", "SettlementFilter", "balances", "cancel_settlement", "close_cycle", "create_batch", "create_settlement",
           "cycle_report", "export_rows", "find_by_payment_ref_hash", "find_by_payment_reference", "get_cycle",
           "get_settlement", "list_settlements", "mark_paid", "operations_of", "positions", "prepare_batch",
           "provider_txn_hash", "rate_to_decimal", "reference_hash", "refund_by_provider", "refund_settlement",
           "refunds_of", "settle_cycle", "settlement_struct", "statement", "write_batch"]
