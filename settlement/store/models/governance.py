"""Tables of consortium governance and of members' own-key intents.

- ``governance_proposals``: a Safe transaction the governors (or guardians) decide on, with what it
  does (the timelock batch it schedules, or the guardian's call), its approvals, and where it is:
  proposed -> scheduled (timelock, earliest execution time known) -> executed, or cancelled,
  stale (its Safe nonce was used by another transaction) or failed.
- ``governance_approvals``: one per governor and proposal, made on chain (``approveHash``) or as a
  signature over the Safe transaction's typed data (own-key governors).
- ``member_onboardings``: a member whose onboarding waits for governance; the follower creates the
  member from it when the registry says ``MemberOnboarded``.
- ``intents``: a contract call a member signs with its own key (an ERC-2771 ForwardRequest); its
  outbox row is held until the signature arrives, then relayed through the LedgerForwarder.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from settlement.store.models import Base, utcnow

_ID = BigInteger().with_variant(Integer, "sqlite")


class GovernanceProposal(Base):
    __tablename__ = "governance_proposals"
    __table_args__ = (Index("ix_governance_proposals_status_created", "status", "created_at"),
                      Index("ix_governance_proposals_safe_nonce", "safe_address", "safe_nonce"))

    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # the Safe transaction hash
    safe: Mapped[str] = mapped_column(String(16))  # governance | guardian
    safe_address: Mapped[str] = mapped_column(String(42))
    safe_nonce: Mapped[int] = mapped_column(BigInteger)
    to: Mapped[str] = mapped_column(String(42))  # the timelock, or the registry (guardian fast path)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # the Safe transaction's calldata
    description: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(String(32))  # onboard | suspend | reactivate | ... | external
    member_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    member_onchain_id: Mapped[str | None] = mapped_column(String(66), nullable=True, index=True)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    calls: Mapped[list] = mapped_column(JSON, default=list)  # timelock batch: [[target, value, 0xdata]]
    salt: Mapped[str | None] = mapped_column(String(66), nullable=True)
    op_id: Mapped[str | None] = mapped_column(String(66), nullable=True, index=True)
    delay_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    proposed_by: Mapped[str] = mapped_column(String(64), default="")  # member id, or "chain"
    proposer: Mapped[str | None] = mapped_column(String(42), nullable=True)  # governor that published it
    published_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    eta_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # earliest execution, unix s
    schedule_outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    execute_outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    scheduled_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    executed_tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    executed_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class GovernanceApproval(Base):
    __tablename__ = "governance_approvals"
    __table_args__ = (UniqueConstraint("proposal_id", "governor", name="uq_governance_approval"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("governance_proposals.id"), index=True)
    governor: Mapped[str] = mapped_column(String(42))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # None: approveHash on chain
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | failed
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MemberOnboarding(Base):
    __tablename__ = "member_onboardings"

    onchain_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    roles: Mapped[list] = mapped_column(JSON)
    # [{"address": 0x.., "encrypted_key": base64url or null (the member's own key)}]
    accounts: Mapped[list] = mapped_column(JSON)
    proposal_id: Mapped[str] = mapped_column(String(66), index=True)
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed | onboarded | dropped
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Intent(Base):
    __tablename__ = "intents"
    __table_args__ = (Index("ix_intents_account_nonce", "account", "nonce"),
                      Index("ix_intents_status_deadline", "status", "deadline"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    account: Mapped[str] = mapped_column(String(42))  # the member's own account: the request's ``from``
    outbox_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(64))  # the outbox kind, e.g. settlement.record
    aggregate_id: Mapped[str] = mapped_column(String(128), default="")
    contract: Mapped[str] = mapped_column(String(64))  # the target's deployment name
    to: Mapped[str] = mapped_column(String(42))
    function: Mapped[str] = mapped_column(String(64))
    args: Mapped[list] = mapped_column(JSON)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # the inner call
    gas: Mapped[int] = mapped_column(BigInteger)
    nonce: Mapped[int] = mapped_column(BigInteger)  # the forwarder's nonce of ``account`` it is signed with
    deadline: Mapped[int] = mapped_column(BigInteger)  # unix seconds (uint48)
    status: Mapped[str] = mapped_column(String(16), default="held")  # held | relayed | expired | refused
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    relayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
