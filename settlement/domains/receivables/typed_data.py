"""Own-key approvals: the EIP-712 typed data a party signs with its own key, and recovery.

The contract verifies the signature itself (so the operator, who relays it, cannot forge one);
the service recovers it first only to refuse a wrong or stale signature before anything is
written. Domain: name "ReceivableRegistry", version "1", the chain id and the registry's address.
"""

from __future__ import annotations

import re
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from settlement.core.errors import SignatureInvalidError

__all__ = ["DOMAIN_NAME", "DOMAIN_VERSION", "SIGNATURE_HEX_LEN", "confirm_typed_data", "accept_typed_data",
           "recover_signer", "check_signature_hex"]

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
    {"name": "invoiceHash", "type": "bytes32"},
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
    """``ConfirmReceivable(receivableId, invoiceHash, nonce, deadline)`` for ``eth_signTypedData_v4``."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "ConfirmReceivable": _CONFIRM_TYPE},
        "primaryType": "ConfirmReceivable",
        "domain": _domain(chain_id, contract),
        "message": {"receivableId": receivable_id, "invoiceHash": invoice_hash, "nonce": nonce,
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
