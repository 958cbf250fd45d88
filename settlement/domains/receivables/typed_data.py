"""Own-key approvals: the EIP-712 typed data a party signs with its own key, recovery, and the
service functions that serve it to a member and check what comes back.

The contract verifies the signature itself (so the operator, who relays it, cannot forge one);
the service recovers it first only to refuse a wrong or stale signature before anything is
written. Domain: name "ReceivableRegistry", version "1", the chain id and the registry's address.
"""

from __future__ import annotations

import re
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.core.errors import (
    NotReceivableBuyerError,
    SignatureExpiredError,
    SignatureInvalidError,
    ValidationError,
)
from settlement.domains.receivables.common import (
    SIGNATURE_DEADLINE_S_MAX,
    ChainFacts,
    get_receivable,
    require_active,
    require_status,
)
from settlement.domains.receivables.models import Actor
from settlement.store.models import Member, MemberAccount
from settlement.store.models.receivables import ReceivableOperation

__all__ = ["DOMAIN_NAME", "DOMAIN_VERSION", "SIGNATURE_HEX_LEN", "confirm_typed_data", "accept_typed_data",
           "recover_signer", "check_signature_hex", "signature_nonce", "deadline_within",
           "confirmation_typed_data", "check_signed_by"]

DOMAIN_NAME = "ReceivableRegistry"
DOMAIN_VERSION = "1"
SIGNATURE_HEX_LEN = 2 + 65 * 2
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_CONFIRM_TYPE = [
    {"name": "receivableId", "type": "bytes32"},
    {"name": "invoiceNumberHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_ACCEPT_TYPE = [
    {"name": "partId", "type": "bytes32"},
    {"name": "offerId", "type": "uint64"},
    {"name": "financierId", "type": "bytes32"},
    {"name": "advanceMinor", "type": "uint128"},
    {"name": "feeMinor", "type": "uint128"},
    {"name": "discountRatePpm", "type": "uint32"},
    {"name": "dayCountBasis", "type": "uint8"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def _domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract}


def confirm_typed_data(chain_id: int, contract: str, *, receivable_id: str, invoice_hash: str, nonce: int,
                       deadline: int) -> dict[str, Any]:
    """``ConfirmReceivable(receivableId, invoiceNumberHash, nonce, deadline)`` for ``eth_signTypedData_v4``."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "ConfirmReceivable": _CONFIRM_TYPE},
        "primaryType": "ConfirmReceivable",
        "domain": _domain(chain_id, contract),
        "message": {"receivableId": receivable_id, "invoiceNumberHash": invoice_hash, "nonce": nonce,
                    "deadline": deadline},
    }


def accept_typed_data(chain_id: int, contract: str, *, part_id: str, offer_id: int, financier_onchain_id: str,
                      advance_minor: int, fee_minor: int, discount_rate_ppm: int, day_count_basis: int, nonce: int,
                      deadline: int) -> dict[str, Any]:
    """``AcceptFinancingOffer(...)`` over the current offer's terms, for ``eth_signTypedData_v4``."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "AcceptFinancingOffer": _ACCEPT_TYPE},
        "primaryType": "AcceptFinancingOffer",
        "domain": _domain(chain_id, contract),
        "message": {"partId": part_id, "offerId": offer_id, "financierId": financier_onchain_id,
                    "advanceMinor": advance_minor, "feeMinor": fee_minor, "discountRatePpm": discount_rate_ppm,
                    "dayCountBasis": day_count_basis, "nonce": nonce, "deadline": deadline},
    }


def check_signature_hex(signature: str) -> str:
    if not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
        raise SignatureInvalidError("the signature must be 65 bytes as 0x-hex (r, s, v)", field="signature")
    return signature.lower()


def recover_signer(typed_data: dict[str, Any], signature: str) -> str:
    """The checksummed address that signed ``typed_data``; SignatureInvalidError if none can."""
    raw = bytes.fromhex(check_signature_hex(signature)[2:])
    try:
        return Account.recover_message(encode_typed_data(full_message=typed_data), signature=raw)
    except Exception as exc:  # eth_keys raises several types for malformed (r, s, v)
        raise SignatureInvalidError(f"the signature cannot be recovered: {type(exc).__name__}",
                                    field="signature") from None


# -- serving and checking a member's approvals ---------------------------------------------------------


def signature_nonce(facts: ChainFacts, session: Session, member: Member) -> int:
    """The member's next EIP-712 nonce once its own-key approvals in flight are mined."""
    in_flight = session.scalar(select(func.count()).select_from(ReceivableOperation).where(
        ReceivableOperation.nonce_member_id == member.id, ReceivableOperation.status == "pending")) or 0
    return facts.nonce(member.id) + int(in_flight)


def deadline_within(facts: ChainFacts, deadline: int | None) -> int:
    now = facts.now_s
    if deadline is None:
        return now + 3600
    if type(deadline) is not int or deadline > now + SIGNATURE_DEADLINE_S_MAX:
        raise ValidationError(f"deadline must be unix seconds within {SIGNATURE_DEADLINE_S_MAX} s from now",
                              field="deadline")
    if deadline < now:
        raise SignatureExpiredError(f"deadline {deadline} has passed (chain time {now})", deadline=deadline)
    return deadline


def confirmation_typed_data(facts: ChainFacts, session: Session, actor: Actor, receivable_id: str,
                            deadline: int | None = None) -> dict[str, Any]:
    """The EIP-712 ``ConfirmReceivable`` the buyer signs with its own key."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, confirms receivable {r.id}",
                                      receivable_id=r.id)
    require_status(r, facts, "registered")
    buyer = session.get(Member, r.buyer_id)
    return confirm_typed_data(facts.chain_id, facts.contract, receivable_id=r.id,
                                        invoice_hash=r.invoice_hash, nonce=signature_nonce(facts, session, buyer),
                                        deadline=deadline_within(facts, deadline))


def check_signed_by(session: Session, typed: dict[str, Any], signature: str, member: Member) -> str:
    """The account that signed ``typed``, which must be an account of ``member`` (the store's mirror
    of the registry's accounts decides; the contract checks again when the operation is mined)."""
    signer = recover_signer(typed, signature)
    owner = session.scalar(select(MemberAccount.member_id).where(MemberAccount.address == signer))
    if owner != member.id:
        raise SignatureInvalidError(f"the signature recovers to {signer}, not an account of {member.id} "
                                    "(or it was made over other terms or another nonce)", signer=signer)
    return signer
