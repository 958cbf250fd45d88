"""Is the service ready to take work and get it onto the chain? (issue 11, item 7)

``GET /ready`` and ``/metrics`` both read :func:`assess`, so they tell the same facts. Each reason
the service is not ready has a stable code:

- ``store-unreachable``: a read of the store failed;
- ``chain-unreachable``: the node did not answer within :data:`READY_RPC_TIMEOUT_S`;
- ``chain-mismatch``: the node's chain id is not the deployment manifest's;
- ``no-deployment``: no contracts deployed yet (no manifest);
- ``bootstrap-open``: the registry's bootstrap window is still open (docs/governance.md);
- ``follower-lagging``: the chain head is more than ``follower_lag_blocks_max`` blocks (plus the
  configured confirmations) ahead of the follower's checkpoint;
- ``outbox-stalled``: an outbox row has waited for the chain longer than ``outbox_age_s_max``;
- ``signer-nonce-gap``: a signer's lowest signed-but-unconfirmed nonce in the outbox is above
  the node's pending nonce for its address (``eth_getTransactionCount(address, "pending")``): the
  node holds nothing to fill the gap, so that signer's transactions will never be mined.

Rows set aside as orphaned by the chain-loss recovery (the chain's state holds their effect
without their transaction; see settlement.pipeline.dispatcher) are a check figure,
``outbox_orphaned``, not a reason: they wait for an operator, but nothing else waits on them.

The store is read before the chain: nonces only grow, so a row signed after the read cannot make
a gap appear that is not there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from fastapi import FastAPI
from sqlalchemy import func, select

from settlement.chain.client import ChainClient
from settlement.chain.deploy import bootstrap_open
from settlement.core.errors import LedgerError
from settlement.pipeline import outbox
from settlement.runtime import Runtime
from settlement.store.models import Checkpoint, OutboxRow

__all__ = ["READY_REASONS", "Readiness", "ReadyThresholds", "Reason", "assess", "probe_client", "public_rpc"]

log = logging.getLogger(__name__)

READY_RPC_TIMEOUT_S = 2.0  # a probe answers within a few seconds even when the node hangs
FOLLOWER_CHECKPOINT = "contracts"  # the follower's checkpoint name (settlement.pipeline.follower)
SIGNED_STATUSES = ("signed", "sent")  # rows holding a nonce that the chain has not mined yet
SIGNERS_CHECKED_MAX = 200  # signers with in-flight rows checked for a nonce gap, per probe
DETAIL_LEN_MAX = 300
READY_REASONS = ("store-unreachable", "chain-unreachable", "chain-mismatch", "no-deployment", "bootstrap-open",
                 "follower-lagging", "outbox-stalled", "signer-nonce-gap")


@dataclass(frozen=True)
class ReadyThresholds:
    """From settings: LEDGER_READY_FOLLOWER_LAG_BLOCKS_MAX, LEDGER_READY_OUTBOX_AGE_S_MAX,
    LEDGER_CONFIRMATIONS."""

    follower_lag_blocks_max: int = 20
    outbox_age_s_max: float = 120.0
    confirmations: int = 0


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str


@dataclass(frozen=True)
class SignerGap:
    signer: str
    lowest_nonce: int  # lowest nonce of the signer's signed or sent rows
    chain_pending_nonce: int | None  # None: not asked (chain unreachable)

    @property
    def gap(self) -> int:
        return 0 if self.chain_pending_nonce is None else max(self.lowest_nonce - self.chain_pending_nonce, 0)


@dataclass
class Readiness:
    reasons: list[Reason] = field(default_factory=list)
    store_reachable: bool = False
    chain_reachable: bool = False
    head_block: int | None = None
    follower_block: int | None = None
    outbox_depth: int | None = None
    outbox_oldest_age_s: float | None = None
    outbox_orphaned: int | None = None
    signers: list[SignerGap] = field(default_factory=list)
    bootstrap_sealed: bool | None = None

    @property
    def ready(self) -> bool:
        return not self.reasons

    @property
    def follower_lag_blocks(self) -> int | None:
        if self.head_block is None or self.follower_block is None:
            return None
        return max(self.head_block - self.follower_block, 0)

    def checks(self) -> dict:
        """The figures behind the verdict, as JSON."""
        return {"store_reachable": self.store_reachable, "chain_reachable": self.chain_reachable,
                "head_block": self.head_block, "follower_block": self.follower_block,
                "follower_lag_blocks": self.follower_lag_blocks, "outbox_depth": self.outbox_depth,
                "outbox_oldest_age_s": (round(self.outbox_oldest_age_s, 3)
                                        if self.outbox_oldest_age_s is not None else None),
                "outbox_orphaned": self.outbox_orphaned,
                "bootstrap_sealed": self.bootstrap_sealed,
                "stuck_signers": [{"signer": s.signer, "lowest_nonce": s.lowest_nonce,
                                   "chain_pending_nonce": s.chain_pending_nonce} for s in self.signers if s.gap]}

    def fail(self, code: str, detail: str) -> None:
        self.reasons.append(Reason(code, detail[:DETAIL_LEN_MAX]))


def public_rpc(url: str) -> str:
    """The RPC URL without credentials, path or query (hosted nodes put API keys there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def probe_client(app: FastAPI, rpc_url: str) -> ChainClient:
    """A chain client with a short timeout, kept on the app (one per RPC URL)."""
    client = getattr(app.state, "ready_chain", None)
    if client is None or client.rpc_url != rpc_url:
        client = ChainClient(rpc_url, timeout_s=READY_RPC_TIMEOUT_S)
        app.state.ready_chain = client
    return client


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _read_store(runtime: Runtime, r: Readiness) -> list[tuple[str, int]]:
    """Fill the store's facts; return (signer, lowest in-flight nonce) pairs."""
    with runtime.db.read() as session:
        r.outbox_depth = outbox.depth(session)
        r.outbox_orphaned = session.scalar(select(func.count()).select_from(OutboxRow)
                                           .where(OutboxRow.status == outbox.ORPHANED)) or 0
        oldest = session.scalar(select(func.min(OutboxRow.created_at))
                                .where(OutboxRow.status.in_(outbox.PENDING_STATUSES)))
        if oldest is not None:
            r.outbox_oldest_age_s = max((datetime.now(timezone.utc) - _aware(oldest)).total_seconds(), 0.0)
        r.follower_block = session.scalar(select(Checkpoint.block_number)
                                          .where(Checkpoint.name == FOLLOWER_CHECKPOINT))
        lowest = session.execute(select(OutboxRow.signer, func.min(OutboxRow.nonce))
                                 .where(OutboxRow.status.in_(SIGNED_STATUSES), OutboxRow.nonce.is_not(None))
                                 .group_by(OutboxRow.signer).order_by(OutboxRow.signer)
                                 .limit(SIGNERS_CHECKED_MAX)).all()
    r.store_reachable = True
    return [(signer, int(nonce)) for signer, nonce in lowest]


def _read_chain(runtime: Runtime, probe: ChainClient, r: Readiness, lowest: list[tuple[str, int]]) -> None:
    """Head, chain id and every in-flight signer's pending nonce in one round trip."""
    calls: list[tuple[str, list]] = [("eth_blockNumber", []), ("eth_chainId", [])]
    calls += [("eth_getTransactionCount", [signer, "pending"]) for signer, _ in lowest]
    answers = probe.batch(calls)
    errors = [a["error"] for a in answers if "error" in a]
    if errors:
        raise LedgerError(f"the node refused a probe: {str(errors[0])[:200]}")
    r.head_block = int(answers[0]["result"], 16)
    chain_id = int(answers[1]["result"], 16)
    r.chain_reachable = True
    r.signers = [SignerGap(signer, nonce, int(a["result"], 16)) for (signer, nonce), a in zip(lowest, answers[2:])]
    manifest = runtime.manifest
    if manifest is not None and manifest.chain_id != chain_id:
        r.fail("chain-mismatch", f"the node's chain id is {chain_id}, the deployment's {manifest.chain_id}")


def assess(runtime: Runtime, probe: ChainClient, thresholds: ReadyThresholds) -> Readiness:
    r = Readiness()
    lowest: list[tuple[str, int]] = []
    try:
        lowest = _read_store(runtime, r)
    except Exception as exc:  # the store being down is what this reports, not raises
        r.fail("store-unreachable", f"the store could not be read ({type(exc).__name__})")
    try:
        _read_chain(runtime, probe, r, lowest)
    except Exception as exc:
        detail = exc.detail if isinstance(exc, LedgerError) else type(exc).__name__
        r.fail("chain-unreachable", f"the node at {public_rpc(probe.rpc_url)} did not answer: {detail}")
    manifest = runtime.manifest
    if manifest is None:
        r.fail("no-deployment", "no contracts are deployed yet (run `ledger up` or `ledger deploy`)")
    elif r.chain_reachable and not any(x.code == "chain-mismatch" for x in r.reasons):
        try:
            r.bootstrap_sealed = not bootstrap_open(probe, manifest)
        except Exception as exc:
            log.warning("ready: bootstrap state unreadable: %s", type(exc).__name__)
        if r.bootstrap_sealed is False:
            r.fail("bootstrap-open", "the registry's bootstrap window is still open: onboard the founding "
                                     "members and seal it (`ledger governance seal`)")
    lag_max = thresholds.follower_lag_blocks_max + thresholds.confirmations
    if r.head_block is not None and manifest is not None:
        since = r.follower_block if r.follower_block is not None else manifest.deploy_block
        if r.head_block - since > lag_max:
            r.fail("follower-lagging", f"the chain head {r.head_block} is {r.head_block - since} blocks ahead of "
                                       f"the follower (block {since}); the limit is {lag_max}")
    if r.outbox_oldest_age_s is not None and r.outbox_oldest_age_s > thresholds.outbox_age_s_max:
        r.fail("outbox-stalled", f"an outbox row has waited {r.outbox_oldest_age_s:.0f} s for the chain; the "
                                 f"limit is {thresholds.outbox_age_s_max:g} s ({r.outbox_depth} rows waiting)")
    for s in r.signers:
        if s.gap:
            r.fail("signer-nonce-gap", f"signer {s.signer}: its lowest unconfirmed nonce is {s.lowest_nonce}, the "
                                       f"node's pending nonce {s.chain_pending_nonce}: nonces "
                                       f"{s.chain_pending_nonce}..{s.lowest_nonce - 1} are missing")
    return r
