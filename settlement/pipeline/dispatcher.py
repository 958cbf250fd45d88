"""The outbox dispatcher: the only component that sends the service's transactions.

Each pass works in bounded batches and in this order:

1. ``sign``: pending rows get the next nonce of their signer and are signed; nonce, raw
   transaction and hash are committed BEFORE anything is sent (write-ahead);
2. ``broadcast``: signed rows are sent in JSON-RPC batches and marked sent. A row that was sent
   but whose transaction the node no longer knows is broadcast again: the same raw bytes, so the
   same hash and nonce. A node that already has it answers "already known";
3. ``collect``: receipts of sent rows are fetched in one batch; status 1 -> mined, status 0 ->
   failed with the decoded custom error (and the kind's failure hook runs).

A crash between any two steps leaves rows in a state the next pass continues from, so every row
reaches the chain exactly once: a signed row is only ever re-broadcast byte-for-byte, never
re-signed with another nonce, unless the chain provably does not have it (see ``repend``).

Nonces: one sequence per signer with no gaps and no reuse, recovered after a restart as
max(node's pending nonce, highest nonce the store used + 1). A transaction that can never be
sent (the node refuses it for good) has its nonce filled by a zero-value self-transfer, so later
nonces of that signer are not stuck behind a gap.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from settlement.chain.client import ChainClient, Receipt
from settlement.chain.signing import SignedTx, Signer
from settlement.core.errors import ChainRevertError, ChainUnavailableError
from settlement.pipeline import intents
from settlement.pipeline.registry import FailureHook
from settlement.runtime import Runtime
from settlement.store.models import MemberAccount, OutboxRow, utcnow

log = logging.getLogger("ledger.dispatcher")

BATCH_SIZE_MAX = 500
SEND_ATTEMPTS_MAX = 5  # then the row fails and its nonce is filled
RESEND_AFTER_S = 10.0  # a sent row with no receipt this long is checked and re-broadcast
NONCE_FILL_GAS = 21_000
INTENT_RELEASE_INTERVAL_S = 1.0  # how often held intents are checked against the chain's clock
INTENT_RELEASE_BATCH_MAX = 200



_now = utcnow  # one clock for the store: settlement.store.models.utcnow

# Which phases have work: one indexed read (status, id), so an idle pass costs one query and
# never takes the store's write lock.
_WORK = select(*(exists().where(OutboxRow.status == status)
                  for status in ("pending", "signed", "sent", intents.HELD)))


class NonceBook:
    """Next nonce per signer, recovered from the store and the node."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self._next: dict[str, int] = {}

    def take(self, session: Session, signer: str) -> int:
        if signer not in self._next:
            used = session.scalar(
                select(func.max(OutboxRow.nonce)).where(OutboxRow.signer == signer, OutboxRow.nonce.is_not(None))
            )
            from_store = -1 if used is None else used
            self._next[signer] = max(self.client.pending_nonce(signer), from_store + 1)
        nonce = self._next[signer]
        self._next[signer] = nonce + 1
        return nonce

    def forget(self, signer: str | None = None) -> None:
        """Re-read on next use (after a rollback, or a nonce conflict)."""
        if signer is None:
            self._next.clear()
        else:
            self._next.pop(signer, None)


class Dispatcher:
    def __init__(self, runtime: Runtime, *, batch_size: int = 200,
                 failure_hooks: dict[str, FailureHook] | None = None) -> None:
        if not 1 <= batch_size <= BATCH_SIZE_MAX:
            raise ValueError(f"batch_size must be 1..{BATCH_SIZE_MAX}")
        self.rt = runtime
        self.client = runtime.chain
        self.batch_size = batch_size
        self.failure_hooks = failure_hooks or {}
        self.nonces = NonceBook(self.client)
        self._fillers: list[tuple[str, int]] = []
        self._intents_checked_at = 0.0

    # -- signers --------------------------------------------------------------------------------

    def _signer(self, session: Session, address: str) -> Signer:
        cached = self.rt.vault.cached_signer(address)
        if cached is not None:
            return cached
        account = session.get(MemberAccount, address)
        if account is None or account.encrypted_key is None:
            raise LookupError(f"the service holds no key for {address}")
        return self.rt.vault.signer(address, account.encrypted_key)

    def _address(self, row: OutboxRow) -> str:
        return self.rt.address(row.contract)

    # -- one pass -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One sign/broadcast/collect pass; returns how many rows changed state. Phases with
        nothing to do (and nothing handed on by the phase before) are skipped."""
        with self.rt.db.read() as s:
            pending, signed, sent, held = s.execute(_WORK).one()
        released = self.release_intents() if held else 0
        signed_now = self.sign() if pending else 0
        sent_now = self.broadcast() if signed_now or signed or sent else 0
        collected = self.collect() if sent_now or sent else 0
        return released + signed_now + sent_now + collected

    def release_intents(self, *, force: bool = False) -> int:
        """Held intents past their deadline (by the chain's clock) or withdrawn: their rows fail
        and the kind's failure hook undoes the command (see settlement.pipeline.intents)."""
        now = time.monotonic()
        if not force and now - self._intents_checked_at < INTENT_RELEASE_INTERVAL_S:
            return 0
        self._intents_checked_at = now
        try:
            chain_now = self.client.chain_time()
        except ChainUnavailableError:
            return 0
        with self.rt.db.transaction() as s:
            released = intents.release(s, chain_now, INTENT_RELEASE_BATCH_MAX)
            for row, error in released:
                hook = self.failure_hooks.get(row.kind)
                if hook is not None:
                    hook(s, row, error)
        for row, error in released:
            log.info("outbox %s (%s) released: %s", row.id, row.kind, error.error_name)
        return len(released)

    def drain(self, timeout_s: float = 60.0, idle_sleep_s: float = 0.05) -> None:
        """Run passes until nothing is pending (tests and tooling)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.run_once()
            with self.rt.db.read() as s:
                left = s.scalar(select(func.count()).select_from(OutboxRow)
                                .where(OutboxRow.status.in_(("pending", "signed", "sent"))))
            if not left:
                return
            time.sleep(idle_sleep_s)
        raise TimeoutError("outbox not drained in time")

    def sign(self) -> int:
        try:
            with self.rt.db.transaction() as s:
                rows = s.scalars(select(OutboxRow).where(OutboxRow.status == "pending")
                                 .order_by(OutboxRow.id).limit(self.batch_size)).all()
                for row in rows:
                    try:
                        signer = self._signer(s, row.signer)
                        to = self._address(row)
                    except LookupError as exc:
                        row.status, row.error_name, row.last_error = "failed", "NotSendable", str(exc)
                        continue
                    data = row.calldata
                    nonce = self.nonces.take(s, row.signer)
                    tx = self.client.sign(signer, to=to, data=data, gas=row.gas_limit, nonce=nonce)
                    row.nonce, row.raw_tx, row.tx_hash, row.status = nonce, tx.raw, tx.tx_hash, "signed"
            return len(rows)
        except BaseException:
            # Nothing of this pass was committed: the nonces it took must be handed out again.
            self.nonces.forget()
            raise

    def broadcast(self) -> int:
        resend_before = time.time() - RESEND_AFTER_S
        with self.rt.db.read() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.status == "signed")
                             .order_by(OutboxRow.signer, OutboxRow.nonce).limit(self.batch_size)).all()
            stale = s.scalars(select(OutboxRow).where(OutboxRow.status == "sent")
                              .order_by(OutboxRow.signer, OutboxRow.nonce).limit(self.batch_size)).all()
        stale = [r for r in stale if r.sent_at is None or r.sent_at.timestamp() < resend_before]
        if stale:
            # Sent long ago and still no receipt: if the node lost it (restart, dropped pool),
            # broadcast the very same bytes again.
            receipts = self.client.receipts([r.tx_hash for r in stale])
            rows += [r for r in stale if receipts[r.tx_hash] is None and not self.client.transaction_known(r.tx_hash)]
        if not rows:
            return 0
        results = self.client.send_raw_batch([SignedTx(r.raw_tx, r.tx_hash, r.nonce) for r in rows])
        now = _now()
        changed = 0
        with self.rt.db.transaction() as s:
            for row, result in zip(rows, results):
                live = s.get(OutboxRow, row.id)
                if live is None or live.tx_hash != row.tx_hash:
                    continue
                if result.accepted:
                    live.status, live.sent_at, live.attempts = "sent", now, live.attempts + 1
                    changed += 1
                elif result.nonce_too_low:
                    # Either our transaction is already mined (collect will see the receipt), or
                    # the nonce went to another transaction: then re-sign with a fresh nonce.
                    receipt = self.client.receipts([live.tx_hash])[live.tx_hash]
                    if receipt is None:
                        self._repend(live, f"nonce {live.nonce} taken by another transaction")
                        self.nonces.forget(live.signer)
                    else:
                        live.status, live.sent_at = "sent", now
                    changed += 1
                else:
                    live.attempts += 1
                    live.last_error = result.error
                    if live.attempts >= SEND_ATTEMPTS_MAX:
                        log.error("outbox %s refused %d times: %s", live.id, live.attempts, result.error,
                                  extra={"tx_hash": live.tx_hash, "outbox_id": live.id})
                        self._fillers.append((live.signer, live.nonce))
                        live.status = "failed"
                        live.error_name = "NodeRejected"
                        changed += 1
        self._fill_nonce_gaps()
        return changed

    def _fill_nonce_gaps(self) -> None:
        """Spend nonces of transactions the node refused for good with zero-value self-transfers."""
        while self._fillers:
            signer_address, nonce = self._fillers.pop()
            with self.rt.db.read() as s:
                signer = self._signer(s, signer_address)
            tx = self.client.sign(signer, to=signer_address, data=b"", gas=NONCE_FILL_GAS, nonce=nonce)
            self.client.send_raw_batch([tx])

    @staticmethod
    def _repend(row: OutboxRow, reason: str) -> None:
        row.status, row.nonce, row.raw_tx, row.tx_hash = "pending", None, None, None
        row.block_number = row.block_hash = None
        row.generation += 1
        row.last_error = reason

    def collect(self) -> int:
        with self.rt.db.read() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.status == "sent")
                             .order_by(OutboxRow.id).limit(self.batch_size)).all()
        if not rows:
            return 0
        receipts = self.client.receipts([r.tx_hash for r in rows])
        done = [(r, receipts[r.tx_hash]) for r in rows if receipts[r.tx_hash] is not None]
        if not done:
            return 0
        failures: dict[int, ChainRevertError] = {}
        for row, receipt in done:
            if receipt.status != 1:
                failures[row.id] = self._revert_reason(row, receipt)
        now = _now()
        latencies = []
        with self.rt.db.transaction() as s:
            for row, receipt in done:
                live = s.get(OutboxRow, row.id)
                if live is None or live.status != "sent" or live.tx_hash != receipt.tx_hash:
                    continue
                self._apply_receipt(s, live, receipt, failures.get(row.id), now)
                created = live.created_at if live.created_at.tzinfo else live.created_at.replace(tzinfo=UTC)
                latencies.append((now - created).total_seconds())
        self._record_latency(latencies)
        return len(done)

    def _revert_reason(self, row: OutboxRow, receipt: Receipt) -> ChainRevertError:
        error = self.client.revert_reason(receipt, row.signer, self._address(row), row.calldata, row.gas_limit)
        if row.contract == intents.FORWARDER and row.function == "execute" and error.error_name == "FailedCall":
            # The forwarder hides the inner call's reason: simulate the inner call as the target saw it.
            sender, to, _value, gas, _deadline, data, _sig = row.args[0]
            for block in (max(receipt.block_number - 1, 0), receipt.block_number):
                inner = self.client.forwarded_revert_reason(self._address(row), sender, to,
                                                            bytes.fromhex(data[2:]), int(gas), block)
                if inner is not None:
                    return inner
        return error

    def _apply_receipt(self, s: Session, row: OutboxRow, receipt: Receipt, error: ChainRevertError | None,
                       now: datetime) -> None:
        row.block_number, row.block_hash, row.mined_at = receipt.block_number, receipt.block_hash, now
        chain = {"tx_hash": row.tx_hash, "block_number": receipt.block_number, "outbox_id": row.id}
        if error is None:
            row.status = "mined"
            if log.isEnabledFor(logging.DEBUG):
                log.debug("outbox %s (%s) mined", row.id, row.kind, extra=chain)
            return
        row.status, row.error_name, row.last_error = "failed", error.error_name or "Reverted", str(error.detail)[:2000]
        log.warning("outbox %s (%s) reverted on chain: %s", row.id, row.kind, row.error_name, extra=chain)
        hook = self.failure_hooks.get(row.kind)
        if hook is not None:
            hook(s, row, error)

    def _record_latency(self, latencies: list[float]) -> None:
        if not latencies:
            return
        stats = self.rt.stats
        stats["dispatch_latency_s_sum"] = stats.get("dispatch_latency_s_sum", 0.0) + sum(latencies)
        stats["dispatch_latency_s_count"] = stats.get("dispatch_latency_s_count", 0) + len(latencies)
        stats["dispatch_latency_s_last"] = latencies[-1]

    # -- chain rollback -------------------------------------------------------------------------

    def repend_lost(self, session: Session, rows: list[OutboxRow]) -> None:
        """Rows whose mined transactions the chain no longer has go back to pending."""
        for row in rows:
            self._repend(row, f"transaction {row.tx_hash} lost by the chain (rollback); resubmitting")
        self.nonces.forget()


def pending_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxRow)
                          .where(OutboxRow.status.in_(("pending", "signed", "sent")))) or 0


__all__ = ["Dispatcher", "NonceBook", "pending_rows"]
