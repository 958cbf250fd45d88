"""Request and response bodies of settlements, balances and netting cycles (every string bounded).

Money is ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``; FX rates are decimal
strings of target major units per source major unit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StrictInt

from ledger_api.schemas.common import In, Money, Out, Page
from ledger_api.schemas.governance import IntentPublic
from settlement.domains.members import MEMBER_ID_LEN_MAX
from settlement.domains.settlements import BATCH_SIZE_MAX

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["CNY"])]
MemberIdField = Annotated[str, Field(min_length=1, max_length=MEMBER_ID_LEN_MAX,
                                     pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", examples=["bank"])]
Hash32 = Annotated[str, Field(max_length=66)]
SettlementState = Literal["instructed", "paid", "in_cycle", "settled", "cancelled", "refunded", "rejected"]
ChainStatus = Literal["pending", "confirmed", "rejected"]
BATCH_BODY_ITEMS_MAX = 1_000  # beyond the batch bound, so an oversized batch gets its own problem type


class TargetMoneyIn(In):
    value: StrictInt | None = Field(default=None, description="omit to have it computed from the rate")
    currency: Currency


class SettlementCreate(In):
    client_reference: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
                                  description="your own reference, unique per payer; no personal data",
                                  examples=["INV-2026-0042"])
    payee: MemberIdField
    source: Money
    target: TargetMoneyIn
    fx_rate: str = Field(min_length=1, max_length=40, description="target major units per source major unit",
                         examples=["7.1234"])
    fees: Money | None = Field(default=None, description="in the source currency")
    value_date: date | None = Field(default=None, description="default: today (UTC)")
    purpose_code: str = Field(min_length=4, max_length=4, examples=["GDDS"])
    payment_reference: str = Field(min_length=1, max_length=140,
                                   description="kept in the store; only its keccak256 goes on chain",
                                   examples=["ORDER-88123"])


class SettlementBatchCreate(In):
    items: list[SettlementCreate] = Field(min_length=1, max_length=BATCH_BODY_ITEMS_MAX,
                                          description=f"1..{BATCH_SIZE_MAX} settlements, recorded all or none")


class ChainStatePublic(Out):
    operation: str = Field(max_length=16, description="record | pay | cancel | refund | net | settle | release")
    status: ChainStatus
    outbox_id: int | None
    tx_hash: str | None = Field(max_length=66)
    block_number: int | None
    error: dict | None = Field(description="the contract's decoded custom error when rejected")
    recorded_tx_hash: str | None = Field(max_length=66)
    recorded_block: int | None


class SettlementOperationPublic(Out):
    kind: str = Field(max_length=16)
    status: ChainStatus
    amount: Money | None
    requested_by: str = Field(max_length=64)
    outbox_id: int | None
    tx_hash: str | None = Field(max_length=66)
    block_number: int | None
    error: dict | None
    created_at: datetime
    confirmed_at: datetime | None


class RefundPublic(Out):
    id: int
    amount: Money
    reference: str = Field(max_length=140)
    reference_hash: Hash32
    status: ChainStatus
    requested_by: str = Field(max_length=64)
    created_at: datetime


class SettlementPublic(Out):
    id: Hash32
    client_reference: str = Field(max_length=64)
    payer: str = Field(max_length=64)
    payee: str = Field(max_length=64)
    source: Money
    target: Money
    fx_rate: str = Field(max_length=80)
    fx_rate_scaled: str = Field(max_length=40, description="the contract's fxRate (1e12 = 1, minor to minor)")
    fees: Money
    value_date: date
    purpose_code: str = Field(max_length=4)
    payment_reference: str = Field(max_length=140)
    payment_ref_hash: Hash32
    state: SettlementState
    paid: Money
    refunded: Money
    provider: str | None = Field(max_length=16)
    cycle_id: str | None = Field(max_length=66)
    chain: ChainStatePublic
    created_at: datetime
    updated_at: datetime
    operations: list[SettlementOperationPublic] | None = None
    refunds: list[RefundPublic] | None = None
    acknowledged: bool | None = Field(default=None, description="the payee acknowledged receipt (its own word: "
                                      "it changes no state); in the detail view")


class SettlementsPublic(Page):
    """A page of settlements, newest first, in the one list envelope (docs/api.md)."""

    data: list[SettlementPublic]
    count: int = Field(description="settlements on this page")


class BatchItemPublic(Out):
    """A batch's settlement in brief (GET /v1/settlements/{id} has the rest)."""

    id: Hash32
    client_reference: str = Field(max_length=64)
    payee: str = Field(max_length=64)
    target: Money
    state: SettlementState
    chain_status: ChainStatus


class BatchCreated(Out):
    outbox_id: int = Field(description="the one recordBatch call of the whole batch")
    count: int
    data: list[BatchItemPublic]


class PaymentCreate(In):
    provider: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9][a-z0-9_.-]*$", examples=["alipay"])
    provider_transaction_id: str = Field(min_length=1, max_length=128, description="hashed before it goes on chain")
    amount: Money


class RefundCreate(In):
    amount: Money
    reference: str = Field(min_length=1, max_length=140, description="unique per settlement; hashed on chain")


class RefundAccepted(Out):
    refund: RefundPublic
    settlement: SettlementPublic


class BalancePublic(Out):
    account: str = Field(max_length=32)
    debit: Money
    credit: Money
    balance: Money = Field(description="debits minus credits")


class BalancesPublic(Out):
    member_id: str = Field(max_length=64)
    data: list[BalancePublic]


class PositionPublic(Out):
    currency: str = Field(max_length=3)
    to_receive: Money
    to_pay: Money
    net: Money = Field(description="what the next netting cycles move for this member (+ receives)")
    instructed_in: Money
    instructed_out: Money
    fees_owed: Money
    net_settled: Money
    refunds_owed_to: Money
    refunds_owed_by: Money


class PositionsPublic(Out):
    member_id: str = Field(max_length=64)
    data: list[PositionPublic]


class StatementLinePublic(Out):
    entry_id: int
    txn_id: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    settlement_id: str | None = Field(max_length=66)
    cycle_id: str | None = Field(max_length=66)
    account: str = Field(max_length=32)
    side: Literal["D", "C"]
    amount: Money
    created_at: datetime


class AccountStatementPublic(Page):
    """A page of journal entries in posting order, in the one list envelope (docs/api.md); the
    member and currency are context beside it."""

    member_id: str = Field(max_length=64)
    currency: str = Field(max_length=3)
    data: list[StatementLinePublic]


class CycleCreate(In):
    currency: Currency


class CycleMemberNet(Out):
    member_id: str = Field(max_length=64)
    onchain_id: Hash32
    net: Money = Field(description="receives (+) or pays (-)")


class CycleReportPublic(Out):
    gross_count: int = Field(description="transfers without netting: one per settlement")
    gross_value: Money
    net_count: int = Field(description="transfers after netting: one per member with a non-zero net")
    net_value: Money = Field(description="value moved after netting: the sum of positive nets")
    transfers_saved: int
    value_saved: Money
    value_saved_ratio: str = Field(max_length=12)


class CycleChainPublic(Out):
    operation: str = Field(max_length=16)
    status: ChainStatus
    outbox_id: int | None
    submit_tx_hash: str | None = Field(max_length=66)
    submit_block: int | None
    settle_tx_hash: str | None = Field(max_length=66)
    settle_block: int | None
    error: dict | None


class NetPaymentCreate(In):
    """The operator attests a net payer's payment into a cycle (after verifying the provider's notification)."""

    member: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
    provider: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9][a-z0-9_.-]*$", examples=["alipay"])
    provider_transaction_id: str = Field(min_length=1, max_length=128, description="hashed before it goes on chain")
    amount: Money


class NetPaymentPublic(Out):
    member_id: str = Field(max_length=64)
    amount: Money
    provider: str = Field(max_length=16)
    provider_tx_hash: Hash32
    status: ChainStatus
    tx_hash: str | None = Field(max_length=66)
    block_number: int | None
    error: dict | None
    created_at: datetime


class CyclePublic(Out):
    """A netting cycle. The operator sees it whole; a member sees only what concerns it: its own
    net, its own settlements and its own net payment (no report over the others)."""

    id: Hash32
    currency: str = Field(max_length=3)
    state: Literal["submitted", "settled", "cancelled", "rejected"]
    settlement_ids: list[str]
    members: list[CycleMemberNet]
    net_payments: list[NetPaymentPublic] = Field(default_factory=list)
    report: CycleReportPublic | None = Field(description="the operator's view only")
    closed_by: str = Field(max_length=64)
    chain: CycleChainPublic
    created_at: datetime


class IntentAccepted(Out):
    """The command is recorded and its contract call waits for the member's own signature: sign
    ``intent.typed_data`` and send it to ``POST /v1/intents/{id}/signature``."""

    intent: IntentPublic
    settlement: SettlementPublic
    refund: RefundPublic | None = None
