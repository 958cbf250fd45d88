"""Events out: the event envelope (list items, SSE data, webhook bodies), webhook endpoints and
deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ledger_api.schemas.common import In, Out

__all__ = ["DeliveriesPublic", "DeliveryPublic", "EventData", "EventPublic", "EventsPublic", "ReplayCreate",
           "ReplayPublic", "WebhookCreate", "WebhookCreated", "WebhookPublic", "WebhookUpdate", "WebhooksPublic",
           "RotateCreate"]

EventType = Field(min_length=3, max_length=64, pattern=r"^[a-z_]+\.(?:[a-z_]+|\*)$", examples=["settlement.confirmed"])


class EventData(Out):
    model_config = ConfigDict(extra="forbid")
    object_type: str = Field(max_length=32, examples=["settlement"])
    object_id: str = Field(max_length=128)
    state: str | None = Field(max_length=32, description="the object's state after the change")
    tx_hash: str | None = Field(max_length=66, description="the chain transaction, where there is one")
    block_number: int | None = None
    object: dict[str, Any] = Field(description="the object's public fields after the change (docs/events.md)")


class EventPublic(Out):
    """One event: the body of a webhook delivery, the data of an SSE message, a list item."""

    id: str = Field(max_length=40, description="stable; the `webhook-id` of every delivery of it",
                    examples=["evt_5f0c2a9e61d04b7a9c3e8f10"])
    type: str = Field(max_length=64, examples=["settlement.confirmed"])
    timestamp: datetime = Field(description="when the change happened (RFC 3339, UTC)")
    version: int = Field(description="payload version of the catalogue", examples=[1])
    data: EventData
    cursor: str | None = Field(default=None, max_length=20,
                               description="list and stream only: resume after this event with `?after=`")


class EventsPublic(Out):
    data: list[EventPublic]
    next_cursor: str | None = Field(max_length=20, description="pass as `after` for the next page")
    has_more: bool


class WebhookCreate(In):
    url: str = Field(min_length=8, max_length=2048, examples=["https://erp.example.com/ledger/webhooks"],
                     description="https, or http to a loopback address")
    event_types: list[str] = Field(default_factory=list, max_length=64,
                                   description="catalogued types or family wildcards (`settlement.*`); empty: all")
    description: str = Field(default="", max_length=200)


class WebhookUpdate(In):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    event_types: list[str] | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = Field(default=None, description="false disables; true enables (new events only; "
                                 "replay what was missed)")


class RotateCreate(In):
    overlap_s: int = Field(default=86_400, ge=0, le=7 * 86_400,
                           description="seconds the previous secret keeps signing beside the new one")


class WebhookPublic(Out):
    id: str = Field(max_length=40)
    owner: str = Field(max_length=64)
    url: str = Field(max_length=2048)
    description: str = Field(max_length=200)
    event_types: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None = Field(max_length=200)
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str | None = Field(max_length=100, description="`whsec_...`: shown once, in this answer only "
                               "(null when an Idempotency-Key replays the creation)")


class WebhooksPublic(Out):
    data: list[WebhookPublic]
    next_cursor: str | None = Field(max_length=40)
    has_more: bool


class DeliveryPublic(Out):
    id: str = Field(max_length=20)
    event_id: str = Field(max_length=40)
    event_type: str = Field(max_length=64)
    object_id: str = Field(max_length=128)
    round: int = Field(description="0: the first delivery; 1, 2, ...: replays")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None = Field(max_length=300)
    created_at: datetime
    delivered_at: datetime | None


class DeliveriesPublic(Out):
    data: list[DeliveryPublic]
    next_cursor: str | None = Field(max_length=20)
    has_more: bool


class ReplayCreate(In):
    event_id: str | None = Field(default=None, min_length=5, max_length=40, pattern=r"^evt_[0-9a-f]+$")
    since: datetime | None = Field(default=None, description="every event since then not delivered to the "
                                   "endpoint (failed, or missed while disabled)")


class ReplayPublic(Out):
    queued: int


# -- the objects events carry (data.object), for the OpenAPI ``webhooks`` section -------------------

from ledger_api.schemas.common import Money  # noqa: E402


class SettlementObject(Out):
    id: str = Field(max_length=66)
    payer: str = Field(max_length=64)
    payee: str = Field(max_length=64)
    client_reference: str = Field(max_length=64)
    source: Money
    target: Money
    value_date: str = Field(max_length=10)
    purpose_code: str = Field(max_length=4)
    payment_reference: str = Field(max_length=140)
    state: str = Field(max_length=16)
    paid: Money
    refunded: Money
    provider: str | None = Field(max_length=16)
    cycle_id: str | None = Field(max_length=66)
    chain_status: str | None = Field(max_length=16)


class PaymentObject(Out):
    id: str = Field(max_length=20, description="the callback's id")
    provider: str = Field(max_length=16)
    account: str = Field(max_length=64)
    provider_txn_id: str | None = Field(max_length=128)
    merchant_reference: str | None = Field(max_length=140)
    amount: Money | None
    applied: Money | None
    settlement_id: str = Field(max_length=66)
    occurred_at: str | None = Field(max_length=40)
    outcome: str = Field(max_length=16)


class NetPaymentObject(Out):
    member: str = Field(max_length=64, description="the net payer")
    amount: Money


class NettingCycleObject(Out):
    id: str = Field(max_length=66)
    currency: str = Field(max_length=3)
    state: str = Field(max_length=16)
    settlement_count: int
    gross: Money
    net_count: int
    net: Money
    members: list[str]
    chain_status: str | None = Field(max_length=16)
    net_payment: NetPaymentObject | None = Field(default=None, description="netting_cycle.payment_attested: "
                                                 "the attested payment (the recipient's own)")


class PartObject(Out):
    id: str = Field(max_length=66)
    index: int
    holder: str | None = Field(max_length=64)
    amount: Money
    financed: bool
    request_open: bool
    financier: str | None = Field(max_length=64)
    offer_id: str | None = Field(max_length=66, description="the current offer's id (0x-hex bytes32)")
    advance: Money | None
    fee: Money | None
    previous_holder: str | None = Field(default=None, max_length=64)


class ReceivableObject(Out):
    id: str = Field(max_length=66)
    supplier: str = Field(max_length=64)
    buyer: str = Field(max_length=64)
    invoice_number: str = Field(max_length=200)
    face_value: Money
    issue_date: str = Field(max_length=10)
    due_date: str = Field(max_length=10)
    status: str = Field(max_length=16)
    part_count: int
    part: PartObject | None = Field(default=None, description="transferred and financing.* events: the part")


class ApprovalObject(Out):
    governor: str = Field(max_length=42, description="the governor key that approved")
    governor_member_id: str | None = Field(max_length=64, description="the member the governor key belongs to")
    method: Literal["signature", "approveHash"] = Field(description="a signature over the Safe transaction's "
                                                        "typed data, or the governor's own approveHash on chain")
    approvals: int = Field(description="approvals the proposal has now")


class GovernanceProposalObject(Out):
    id: str = Field(max_length=66, description="the Safe transaction hash")
    safe: Literal["governance", "guardian"]
    action: str = Field(max_length=32, examples=["suspend"])
    member_id: str | None = Field(max_length=64, description="the member the action concerns")
    description: str = Field(max_length=2000)
    status: Literal["proposed", "scheduled", "executed", "cancelled", "stale", "failed"]
    safe_nonce: int
    params: dict[str, Any]
    proposed_by: str = Field(max_length=64, description="the proposing member, or `chain` (around the API)")
    proposer: str | None = Field(max_length=42, description="the governor key that published it in the log")
    op_id: str | None = Field(max_length=66, description="the timelock operation (slow path)")
    earliest_execution_at: str | None = Field(max_length=20, description="once scheduled: when it may run")
    error: str | None = Field(max_length=2000)
    approval: ApprovalObject | None = Field(default=None, description="governance.approved: the approval")


class GenericObject(Out):
    """The other objects (reconciliation runs and exceptions, anchor batches, the member itself,
    webhook endpoints): their public fields, listed per type in docs/events.md."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(max_length=128)


OBJECT_MODELS: dict[str, type[Out]] = {"settlement": SettlementObject, "payment": PaymentObject,
                                       "netting_cycle": NettingCycleObject, "receivable": ReceivableObject,
                                       "governance_proposal": GovernanceProposalObject}
