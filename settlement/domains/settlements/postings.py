"""The double-entry journal: balanced postings per member and currency, with running balances.

Chart of accounts (``owner`` is a member id, or ``@consortium`` for the consortium's own accounts):

=========================  ===========  =========  ==================================================
account                    owner        currency   meaning
=========================  ===========  =========  ==================================================
``instructed_payable``     payer        source     Cr: instructed, not yet paid (the payer's commitment)
``instructed_receivable``  payee        target     Dr: instructed, not yet paid (what the payee expects)
``fx_clearing``            @consortium  each       the conversion: Dr source leg, Cr target leg
``fees_payable``           payer        source     Cr: fees the payer owes on its settlements
``fees_receivable``        @consortium  source     Dr: fees due to the consortium
``clearing_payable``       payer        target     Cr: paid, owed by the payer until netted
``clearing_receivable``    payee        target     Dr: paid, owed to the payee until netted
``refund_receivable``      payer        target     Dr: refunds of settled settlements owed back to it
``refund_payable``         payee        target     Cr: refunds of settled settlements it owes back
``net_settlement``         member       cycle's    Dr: net received in cycles; Cr: net paid
=========================  ===========  =========  ==================================================

Every journal transaction is checked before anything is written: per currency, debits equal
credits, and every amount is positive. The check raises :class:`JournalImbalanceError` (it is
not an ``assert``: ``python -O`` cannot strip it).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from settlement.core.errors import JournalImbalanceError
from settlement.core.money import check_currency
from settlement.domains.anchoring import digest_new
from settlement.store.bulk import insert_rows
from settlement.store.models.settlements import SYSTEM_OWNER, JournalBalance, JournalEntry, JournalTransaction

__all__ = [
    "SYSTEM_OWNER", "ACCOUNTS", "INSTRUCTED_PAYABLE", "INSTRUCTED_RECEIVABLE", "FX_CLEARING", "FEES_PAYABLE",
    "FEES_RECEIVABLE", "CLEARING_PAYABLE", "CLEARING_RECEIVABLE", "REFUND_RECEIVABLE", "REFUND_PAYABLE",
    "NET_SETTLEMENT", "Posting", "TxnSpec", "check_balanced", "post", "post_many", "reverse", "BalanceRow",
    "balances", "statement", "trial_balance", "verify_journal", "STATEMENT_LIMIT_MAX",
]

INSTRUCTED_PAYABLE = "instructed_payable"
INSTRUCTED_RECEIVABLE = "instructed_receivable"
FX_CLEARING = "fx_clearing"
FEES_PAYABLE = "fees_payable"
FEES_RECEIVABLE = "fees_receivable"
CLEARING_PAYABLE = "clearing_payable"
CLEARING_RECEIVABLE = "clearing_receivable"
REFUND_RECEIVABLE = "refund_receivable"
REFUND_PAYABLE = "refund_payable"
NET_SETTLEMENT = "net_settlement"
ACCOUNTS = frozenset({INSTRUCTED_PAYABLE, INSTRUCTED_RECEIVABLE, FX_CLEARING, FEES_PAYABLE, FEES_RECEIVABLE,
                      CLEARING_PAYABLE, CLEARING_RECEIVABLE, REFUND_RECEIVABLE, REFUND_PAYABLE, NET_SETTLEMENT})

ENTRIES_PER_TXN_MAX = 1_000
STATEMENT_LIMIT_MAX = 500
_BALANCE_KEYS_PER_QUERY = 200


@dataclass(frozen=True, slots=True)
class Posting:
    owner: str
    account: str
    currency: str
    side: str  # "D" | "C"
    amount_minor: int


def debit(owner: str, account: str, currency: str, amount_minor: int) -> Posting:
    return Posting(owner, account, currency, "D", amount_minor)


def credit(owner: str, account: str, currency: str, amount_minor: int) -> Posting:
    return Posting(owner, account, currency, "C", amount_minor)


@dataclass
class TxnSpec:
    kind: str
    postings: list[Posting]
    settlement_id: str | None = None
    cycle_id: str | None = None
    reverses: str | None = None
    memo: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


def check_balanced(postings: Sequence[Posting]) -> None:
    """Raises JournalImbalanceError unless, per currency, debits equal credits (all amounts > 0)."""
    if not 2 <= len(postings) <= ENTRIES_PER_TXN_MAX:
        raise JournalImbalanceError(f"a journal transaction needs 2..{ENTRIES_PER_TXN_MAX} entries, "
                                    f"got {len(postings)}")
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        if type(p.amount_minor) is not int or p.amount_minor <= 0:
            raise JournalImbalanceError(f"entry amount must be a positive integer, got {p.amount_minor!r}")
        if p.side not in ("D", "C") or p.account not in ACCOUNTS:
            raise JournalImbalanceError(f"malformed entry {p}")
        check_currency(p.currency)
        sums[p.currency] += p.amount_minor if p.side == "D" else -p.amount_minor
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        raise JournalImbalanceError(f"debits minus credits per currency: {unbalanced}", imbalance=unbalanced)


def post(session: Session, kind: str, postings: Sequence[Posting], *, settlement_id: str | None = None,
         cycle_id: str | None = None, memo: str = "") -> str:
    """Writes one balanced journal transaction and updates the balances; returns its id."""
    spec = TxnSpec(kind, list(postings), settlement_id=settlement_id, cycle_id=cycle_id, memo=memo)
    post_many(session, [spec])
    return spec.id


def post_many(session: Session, specs: Sequence[TxnSpec], *, checked: bool = False) -> list[str]:
    """Writes many journal transactions with bulk inserts; each is checked balanced first
    (``checked``: the caller already ran :func:`check_balanced` on each, outside the lock)."""
    if not specs:
        return []
    if not checked:
        for spec in specs:
            check_balanced(spec.postings)
    now = datetime.now(timezone.utc)
    txns = [{"id": s.id, "kind": s.kind, "settlement_id": s.settlement_id, "cycle_id": s.cycle_id,
             "reverses": s.reverses, "memo": s.memo[:200], "created_at": now} for s in specs]
    insert_rows(session, JournalTransaction.__table__, txns)
    insert_rows(session, JournalEntry.__table__, [
        {"txn_id": s.id, "owner": p.owner, "account": p.account, "currency": p.currency, "side": p.side,
         "amount_minor": p.amount_minor, "created_at": now} for s in specs for p in s.postings])
    _apply_to_balances(session, [p for s in specs for p in s.postings], now)
    digest_new(session, "posting", [{**t, "lines": s.postings} for t, s in zip(txns, specs)])
    return [s.id for s in specs]


def _apply_to_balances(session: Session, postings: Iterable[Posting], now: datetime) -> None:
    deltas: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in postings:
        d = deltas[(p.owner, p.account, p.currency)]
        d[0 if p.side == "D" else 1] += p.amount_minor
        d[2] += 1
    keys = sorted(deltas)  # one lock order for every writer: no deadlocks on PostgreSQL
    _ensure_balance_rows(session, keys, now)
    for start in range(0, len(keys), _BALANCE_KEYS_PER_QUERY):
        chunk = keys[start:start + _BALANCE_KEYS_PER_QUERY]
        rows = session.scalars(
            select(JournalBalance)
            .where(tuple_(JournalBalance.owner, JournalBalance.account, JournalBalance.currency).in_(chunk))
            .order_by(JournalBalance.owner, JournalBalance.account, JournalBalance.currency)
            .with_for_update()).all()
        for row in rows:
            d = deltas[(row.owner, row.account, row.currency)]
            row.debit_minor += d[0]
            row.credit_minor += d[1]
            row.entry_count += d[2]
            row.updated_at = now


def _ensure_balance_rows(session: Session, keys: Sequence[tuple[str, str, str]], now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    rows = [{"owner": o, "account": a, "currency": c, "debit_minor": 0, "credit_minor": 0, "entry_count": 0,
             "updated_at": now} for o, a, c in keys]
    session.execute(dialect_insert(JournalBalance).on_conflict_do_nothing(), rows)


def reverse(session: Session, txn_id: str, kind: str, memo: str = "") -> str:
    """Posts the exact opposite of journal transaction ``txn_id``; returns the new one's id."""
    original = session.get(JournalTransaction, txn_id)
    if original is None:
        raise JournalImbalanceError(f"no journal transaction {txn_id} to reverse")
    entries = session.scalars(select(JournalEntry).where(JournalEntry.txn_id == txn_id)
                              .order_by(JournalEntry.id)).all()
    postings = [Posting(e.owner, e.account, e.currency, "C" if e.side == "D" else "D", e.amount_minor)
                for e in entries]
    spec = TxnSpec(kind, postings, settlement_id=original.settlement_id, cycle_id=original.cycle_id,
                   reverses=txn_id, memo=memo or f"reverses {txn_id}")
    post_many(session, [spec])
    return spec.id


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BalanceRow:
    owner: str
    account: str
    currency: str
    debit_minor: int
    credit_minor: int

    @property
    def balance_minor(self) -> int:
        """Debits minus credits: positive is owed to the owner (or held), negative owed by it."""
        return self.debit_minor - self.credit_minor


def balances(session: Session, owner: str, currency: str | None = None) -> list[BalanceRow]:
    q = select(JournalBalance).where(JournalBalance.owner == owner)
    if currency is not None:
        q = q.where(JournalBalance.currency == currency)
    rows = session.scalars(q.order_by(JournalBalance.currency, JournalBalance.account)).all()
    return [BalanceRow(r.owner, r.account, r.currency, r.debit_minor, r.credit_minor) for r in rows]


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    txn_id: str
    kind: str
    settlement_id: str | None
    cycle_id: str | None
    account: str
    currency: str
    side: str
    amount_minor: int
    created_at: datetime


def statement(session: Session, owner: str, currency: str, *, after_id: int = 0,
              limit: int = 100) -> list[StatementLine]:
    """The owner's entries in ``currency`` in posting order, ``limit`` after entry ``after_id``."""
    if not 1 <= limit <= STATEMENT_LIMIT_MAX:
        raise ValueError(f"limit must be within 1..{STATEMENT_LIMIT_MAX}")
    rows = session.execute(
        select(JournalEntry, JournalTransaction.kind, JournalTransaction.settlement_id, JournalTransaction.cycle_id)
        .join(JournalTransaction, JournalTransaction.id == JournalEntry.txn_id)
        .where(JournalEntry.owner == owner, JournalEntry.currency == currency, JournalEntry.id > after_id)
        .order_by(JournalEntry.id).limit(limit)).all()
    return [StatementLine(e.id, e.txn_id, kind, sid, cid, e.account, e.currency, e.side, e.amount_minor,
                          e.created_at) for e, kind, sid, cid in rows]


def trial_balance(session: Session) -> dict[str, tuple[int, int]]:
    """Per currency, (total debits, total credits) over every account's running balance."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in session.scalars(select(JournalBalance)):
        totals[row.currency][0] += row.debit_minor
        totals[row.currency][1] += row.credit_minor
    return {c: (d, cr) for c, (d, cr) in totals.items()}


def verify_journal(session: Session) -> None:
    """Recomputes every balance from the entries and checks every transaction and currency balances.

    Raises JournalImbalanceError on the first discrepancy (an audit, not a hot path)."""
    per_txn: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_account: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in session.scalars(select(JournalEntry)):
        signed = e.amount_minor if e.side == "D" else -e.amount_minor
        per_txn[e.txn_id][e.currency] += signed
        per_account[(e.owner, e.account, e.currency)][0 if e.side == "D" else 1] += e.amount_minor
    for txn_id, sums in per_txn.items():
        if any(sums.values()):
            raise JournalImbalanceError(f"journal transaction {txn_id} is not balanced: {dict(sums)}")
    stored = {(r.owner, r.account, r.currency): [r.debit_minor, r.credit_minor]
              for r in session.scalars(select(JournalBalance))}
    for key, totals in per_account.items():
        if stored.get(key) != totals:
            raise JournalImbalanceError(f"balance of {key} is {stored.get(key)}, entries say {totals}")
    for currency, (debits, credits) in trial_balance(session).items():
        if debits != credits:
            raise JournalImbalanceError(f"{currency}: debits {debits} != credits {credits}")
