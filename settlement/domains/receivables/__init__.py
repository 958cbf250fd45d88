"""Supply-chain finance: receivables registered by suppliers, confirmed by buyers, split, passed
on, financed and repaid, on the ``ReceivableRegistry`` contract.

- :mod:`.service`: the commands (register, confirm, split, transfer, financing, repay, default,
  evidence) and queries ("my receivables", parts, history, payments);
- :mod:`.chain`: the follower's event handlers and the dispatcher's failure hooks;
- :mod:`.approvals`: EIP-712 typed data for own-key approvals; :mod:`.evidence`: cited proofs;
- :mod:`.models`: value objects and constants (tables: ``settlement.store.models.receivables``).

Importing this package registers the event handlers and failure hooks.
"""

from settlement.domains.receivables import events as _chain
from settlement.domains.receivables.models import Actor, EvidenceCheck, HistoryEntry, display_status
from settlement.domains.receivables.service import (
    Accepted, accept_offer, acceptance_typed_data, add_evidence, chain_today, confirm_receivable,
    confirm_with_signature, confirmation_typed_data, declare_default, evidence_of, get_receivable, history_of,
    instruct_payments, list_receivables, offer_financing, operations_of, parts_of, payments_of, rate_ppm_from_decimal,
    register_receivable, repay_receivable, request_financing, split_part, status_for_display, transfer_part,
    withdraw_financing_request,
)

_chain.register()

__all__ = ["Actor", "Accepted", "EvidenceCheck", "HistoryEntry", "display_status", "register_receivable",
           "confirm_receivable", "confirmation_typed_data", "confirm_with_signature", "split_part", "transfer_part",
           "request_financing", "withdraw_financing_request", "offer_financing", "acceptance_typed_data",
           "accept_offer", "repay_receivable", "declare_default", "add_evidence", "evidence_of", "get_receivable",
           "list_receivables", "parts_of", "operations_of", "history_of", "payments_of", "instruct_payments",
           "chain_today", "status_for_display", "rate_ppm_from_decimal"]
