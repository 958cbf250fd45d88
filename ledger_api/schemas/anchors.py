"""Request and response bodies of provenance events, anchor batches and proofs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from anchors.events import (
    EVENT_ID_CHARS_MAX,
    LOCATION_CHARS_MAX,
    LOT_ID_CHARS_MAX,
    OCCURRED_AT_MAX_S,
    OCCURRED_AT_MIN_S,
)
from anchors.merkle import PROOF_DEPTH_MAX
from pydantic import Field, StrictInt

from ledger_api.schemas.common import In, Money, Out, Page
from settlement.domains.anchoring import BATCH_LIST_MAX, EVENTS_PER_REQUEST_MAX, PRODUCT_LOTS_MAX, TRACE_EVENTS_MAX

EventTypeName = Literal["produced", "shipped", "received", "inspected", "stored", "transformed", "sold",
                        "returned", "recalled", "destroyed"]
Hex32 = Field(min_length=66, max_length=66, pattern=r"^0x[0-9a-fA-F]{64}$")
# Leaf values are short strings (decimal integers, 0x-hex words); a value has at most 16 fields.
LEAF_FIELDS_MAX = 16
LEAF_ITEM_CHARS_MAX = 80


# -- posting events ----------------------------------------------------------------------------


class ProvenanceEventIn(In):
    """One event. The acting member is the API key's member: an event cannot name another."""

    event_id: str = Field(min_length=1, max_length=EVENT_ID_CHARS_MAX, examples=["evt-2024-000123"],
                          description="unique across the ledger; [A-Za-z0-9._:/#-], starting alphanumeric")
    lot_id: str = Field(min_length=1, max_length=LOT_ID_CHARS_MAX, examples=["LOT-7731"])
    product: str = Field(min_length=5, max_length=80, examples=["gtin:09506000134352", "sku:PRC-100-A"],
                         description="gtin:<8|12|13|14 digits, check digit verified> or sku:<code>")
    event_type: EventTypeName
    location: str = Field(min_length=1, max_length=LOCATION_CHARS_MAX, examples=["gln:0614141000005"])
    occurred_at_s: StrictInt = Field(ge=OCCURRED_AT_MIN_S, le=OCCURRED_AT_MAX_S, examples=[1_700_000_000],
                                     description="unix seconds of the occurrence")
    document_hash: str | None = Field(default=None, min_length=66, max_length=66, pattern=r"^0x[0-9a-fA-F]{64}$",
                                      description="hash of the supporting document (kept off chain)")
    attributes: dict[str, Any] = Field(default_factory=dict,
                                       description="JSON object: strings, integers (no floats), booleans, null, "
                                                   "arrays, objects; at most 16 KiB canonical")


class ProvenanceEventsIn(In):
    events: list[ProvenanceEventIn] = Field(
        min_length=1, max_length=10 * EVENTS_PER_REQUEST_MAX,
        description=f"at most {EVENTS_PER_REQUEST_MAX} events and 512 KiB of event JSON per request "
                    "(more: 413 provenance-batch-too-large); all are stored or none")


class EventAccepted(Out):
    event_id: str = Field(max_length=EVENT_ID_CHARS_MAX)
    lot_id: str = Field(max_length=LOT_ID_CHARS_MAX)
    leaf_hash: str = Field(max_length=66)
    duplicate: bool = Field(description="already recorded with the same content: nothing new written")


class EventsAccepted(Out):
    accepted: int = Field(description="events newly recorded")
    duplicates: int
    events: list[EventAccepted]


# -- proofs ------------------------------------------------------------------------------------


class AnchorPublic(Out):
    chain_id: int
    contract: str = Field(max_length=42)
    tx_hash: str = Field(max_length=66)
    block_number: int
    block_time: int
    batch_sequence: int


class ProvenanceEventPublic(Out):
    event_id: str = Field(max_length=EVENT_ID_CHARS_MAX)
    lot_id: str = Field(max_length=LOT_ID_CHARS_MAX)
    product: str = Field(max_length=80)
    event_type: EventTypeName
    location: str = Field(max_length=LOCATION_CHARS_MAX)
    member_id: str = Field(max_length=66, description="registry id (bytes32) of the acting member")
    occurred_at_s: int
    document_hash: str = Field(max_length=66)
    attributes: dict[str, Any]


class JournalRecordPublic(Out):
    """One version of a journal record with its canonical text: ``keccak256(canonical_json)`` is
    the leaf's digest; the leaf is rebuilt from these fields (docs/anchors.md)."""

    kind: str = Field(max_length=64, examples=["settlement"])
    record_id: str = Field(max_length=128)
    version: int
    recorded_at_s: int
    prev_digest: str | None = Field(max_length=66, description="the digest of the version before (zero for v1)")
    canonical_json: str = Field(max_length=256 * 1024)


class ProofDocumentOut(Out):
    """``ledger-anchor-proof-v1``: verify with ``ledger anchors verify``, ``anchors.verify_on_chain``,
    ``@openzeppelin/merkle-tree`` or ``TraceAnchor.verify(root, proof, leaf_hash)``."""

    format: Literal["ledger-anchor-proof-v1"]
    leaf_encoding: list[str] = Field(max_length=LEAF_FIELDS_MAX)
    schema_version: int | None
    value: list[str] = Field(max_length=LEAF_FIELDS_MAX)
    leaf_hash: str = Field(max_length=66)
    proof: list[str] = Field(max_length=PROOF_DEPTH_MAX)
    root: str = Field(max_length=66)
    anchor: AnchorPublic | None = Field(description="null until the batch's anchor is confirmed on chain")
    event: ProvenanceEventPublic | None = None
    record: JournalRecordPublic | None = None


class TraceEntry(Out):
    event: ProvenanceEventPublic
    status: Literal["pending", "batched", "anchored", "failed"] = Field(
        description="pending: waiting for the batcher; batched: root enqueued; anchored: on chain")
    batch_sequence: int | None
    proof: ProofDocumentOut | None


class LotTrace(Page):
    """A page of a lot's events, oldest first, in the one list envelope (docs/api.md); the lot
    id is context beside it."""

    lot_id: str = Field(max_length=LOT_ID_CHARS_MAX)
    data: list[TraceEntry] = Field(max_length=TRACE_EVENTS_MAX)


class ProductLotPublic(Out):
    lot_id: str = Field(max_length=LOT_ID_CHARS_MAX)
    events: int = Field(ge=1, description="the lot's events naming the product")
    first_occurred_at: datetime
    last_occurred_at: datetime


class ProductLots(Page):
    """The lots in which a product was seen, in lot id order, in the one list envelope; the
    product is context beside it."""

    product: str = Field(max_length=160, description="normalised: gtin:<14 digits> or sku:<code>")
    data: list[ProductLotPublic] = Field(max_length=PRODUCT_LOTS_MAX)


# -- batches -----------------------------------------------------------------------------------


class AnchorBatchPublic(Out):
    kind: Literal["events", "journal"]
    sequence: int = Field(description="the batch's TraceAnchor sequence (consecutive: 1, 2, 3, ...); a failed "
                                      "batch holds none until retried (shown as minus its id)")
    root: str = Field(max_length=66)
    leaf_count: int
    schema_version: int
    leaf_encoding: list[str] = Field(max_length=LEAF_FIELDS_MAX)
    first_time_s: int
    last_time_s: int
    status: Literal["pending", "anchored", "failed"]
    attempts: int
    last_error: str | None = Field(default=None, max_length=2000)
    anchor: AnchorPublic | None
    created_at: datetime


class AnchorBatchesPublic(Out):
    data: list[AnchorBatchPublic] = Field(max_length=BATCH_LIST_MAX)
    count: int = Field(description="batches on this page")
    next_cursor: str | None = Field(default=None, max_length=64,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")


class DumpValue(Out):
    value: list[str] = Field(max_length=LEAF_FIELDS_MAX)
    treeIndex: int  # noqa: N815 - the standard-v1 field name


class StandardV1Dump(Out):
    """``standard-v1``: loads with ``StandardMerkleTree.load`` of ``@openzeppelin/merkle-tree``."""

    format: Literal["standard-v1"]
    leafEncoding: list[str] = Field(max_length=LEAF_FIELDS_MAX)  # noqa: N815
    tree: list[str]
    values: list[DumpValue]


class FlushResult(Out):
    batches: list[AnchorBatchPublic]


# -- the trial balance -------------------------------------------------------------------------


class TrialAnchor(Out):
    sequence: int = Field(description="the journal batch the figures are anchored by")
    root: str = Field(max_length=66)
    tx_hash: str | None = Field(max_length=66)
    block_number: int | None
    block_time: int | None


class TrialCurrency(Out):
    currency: str = Field(max_length=3)
    debits: Money
    credits: Money
    balanced: bool


class TrialAccount(Out):
    owner: str = Field(max_length=64, description="a member id, or @consortium for the consortium's accounts")
    account: str = Field(max_length=32)
    currency: str = Field(max_length=3)
    debits: Money
    credits: Money
    balance: Money = Field(description="debits minus credits")


class TrialBalancePublic(Out):
    """Every account, debits against credits per currency, summed from the postings anchored up to
    ``as_of`` (the live rows are checked against them by the audit)."""

    as_of: TrialAnchor
    postings: int
    balanced: bool = Field(description="per currency, total debits equal total credits")
    currencies: list[TrialCurrency]
    accounts: list[TrialAccount]
