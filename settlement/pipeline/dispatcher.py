"""The outbox dispatcher: the only component that sends the service's transactions.

Each pass works in bounded batches and in this order:

1. ``audit`` (only when due, see below): what the store holds against what the chain has;
2. ``sign``: pending rows get the next nonce of their signer and are signed; nonce, raw
   transaction and hash are committed BEFORE anything is sent (write-ahead);
3. ``broadcast``: signed rows are sent in JSON-RPC batches, per signer in nonce order and only
   inside its in-flight window (nonces below the chain's count + ``inflight_max``), and marked
   sent. A node that already has a transaction answers "already known";
4. ``collect``: receipts of sent rows are fetched in one batch; status 1 -> mined (with the
   receipt's block hash), status 0 -> failed with the decoded custom error (and the kind's
   failure hook runs). The follower confirms a mined row only while that block hash is canonical.

A crash between any two steps leaves rows in a state the next pass continues from, so every row
reaches the chain exactly once: a signed row is only ever re-broadcast byte-for-byte at its own
nonce, never re-signed with another nonce, unless the audit proves that nonce was consumed on
chain by another transaction.

Nonces: one sequence per signer, recovered after a restart as max(node's pending nonce, highest
nonce the store used + 1).

The audit (per signer, at start, after a rollback the follower saw, when the chain's nonce count
went down, when a sent row has had no receipt for ``STALE_AFTER_S``, every ``AUDIT_INTERVAL_S``
while rows are in flight, and of every signer before a broadcast when the chain lacks the
follower's checkpoint block): with L = the chain's ``latest`` nonce count, and only receipts in
the canonical chain counted,

- every row at a nonce >= L is not on the canonical chain: a mined or confirmed one goes back to
  signed (the chain lost it: rollback, node restarted from an old state), a sent one the node
  does not know goes back to signed; all of them are broadcast again, the same bytes at the same
  nonce, in order (the domains' rollback hooks put their mirrors back to pending);
- every nonce in [L, highest nonce held] that no live row holds (a lost filler, a failed row's
  nonce) gets a filler: a zero-value self-transfer, itself an outbox row, so nothing queues
  behind a gap;
- a row at a nonce < L without a receipt had its nonce consumed by another transaction. Only
  when a second audit ``AUDIT_CONFIRM_S`` later finds the same, the row is re-signed with a new
  nonce (it can no longer be mined at the old one) -- unless its call now reverts: then the
  chain's state most likely holds its effect without its transaction (a node restarted from a
  torn state dump), and the row is set aside as ``orphaned`` (logged as an error, never sent
  again, its domain record left pending) rather than sent to revert.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from settlement.chain.client import Receipt
from settlement.chain.signing import SignedTx, Signer
from settlement.core.errors import ChainRevertError, ChainUnavailableError
from settlement.pipeline import checkpoints, intents, outbox
from settlement.pipeline.nonces import CHAIN_LOST, FILLER_KIND, LIVE_STATUSES, NonceBook, aware, unsend
from settlement.pipeline.registry import FailureHook, RollbackHook
from settlement.runtime import Runtime
from settlement.store.models import ChainEvent, Checkpoint, MemberAccount, OutboxRow, utcnow

log = logging.getLogger("ledger.dispatcher")

BATCH_SIZE_MAX = 500
SEND_ATTEMPTS_MAX = 5  # then the row fails and its nonce is filled
STALE_AFTER_S = 5.0  # a sent row with no receipt this long has its signer audited
AUDIT_INTERVAL_S = 15.0  # while rows are in flight, every signer is audited this often anyway
AUDIT_CONFIRM_S = 2.0  # a nonce consumed by another transaction is concluded on a second look
AUDIT_ROWS_MAX = 10_000  # rows examined per signer and audit (the rest on the next audit)
INFLIGHT_PER_SIGNER_DEFAULT = 128  # LEDGER_MAX_INFLIGHT_PER_SIGNER
INFLIGHT_PER_SIGNER_MAX = 5_000
NONCE_FILL_GAS = 21_000
# A lost row's first mining time is when the dispatcher read its receipt; the follower may have
# confirmed it (and a domain written a dependent row) a little earlier: this much earlier.
LOST_DEPENDENCY_MARGIN_S = 10.0
# A row whose effect the chain's state holds without its transaction (see _effects_present).
ORPHANED = outbox.ORPHANED
INTENT_RELEASE_INTERVAL_S = 1.0  # how often held intents are checked against the chain's clock
INTENT_RELEASE_BATCH_MAX = 200



_now = utcnow  # one clock for the store: settlement.store.models.utcnow

# Which phases have work: one indexed read (status, id), so an idle pass costs one query and
# never takes the store's write lock.
_WORK = select(*(exists().where(OutboxRow.status == status)
                  for status in ("pending", "signed", "sent", intents.HELD)))


class Dispatcher:
    def __init__(self, runtime: Runtime, *, batch_size: int = 200,
                 failure_hooks: dict[str, FailureHook] | None = None,
                 rollback_hooks: list[RollbackHook] | None = None,
                 inflight_max: int = INFLIGHT_PER_SIGNER_DEFAULT) -> None:
        if not 1 <= batch_size <= BATCH_SIZE_MAX:
            raise ValueError(f"batch_size must be 1..{BATCH_SIZE_MAX}")
        if not 1 <= inflight_max <= INFLIGHT_PER_SIGNER_MAX:
            raise ValueError(f"inflight_max must be 1..{INFLIGHT_PER_SIGNER_MAX}")
        self.rt = runtime
        self.client = runtime.chain
        self.batch_size = batch_size
        self.inflight_max = inflight_max
        self.failure_hooks = failure_hooks or {}
        self.rollback_hooks = rollback_hooks or []
        self.nonces = NonceBook(self.client)
        self._intents_checked_at = 0.0
        # Audits asked for (by the follower's thread too): None in the set means every signer.
        self._audit_lock = threading.Lock()
        self._audit_wanted: set[str | None] = {None}  # at start: everything
        self._audited_at = 0.0
        self._latest_seen: dict[str, int] = {}  # each signer's last seen on-chain nonce count
        # signer -> {row id: (tx hash, first seen)}: rows whose nonce another transaction consumed
        self._suspects: dict[str, dict[int, tuple[str, float]]] = {}
        self._recheck_at: dict[str, float] = {}  # signer -> when its suspects are looked at again
        # The follower's checkpoint (block, hash) last found missing from the chain and audited for.
        self._lost_checkpoint: tuple[int, str] | None = None

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

    def request_audit(self, signer: str | None = None) -> None:
        """Ask for an audit of ``signer`` (None: every signer) on the next pass; any thread."""
        with self._audit_lock:
            self._audit_wanted.add(signer)

    def run_once(self) -> int:
        """One audit (when due) and sign/broadcast/collect pass; returns how many rows changed
        state. Phases with nothing to do (and nothing handed on by the phase before) are skipped."""
        with self.rt.db.read() as s:
            pending, signed, sent, held = s.execute(_WORK).one()
        audited = self._audit_if_due(in_flight=bool(signed or sent))
        released = self.release_intents() if held else 0
        signed_now = self.sign() if pending else 0
        sent_now = self.broadcast() if signed_now or signed or audited else 0
        collected = self.collect() if sent_now or sent else 0
        return audited + released + signed_now + sent_now + collected

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
        """Signed rows to the node, per signer in nonce order and inside its in-flight window."""
        with self.rt.db.read() as s:
            signers = s.scalars(select(OutboxRow.signer).where(OutboxRow.status == "signed").distinct()).all()
        if not signers:
            return 0
        self._audit_if_checkpoint_lost()
        latest = self.client.nonces(signers)
        self._note_latest(latest)
        rows: list[OutboxRow] = []
        with self.rt.db.read() as s:
            # Every signer's candidates (a bounded page each), before any is held back: a signer
            # whose rows all wait must not keep the others' from being looked at.
            for signer in signers:
                window_end = latest[signer] + self.inflight_max
                rows += s.scalars(select(OutboxRow).where(OutboxRow.status == "signed", OutboxRow.signer == signer,
                                                          OutboxRow.nonce < window_end)
                                  .order_by(OutboxRow.nonce).limit(self.batch_size)).all()
        rows = self._after_lost_dependencies(rows)
        if not rows:
            return 0
        rows = self._in_send_order(rows)
        results = self.client.send_raw_batch([SignedTx(r.raw_tx, r.tx_hash, r.nonce) for r in rows])
        now = _now()
        changed = 0
        with self.rt.db.transaction() as s:
            for row, result in zip(rows, results):
                live = s.get(OutboxRow, row.id)
                if live is None or live.status != "signed" or live.tx_hash != row.tx_hash:
                    continue
                if result.accepted:
                    live.status, live.sent_at, live.attempts = "sent", now, live.attempts + 1
                    changed += 1
                elif result.nonce_too_low:
                    # Either this very transaction is mined (collect sees its receipt), or another
                    # one took the nonce: the audit looks twice before concluding.
                    live.status, live.sent_at = "sent", now
                    self.request_audit(live.signer)
                    changed += 1
                else:
                    live.attempts += 1
                    live.last_error = result.error
                    if live.attempts >= SEND_ATTEMPTS_MAX:
                        log.error("outbox %s refused %d times: %s", live.id, live.attempts, result.error,
                                  extra={"tx_hash": live.tx_hash, "outbox_id": live.id})
                        live.status = "failed"
                        live.error_name = "NodeRejected"
                        if live.kind != FILLER_KIND:
                            self._add_filler(s, live.signer, live.nonce)
                        changed += 1
        return changed

    def _in_send_order(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """At most ``batch_size`` of ``rows``, in the order the rows were written (id) as far as
        each signer's nonce order allows: a row re-signed with a new nonce keeps its old id, and a
        later nonce sent without an earlier one would only wait in the node's pool. A merge of the
        signers' nonce-ordered queues, always taking the head with the lowest id."""
        queues: dict[str, list[OutboxRow]] = {}
        for row in sorted(rows, key=lambda r: r.nonce):
            queues.setdefault(row.signer, []).append(row)
        heads = [(own[0].id, signer, 0) for signer, own in queues.items()]
        heapq.heapify(heads)
        ordered: list[OutboxRow] = []
        while heads and len(ordered) < self.batch_size:
            _id, signer, i = heapq.heappop(heads)
            ordered.append(queues[signer][i])
            if i + 1 < len(queues[signer]):
                heapq.heappush(heads, (queues[signer][i + 1].id, signer, i + 1))
        return ordered

    def _after_lost_dependencies(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """Of ``rows`` (signed, each signer's in nonce order), those that may go now. A domain
        writes an operation only once the operations it depends on are confirmed, so a row R may
        depend on any row mined before R was written. While the chain lacks such a row X of
        another signer (lost, being sent again), R waits: else a payment could overtake its
        recording when both are sent again after a chain loss.

        Every row the chain lost and has not mined again has a place in the order the chain first
        had them: when it was first mined (``mined_at``, kept through losses). X blocks R when X
        was first mined before R was written (less a margin, see ``LOST_DEPENDENCY_MARGIN_S``) and
        before R's own place. R's place is the earliest first mining of R and every lost row of its
        signer above R (those can only be mined after R, so R came before them), whatever R's own
        record says: a row lost, mined again and lost again, or one whose loss was not marked,
        cannot then wait on a row that waits on it. Rows of one signer go as a prefix: nothing
        after a row that waits (it could only sit in the node's pool behind the gap). So the
        signer whose lost row came first can always go, and the lost rows go back in the order
        the chain first had them; no two wait on each other. Fillers wait for nothing (they change
        no state)."""
        if not rows:
            return rows
        in_play = (OutboxRow.error_name == CHAIN_LOST, OutboxRow.status.in_(("signed", "sent")))
        by_signer: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_signer.setdefault(row.signer, []).append(row)
        with self.rt.db.read() as s:
            earliest = {signer: aware(at) for signer, at in s.execute(
                select(OutboxRow.signer, func.min(OutboxRow.mined_at)).where(*in_play)
                .group_by(OutboxRow.signer)).all() if at is not None}
            if not earliest:
                return rows
            places: dict[str, list[tuple[int, datetime]]] = {}
            for signer, own in by_signer.items():
                if signer not in earliest:
                    continue
                low, high = own[0].nonce, own[-1].nonce
                # This signer's lost rows from its first candidate on: those among the candidates
                # (bounded by the in-flight window), and the earliest of all above them.
                marks = [(n, aware(at)) for n, at in s.execute(
                    select(OutboxRow.nonce, OutboxRow.mined_at).where(
                        *in_play, OutboxRow.signer == signer, OutboxRow.nonce >= low, OutboxRow.nonce <= high)).all()
                    if at is not None]
                beyond = s.scalar(select(func.min(OutboxRow.mined_at)).where(
                    *in_play, OutboxRow.signer == signer, OutboxRow.nonce > high))
                running = aware(beyond) if beyond is not None else None
                # (nonce, earliest first mining of this signer's lost rows at or above it)
                suffix = [(high + 1, running)] if running is not None else []
                for nonce, at in sorted(marks, reverse=True):
                    running = at if running is None else min(running, at)
                    suffix.append((nonce, running))
                places[signer] = sorted(suffix)
        margin = timedelta(seconds=LOST_DEPENDENCY_MARGIN_S)
        keep: list[OutboxRow] = []
        for signer, own in by_signer.items():
            others = [at for other, at in earliest.items() if other != signer]
            bound = min(others) if others else None
            marks = places.get(signer, [])
            for row in own:
                if row.kind == FILLER_KIND or bound is None:
                    keep.append(row)
                    continue
                limit = aware(row.created_at) + margin
                # The earliest first mining at or above this row's nonce (marks ascend by nonce).
                place = next((at for nonce, at in marks if nonce >= row.nonce), None)
                if place is not None:
                    limit = min(limit, place)
                if bound < limit:
                    break  # this row waits, and so does everything after it of its signer
                keep.append(row)
        return keep

    def _add_filler(self, s: Session, signer_address: str, nonce: int) -> OutboxRow:
        """A signed outbox row spending ``nonce`` with a zero-value self-transfer."""
        signer = self._signer(s, signer_address)
        tx = self.client.sign(signer, to=signer_address, data=b"", gas=NONCE_FILL_GAS, nonce=nonce)
        generation = s.scalar(select(func.max(OutboxRow.generation)).where(
            OutboxRow.signer == signer_address, OutboxRow.nonce == nonce))
        row = OutboxRow(kind=FILLER_KIND, contract="", function="", args=[], calldata=b"", signer=signer_address,
                        gas_limit=NONCE_FILL_GAS, aggregate_id="", status="signed", nonce=nonce,
                        generation=0 if generation is None else generation + 1, raw_tx=tx.raw, tx_hash=tx.tx_hash,
                        last_error=f"fills nonce {nonce}")
        s.add(row)
        return row

    # -- the audit ------------------------------------------------------------------------------

    def _audit_if_checkpoint_lost(self) -> None:
        """Before anything is sent: does the chain still have the follower's checkpoint block, the
        newest block whose events the domains acted on? A node restarted from an older state (a
        supervised anvil is back within a second) may lack it while nobody has noticed yet: no
        signer's nonce count went down where nothing was in flight, and the follower has not
        looked. A row written because a record was confirmed in a lost block (a payment after
        its settlement's recording, signed by another key) would then be sent before the
        recording is on chain again, and revert. So every signer is audited first (confirmed
        rows too): the lost rows go back to signed, marked lost, and ``_after_lost_dependencies``
        holds back what was written after them. Once per missing checkpoint; one block read per
        broadcast otherwise."""
        with self.rt.db.read() as s:
            cp = s.get(Checkpoint, checkpoints.CHECKPOINT)
            mark = (cp.block_number, cp.block_hash) if cp is not None else None
        if mark is None or mark == self._lost_checkpoint:
            return
        if mark[1] == checkpoints.UNVERIFIED:
            # Moved back by an audit that found lost rows of some signer: a loss is known, but the
            # audit may not have looked at every signer (only those with rows in flight).
            log.warning("a loss of the chain was found (follower checkpoint moved back to block %d); auditing every "
                        "signer before sending", mark[0])
        else:
            block = self.client.get_block(mark[0])
            if block is not None and block["hash"] == mark[1]:
                return
            log.warning("the chain lacks the follower's checkpoint block %d: it lost blocks; auditing every signer "
                        "before sending", mark[0])
        with self.rt.db.read() as s:
            signers = sorted(s.scalars(select(OutboxRow.signer).where(OutboxRow.status.in_(LIVE_STATUSES))
                                       .distinct()).all())
        self.audit(signers)
        self._lost_checkpoint = mark

    def _note_latest(self, latest: dict[str, int]) -> None:
        """A signer's on-chain nonce count that went down means the chain lost blocks."""
        for signer, count in latest.items():
            if count < self._latest_seen.get(signer, 0):
                log.warning("signer %s: the chain's nonce count went down from %d to %d; auditing",
                            signer, self._latest_seen[signer], count)
                self.request_audit(None)
            self._latest_seen[signer] = count

    def _audit_if_due(self, *, in_flight: bool) -> int:
        now = time.monotonic()
        with self._audit_lock:
            wanted, self._audit_wanted = self._audit_wanted, set()
        if in_flight and now - self._audited_at >= AUDIT_INTERVAL_S:
            wanted.add(None)
        wanted.update(signer for signer, at in list(self._recheck_at.items()) if at <= now)
        if in_flight and None not in wanted:
            wanted.update(self._stale_signers())
        if not wanted:
            return 0
        try:
            return self.audit(None if None in wanted else sorted(wanted))  # type: ignore[arg-type]
        except BaseException:
            with self._audit_lock:
                self._audit_wanted.update(wanted)  # not done: again on the next pass
            raise

    def _stale_signers(self) -> set[str]:
        before = _now() - timedelta(seconds=STALE_AFTER_S)
        with self.rt.db.read() as s:
            return set(s.scalars(select(OutboxRow.signer).where(OutboxRow.status == "sent", OutboxRow.sent_at < before)
                                 .distinct()).all())

    def audit(self, signers: list[str] | None = None) -> int:
        """Compares the store with the canonical chain for ``signers`` (None: every signer with
        rows in flight) and repairs what the chain lacks; returns how many rows changed."""
        if signers is None:
            self._audited_at = time.monotonic()
            # Every signer with rows in flight (a row the chain lost is back to signed by then).
            with self.rt.db.read() as s:
                signers = list(s.scalars(select(OutboxRow.signer).where(OutboxRow.status.in_(("signed", "sent", "mined")))
                                         .distinct()).all())
        if not signers:
            return 0
        latest = self.client.nonces(signers)
        for signer, count in latest.items():
            self._latest_seen[signer] = count
        changed = 0
        for signer in signers:
            changed += self._audit_signer(signer, latest[signer])
        return changed

    def _audit_signer(self, signer: str, consumed: int) -> int:
        """``consumed``: the chain's ``latest`` nonce count of ``signer`` (read before the receipts)."""
        self._recheck_at.pop(signer, None)
        with self.rt.db.read() as s:
            above = s.execute(select(OutboxRow.id, OutboxRow.status, OutboxRow.nonce, OutboxRow.tx_hash,
                                     OutboxRow.block_hash, OutboxRow.kind)
                              .where(OutboxRow.signer == signer, OutboxRow.nonce >= consumed,
                                     OutboxRow.status.in_(LIVE_STATUSES + ("failed",)))
                              .order_by(OutboxRow.nonce).limit(AUDIT_ROWS_MAX)).all()
            # In flight below the chain's count: read through the status index (the in-flight
            # rows are few; a signer's whole history is not), filtered here.
            below = [r for r in s.execute(select(OutboxRow.id, OutboxRow.status, OutboxRow.nonce, OutboxRow.tx_hash,
                                                 OutboxRow.signer)
                                          .where(OutboxRow.status.in_(("signed", "sent")))
                                          .order_by(OutboxRow.id).limit(AUDIT_ROWS_MAX)).all()
                     if r.signer == signer and r.nonce is not None and r.nonce < consumed]
        if not above and not below:
            self._suspects.pop(signer, None)
            return 0
        hashes = [r.tx_hash for r in above if r.status != "failed"] + [r.tx_hash for r in below]
        # Only receipts in the canonical chain count: one the node keeps for a block it lost is none.
        receipts = self.client.canonical_receipts(hashes) if hashes else {}
        unknown_sent = [r.tx_hash for r in above if r.status == "sent" and receipts[r.tx_hash] is None]
        known = self.client.transactions_known(unknown_sent) if unknown_sent else {}

        lost: list[int] = []  # mined or confirmed, the chain lacks them: back to signed
        resend: list[int] = []  # sent, the node does not know them: back to signed
        held: set[int] = set()  # nonces >= consumed that a live row keeps
        for r in above:
            if r.status == "failed":
                continue
            held.add(r.nonce)
            receipt = receipts[r.tx_hash]
            if r.status in ("mined", "confirmed") and (receipt is None or receipt.block_hash != r.block_hash):
                lost.append(r.id)
            elif r.status == "sent" and receipt is None and not known.get(r.tx_hash, False):
                resend.append(r.id)
        top = max((r.nonce for r in above), default=consumed - 1)
        gaps = [n for n in range(consumed, top + 1) if n not in held]

        now = time.monotonic()
        taken: list[int] = []  # nonce consumed by another transaction, seen twice: re-sign elsewhere
        before, after = self._suspects.get(signer, {}), {}
        for r in below:
            if receipts[r.tx_hash] is not None:
                continue  # on chain: collect records it
            first = before.get(r.id)
            if first is None or first[0] != r.tx_hash:
                after[r.id] = (r.tx_hash, now)
            elif now - first[1] >= AUDIT_CONFIRM_S:
                taken.append(r.id)
            else:
                after[r.id] = first
        if after:
            self._suspects[signer] = after
            self._recheck_at[signer] = min(t for _, t in after.values()) + AUDIT_CONFIRM_S
        else:
            self._suspects.pop(signer, None)
        if not (lost or resend or gaps or taken):
            return 0
        return self._repair(signer, consumed, lost, resend, gaps, taken, self._effects_present(taken))

    def _effects_present(self, row_ids: list[int]) -> dict[int, str]:
        """Of rows whose nonce another transaction consumed: those whose call now reverts, with
        the error. A node restarted from a torn state dump (anvil writes its accounts and its
        blocks apart; killed between the two, it comes back with the nonces and effects of its
        last transactions but without the transactions) has applied them without any record:
        signed again, they would only revert and the domain would be told "rejected" while the
        chain's state holds the effect. Such a row is set aside, never sent again (bounded:
        AUDIT_ROWS_MAX per audit)."""
        if not row_ids:
            return {}
        with self.rt.db.read() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.id.in_(row_ids))).all()
        present = {}
        for row in rows:
            if row.kind == FILLER_KIND:
                continue
            error = self.client.simulate(row.signer, self._address(row), row.calldata, row.gas_limit)
            if error is not None:
                present[row.id] = error.error_name or str(error.detail)[:100]
        return present

    def _repair(self, signer: str, consumed: int, lost: list[int], resend: list[int], gaps: list[int],
                taken: list[int], effect_present: dict[int, str]) -> int:
        changed = orphaned = 0
        lost_rows: list[OutboxRow] = []
        with self.rt.db.transaction() as s:
            if lost or resend:
                checkpoints.lock(s)  # before any outbox row: the follower's order (see checkpoints.lock)
            for row_id in lost:
                row = s.get(OutboxRow, row_id)
                if row is None or row.status not in ("mined", "confirmed") or row.nonce < consumed:
                    continue
                lost_rows.append(row)
                unsend(row, "the canonical chain lacks its transaction (rollback or node restart); broadcast again",
                       lost=True)
                changed += 1
            lost_n = len(lost_rows)
            # A sent row whose events the follower stored was mined (the follower saw it before the
            # dispatcher its receipt) and its record may have been acted on: lost like a mined one,
            # so that what was written after it waits for it (_after_lost_dependencies).
            seen = set(s.scalars(select(ChainEvent.tx_hash).where(ChainEvent.tx_hash.in_(
                select(OutboxRow.tx_hash).where(OutboxRow.id.in_(resend)).scalar_subquery())))) if resend else set()
            for row_id in resend:
                row = s.get(OutboxRow, row_id)
                if row is None or row.status != "sent":
                    continue
                # Mined once (``mined_at``) and lost since: as lost as one the follower saw.
                unsend(row, "the node does not know its transaction; broadcast again",
                       lost=row.tx_hash in seen or row.mined_at is not None)
                lost_rows.append(row)  # the follower may have seen its events before the dispatcher its receipt
                changed += 1
            for row_id in taken:
                row = s.get(OutboxRow, row_id)
                if row is None or row.status not in ("signed", "sent") or row.nonce >= consumed:
                    continue
                if row.kind == FILLER_KIND:
                    row.status, row.error_name = "failed", "NonceConsumed"
                    row.last_error = f"nonce {row.nonce} was spent by another transaction"
                elif row.id in effect_present:
                    row.status, row.error_name = ORPHANED, "EffectWithoutReceipt"
                    row.last_error = (f"nonce {row.nonce} consumed without a transaction the node can show, and the call "
                                      f"now reverts ({effect_present[row.id]}): the node's state holds an effect whose "
                                      f"transaction it lost (torn state dump?); not sent again, to be resolved by hand")
                    log.error("outbox %s (%s): %s", row.id, row.kind, row.last_error,
                              extra={"tx_hash": row.tx_hash, "outbox_id": row.id})
                    orphaned += 1
                else:
                    log.error("outbox %s: nonce %d of %s was consumed on chain by another transaction "
                              "(seen twice, %.0fs apart); re-signing it with a new nonce", row.id, row.nonce,
                              signer, AUDIT_CONFIRM_S, extra={"tx_hash": row.tx_hash, "outbox_id": row.id})
                    self._repend(row, f"nonce {row.nonce} consumed on chain by another transaction")
                changed += 1
            s.flush()
            still_free = set(gaps)
            if gaps:  # none taken since the snapshot (only this thread assigns nonces): checked anyway
                still_free -= set(s.scalars(select(OutboxRow.nonce).where(
                    OutboxRow.signer == signer, OutboxRow.nonce.in_(gaps), OutboxRow.status.in_(LIVE_STATUSES))).all())
            for nonce in sorted(still_free):
                self._add_filler(s, signer, nonce)
                changed += 1
            if lost_rows:
                self._forget_chain_records(s, lost_rows)
        if taken:
            self.nonces.forget(signer)
        if not changed:
            return 0
        stats = self.rt.stats
        for name, count in (("outbox_rows_lost_by_chain", lost_n), ("outbox_rows_resent", len(lost_rows) - lost_n),
                            ("nonce_gaps_filled", len(still_free)), ("nonces_taken_elsewhere", len(taken)),
                            ("outbox_rows_orphaned", orphaned)):
            stats[name] = stats.get(name, 0) + count
        log.warning("audit of %s (chain nonce count %d): %d lost rows and %d unknown to the node broadcast "
                    "again at their own nonces, %d nonce gaps filled, %d rows re-signed after their nonce "
                    "was taken", signer, consumed, lost_n, len(lost_rows) - lost_n, len(still_free), len(taken))
        return changed

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
        if row.kind == FILLER_KIND:
            return ChainRevertError("nonce filler reverted")
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
        row.block_number, row.block_hash = receipt.block_number, receipt.block_hash
        # Mined again after a loss: ``mined_at`` stays when it was first mined, the row's place
        # in the order the chain first had it, should the chain lose it again.
        row.mined_at = row.mined_at or now
        if row.error_name == CHAIN_LOST:
            row.error_name = None
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

    def chain_lost(self, session: Session, rows: list[OutboxRow]) -> None:
        """Rows held as mined or confirmed whose transactions the canonical chain no longer has
        (seen by the follower): back to signed, to be broadcast again at their own nonces, the
        domains' mirrors back to pending; then every signer is audited (gaps, order)."""
        for row in rows:
            unsend(row, f"transaction {row.tx_hash} lost by the chain (rollback); broadcast again", lost=True)
        stats = self.rt.stats
        stats["outbox_rows_lost_by_chain"] = stats.get("outbox_rows_lost_by_chain", 0) + len(rows)
        if rows:
            self._forget_chain_records(session, rows)
        self.request_audit(None)

    def _forget_chain_records(self, session: Session, rows: list[OutboxRow]) -> None:
        """The stored events of lost transactions go (the same transactions mined anew emit them
        again, with the same hash and log index: else the follower would take them for known and
        not run their handlers), the follower's checkpoint goes back below the first of them
        (:func:`settlement.pipeline.checkpoints.rewind`), and the domains show the records pending."""
        hashes = [r.tx_hash for r in rows if r.tx_hash]
        if hashes:
            checkpoints.lock(session)  # before any event row: the follower's order (see checkpoints.lock)
        lowest: int | None = None
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            low = session.scalar(select(func.min(ChainEvent.block_number)).where(ChainEvent.tx_hash.in_(chunk)))
            if low is not None:
                lowest = low if lowest is None else min(lowest, low)
                session.execute(delete(ChainEvent).where(ChainEvent.tx_hash.in_(chunk)))
        if lowest is not None:
            # The follower may have read past those blocks, and the restarted chain may hold the
            # same blocks again (same hashes): it must read them again all the same.
            checkpoints.rewind(session, lowest)
        for hook in self.rollback_hooks:
            hook(session, rows)


def pending_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxRow)
                          .where(OutboxRow.status.in_(("pending", "signed", "sent")))) or 0


__all__ = ["FILLER_KIND", "Dispatcher", "NonceBook", "pending_rows", "unsend"]
