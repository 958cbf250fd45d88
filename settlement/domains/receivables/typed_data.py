"""Own-key approvals: the EIP-712 typed data a party signs with its own key, recovery, and the
service functions that serve it to a member and check what comes back.

Each approval names the terms (what the buyer owes, what the financier offers, what the holder
accepts), and the contract builds the struct hash from its own records, so a signature over
other terms does not verify. Nonces are keyed (ERC-4337 style, ``key << 64 | sequence``): each
flow uses the top 192 bits of its receivable or part id as key (:func:`nonce_key`), so parallel
approvals never race; ``invalidateNonce`` voids an unused signature. Signers are keys (ECDSA) or
contract wallets (ERC-1271, a bank's Safe say).

The contract verifies the signature itself (so the operator, who relays it, cannot forge one);
the service checks it first only to refuse a wrong or stale signature before anything is
written: a key's by recovery, a contract wallet's by an eth_call of its ``isValidSignature``.
Domain: name "ReceivableRegistry", version "1", the chain id and the registry's address.
"""

from __future__ import annotations

import re
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchors.keccak import keccak256
from settlement.chain.contracts import checksum_address

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
from settlement.domains.receivables.terms import day_number
from settlement.store.models import Member, MemberAccount
from settlement.store.models.receivables import Receivable

__all__ = ["DOMAIN_NAME", "DOMAIN_VERSION", "SIGNATURE_HEX_LEN", "SIGNATURE_HEX_LEN_MAX", "nonce_key",
           "confirm_typed_data", "offer_id_of", "offer_typed_data", "accept_typed_data", "typed_data_digest", "recover_signer",
           "check_signature_hex", "check_approval_signature", "signature_nonce", "deadline_within",
           "confirmation_typed_data", "confirm_typed", "check_signed_by"]

DOMAIN_NAME = "ReceivableRegistry"
DOMAIN_VERSION = "1"
SIGNATURE_HEX_LEN = 2 + 65 * 2
SIGNATURE_HEX_LEN_MAX = 2 + 4096 * 2  # a contract wallet's signature (a Safe's: 65 bytes per owner)
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_CONFIRM_TYPE = [
    {"name": "receivableId", "type": "bytes32"},
    {"name": "supplierId", "type": "bytes32"},
    {"name": "invoiceNumberHash", "type": "bytes32"},
    {"name": "faceValueMinor", "type": "uint128"},
    {"name": "currency", "type": "string"},
    {"name": "issueDay", "type": "uint32"},
    {"name": "dueDay", "type": "uint32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_PART_TERMS = [
    {"name": "amountMinor", "type": "uint128"},
    {"name": "currency", "type": "string"},
    {"name": "dueDay", "type": "uint32"},
    {"name": "advanceMinor", "type": "uint128"},
    {"name": "feeMinor", "type": "uint128"},
    {"name": "discountRatePpm", "type": "uint32"},
    {"name": "dayCountBasis", "type": "uint8"},
    {"name": "validUntil", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
_OFFER_TYPE = [{"name": "partId", "type": "bytes32"}, {"name": "offerId", "type": "bytes32"},
               {"name": "financierId", "type": "bytes32"}, *_PART_TERMS]
_ACCEPT_TYPE = [{"name": "partId", "type": "bytes32"}, {"name": "offerId", "type": "bytes32"},
                {"name": "financierId", "type": "bytes32"}, *_PART_TERMS]
NONCE_KEY_BITS = 192


def _domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract}


def nonce_key(record_id: str) -> int:
    """The nonce key of a flow: the top 192 bits of its receivable id (confirmation) or part id
    (offer, acceptance), so approvals of different receivables and parts never race."""
    return int(record_id, 16) >> 64


def confirm_typed_data(chain_id: int, contract: str, *, receivable_id: str, supplier_onchain_id: str,
                       invoice_number_hash: str, face_value_minor: int, currency: str, issue_day: int, due_day: int,
                       nonce: int, deadline: int) -> dict[str, Any]:
    """``ConfirmReceivable``: what the buyer owes, in terms (supplier, invoice number hash, face value
    and currency, issue and due dates), for ``eth_signTypedData_v4``."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "ConfirmReceivable": _CONFIRM_TYPE},
        "primaryType": "ConfirmReceivable",
        "domain": _domain(chain_id, contract),
        "message": {"receivableId": receivable_id, "supplierId": supplier_onchain_id,
                    "invoiceNumberHash": invoice_number_hash, "faceValueMinor": face_value_minor,
                    "currency": currency, "issueDay": issue_day, "dueDay": due_day, "nonce": nonce,
                    "deadline": deadline},
    }


def _part_terms(amount_minor: int, currency: str, due_day: int, advance_minor: int, fee_minor: int,
                discount_rate_ppm: int, day_count_basis: int, valid_until: int, nonce: int,
                deadline: int) -> dict[str, Any]:
    return {"amountMinor": amount_minor, "currency": currency, "dueDay": due_day, "advanceMinor": advance_minor,
            "feeMinor": fee_minor, "discountRatePpm": discount_rate_ppm, "dayCountBasis": day_count_basis,
            "validUntil": valid_until, "nonce": nonce, "deadline": deadline}


def offer_id_of(chain_id: int, contract: str, *, part_id: str, financier_onchain_id: str, salt: int) -> str:
    """A financing offer's id, assigned by the service before the offer is sent (the registry keys
    offers by it and refuses one used before): keccak256(abi.encode(chainId, registry, partId,
    financierId, salt)), ``salt`` a random 256-bit number the service stores with the operation
    (custodial offers) or the financier's signature nonce (signed offers: the id is then known when
    the typed data is built, and signed with the terms), as 0x-hex."""
    if not 0 <= salt < 2**256:
        raise ValueError("an offer id's salt is a uint256")
    encoded = (chain_id.to_bytes(32, "big") + bytes(12) + bytes.fromhex(checksum_address(contract)[2:])
               + bytes.fromhex(part_id[2:]) + bytes.fromhex(financier_onchain_id[2:]) + salt.to_bytes(32, "big"))
    if len(encoded) != 5 * 32:
        raise ValueError("an offer id is derived from five 32-byte words")
    return "0x" + keccak256(encoded).hex()


def offer_typed_data(chain_id: int, contract: str, *, part_id: str, offer_id: str, financier_onchain_id: str,
                     **terms: Any) -> dict[str, Any]:
    """``FinancingOffer``: the financier's terms on a part (offer id, amount, currency, due date,
    advance, fee, rate, day-count basis, validity)."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "FinancingOffer": _OFFER_TYPE},
        "primaryType": "FinancingOffer",
        "domain": _domain(chain_id, contract),
        "message": {"partId": part_id, "offerId": offer_id, "financierId": financier_onchain_id,
                    **_part_terms(**terms)},
    }


def accept_typed_data(chain_id: int, contract: str, *, part_id: str, offer_id: str, financier_onchain_id: str,
                      **terms: Any) -> dict[str, Any]:
    """``AcceptFinancingOffer``: the holder's acceptance of the current offer's terms."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "AcceptFinancingOffer": _ACCEPT_TYPE},
        "primaryType": "AcceptFinancingOffer",
        "domain": _domain(chain_id, contract),
        "message": {"partId": part_id, "offerId": offer_id, "financierId": financier_onchain_id,
                    **_part_terms(**terms)},
    }


def typed_data_digest(typed: dict[str, Any]) -> str:
    """The EIP-712 digest a contract wallet (ERC-1271) is asked about."""
    signable = encode_typed_data(full_message=typed)
    return "0x" + keccak256(b"\x19" + signable.version + signable.header + signable.body).hex()


def check_approval_signature(signature: str) -> str:
    """A signature of a key (65 bytes) or of a contract wallet (bounded), as 0x-hex."""
    if not isinstance(signature, str) or not re.match(r"^0x(?:[0-9a-fA-F]{2})+$", signature) \
            or len(signature) > SIGNATURE_HEX_LEN_MAX:
        raise SignatureInvalidError(f"the signature must be 0x-hex of at most {(SIGNATURE_HEX_LEN_MAX - 2) // 2} "
                                    "bytes", field="signature")
    return signature.lower()


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


def signature_nonce(facts: ChainFacts, member: Member, record_id: str) -> int:
    """The member's next EIP-712 nonce for the flow of ``record_id`` (its own key: see nonce_key).
    One operation at a time per receivable, so no approval of the same key is in flight."""
    return facts.nonce(member.id, nonce_key(record_id))


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
    """The EIP-712 ``ConfirmReceivable`` the buyer signs with its own key or contract wallet."""
    require_active(actor)
    r = get_receivable(session, actor, receivable_id)
    if actor.member_id != r.buyer_id:
        raise NotReceivableBuyerError(f"only {r.buyer_id}, the buyer, confirms receivable {r.id}",
                                      receivable_id=r.id)
    require_status(r, facts, "registered")
    return confirm_typed(facts, session, r, deadline_within(facts, deadline))


def confirm_typed(facts: ChainFacts, session: Session, r: Receivable, deadline: int) -> dict[str, Any]:
    buyer = session.get(Member, r.buyer_id)
    supplier = session.get(Member, r.supplier_id)
    return confirm_typed_data(facts.chain_id, facts.contract, receivable_id=r.id,
                              supplier_onchain_id=supplier.onchain_id, invoice_number_hash=r.invoice_hash,
                              face_value_minor=r.face_value_minor, currency=r.currency,
                              issue_day=day_number(r.issue_date), due_day=day_number(r.due_date),
                              nonce=signature_nonce(facts, buyer, r.id), deadline=deadline)


def check_signed_by(facts: ChainFacts, session: Session, typed: dict[str, Any], signature: str, member: Member,
                    signer: str | None = None) -> str:
    """The account that approved ``typed``, which must be an account of ``member`` (the store's
    mirror of the registry's accounts decides; the contract checks again when mined).

    A key's signature is recovered here; a contract wallet's (``signer`` with code on chain) was
    checked with ERC-1271 ``isValidSignature`` by eth_call when the chain facts were read."""
    if signer is not None and not _ADDRESS_RE.match(signer or ""):
        raise SignatureInvalidError("signer must be a 0x-address", field="signer")
    contract_check = facts.contract_signatures.get((signer or "").lower())
    if contract_check is not None:
        if not isinstance(signature, str) or len(signature) > SIGNATURE_HEX_LEN_MAX or not signature.startswith("0x"):
            raise SignatureInvalidError("the signature must be 0x-hex", field="signature")
        digest, valid = contract_check
        if digest != typed_data_digest(typed) or not valid:
            raise SignatureInvalidError(f"the contract wallet {signer} does not approve these terms (ERC-1271), "
                                        "or approved other terms or another nonce", signer=signer)
        account = checksum_address(signer)
    else:
        account = recover_signer(typed, signature)
        if signer is not None and account.lower() != signer.lower():
            raise SignatureInvalidError(f"the signature recovers to {account}, not {signer} (or it was made "
                                        "over other terms or another nonce)", signer=account)
    owner = session.scalar(select(MemberAccount.member_id).where(MemberAccount.address == account))
    if owner != member.id:
        raise SignatureInvalidError(f"{account} is not an account of {member.id} (or the signature was made "
                                    "over other terms or another nonce)", signer=account)
    return account
