"""Supply-chain finance: receivables registered by suppliers, confirmed by buyers, split, passed
on, financed and repaid, on the ``ReceivableRegistry`` contract.

- :mod:`.commands`: register, cancel, reject, confirm, split, transfer, repay, declare default, cite evidence;
- :mod:`.financing`: financing requests, offers and acceptances;
- :mod:`.typed_data`: EIP-712 typed data for own-key approvals, served and checked;
- :mod:`.queries`: "my receivables", parts, operations, history, payments, evidence checks;
- :mod:`.payments`: disbursements and repayments owed, turned into settlements (a periodic job);
- :mod:`.common`: the chain facts commands decide on (read before the write transaction),
  shared checks; :mod:`.terms`: financing math and invoice identity (pure);
- :mod:`.events`: the follower's event handlers and failure hooks, registered by
  :func:`.wiring.wire`; :mod:`.evidence`: cited provenance proofs;
- :mod:`.models`: value objects and constants (tables: ``settlement.store.models.receivables``).
"""

from settlement.domains.receivables.commands import (
    add_evidence,
    cancel_receivable,
    confirm_receivable,
    confirm_repayment_received,
    confirm_with_signature,
    declare_default,
    invalidate_nonce,
    invoice_identity_of,
    register_receivable,
    reject_receivable,
    repay_receivable,
    split_part,
    transfer_part,
)
from settlement.domains.receivables.common import (
    Accepted,
    ChainFacts,
    forget_chain_time,
    get_receivable,
    rate_ppm_from_decimal,
    read_chain_facts,
    status_for_display,
)
from settlement.domains.receivables.evidence import check_evidence
from settlement.domains.receivables.financing import (
    accept_offer,
    acceptance_typed_data,
    offer_financing,
    offer_typed_data,
    request_financing,
    withdraw_financing_request,
)
from settlement.domains.receivables.models import Actor, EvidenceCheck, HistoryEntry, display_status
from settlement.domains.receivables.payments import instruct_payments
from settlement.domains.receivables.queries import (
    evidence_of,
    history_of,
    list_receivables,
    operations_of,
    pending_operations_of,
    parts_of,
    payments_of,
)
from settlement.domains.receivables.terms import DayCountBasis, FinancingTerms
from settlement.domains.receivables.typed_data import confirmation_typed_data, nonce_key, typed_data_digest

__all__ = ["check_evidence", "Actor", "Accepted", "ChainFacts", "DayCountBasis", "FinancingTerms", "EvidenceCheck", "HistoryEntry", "display_status",
           "read_chain_facts", "forget_chain_time", "invoice_identity_of", "register_receivable",
           "cancel_receivable", "reject_receivable", "confirm_receivable",
           "confirmation_typed_data", "confirm_with_signature", "split_part", "transfer_part", "request_financing",
           "withdraw_financing_request", "offer_financing", "offer_typed_data", "acceptance_typed_data", "accept_offer",
           "repay_receivable", "confirm_repayment_received", "declare_default", "add_evidence", "evidence_of", "get_receivable",
           "list_receivables", "parts_of", "operations_of", "pending_operations_of", "history_of", "payments_of", "instruct_payments",
           "status_for_display", "rate_ppm_from_decimal", "nonce_key", "typed_data_digest", "invalidate_nonce"]
