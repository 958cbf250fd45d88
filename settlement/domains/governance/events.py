"""What the chain says about governance: the proposal log's, the Safes' and the timelock's events,
applied by the follower (idempotently) to the proposals the store keeps, including proposals made,
approved or executed around the API.

- ``ProposalSubmitted``: a proposal is published (one made elsewhere is recorded, decoded);
- ``ApproveHash`` (either Safe): a governor approved on chain;
- ``ExecutionSuccess`` / ``ExecutionFailure`` (either Safe): the Safe transaction ran: a guardian
  suspension (or a cancel, or a reject) is executed, a timelock batch is scheduled; proposals of
  that Safe whose nonce is now used become ``stale``;
- ``CallScheduled`` / ``CallExecuted`` / ``Cancelled`` (timelock): scheduled with its earliest
  execution time, executed, cancelled.

Failure hooks record why a governance transaction reverted (the Safe and the timelock pass the
registry's own custom errors through).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.core.errors import ChainRevertError
from settlement.domains.governance.actions import decode_safe_call
from settlement.domains.anchoring.digests import digest_changed
from settlement.domains.governance.proposals import APPROVAL_KIND, PROPOSAL_KIND, drop_onboarding
from settlement.store.models import Member, OutboxRow
from settlement.store.models.governance import GovernanceApproval, GovernanceProposal, MemberOnboarding

__all__ = ["EVENT_HANDLERS", "FAILURE_HOOKS"]

log = logging.getLogger("ledger.governance")

SAFE_CONTRACTS = frozenset({"ConsortiumSafe"})
TIMELOCK_CONTRACTS = frozenset({"ConsortiumTimelock"})
LOG_CONTRACTS = frozenset({"GovernanceProposals", "IGovernanceProposals"})
ERROR_TEXT_LEN_MAX = 2_000


def _proposal(session: Session, proposal_id: str) -> GovernanceProposal | None:
    return session.get(GovernanceProposal, proposal_id.lower())


def on_submitted(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in LOG_CONTRACTS:
        return
    a = lg.args
    p = _proposal(session, a["safeTxHash"])
    if p is not None:
        p.proposer, p.published_tx_hash = a["proposer"], lg.tx_hash
        digest_changed(session, PROPOSAL_KIND, p)
        return
    data = bytes.fromhex(a["data"][2:])
    decoded = decode_safe_call(a["to"], data)
    member_id = None
    if decoded["member_onchain_id"]:
        member_id = session.scalar(select(Member.id).where(Member.onchain_id == decoded["member_onchain_id"]))
        if member_id is None:
            waiting = session.get(MemberOnboarding, decoded["member_onchain_id"])
            member_id = waiting.member_id if waiting is not None else None
    session.add(GovernanceProposal(
        id=a["safeTxHash"].lower(), safe=decoded["safe"], safe_address=a["safe"], safe_nonce=int(a["nonce"]),
        to=a["to"], data=data, description=a["description"][:ERROR_TEXT_LEN_MAX], action=decoded["action"],
        member_id=member_id, member_onchain_id=decoded["member_onchain_id"], params={"external": True},
        calls=decoded["calls"], salt=decoded["salt"], op_id=decoded["op_id"], delay_s=decoded["delay_s"],
        status="proposed", proposed_by="chain", proposer=a["proposer"], published_tx_hash=lg.tx_hash))
    session.flush()
    digest_changed(session, PROPOSAL_KIND, a["safeTxHash"].lower())
    log.info("governance proposal %s published on chain by %s (around the API): %s", a["safeTxHash"], a["proposer"],
             decoded["action"])


def on_approve_hash(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in SAFE_CONTRACTS:
        return
    p = _proposal(session, lg.args["approvedHash"])
    if p is None or p.safe_address.lower() != lg.address.lower():
        return
    owner = lg.args["owner"]
    approval = session.scalar(select(GovernanceApproval).where(GovernanceApproval.proposal_id == p.id,
                                                               GovernanceApproval.governor == owner))
    if approval is None:
        approval = GovernanceApproval(proposal_id=p.id, governor=owner, status="approved", tx_hash=lg.tx_hash)
        session.add(approval)
        session.flush()
    elif approval.signature is None:
        approval.status, approval.tx_hash = "approved", lg.tx_hash
    digest_changed(session, APPROVAL_KIND, approval)


def _stale_others(session: Session, safe_address: str, executed: GovernanceProposal | None, nonce: int | None) -> None:
    if nonce is None:
        return
    others = session.scalars(select(GovernanceProposal).where(
        GovernanceProposal.safe_address == safe_address, GovernanceProposal.status == "proposed",
        GovernanceProposal.safe_nonce <= nonce))
    for other in others:
        if executed is None or other.id != executed.id:
            other.status, other.error = "stale", f"its Safe nonce {other.safe_nonce} was used by another transaction"
            digest_changed(session, PROPOSAL_KIND, other)
            drop_onboarding(session, other)


def on_execution_success(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in SAFE_CONTRACTS:
        return
    p = _proposal(session, lg.args["txHash"])
    if p is None:
        return
    if p.status == "proposed":
        p.scheduled_tx_hash = lg.tx_hash
        if p.op_id:
            p.status = "scheduled"  # CallScheduled (same transaction) brings the earliest execution time
        else:
            p.status, p.executed_tx_hash, p.executed_block = "executed", lg.tx_hash, lg.block_number
            if p.action == "reject":
                target = _target(session, p)
                if target is not None and target.status == "proposed":
                    target.status, target.error = "stale", f"rejected by proposal {p.id}"
                    digest_changed(session, PROPOSAL_KIND, target)
                    drop_onboarding(session, target)
        p.error = None
        digest_changed(session, PROPOSAL_KIND, p)
    _stale_others(session, p.safe_address, p, int(p.safe_nonce))


def _target(session: Session, p: GovernanceProposal) -> GovernanceProposal | None:
    pid = (p.params or {}).get("proposal_id")
    return _proposal(session, pid) if pid else None


def on_execution_failure(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in SAFE_CONTRACTS:
        return
    p = _proposal(session, lg.args["txHash"])
    if p is not None:
        p.error = "the Safe transaction's call failed"
        digest_changed(session, PROPOSAL_KIND, p)


def on_call_scheduled(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in TIMELOCK_CONTRACTS:
        return
    p = session.scalar(select(GovernanceProposal).where(GovernanceProposal.op_id == lg.args["id"].lower()))
    if p is None:
        return
    if p.status == "proposed":
        p.status = "scheduled"
    p.scheduled_tx_hash = p.scheduled_tx_hash or lg.tx_hash
    if lg.block_timestamp is not None:
        p.eta_s = lg.block_timestamp + int(lg.args["delay"])
    digest_changed(session, PROPOSAL_KIND, p)


def on_call_executed(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in TIMELOCK_CONTRACTS:
        return
    p = session.scalar(select(GovernanceProposal).where(GovernanceProposal.op_id == lg.args["id"].lower()))
    if p is not None and p.status != "executed":
        p.status, p.executed_tx_hash, p.executed_block, p.error = "executed", lg.tx_hash, lg.block_number, None
        digest_changed(session, PROPOSAL_KIND, p)
        log.info("governance proposal %s executed (tx %s)", p.id, lg.tx_hash)


def on_cancelled(session: Session, lg: DecodedLog) -> None:
    if lg.contract not in TIMELOCK_CONTRACTS:
        return
    p = session.scalar(select(GovernanceProposal).where(GovernanceProposal.op_id == lg.args["id"].lower()))
    if p is not None and p.status in ("proposed", "scheduled"):
        p.status, p.error = "cancelled", f"cancelled on chain (tx {lg.tx_hash})"
        digest_changed(session, PROPOSAL_KIND, p)
        drop_onboarding(session, p)


def _failed(session: Session, row: OutboxRow, error: ChainRevertError) -> None:
    p = _proposal(session, row.aggregate_id)
    if p is None:
        return
    p.error = f"{row.function} reverted: {error.error_name or 'revert'} {error.detail}"[:ERROR_TEXT_LEN_MAX]
    digest_changed(session, PROPOSAL_KIND, p)
    if row.kind == "governance.approve":
        approval = session.scalar(select(GovernanceApproval).where(GovernanceApproval.outbox_id == row.id))
        if approval is not None:
            approval.status = "failed"
            digest_changed(session, APPROVAL_KIND, approval)
    elif row.kind == "governance.execute" and p.status == "scheduled":
        p.status = "failed"
        drop_onboarding(session, p)
    log.warning("governance proposal %s: %s", p.id, p.error)


EVENT_HANDLERS = (
    ("ProposalSubmitted", on_submitted),
    ("ApproveHash", on_approve_hash),
    ("ExecutionSuccess", on_execution_success),
    ("ExecutionFailure", on_execution_failure),
    ("CallScheduled", on_call_scheduled),
    ("CallExecuted", on_call_executed),
    ("Cancelled", on_cancelled),
)
FAILURE_HOOKS = (
    ("governance.propose", _failed),
    ("governance.approve", _failed),
    ("governance.schedule", _failed),
    ("governance.execute", _failed),
)
