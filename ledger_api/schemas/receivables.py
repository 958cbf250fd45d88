"""Request and response bodies of ``/v1/receivables``: every string bounded, never an ORM row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ledger_api.schemas.common import In, Money, Out, Page

MemberIdField = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
Hex32 = Field(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")
ReceivableStatus = Literal["pending", "registered", "confirmed", "repaying", "overdue", "settled", "defaulted",
                           "cancelled", "rejected"]
DayCount = Literal["ACT/360", "ACT/365"]


# -- requests --------------------------------------------------------------------------------------


class ReceivableCreate(In):
    buyer_id: str = MemberIdField
    invoice_number: str = Field(min_length=1, max_length=200,
                                description="put in the contract's canonical form (NFKC, upper case, A-Z 0-9 and the "
                                            "separators - / . with whitespace and runs of separators collapsed); "
                                            "the invoice's identity is the buyer and its letters and digits")
    face_value: Money
    issue_date: date
    due_date: date


ApprovalSignatureField = Field(min_length=4, max_length=2 + 4096 * 2, pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
                               description="EIP-712 signature of a key (65 bytes), or what a contract "
                                           "wallet's ERC-1271 isValidSignature takes (a Safe: its owners' "
                                           "signatures)")
SignerField = Field(default=None, min_length=42, max_length=42, pattern=r"^0x[0-9a-fA-F]{40}$",
                    description="the approving account; required for a contract wallet (ERC-1271), "
                                "else recovered from the signature")


class SignedConfirmation(In):
    signature: str = ApprovalSignatureField
    deadline: int = Field(ge=0, le=2**63 - 1, description="unix seconds, as in the signed typed data")
    signer: str | None = SignerField


class NonceInvalidation(In):
    nonce: str = Field(min_length=3, max_length=66, pattern=r"^0x[0-9a-fA-F]{1,64}$",
                       description="key << 64 | sequence, as in the typed data: every unused approval of that "
                                   "key up to that sequence is void")


class NonceInvalidationAccepted(Out):
    member_id: str = Field(max_length=64)
    nonce: str = Field(max_length=66)
    outbox_id: int
    status: str = Field(max_length=16)


class SplitRequest(In):
    amounts: list[Money] = Field(min_length=2, max_length=32,
                                     description="the part keeps the first; each further amount is a new part")


class TransferRequest(In):
    to_member_id: str = MemberIdField
    amount: Money | None = Field(default=None, description="omit for the whole part; less splits it first")


class FinancingRequestCreate(In):
    financier_id: str = MemberIdField


class OfferCreate(In):
    discount_rate: str = Field(min_length=1, max_length=20, pattern=r"^[0-9]+(\.[0-9]+)?$",
                               description="yearly rate as a decimal string, 0.045 = 4.5 %")
    day_count: DayCount
    fee: Money
    valid_until: datetime
    signature: str | None = Field(default=None, min_length=4, max_length=2 + 4096 * 2,
                                  pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
                                  description="own approval of the FinancingOffer typed data (offer-typed-data); "
                                              "omit to offer custodially")
    deadline: int | None = Field(default=None, ge=0, le=2**63 - 1)
    signer: str | None = SignerField


class AcceptanceCreate(In):
    offer_id: str = Field(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$",
                          description="the part's current offer: the `id` of the offer's create answer, "
                                      "`parts[].offer.offer_id`",
                          examples=["0x5c4f0d7b0a1e6c2f3b9d8e7a6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39"])
    signature: str | None = Field(default=None, min_length=4, max_length=2 + 4096 * 2,
                                  pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
                                  description="own approval of the AcceptFinancingOffer typed data; omit to accept "
                                              "custodially")
    deadline: int | None = Field(default=None, ge=0, le=2**63 - 1)
    signer: str | None = SignerField


class EvidenceCreate(In):
    label: str = Field(default="", max_length=200)
    document: dict[str, Any] = Field(description="a ledger-anchor-proof-v1 proof document")


# -- responses -------------------------------------------------------------------------------------


class ReceivableOperationPublic(Out):
    id: int
    kind: str = Field(max_length=32)
    part_id: str | None = Field(default=None, max_length=66)
    requested_by: str = Field(max_length=64)
    status: Literal["pending", "confirmed", "rejected"]
    error_name: str | None = Field(default=None, max_length=100)
    error_args: dict[str, Any] | None = None
    outbox_id: int
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = None
    created_at: datetime
    offer_id: str | None = Field(default=None, max_length=66,
                                 description="an offer operation's offer id (assigned before it is sent)")
    new_part_ids: list[str] = Field(
        default_factory=list, max_length=32,
        description="a split's new parts, in order (their ids are assigned before it is sent: they appear in "
                    "`parts` once the chain confirms it); empty for other operations")
    to_member_id: str | None = Field(default=None, max_length=64,
                                     description="a transfer's recipient (the part it moves is `part_id`)")


class OfferPublic(Out):
    offer_id: str = Field(max_length=66, description="the offer's id (0x-hex bytes32), as its create answer gave it",
                          examples=["0x5c4f0d7b0a1e6c2f3b9d8e7a6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39"])
    financier_id: str | None = Field(default=None, max_length=64)
    advance: Money
    fee: Money
    discount_rate_ppm: int
    day_count: DayCount
    valid_until: datetime = Field(description="RFC 3339 UTC, as it was offered")


class PartPublic(Out):
    id: str = Field(max_length=66)
    index: int
    holder_id: str | None = Field(default=None, max_length=64)
    holder_onchain_id: str = Field(max_length=66)
    amount: Money
    financed: bool
    financing_requested_from: str | None = Field(default=None, max_length=64)
    offer: OfferPublic | None = None
    sold_by: str | None = Field(default=None, max_length=64)
    repaid: Money | None = None


class ReceivablePublic(Out):
    id: str = Field(max_length=66)
    supplier_id: str = Field(max_length=64)
    buyer_id: str = Field(max_length=64)
    invoice_number: str = Field(max_length=200)
    invoice_number_normalized: str = Field(max_length=200)
    invoice_hash: str = Field(max_length=66, description="the contract's invoiceNumberHash: keccak256 of the "
                              "number's letters and digits")
    face_value: Money
    issue_date: date
    due_date: date
    overdue_from: date
    status: ReceivableStatus
    stored_status: str = Field(max_length=16)
    confirmation: str | None = Field(default=None, max_length=16)
    confirmed_by: str | None = Field(default=None, max_length=42)
    rejection: str | None = Field(default=None, max_length=100)
    financed: Money
    parts: list[PartPublic] = Field(max_length=32)
    pending_operation_id: int | None = None
    pending_operations: list[ReceivableOperationPublic] = Field(
        default_factory=list, max_length=200,
        description="its chain operations not yet confirmed or rejected (the registration's, while it is pending)")
    created_at: datetime


class ReceivablesPublic(Page):
    """A page of receivables, by id, in the one list envelope (docs/api.md)."""

    data: list[ReceivablePublic]
    count: int = Field(description="receivables on this page")


class TermsPublic(Out):
    face: Money
    discount: Money
    fee: Money
    advance: Money
    days: int
    rate_ppm: int
    day_count: DayCount
    rounding: str = Field(max_length=16)


class ReceivableAccepted(Out):
    """A command on an existing receivable or part, written and enqueued (202); each operation
    tracks its call to the chain. The creates (register, split, transfer, offers) answer 201 with
    their object instead (docs/api.md)."""

    receivable: ReceivablePublic
    operations: list[ReceivableOperationPublic]
    terms: TermsPublic | None = None


class FinancingOfferPublic(Out):
    """A financing offer, as its create answers it: its id is assigned by the service before the
    transaction (the registry keys offers by it and refuses a reused one), so the same id is in the
    ``financing.offered`` event, in ``parts[].offer.offer_id`` once confirmed, and is what an
    acceptance names."""

    id: str = Field(min_length=66, max_length=66, description="the offer's id (0x-hex bytes32)",
                    examples=["0x5c4f0d7b0a1e6c2f3b9d8e7a6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39"])
    receivable_id: str = Field(max_length=66)
    part_id: str = Field(max_length=66)
    financier_id: str = Field(max_length=64)
    status: Literal["pending"] = Field(description="pending until the chain confirms the offer; then it is the "
                                                   "part's current offer (`parts[].offer`)")
    terms: TermsPublic
    valid_until: datetime = Field(description="RFC 3339 UTC, as it was offered")
    signer: str | None = Field(default=None, max_length=42, description="the approving account of a signed offer")
    pending_operations: list[ReceivableOperationPublic] = Field(max_length=1,
                                                                description="the offer's chain operation")


class HistoryEventPublic(Out):
    event: str = Field(max_length=64)
    part_id: str | None = Field(default=None, max_length=66)
    args: dict[str, Any]
    tx_hash: str = Field(max_length=66)
    block_number: int
    log_index: int
    operation_id: int | None = None


class HistoryPublic(Out):
    receivable_id: str = Field(max_length=66)
    events: list[HistoryEventPublic]
    operations: list[ReceivableOperationPublic]


class PaymentPublic(Out):
    id: int
    kind: Literal["disbursement", "repayment"]
    part_id: str = Field(max_length=66)
    payer_id: str | None = Field(default=None, max_length=64)
    payee_id: str | None = Field(default=None, max_length=64)
    amount: Money
    status: Literal["owed", "instructed", "blocked"]
    settlement_id: str | None = Field(default=None, max_length=66)
    settlement_error: str | None = Field(default=None, max_length=2000)
    tx_hash: str = Field(max_length=66)
    block_number: int


class PaymentsPublic(Out):
    receivable_id: str = Field(max_length=66)
    data: list[PaymentPublic]
    repaid_total: Money
    disbursed_total: Money


class VerificationStep(Out):
    name: str = Field(max_length=64)
    ok: bool
    detail: str = Field(max_length=2000)


class EvidencePublic(Out):
    id: int
    label: str = Field(max_length=200)
    leaf_hash: str = Field(max_length=66)
    root: str = Field(max_length=66)
    anchor_tx_hash: str | None = Field(default=None, max_length=66)
    anchor_block_number: int | None = None
    added_by: str = Field(max_length=64)
    verified: bool = Field(description="offline proof ok AND root anchored in this consortium's TraceAnchor")
    offline_verified: bool
    anchored: bool | None = Field(description="null: the chain could not be asked")
    by_party: bool = Field(description="the event's acting member is the supplier or the buyer")
    steps: list[VerificationStep]
    created_at: datetime


class EvidenceListPublic(Out):
    receivable_id: str = Field(max_length=66)
    data: list[EvidencePublic]
    all_verified: bool


class TypedDataPublic(Out):
    """EIP-712 typed data, as ``eth_signTypedData_v4`` takes it; sign it with your own key."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    types: dict[str, list[dict[str, str]]]
    primaryType: str = Field(max_length=64)  # noqa: N815  (the EIP-712 field name)
    domain: dict[str, Any]
    message: dict[str, Any]
    summary: list[str] = Field(default_factory=list, max_length=64,
                               description="what the signature approves, in human terms (as `ledger sign` shows it)")
