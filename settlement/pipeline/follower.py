"""The chain follower: reads contract events from a stored checkpoint and applies them.

Each pass reads at most ``block_range_max`` blocks of logs of every deployed contract, and in ONE
database transaction stores each event (unique per transaction hash and log index, so a replay
inserts nothing), runs the event's handler for new events only, marks mined outbox rows up to
that block as confirmed, and moves the checkpoint (block number and hash). A crash anywhere
leaves the checkpoint where the last committed pass put it, and the next pass re-reads from there.
A mined row is confirmed only while the block hash of its receipt is the canonical chain's at
that height; one whose block is gone goes back to the dispatcher (see ``Dispatcher.chain_lost``).

Rollbacks: when the chain's block at the checkpoint has another hash, or the chain's head is
below the checkpoint (a managed anvil killed between state dumps comes back behind the store),
the follower finds every mined or confirmed outbox row whose transaction the chain no longer has
and hands it to the dispatcher, which broadcasts the same transaction again at its own nonce
(the domains' rollback hooks show its records pending meanwhile), walks back to the last block
whose stored hash (the stored events' block hashes) the chain still has, forgets the events
above it, and moves the checkpoint back there to read on from it.

The checkpoint's hash alone cannot tell every loss: a supervised anvil is back within a second
and can mine the very same blocks again (the lost transactions re-sent in the same order within
the same second give the same block hashes), so a checkpoint above them still looks canonical.
Whoever finds lost transactions forgets their stored events and moves the checkpoint back below
the first of them without a hash (:mod:`settlement.pipeline.checkpoints`), which the next pass
takes as a rollback. And a pass reads the checkpoint's block, the logs and the page's last block
in one JSON-RPC batch, so that a node restarted in the middle of a pass cannot hand it the logs
of one chain and the hash of another.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from settlement.pipeline import checkpoints
from settlement.pipeline.checkpoints import CHECKPOINT
from settlement.pipeline.dispatcher import Dispatcher
from settlement.pipeline.registry import BatchEventHandler, EventHandler
from settlement.runtime import Runtime
from settlement.store.bulk import execute_insert, prepare_insert
from settlement.store.models import ChainEvent, Checkpoint, OutboxRow, utcnow

log = logging.getLogger("ledger.follower")

BLOCK_RANGE_MAX = 5_000
ROLLBACK_SCAN_ROWS_MAX = 10_000
CONFIRM_ROWS_MAX = 2_000  # mined rows checked against the canonical chain per pass
ROLLBACK_WALK_BLOCKS_MAX = 500  # stored event blocks checked, walking down, for the last canonical one

_MINED_EXISTS = select(exists().where(OutboxRow.status == "mined"))



class Follower:
    def __init__(self, runtime: Runtime, dispatcher: Dispatcher, *, handlers: dict[str, EventHandler] | None = None,
                 batch_handlers: dict[str, BatchEventHandler] | None = None,
                 confirmations: int = 0, block_range_max: int = 2_000) -> None:
        if not 1 <= block_range_max <= BLOCK_RANGE_MAX:
            raise ValueError(f"block_range_max must be 1..{BLOCK_RANGE_MAX}")
        self.rt = runtime
        self.client = runtime.chain
        self.dispatcher = dispatcher
        self.handlers = handlers or {}
        self.batch_handlers = batch_handlers or {}
        self.confirmations = confirmations
        self.block_range_max = block_range_max

    def _start_block(self) -> int:
        manifest = self.rt.manifest
        return manifest.deploy_block if manifest and manifest.contracts else 0

    def _checkpoint(self, s: Session) -> Checkpoint | None:
        return s.get(Checkpoint, CHECKPOINT)

    def run_once(self) -> int:
        """One pass; returns the number of new events applied."""
        if self.rt.manifest is None or not self.rt.manifest.contracts:
            return 0
        with self.rt.db.read() as s:
            cp = self._checkpoint(s)
            cp_block, cp_hash = (cp.block_number, cp.block_hash) if cp else (self._start_block() - 1, None)
            unconfirmed = s.scalar(_MINED_EXISTS)
        # The head and the checkpoint's block in one round trip (the block is None past the head).
        head, chain_block = self.client.head_and_block(cp_block if cp_hash is not None else None)
        if cp_hash is not None and (chain_block is None or chain_block["hash"] != cp_hash):
            self.recover_rollback(head)
            return 0
        safe_head = head - self.confirmations
        self.rt.stats["follower_lag_blocks"] = max(head - max(cp_block, 0), 0)
        if safe_head <= cp_block:
            if unconfirmed:
                self._confirm_mined(min(cp_block, safe_head))
            return 0
        to_block = min(safe_head, cp_block + self.block_range_max)
        # The checkpoint's block again, the logs and the page's last block in one batch: all from
        # the same node, even if it was restarted (and regrew its chain) since the check above.
        after_hash, logs, to_hash = self.client.logs_page(list(self.rt.manifest.addresses.values()), cp_block,
                                                          to_block)
        if to_hash is None or (cp_hash is not None and after_hash != cp_hash):
            return 0  # the chain changed under this pass: the next one sees how, and recovers
        known = {lg.block_number: lg.block_hash for lg in logs}
        known[to_block] = to_hash
        confirmable, gone = self._check_mined(to_block, known)
        # The page's event rows, converted for the driver before the write lock is taken.
        now = utcnow()
        page = prepare_insert(self.rt.db.engine.dialect, ChainEvent.__table__, [
            {"tx_hash": lg.tx_hash, "log_index": lg.log_index, "block_number": lg.block_number,
             "block_hash": lg.block_hash, "contract": lg.contract, "address": lg.address,
             "event": lg.event, "args": lg.args, "created_at": now} for lg in logs])
        applied = 0
        with self.rt.db.transaction() as s:
            cp = checkpoints.lock(s)
            read_at = (cp_block, cp_hash) if cp_hash is not None else None
            if read_at != ((cp.block_number, cp.block_hash) if cp is not None else None):
                return 0  # moved since this pass read it (a loss found by the dispatcher): nothing written
            known = set()
            if logs:
                hashes = list({lg.tx_hash for lg in logs})
                for i in range(0, len(hashes), 500):
                    known.update(s.execute(select(ChainEvent.tx_hash, ChainEvent.log_index)
                                           .where(ChainEvent.tx_hash.in_(hashes[i:i + 500]))).all())
            keep = [i for i, lg in enumerate(logs) if (lg.tx_hash, lg.log_index) not in known]
            fresh = [logs[i] for i in keep]
            # One multi-row INSERT for the page, before the handlers run (they may read it).
            execute_insert(s, page.only(keep))
            start = 0
            while start < len(fresh):
                end = start + 1
                while end < len(fresh) and fresh[end].event == fresh[start].event:
                    end += 1
                run = fresh[start:end]
                if log.isEnabledFor(logging.DEBUG):
                    for lg in run:
                        log.debug("chain event %s.%s", lg.contract, lg.event, extra={
                            "tx_hash": lg.tx_hash, "block_number": lg.block_number, "log_index": lg.log_index})
                batch_handler = self.batch_handlers.get(run[0].event)
                if batch_handler is not None:
                    batch_handler(s, run)
                handler = self.handlers.get(run[0].event)
                if handler is not None:
                    for lg in run:
                        handler(s, lg)
                applied += len(run)
                start = end
            self._confirm_rows(s, confirmable, gone)
            if cp is None:
                s.add(Checkpoint(name=CHECKPOINT, block_number=to_block, block_hash=to_hash))
            elif cp.block_hash != checkpoints.UNVERIFIED:  # else moved back by a loss found above
                cp.block_number, cp.block_hash = to_block, to_hash
        self.rt.stats["follower_lag_blocks"] = max(head - to_block, 0)
        return applied

    def _check_mined(self, up_to_block: int, known: dict[int, str] | None = None) -> tuple[list[int], list[int]]:
        """Mined rows up to ``up_to_block``: (ids whose receipt's block is canonical, ids whose
        block the chain no longer has). ``known``: canonical hashes already read (the page's logs)."""
        with self.rt.db.read() as s:
            mined = s.execute(select(OutboxRow.id, OutboxRow.block_number, OutboxRow.block_hash)
                              .where(OutboxRow.status == "mined", OutboxRow.block_number <= up_to_block)
                              .order_by(OutboxRow.block_number).limit(CONFIRM_ROWS_MAX)).all()
        if not mined:
            return [], []
        canonical: dict[int, str | None] = dict(known or {})
        missing = sorted({r.block_number for r in mined} - set(canonical))
        if missing:
            canonical.update(self.client.block_hashes(missing))
        ok = [r.id for r in mined if canonical[r.block_number] == r.block_hash]
        gone = [r.id for r in mined if canonical[r.block_number] != r.block_hash]
        return ok, gone

    def _confirm_rows(self, s: Session, ok: list[int], gone: list[int]) -> None:
        for i in range(0, len(ok), 500):
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ok[i:i + 500]), OutboxRow.status == "mined")
                      .values(status="confirmed"))
        if gone:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.id.in_(gone), OutboxRow.status == "mined")).all()
            log.warning("%d mined outbox rows are in blocks the canonical chain no longer has", len(rows))
            self.dispatcher.chain_lost(s, list(rows))

    def _confirm_mined(self, up_to_block: int) -> None:
        ok, gone = self._check_mined(up_to_block)
        if ok or gone:
            with self.rt.db.transaction() as s:
                if gone:
                    checkpoints.lock(s)  # before any outbox row (see checkpoints.lock)
                self._confirm_rows(s, ok, gone)

    def _last_canonical(self, s: Session, at_most: int) -> int:
        """The highest block <= ``at_most`` known to be on the canonical chain: the first stored
        event's block, walking down, whose hash the chain still has (blocks above it are read
        again; their events already stored and unchanged are skipped as known). A restarted
        node's new blocks (the lost transactions mined anew among them) can sit below the old
        checkpoint: they must not be skipped."""
        stored = s.execute(select(ChainEvent.block_number, ChainEvent.block_hash)
                           .where(ChainEvent.block_number <= at_most).distinct()
                           .order_by(ChainEvent.block_number.desc()).limit(ROLLBACK_WALK_BLOCKS_MAX)).all()
        if not stored:
            return self._start_block() - 1
        canonical = self.client.block_hashes([b for b, _ in stored])
        for number, block_hash in stored:
            if canonical[number] == block_hash:
                return number
        return min(b for b, _ in stored) - 1

    def recover_rollback(self, head: int) -> int:
        """The chain lost blocks the store relied on (or the dispatcher forgot events it stored, see
        :func:`settlement.pipeline.checkpoints.rewind`): resubmit what the chain lost, walk back to
        the last block whose stored hash is still canonical, discard what was stored above it and
        read again from there. Returns rows re-pended."""
        with self.rt.db.transaction() as s:
            checkpoints.lock(s)
            rows = s.scalars(select(OutboxRow).where(OutboxRow.status.in_(("mined", "confirmed", "failed")),
                                                     OutboxRow.block_number.is_not(None))
                             .order_by(OutboxRow.block_number.desc()).limit(ROLLBACK_SCAN_ROWS_MAX)).all()
            lost: list[OutboxRow] = []
            if rows:
                # A receipt the node still holds for a block it no longer has counts as none.
                receipts = self.client.canonical_receipts([r.tx_hash for r in rows])
                for r in rows:
                    receipt = receipts[r.tx_hash]
                    if receipt is None or receipt.block_hash != r.block_hash:
                        lost.append(r)
            # Failed rows the chain lost are not sent again: their failure was recorded; the
            # chain forgetting the failed attempt changes nothing for the domain (the dispatcher's
            # audit fills their nonces).
            resubmit = [r for r in lost if r.status != "failed"]
            lost_blocks = [r.block_number for r in lost]
            # Before reading the checkpoint: forgetting the lost rows' events may move it back.
            self.dispatcher.chain_lost(s, resubmit)
            cp = self._checkpoint(s)
            rewound = cp is not None and cp.block_hash == checkpoints.UNVERIFIED
            common = min(lost_blocks + [head + 1] + ([cp.block_number] if cp else [])) - 1
            common = self._last_canonical(s, min(common, head))
            common = max(common, self._start_block() - 1)
            s.execute(delete(ChainEvent).where(ChainEvent.block_number > common))
            block = self.client.get_block(common) if common >= 0 else None
            if block is None:
                if cp is not None:
                    s.delete(cp)
            elif cp is None:
                s.add(Checkpoint(name=CHECKPOINT, block_number=common, block_hash=block["hash"]))
            else:
                cp.block_number, cp.block_hash = common, block["hash"]
        if rewound and not lost:
            log.warning("follower: events of lost transactions were forgotten; reading again from block %d "
                        "(the last one whose stored hash the chain still has, head %d)", common + 1, head)
        else:
            log.warning("chain rollback: head %d, %d outbox rows lost, broadcast again at their own nonces; "
                        "checkpoint back to %d", head, len(resubmit), common)
        self.rt.stats["rollbacks"] = self.rt.stats.get("rollbacks", 0) + 1
        return len(resubmit)
