"""Provenance anchoring: OpenZeppelin-compatible Merkle trees, proof documents, verifiers.

Stands alone (its own distribution, ``ledger-anchors``; no web3, no service): an auditor can
verify a proof document with this package and, optionally, any EVM JSON-RPC endpoint. See
docs/anchors.md.
"""

from anchors.errors import AnchorsError, InvalidInputError, NodeUnavailableError
from anchors.events import (
    LEAF_ENCODING_V1,
    LEAF_FIELD_NAMES_V1,
    SCHEMA_VERSION,
    EventType,
    ProvenanceEvent,
    canonical_json,
    leaf_encoding,
)
from anchors.fetch import NotAnchoredYetError, fetch_proof
from anchors.journal import (
    JOURNAL_LEAF_ENCODING,
    JOURNAL_SCHEMA_VERSION,
    JOURNAL_SCHEMAS,
    JournalRecord,
    journal_leaf_value,
)
from anchors.keccak import KECCAK_BACKEND, keccak256
from anchors.merkle import (
    LEAVES_MAX,
    PROOF_DEPTH_MAX,
    MultiProof,
    StandardMerkleTree,
    process_multiproof,
    process_proof,
    standard_leaf_hash,
    verify_multiproof,
)
from anchors.merkle import verify as verify_leaf
from anchors.proof import PROOF_FORMAT, AnchorRef, ProofDocument, build_proof_document, parse_proof_document
from anchors.rpc import HttpRpc, Rpc, redact_url
from anchors.verify import (
    VerificationResult,
    call_anchor_of,
    call_verify,
    call_verify_values,
    check_anchor,
    verify_document,
    verify_on_chain,
)

__all__ = [
    "JOURNAL_LEAF_ENCODING",
    "JOURNAL_SCHEMAS",
    "JOURNAL_SCHEMA_VERSION",
    "JournalRecord",
    "NotAnchoredYetError",
    "check_anchor",
    "fetch_proof",
    "journal_leaf_value",
    "AnchorsError",
    "HttpRpc",
    "InvalidInputError",
    "NodeUnavailableError",
    "Rpc",
    "redact_url",
    "KECCAK_BACKEND",
    "LEAF_ENCODING_V1",
    "LEAF_FIELD_NAMES_V1",
    "LEAVES_MAX",
    "PROOF_DEPTH_MAX",
    "PROOF_FORMAT",
    "SCHEMA_VERSION",
    "AnchorRef",
    "EventType",
    "MultiProof",
    "ProofDocument",
    "ProvenanceEvent",
    "StandardMerkleTree",
    "VerificationResult",
    "build_proof_document",
    "call_anchor_of",
    "call_verify",
    "call_verify_values",
    "canonical_json",
    "keccak256",
    "leaf_encoding",
    "parse_proof_document",
    "process_multiproof",
    "process_proof",
    "standard_leaf_hash",
    "verify_leaf",
    "verify_document",
    "verify_multiproof",
    "verify_on_chain",
]
