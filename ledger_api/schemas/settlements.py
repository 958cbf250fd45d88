"""Request and response bodies of settlements, balances and netting cycles (every string bounded).

Money is ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``; FX rates are decimal
strings of target major units per source major unit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from settlement.domains.members.service import MEMBER_ID_LEN_MAX
from settlement.domains.settlements.commands import BATCH_SIZE_MAX

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["CNY"])]
MemberIdField = Annotated[str, Field(min_length=1, max_length=MEMBER_ID_LEN_MAX,
                                     pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", examples=["bank"])]
Hash32 = Annotated[str, Field(max_length=66)]
SettlementState = Literal["instructed", "paid", "in_cycle", "settled", "cancelled", "refunded", "rejected"]
ChainStatus = Literal["pending", "confirmed", "rejected"]
BATCH_BODY_ITEMS_MAX = 1_000  # beyond the batch bound, so an oversized batch gets its own problem type


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoneyIn(_In):
    value: StrictInt = Field(description="integer of minor units (no floats)", examples=[1_000_00])
    currency: Currency


class TargetMoneyIn(_In):
    value: StrictInt | None = Field(default=None, description="omit to have it computed from the rate")
    currency: Currency


class MoneyOut(_Out):
    value: int
    currency: str = Field(max_length=3)


class SettlementCreate(_In):
    client_reference: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
                                  description="your own reference, unique per payer; no personal data",
                                  examples=["INV-2026-0042"])
    payee: MemberIdField
    source: MoneyIn
    target: TargetMoneyIn
    fx_rate: str = Field(min_length=1, max_length=40, description="target major units per source major unit",
                         examples=["7.1234"])
    fees: MoneyIn | None = Field(default=None, description="in the source currency")
    value_date: date | None = Field(default=None, description="default: today (UTC)")
    purpose_code: str = Field(min_length=4, max_length=4, examples=["GDDS"])
    payment_reference: str = Field(min_length=1, max_length=140,
                                   description="kept in the store; only its keccak256 goes on chain",
                                   examples=["ORDER-88123"])


class SettlementBatchCreate(_In):
    items: list[SettlementCreate] = Field(min_length=1, max_length=BATCH_BODY_ITEMS_MAX,
                                          description=f"1..{BATCH_SIZE_MAX} settlements, recorded all or none")


class ChainStatePublic(_Out):
    operation: str = Field(max_length=16, description="record | pay | cancel | refund | net | settle | release")
    status: ChainStatus
    outbox_id: int | None
    tx_hash: str | None = Field(max_length=66)
    block_number: int | None
    error: dict | None = Field(description="the contract's decoded custom error when rejected")
    recorded_tx_hash: str | None = Field(max_length=66)
    recorded_block: int | None


class OperationPublic(_Out):
    kind: str = Field(max_length=16)
    status: ChainStatus
    amount: MoneyOut | None
    requested_by: str = Field(max_length=64)
    outbox_id: int | None
    tx_hash: str | None = Field(max_length=66)
    block_number: int | None
    error: dict | None
    created_at: datetime
    confirmed_at: datetime | None


class RefundPublic(_Out):
    id: int
    amount: MoneyOut
    reference: str = Field(max_length=140)
    reference_hash: Hash32
    status: ChainStatus
    requested_by: str = Field(max_length=64)
    created_at: datetime


class SettlementPublic(_Out):
    id: Hash32
    client_reference: str = Field(max_length=64)
    payer: str = Field(max_length=64)
    payee: str = Field(max_length=64)
    source: MoneyOut
    target: MoneyOut
    fx_rate: str = Field(max_length=80)
    fx_rate_scaled: str = Field(max_length=40, description="the contract's fxRate (1e12 = 1, minor to minor)")
    fees: MoneyOut
    value_date: date
    purpose_code: str = Field(max_length=4)
    payment_reference: str = Field(max_length=140)
    payment_ref_hash: Hash32
    state: SettlementState
    paid: MoneyOut
    refunded: MoneyOut
    provider: str | None = Field(max_length=16)
    cycle_id: str | None = Field(max_length=66)
    chain: ChainStatePublic
    created_at: datetime
    updated_at: datetime
    operations: list[OperationPublic] | None = None
    refunds: list[RefundPublic] | None = None


class SettlementsPublic(_Out):
    data: list[SettlementPublic]
    count: int
    next_cursor: str | None = Field(max_length=100)


class BatchItemPublic(_Out):
    """A batch's settlement in brief (GET /v1/settlements/{id} has the rest)."""

    id: Hash32
    client_reference: str = Field(max_length=64)
    payee: str = Field(max_length=64)
    target: MoneyOut
    state: SettlementState
    chain_status: ChainStatus


class BatchCreated(_Out):
    outbox_id: int = Field(description="the one recordBatch call of the whole batch")
    count: int
    data: list[BatchItemPublic]


class PaymentCreate(_In):
    provider: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9][a-z0-9_.-]*$", examples=["alipay"])
    provider_transaction_id: str = Field(min_length=1, max_length=128, description="hashed before it goes on chain")
    amount: MoneyIn


class RefundCreate(_In):
    amount: MoneyIn
    reference: str = Field(min_length=1, max_length=140, description="unique per settlement; hashed on chain")


class RefundAccepted(_Out):
    refund: RefundPublic
    settlement: SettlementPublic


class BalancePublic(_Out):
    account: str = Field(max_length=32)
    debit: MoneyOut
    credit: MoneyOut
    balance: MoneyOut = Field(description="debits minus credits")


class BalancesPublic(_Out):
    member_id: str = Field(max_length=64)
    data: list[BalancePublic]


class PositionPublic(_Out):
    currency: str = Field(max_length=3)
    to_receive: MoneyOut
    to_pay: MoneyOut
    net: MoneyOut = Field(description="what the next netting cycles move for this member (+ receives)")
    instructed_in: MoneyOut
    instructed_out: MoneyOut
    fees_owed: MoneyOut
    net_settled: MoneyOut
    refunds_owed_to: MoneyOut
    refunds_owed_by: MoneyOut


class PositionsPublic(_Out):
    member_id: str = Field(max_length=64)
    data: list[PositionPublic]


class StatementLinePublic(_Out):
    entry_id: int
    txn_id: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    settlement_id: str | None = Field(max_length=66)
    cycle_id: str | None = Field(max_length=66)
    account: str = Field(max_length=32)
    side: Literal["D", "C"]
    amount: MoneyOut
    created_at: datetime


class StatementPublic(_Out):
    member_id: str = Field(max_length=64)
    currency: str = Field(max_length=3)
    data: list[StatementLinePublic]
    next_after: int | None


class CycleCreate(_In):
    currency: Currency


class CycleMemberNet(_Out):
    member_id: str = Field(max_length=64)
    onchain_id: Hash32
    net: MoneyOut = Field(description="receives (+) or pays (-)")


class CycleReportPublic(_Out):
    gross_count: int = Field(description="transfers without netting: one per settlement")
    gross_value: MoneyOut
    net_count: int = Field(description="transfers after netting: one per member with a non-zero net")
    net_value: MoneyOut = Field(description="value moved after netting: the sum of positive nets")
    transfers_saved: int
    value_saved: MoneyOut
    value_saved_ratio: str = Field(max_length=12)


class CycleChainPublic(_Out):
    operation: str = Field(max_length=16)
    status: ChainStatus
    outbox_id: int | None
    submit_tx_hash: str | None = Field(max_length=66)
    submit_block: int | None
    settle_tx_hash: str | None = Field(max_length=66)
    settle_block: int | None
    error: dict | None


class CyclePublic(_Out):
    id: Hash32
    currency: str = Field(max_length=3)
    state: Literal["submitted", "settled", "cancelled", "rejected"]
    settlement_ids: list[str]
    members: list[CycleMemberNet]
    report: CycleReportPublic
    closed_by: str = Field(max_length=64)
    chain: CycleChainPublic
    created_at: datetime
