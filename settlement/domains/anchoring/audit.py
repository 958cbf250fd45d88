"""The audit: every record rebuilt from its live row and checked against the anchored journal.

Fed by a source (the store itself, read-only: :mod:`.audit_store`; or an export: :mod:`.export`),
the engine checks, per record (``kind/id``):

- its journal versions are 1..n, each names its predecessor's digest, and each stored digest is
  ``keccak256`` of its stored text (``JOURNAL`` findings otherwise); no version changes a field
  the record fixes at creation;
- the live row, encoded by the kind's canonical encoding (:mod:`.kinds`), is the latest version
  (``CHANGED``), a row whose record the journal has is still there (``DELETED``), and a row has a
  journal record at all (``INSERTED``);

per anchored batch: the leaves recomputed from the journal rebuild the anchored root with the
anchored leaf count (``BATCH``), and on chain, read at the latest block, the root is anchored as
stored, by the transaction whose receipt and block hash say when (``CHAIN``), and the proofs of a
few of its leaves (``onchain_proofs`` per batch), rebuilt from the store, verify twice: locally
(the OpenZeppelin StandardMerkleTree fold) and by the contract itself, which hashes the leaf from
its values and checks the proof against its anchored root and schema (``verifyJournalValues`` /
``verifyEventValues`` / ``verifyValues``; ``CHAIN`` when it says false); and every root the
contract anchored is a batch of the store (``CHAIN``: a batch deleted with its records).

Each finding names the anchored batch that proves it (sequence, root, transaction, block and
time). Nothing raises for a bad store: a failure is a finding.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from anchors.errors import AnchorsError, InvalidInputError, NodeUnavailableError
from anchors.events import ProvenanceEvent, leaf_encoding
from anchors.merkle import make_merkle_tree, process_proof, standard_leaf_hash, to_bytes32, to_hex, tree_proof
from anchors.proof import AnchorRef
from anchors.rpc import Rpc
from anchors.verify import check_anchor, proven_by_contract

from settlement.domains.anchoring.digests import (
    JOURNAL_SCHEMAS,
    TOMBSTONE_JSON,
    ZERO_DIGEST,
    digest_of,
    journal_leaf_value,
)
from settlement.domains.anchoring.kinds import KINDS

__all__ = ["FINDINGS_SHOWN_MAX", "NO_TABLE", "ONCHAIN_PROOFS_PER_BATCH_DEFAULT", "ONCHAIN_PROOFS_PER_BATCH_MAX",
           "AuditReport", "Auditor", "BatchInfo", "Finding", "Version"]

# Findings printed one by one (all are counted, and kept in the report up to FINDINGS_KEPT_MAX).
FINDINGS_SHOWN_MAX = 200
FINDINGS_KEPT_MAX = 100_000
# The live row of a kind the audit has no table for (a record journaled by record_digest alone).
NO_TABLE = object()
# Leaves per anchored batch whose proof (rebuilt from the store) the contract is also asked to
# verify, one eth_call each: the first leaves fed to the batch. The rebuilt root already proves
# every leaf locally; the contract's own check (the leaf hashed on chain from its values, the
# anchored root's schema) is the independent second opinion. 0: none.
ONCHAIN_PROOFS_PER_BATCH_DEFAULT = 1
ONCHAIN_PROOFS_PER_BATCH_MAX = 10_000


@dataclass(frozen=True)
class Version:
    """One journal row: a version of a record as stored."""

    version: int
    recorded_at_s: int
    prev_digest: str | None
    digest: str
    canonical_json: str
    batch_id: int | None


@dataclass(frozen=True)
class BatchInfo:
    """An anchor batch as the store holds it."""

    id: int
    kind: str  # journal | events
    sequence: int
    root: str
    leaf_count: int
    schema_version: int
    status: str
    tx_hash: str | None
    block_number: int | None
    block_time: int | None

    def label(self) -> str:
        where = (f", tx {self.tx_hash}, block {self.block_number}" if self.tx_hash and self.block_number else "")
        when = (", " + datetime.fromtimestamp(self.block_time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                if self.block_time else "")
        return f"{self.kind} batch {self.sequence} (root {self.root}{where}{when})"


@dataclass(frozen=True)
class Finding:
    verdict: str  # CHANGED | DELETED | INSERTED | JOURNAL | BATCH | CHAIN
    subject: str  # kind/id, or "batch N"
    detail: str
    proven_by: str | None = None

    def line(self) -> str:
        return f"{self.verdict} {self.subject}: {self.detail}" + (f"; proven by {self.proven_by}"
                                                                  if self.proven_by else "")

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "subject": self.subject, "detail": self.detail, "proven_by": self.proven_by}


@dataclass
class AuditReport:
    ok: bool = True
    records: int = 0
    versions: int = 0
    versions_pending: int = 0
    batches: int = 0
    batches_pending: int = 0
    events: int = 0
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    findings: list[Finding] = field(default_factory=list)
    chain_checked: bool = False
    unreachable: bool = False
    # Leaf proofs rebuilt from the store: folded to the anchored root locally, and verified by the
    # contract (``proof_functions``: which of its functions); ``proofs_unsupported``: batches whose
    # contract has no values functions (deployed before them: the local check only).
    proofs_local: int = 0
    proofs_on_chain: int = 0
    proof_functions: set[str] = field(default_factory=set)
    proofs_unsupported: int = 0

    def subjects(self, verdict: str) -> set[str]:
        return {f.subject for f in self.findings if f.verdict == verdict}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "versions": self.versions,
                "versions_pending": self.versions_pending, "batches": self.batches,
                "batches_pending": self.batches_pending, "events": self.events, "counts": dict(self.counts),
                "chain_checked": self.chain_checked, "unreachable": self.unreachable,
                "proofs": {"verified_locally": self.proofs_local, "verified_on_chain": self.proofs_on_chain,
                           "functions": sorted(self.proof_functions),
                           "batches_without_values_functions": self.proofs_unsupported},
                "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class _Sample:
    """A leaf whose proof the contract is asked to verify: who it is, and its values."""

    subject: str
    leaf_encoding: tuple[str, ...]
    value: list[Any]
    leaf: bytes


@dataclass(frozen=True)
class ChainView:
    """Where the anchors are: a node (``rpc``), the TraceAnchor contract and the chain id."""

    rpc: Rpc
    contract: str
    chain_id: int


def _diff(anchored: str, live: str) -> str:
    """The fields that differ between two records' texts, for people."""
    try:
        a, b = json.loads(anchored), json.loads(live)
    except ValueError:
        return "the record's text differs"
    if not isinstance(a, dict) or not isinstance(b, dict):
        return "the record's text differs"
    parts = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            parts.append(f"{key}: journal {json.dumps(a.get(key, '<absent>'))[:120]}, "
                         f"live {json.dumps(b.get(key, '<absent>'))[:120]}")
    return "; ".join(parts[:8]) + (f"; and {len(parts) - 8} more fields" if len(parts) > 8 else "") \
        if parts else "the record's text differs"


class Auditor:
    """Feed it records (:meth:`record`, :meth:`inserted`, :meth:`event`), then :meth:`finish`."""

    def __init__(self, batches: Iterable[BatchInfo], chain: ChainView | None = None,
                 out: Callable[[str], None] = print, *, verbose: bool = False,
                 onchain_proofs: int = ONCHAIN_PROOFS_PER_BATCH_DEFAULT) -> None:
        if not 0 <= onchain_proofs <= ONCHAIN_PROOFS_PER_BATCH_MAX:
            raise ValueError(f"onchain_proofs must be within 0..{ONCHAIN_PROOFS_PER_BATCH_MAX}")
        self.batches = {b.id: b for b in batches}
        self.chain = chain
        self.out = out
        self.verbose = verbose
        self.onchain_proofs = onchain_proofs
        self.report = AuditReport()
        self._leaves: dict[int, list[bytes]] = defaultdict(list)
        self._samples: dict[int, list[_Sample]] = defaultdict(list)
        self._members: dict[int, list[str]] = defaultdict(list)  # batch id -> subjects with journal findings
        self._last_anchored = max((b for b in self.batches.values()
                                   if b.kind == "journal" and b.status == "anchored"),
                                  key=lambda b: b.sequence, default=None)

    # -- findings --

    def finding(self, verdict: str, subject: str, detail: str, proven_by: BatchInfo | str | None = None) -> None:
        proof = proven_by.label() if isinstance(proven_by, BatchInfo) else proven_by
        f = Finding(verdict, subject, detail, proof)
        self.report.ok = False
        self.report.counts[verdict] += 1
        if len(self.report.findings) < FINDINGS_KEPT_MAX:
            self.report.findings.append(f)
        if sum(self.report.counts.values()) <= FINDINGS_SHOWN_MAX:
            self.out(f.line())

    def _anchored(self, version: Version) -> BatchInfo | None:
        batch = self.batches.get(version.batch_id) if version.batch_id is not None else None
        return batch if batch is not None and batch.status == "anchored" else None

    def _proof_of(self, versions: list[Version]) -> BatchInfo | str:
        for v in reversed(versions):
            batch = self._anchored(v)
            if batch is not None:
                return batch if v is versions[-1] else f"v{v.version} in {batch.label()} (later versions not anchored yet)"
        return "no anchored batch yet (its versions are not anchored)"

    # -- records --

    def record(self, kind: str, record_id: str, versions: list[Version], live: Any) -> None:
        """One record: its journal versions (any order) and its live text (None: no row)."""
        subject = f"{kind}/{record_id}"
        self.report.records += 1
        versions = sorted(versions, key=lambda v: v.version)
        self._chain(kind, record_id, subject, versions)
        if live is NO_TABLE or not versions:
            return
        latest = versions[-1]
        if live is None:
            if latest.canonical_json != TOMBSTONE_JSON:
                self.finding("DELETED", subject, f"no live row; the journal's latest version is v{latest.version}",
                             self._proof_of(versions))
        elif latest.canonical_json == TOMBSTONE_JSON:
            self.finding("INSERTED", subject, f"a live row, but v{latest.version} recorded its deletion",
                         self._proof_of(versions))
        elif live != latest.canonical_json:
            self.finding("CHANGED", subject, f"live row differs from v{latest.version}: "
                         f"{_diff(latest.canonical_json, live)}", self._proof_of(versions))
        elif self.verbose:
            self.out(f"[ok] {subject}: live row is v{latest.version}")

    def _chain(self, kind: str, record_id: str, subject: str, versions: list[Version]) -> None:
        immutable = KINDS[kind].immutable if kind in KINDS else frozenset()
        first: dict[str, Any] | None = None
        previous: Version | None = None
        for v in versions:
            self.report.versions += 1
            problems = []
            expected = 1 if previous is None else previous.version + 1
            if v.version != expected:
                problems.append(f"is v{v.version} where v{expected} was expected (a version was deleted or added)")
            text_digest = digest_of(v.canonical_json)
            if text_digest != v.digest:
                problems.append(f"stored digest {v.digest} is not keccak256 of its text ({text_digest})")
            want_prev = ZERO_DIGEST if previous is None else previous.digest
            if v.prev_digest is not None and v.prev_digest != want_prev:
                problems.append(f"names predecessor {v.prev_digest}, the version before it is {want_prev}")
            if immutable and v.canonical_json != TOMBSTONE_JSON:
                try:
                    fields = json.loads(v.canonical_json)
                except ValueError:
                    fields = None
                if isinstance(fields, dict):
                    if first is None:
                        first = fields
                    else:
                        moved = sorted(k for k in immutable if fields.get(k) != first.get(k))
                        if moved:
                            problems.append(f"changes {', '.join(moved)}, fixed since v{versions[0].version}")
            batch = self.batches.get(v.batch_id) if v.batch_id is not None else None
            if batch is None or batch.status != "anchored":
                self.report.versions_pending += 1
            if batch is not None:
                self._leaf(kind, record_id, v, text_digest, batch, subject, problems)
            if problems:
                self._members[v.batch_id or 0].append(subject)
                self.finding("JOURNAL", subject, f"v{v.version} " + "; ".join(problems),
                             batch if batch is not None and batch.status == "anchored" else None)
            previous = v

    def _leaf(self, kind: str, record_id: str, v: Version, text_digest: str, batch: BatchInfo, subject: str,
              problems: list[str]) -> None:
        encoding = JOURNAL_SCHEMAS.get(batch.schema_version)
        if encoding is None:
            problems.append(f"its batch {batch.sequence} has an unknown journal schema {batch.schema_version}")
            return
        # From the text, not the stored digest: an edited text changes the leaf, hence the root.
        value = journal_leaf_value(kind, record_id, v.version, v.recorded_at_s, v.prev_digest, text_digest,
                                   batch.schema_version)
        leaf = standard_leaf_hash(encoding, value)
        self._leaves[batch.id].append(leaf)
        self._sample(batch, f"{subject} v{v.version}", encoding, value, leaf)

    def _sample(self, batch: BatchInfo, subject: str, encoding: tuple[str, ...], value: list[Any],
                leaf: bytes) -> None:
        samples = self._samples[batch.id]
        if self.chain is not None and batch.status == "anchored" and len(samples) < self.onchain_proofs:
            samples.append(_Sample(subject, tuple(encoding), list(value), leaf))

    def inserted(self, kind: str, record_id: str, detail: str = "") -> None:
        """A live row with no journal record at all."""
        self.report.records += 1
        last = self._last_anchored
        self.finding("INSERTED", f"{kind}/{record_id}", detail or "a live row the journal never recorded",
                     f"its absence from every anchored journal batch (latest: {last.label()})" if last
                     else "no journal batch is anchored yet")

    # -- provenance events --

    def event(self, event_id: str, event: Any, stored_value: Any, batch_id: int | None) -> None:
        """A provenance event row: its leaf is recomputed from the event itself."""
        self.report.events += 1
        batch = self.batches.get(batch_id) if batch_id is not None else None
        subject = f"provenance.event/{event_id}"
        try:
            parsed = ProvenanceEvent.from_json(event)
            if batch is None:
                return
            value = parsed.leaf_value(batch.schema_version)
        except (AnchorsError, ValueError, TypeError) as exc:
            self.finding("CHANGED", subject, f"the stored event is not a valid event: {exc}", batch)
            return
        if [str(x).lower() for x in value] != [str(x).lower() for x in stored_value or []]:
            self.finding("CHANGED", subject, "the stored event does not give its stored leaf value", batch)
            self._members[batch.id].append(subject)
        encoding = leaf_encoding(batch.schema_version)
        leaf = standard_leaf_hash(encoding, value)
        self._leaves[batch.id].append(leaf)
        self._sample(batch, subject, encoding, value, leaf)

    # -- batches and the chain --

    def finish(self, anchored_on_chain: Iterable[tuple[str, int, int, str]] | None = None) -> AuditReport:
        """Rebuild every batch, check the anchored ones on chain; ``anchored_on_chain``: every
        (root, sequence, block, tx hash) the contract emitted ``RootAnchored`` for, when known."""
        for batch in sorted(self.batches.values(), key=lambda b: b.sequence):
            self._batch(batch)
        if anchored_on_chain is not None:
            known = {b.root.lower() for b in self.batches.values()}
            for root, sequence, block, tx in anchored_on_chain:
                if root.lower() not in known:
                    self.finding("CHAIN", f"batch {sequence}", f"root {root} was anchored in block {block} (tx {tx}) "
                                 "but the store has no such batch: the batch and its records were deleted",
                                 f"RootAnchored({root}, {sequence}) in block {block}")
        r = self.report
        summary = (f"{r.records} records, {r.versions} journal versions ({r.versions_pending} not anchored yet), "
                   f"{r.events} provenance events, {r.batches} anchored batches ({r.batches_pending} not anchored "
                   f"yet); on chain: {'checked at the latest block' if r.chain_checked else 'not checked'}")
        if r.chain_checked:
            summary += (f"; leaf proofs: {r.proofs_local} verified locally (StandardMerkleTree), "
                        f"{r.proofs_on_chain} by the contract"
                        + (f" ({', '.join(sorted(r.proof_functions))})" if r.proof_functions else "")
                        + (f", {r.proofs_unsupported} batches on a TraceAnchor without the values functions"
                           if r.proofs_unsupported else ""))
        if r.ok:
            self.out(f"AUDIT PASSED: {summary}")
        else:
            counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(r.counts.items()))
            self.out(f"AUDIT FAILED: {counts}; {summary}")
        return r

    def _batch(self, batch: BatchInfo) -> None:
        if batch.status != "anchored":
            self.report.batches_pending += 1
            return
        self.report.batches += 1
        leaves = sorted(self._leaves.get(batch.id, []))
        tree: list[bytes] | None = None
        try:
            tree = make_merkle_tree(leaves) if leaves else None
        except AnchorsError:
            tree = None
        root = to_hex(tree[0]) if tree is not None else None
        rebuilt = root == batch.root and len(leaves) == batch.leaf_count
        if not rebuilt:
            suspects = sorted(set(self._members.get(batch.id, [])))
            self.finding("BATCH", f"batch {batch.sequence}",
                         f"its {len(leaves)} {batch.kind} leaves, recomputed from the store, rebuild to root {root}; "
                         f"anchored: {batch.leaf_count} leaves, root {batch.root} (a version of it was changed, "
                         f"deleted or added)" + (f"; records whose journal rows disagree: {', '.join(suspects[:20])}"
                                                 if suspects else ""), batch)
        if self.chain is not None:
            self._on_chain(batch)
            if rebuilt and tree is not None:
                self._proofs(batch, tree, leaves)

    def _on_chain(self, batch: BatchInfo) -> None:
        chain = self.chain
        if chain is None or self.report.unreachable:
            return
        if not batch.tx_hash or not batch.block_number:
            self.finding("CHAIN", f"batch {batch.sequence}", "marked anchored without a transaction and block", batch)
            return
        try:
            root = to_hex(to_bytes32(batch.root, "root"))
            anchor = AnchorRef(chain_id=chain.chain_id, contract=chain.contract, tx_hash=batch.tx_hash,
                               block_number=batch.block_number, block_time=batch.block_time or 0,
                               batch_sequence=batch.sequence)
            if batch.block_time is None:  # not filled in yet: the block (by the receipt's hash) says
                block = chain.rpc("eth_getBlockByNumber", [hex(batch.block_number), False])
                anchor = AnchorRef(**{**anchor.to_json(), "block_time": int(block["timestamp"], 16)})
            steps = check_anchor(chain.rpc, anchor, root, leaf_count=batch.leaf_count,
                                 schema_version=batch.schema_version)
        except NodeUnavailableError as exc:
            self.report.unreachable = True
            self.finding("CHAIN", f"batch {batch.sequence}", f"the node could not be asked: {exc.detail}")
            return
        except (InvalidInputError, KeyError, TypeError, ValueError) as exc:
            self.finding("CHAIN", f"batch {batch.sequence}", f"its anchor cannot be checked: {exc}", batch)
            return
        self.report.chain_checked = True
        failed = [s for s in steps if not s.ok]
        for step in failed:
            self.finding("CHAIN", f"batch {batch.sequence}", f"{step.name}: {step.detail}", batch)
        if not failed and self.verbose:
            self.out(f"[ok] {batch.label()}: anchored as stored (anchorOf at the latest block, receipt, block hash)")

    def _proofs(self, batch: BatchInfo, tree: list[bytes], leaves: list[bytes]) -> None:
        """The sampled leaves' proofs, from the tree rebuilt out of the store: folded to the root
        locally, then verified by the contract at the latest block."""
        chain = self.chain
        if chain is None or self.report.unreachable:
            return
        root = to_bytes32(batch.root, "root")
        passed: list[str] = []
        name = ""
        for sample in self._samples.get(batch.id, []):
            proof = tree_proof(tree, len(tree) - 1 - bisect_left(leaves, sample.leaf))
            if process_proof(sample.leaf, proof) != root:  # cannot happen when the tree rebuilt the root
                self.finding("BATCH", f"batch {batch.sequence}", f"the proof of {sample.subject} does not fold to "
                             "the anchored root", batch)
                continue
            self.report.proofs_local += 1
            try:
                name, ok = proven_by_contract(chain.rpc, chain.contract, root, proof, sample.leaf_encoding,
                                              sample.value, batch.schema_version)
            except NodeUnavailableError as exc:
                self.report.unreachable = True
                self.finding("CHAIN", f"batch {batch.sequence}", f"the node could not be asked: {exc.detail}")
                return
            if ok is None:
                self.report.proofs_unsupported += 1
                self.out(f"[note] {batch.label()}: this TraceAnchor has no verifyValues functions (deployed before "
                         "them): its leaves are proven locally only")
                return
            self.report.proof_functions.add(name)
            if not ok:
                self.finding("CHAIN", f"batch {batch.sequence}",
                             f"TraceAnchor.{name}(root, proof, value) = false at the latest block for {sample.subject}, "
                             f"whose proof, rebuilt from the store, folds to the anchored root locally (the contract "
                             f"does not hold this root with leaf schema {batch.schema_version})", batch)
                continue
            self.report.proofs_on_chain += 1
            passed.append(sample.subject)
        if passed and self.verbose:
            self.out(f"[ok] {batch.label()}: {len(passed)} leaf proofs ({', '.join(passed[:3])}"
                     f"{', …' if len(passed) > 3 else ''}) verified locally (StandardMerkleTree) and by "
                     f"TraceAnchor.{name} at the latest block")
