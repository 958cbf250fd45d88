"""Evidence: provenance anchor proofs (``ledger-anchor-proof-v1`` documents) a receivable cites.

A document is accepted only if it is well formed, names an anchor, and verifies offline (the
leaf hashes to ``leaf_hash`` and the proof folds to ``root``). Whether it is *anchored* is checked
when it is shown, against this consortium's TraceAnchor: the anchor must name that contract on
this chain, and ``verify_on_chain`` (receipt, ``anchorOf(root)``, ``verify(root, proof, leaf)``)
must pass. A proof anchored in some other contract proves nothing here and is reported so.
"""

from __future__ import annotations

import logging
from typing import Any

from anchors.errors import InvalidInputError, NodeUnavailableError
from anchors.proof import ProofDocument, parse_proof_document
from anchors.verify import verify_document, verify_on_chain

from settlement.core.errors import EvidenceInvalidError
from settlement.domains.receivables.models import EvidenceCheck
from settlement.runtime import Runtime
from settlement.store.models.receivables import ReceivableEvidence

__all__ = ["ANCHOR_CONTRACT", "EVIDENCE_PER_RECEIVABLE_MAX", "LABEL_LEN_MAX", "parse_evidence", "check_evidence"]

log = logging.getLogger("ledger.receivables.evidence")

ANCHOR_CONTRACT = "TraceAnchor"
EVIDENCE_PER_RECEIVABLE_MAX = 16
LABEL_LEN_MAX = 200
# Leaf field 6 of schema v1 is the acting member's registry id.
_MEMBER_FIELD_V1 = 6


def parse_evidence(document: dict[str, Any]) -> ProofDocument:
    """A structurally valid, anchored document that verifies offline; EvidenceInvalidError else."""
    try:
        doc = parse_proof_document(document)
    except InvalidInputError as exc:
        raise EvidenceInvalidError(f"not a proof document: {exc.detail}", field="document") from None
    if doc.anchor is None:
        raise EvidenceInvalidError("the proof document has no anchor: cite it once its batch is anchored",
                                   field="document.anchor")
    offline = verify_document(doc)
    if not offline.verified:
        failed = next(s for s in offline.steps if not s.ok)
        raise EvidenceInvalidError(f"the proof does not verify: {failed.name}: {failed.detail}",
                                   field="document", step=failed.name)
    return doc


def _by_party(doc: ProofDocument, party_onchain_ids: set[str]) -> bool:
    if doc.schema_version != 1 or len(doc.value) <= _MEMBER_FIELD_V1:
        return False
    return str(doc.value[_MEMBER_FIELD_V1]).lower() in party_onchain_ids


def check_evidence(runtime: Runtime, row: ReceivableEvidence, party_onchain_ids: set[str]) -> EvidenceCheck:
    """Verify a stored document again, offline and against the chain."""
    doc = parse_proof_document(row.document)
    offline = verify_document(doc)
    steps = [(s.name, s.ok, s.detail) for s in offline.steps]
    anchored: bool | None
    anchor = doc.anchor
    expected = runtime.manifest.addresses.get(ANCHOR_CONTRACT) if runtime.manifest else None
    if anchor is None:
        anchored = False
        steps.append(("anchor", False, "the document names no anchor"))
    elif expected is None or anchor.contract.lower() != expected.lower() \
            or anchor.chain_id != runtime.manifest.chain_id:  # type: ignore[union-attr]
        anchored = False
        steps.append(("anchor-contract", False,
                      f"anchored in {anchor.contract} on chain {anchor.chain_id}; this consortium's "
                      f"{ANCHOR_CONTRACT} is {expected}"))
    else:
        try:
            on_chain = verify_on_chain(doc, runtime.chain.rpc)  # the service's own JSON-RPC client
            steps = [(s.name, s.ok, s.detail) for s in on_chain.steps]
            anchored = all(s.ok for s in on_chain.steps[len(offline.steps):])
        except InvalidInputError as exc:  # the node answered, but not as an anchored root would
            anchored = False
            steps.append(("anchor-record", False, f"the anchor contract's answer is unusable: {exc.detail}"))
        except NodeUnavailableError as exc:
            log.warning("evidence %s: chain unavailable (%s)", row.id, exc)
            anchored = None
            steps.append(("anchor", False, "the chain could not be asked"))
    return EvidenceCheck(evidence=row, offline_verified=offline.verified, anchored=anchored,
                         by_party=_by_party(doc, party_onchain_ids), steps=tuple(steps))
