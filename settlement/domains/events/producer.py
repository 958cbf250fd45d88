"""Producing events in the transaction of the change they describe.

Two sources, both inside the change's own database transaction, so an event is committed exactly
when its change is, and a crash loses none and invents none:

- the record journal (:func:`settlement.domains.anchoring.digests.observe_changes`): every
  change of a settlement, cycle, receivable, callback, reconciliation record, member, key, API
  key, governance proposal or approval is journaled with its previous version at commit; :func:`on_journal` maps (kind, old
  record -> new record) to catalogued events;
- follower handlers for what the journal leaves out on purpose (chain facts):
  ``SettlementRecorded`` -> ``settlement.confirmed``, ``RootAnchored`` -> ``anchor.anchored``.

Recipients are the parties of the object (docs/events.md, "Who receives what"), one
``event_recipients`` row each: that is the only way a member reads or is sent an event.

Order: on PostgreSQL an event-writing transaction takes one transaction-scoped advisory lock
before its first insert, so ``seq`` values become visible in commit order and a reader's cursor
never skips an event committed late (SQLite has one writer: the order is given).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import String, and_, exists, func, insert, select, text
from sqlalchemy import cast as sa_cast
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from settlement.chain.client import DecodedLog
from settlement.domains.events.catalogue import CATALOGUE
from settlement.store.db import engine_info
from settlement.store.models import Member, utcnow
from settlement.store.models.anchoring import AnchorBatch, ProvenanceEventRow
from settlement.store.models.events import EventRecipient, EventRow
from settlement.store.models.governance import GovernanceApproval, GovernanceProposal
from settlement.store.models.payments import ProviderAccountRow
from settlement.store.models.receivables import Receivable, ReceivablePart
from settlement.store.models.settlements import NettingCycle, Settlement

__all__ = ["RECEIVABLE_CHAIN_EVENTS", "Draft", "emit", "emit_overdue", "new_event_id", "on_journal",
           "proposal_object",
           "on_net_payment_attested", "on_settlement_acknowledged",
           "on_receivable_event", "on_root_anchored", "on_settlements_recorded"]

# One advisory lock key for every event-writing transaction (PostgreSQL): "ledgerev".
EVENT_ORDER_LOCK_KEY = 0x6C65646765726576
_LOCKED = "ledger.events.ordered"
# Ids per IN list when parties are loaded (bound on the SQL statement).
LOAD_CHUNK_MAX = 500
# Receivables marked overdue per pass of the overdue job.
OVERDUE_PER_PASS_MAX = 500
LEDGER_CONTRACTS = frozenset({"SettlementLedger", "ISettlementLedger"})

_EVENTS = EventRow.__table__
_RECIPIENTS = EventRecipient.__table__


@dataclass
class Draft:
    """An event to write: its type, object, state after the change, who receives it, its data."""

    type: str
    object_id: str
    state: str | None
    recipients: set[str]
    data: dict[str, Any]
    tx_hash: str | None = None
    block_number: int | None = None
    object_type: str = field(default="")

    def __post_init__(self) -> None:
        spec = CATALOGUE.get(self.type)
        if spec is None:
            raise ValueError(f"{self.type} is not in the event catalogue")
        self.object_type = spec.object_type
        self.recipients = {r for r in self.recipients if r}


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def _ordered(conn: Connection) -> None:
    if conn.dialect.name != "postgresql" or conn.info.get(_LOCKED) is conn.get_transaction():
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENT_ORDER_LOCK_KEY - (1 << 63)})
    conn.info[_LOCKED] = conn.get_transaction()


def emit(conn: Connection, drafts: Sequence[Draft]) -> int:
    """Write ``drafts`` (events with at least one recipient) in the caller's transaction."""
    drafts = [d for d in drafts if d.recipients]
    if not drafts:
        return 0
    _ordered(conn)
    now = utcnow()
    rows = [{"id": new_event_id(), "type": d.type, "object_type": d.object_type, "object_id": d.object_id,
             "state": d.state, "tx_hash": d.tx_hash, "block_number": d.block_number, "data": d.data,
             "occurred_at": now} for d in drafts]
    seqs = conn.execute(insert(_EVENTS).returning(_EVENTS.c.seq, sort_by_parameter_order=True), rows).scalars().all()
    recipients = [{"member_id": m, "event_seq": seq} for seq, d in zip(seqs, drafts, strict=True)
                  for m in sorted(d.recipients)]
    conn.execute(insert(_RECIPIENTS), recipients)
    return len(drafts)


# -- helpers --------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _money(value: Any, currency: str | None) -> dict[str, Any] | None:
    return None if value is None or currency is None else {"value": int(value), "currency": currency}


def _chunks(ids: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(ids), LOAD_CHUNK_MAX):
        yield list(ids[start:start + LOAD_CHUNK_MAX])


def _rows_by(conn: Connection, table: Any, key: Any, ids: Iterable[Any], *cols: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    wanted = sorted(set(ids))
    for chunk in _chunks(wanted):
        for row in conn.execute(select(key, *cols).where(key.in_(chunk))):
            out[row[0]] = row
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        utc = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# -- settlements ----------------------------------------------------------------------------------

_S = Settlement.__table__


def settlement_object(r: Mapping[str, Any]) -> dict[str, Any]:
    target = r["target_currency"]
    return {"id": r["id"], "payer": r["payer_id"], "payee": r["payee_id"], "client_reference": r["client_reference"],
            "source": _money(r["source_amount_minor"], r["source_currency"]),
            "target": _money(r["target_amount_minor"], target), "value_date": r["value_date"],
            "purpose_code": r["purpose_code"], "payment_reference": r["payment_reference"], "state": r["state"],
            "paid": _money(r["paid_minor"] or 0, target), "refunded": _money(r["refunded_minor"] or 0, target),
            "provider": r["provider"], "cycle_id": r["cycle_id"]}


def _settlement_type(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str | None:
    if old is None:
        return "settlement.recorded" if new["state"] == "instructed" else None
    a, b = old["state"], new["state"]
    refunded_before, refunded_now = int(old["refunded_minor"] or 0), int(new["refunded_minor"] or 0)
    if a == b:
        if refunded_now > refunded_before:
            return "settlement.refunded"
        return "settlement.reverted" if refunded_now < refunded_before else None
    if b == "paid":
        return "settlement.paid" if a == "instructed" else ("settlement.released" if a == "in_cycle"
                                                           else "settlement.reverted")
    return {"in_cycle": "settlement.in_cycle", "settled": "settlement.settled", "cancelled": "settlement.cancelled",
            "refunded": "settlement.refunded", "rejected": "settlement.failed"}.get(b, "settlement.reverted")


def _settlements(conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    typed = [(rid, t, new) for rid, old, new in changes if new is not None
             and (t := _settlement_type(old, new)) is not None]
    if not typed:
        return []
    chain = _rows_by(conn, _S, _S.c.id, [rid for rid, _t, _n in typed], _S.c.tx_hash, _S.c.block_number,
                     _S.c.chain_status)
    out = []
    for rid, t, new in typed:
        c = chain.get(rid)
        obj = settlement_object(new)
        obj["chain_status"] = c.chain_status if c is not None else None
        out.append(Draft(t, rid, new["state"], {new["payer_id"], new["payee_id"]}, obj,
                         c.tx_hash if c is not None else None, _int(c.block_number) if c is not None else None))
    return out


def on_settlements_recorded(session: Session, logs: list[DecodedLog]) -> None:
    """Follower (after the settlements domain's handler): ``settlement.confirmed`` for each
    settlement whose recording this event confirmed."""
    by_id = {lg.args["id"]: lg for lg in logs if lg.contract in LEDGER_CONTRACTS}
    if not by_id:
        return
    with session.no_autoflush:
        conn = session.connection()
        cols = [_S.c[c] for c in ("id", "payer_id", "payee_id", "client_reference", "source_amount_minor",
                                  "source_currency", "target_amount_minor", "target_currency", "value_date",
                                  "purpose_code", "payment_reference", "state", "paid_minor", "refunded_minor",
                                  "provider", "cycle_id", "recorded_tx_hash", "recorded_block", "chain_status")]
        drafts = []
        for chunk in _chunks(sorted(by_id)):
            for row in conn.execute(select(*cols).where(_S.c.id.in_(chunk))).mappings():
                lg = by_id[row["id"]]
                if row["recorded_tx_hash"] != lg.tx_hash:
                    continue  # not confirmed by this event (recorded around the API, or already)
                obj = settlement_object({**row, "value_date": _iso(row["value_date"])})
                obj["chain_status"] = row["chain_status"]
                drafts.append(Draft("settlement.confirmed", row["id"], row["state"], {row["payer_id"], row["payee_id"]},
                                    obj, lg.tx_hash, lg.block_number))
        emit(conn, _dedupe_confirmed(conn, drafts))


def _already(conn: Connection, event_type: str, object_id: str, tx_hash: str | None) -> bool:
    """A follower replaying a block range (a reorg) emits a chain event's event once."""
    return conn.execute(select(_EVENTS.c.seq).where(_EVENTS.c.type == event_type, _EVENTS.c.object_id == object_id,
                                                    _EVENTS.c.tx_hash == tx_hash).limit(1)).first() is not None


def on_settlement_acknowledged(session: Session, lg: DecodedLog) -> None:
    """Follower (after the settlements domain's handler): ``settlement.acknowledged`` to both
    parties of one of our settlements when its payee acknowledged receipt on chain."""
    session.flush()
    conn = session.connection()
    cols = [_S.c[c] for c in ("id", "payer_id", "payee_id", "client_reference", "source_amount_minor",
                              "source_currency", "target_amount_minor", "target_currency", "value_date",
                              "purpose_code", "payment_reference", "state", "paid_minor", "refunded_minor",
                              "provider", "cycle_id", "chain_status")]
    row = conn.execute(select(*cols).where(_S.c.id == str(lg.args.get("id", "")).lower())).mappings().first()
    if row is None or _already(conn, "settlement.acknowledged", row["id"], lg.tx_hash):
        return
    obj = settlement_object({**row, "value_date": _iso(row["value_date"])})
    obj["chain_status"] = row["chain_status"]
    emit(conn, [Draft("settlement.acknowledged", row["id"], row["state"], {row["payer_id"], row["payee_id"]}, obj,
                      lg.tx_hash, lg.block_number)])


def on_net_payment_attested(session: Session, lg: DecodedLog) -> None:
    """Follower: ``netting_cycle.payment_attested`` to the paying member and the operator who
    closed the cycle (a member never learns another's net payment)."""
    session.flush()
    conn = session.connection()
    cycle = conn.execute(select(*(_C.c[c] for c in ("id", "currency", "state", "members", "gross_count",
                                                    "gross_value_minor", "net_count", "net_value_minor",
                                                    "closed_by", "chain_status")))
                         .where(_C.c.id == str(lg.args.get("cycleId", "")).lower())).mappings().first()
    payer = _member_of(conn, lg.args.get("member"))
    if cycle is None or payer is None:
        return
    if _already(conn, "netting_cycle.payment_attested", cycle["id"], lg.tx_hash):  # one attestation per tx
        return
    obj = _cycle_object(cycle["id"], cycle, cycle["chain_status"])
    obj["net_payment"] = {"member": payer, "amount": _money(int(lg.args["amountMinor"]), cycle["currency"])}
    emit(conn, [Draft("netting_cycle.payment_attested", cycle["id"], cycle["state"], {payer, cycle["closed_by"]},
                      obj, lg.tx_hash, lg.block_number)])


def _dedupe_confirmed(conn: Connection, drafts: list[Draft]) -> list[Draft]:
    """A follower replaying a block range (a reorg) must not confirm twice."""
    if not drafts:
        return drafts
    seen: set[str] = set()
    for chunk in _chunks([d.object_id for d in drafts]):
        seen.update(conn.execute(select(_EVENTS.c.object_id).where(
            _EVENTS.c.type == "settlement.confirmed", _EVENTS.c.object_type == "settlement",
            _EVENTS.c.object_id.in_(chunk), _EVENTS.c.tx_hash.in_({d.tx_hash for d in drafts}))).scalars())
    return [d for d in drafts if d.object_id not in seen]


# -- netting cycles -------------------------------------------------------------------------------

_C = NettingCycle.__table__


def _cycle_object(cycle_id: str, row: Mapping[str, Any], chain_status: str | None) -> dict[str, Any]:
    return {"id": cycle_id, "currency": row["currency"], "state": row["state"],
            "settlement_count": row["gross_count"], "gross": _money(row["gross_value_minor"], row["currency"]),
            "net_count": row["net_count"], "net": _money(row["net_value_minor"], row["currency"]),
            "members": sorted({m[0] for m in row["members"] or []}), "chain_status": chain_status}


def _cycles(conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    typed = []
    for rid, old, new in changes:
        if new is None:
            continue
        if old is None:
            t = "netting_cycle.submitted" if new["state"] == "submitted" else None
        elif old["state"] != new["state"]:
            t = {"settled": "netting_cycle.settled", "cancelled": "netting_cycle.cancelled",
                 "rejected": "netting_cycle.failed"}.get(new["state"])
        else:
            t = None
        if t is not None:
            typed.append((rid, t, new))
    if not typed:
        return []
    chain = _rows_by(conn, _C, _C.c.id, [rid for rid, _t, _n in typed], _C.c.submit_tx_hash, _C.c.submit_block,
                     _C.c.settle_tx_hash, _C.c.settle_block, _C.c.chain_status)
    out = []
    for rid, t, new in typed:
        members = {m[0] for m in new["members"] or []}
        c = chain.get(rid)
        tx, block = (None, None)
        if c is not None:
            tx, block = ((c.settle_tx_hash, c.settle_block) if t == "netting_cycle.settled"
                         else (c.submit_tx_hash, c.submit_block))
        obj = _cycle_object(rid, new, c.chain_status if c is not None else None)
        out.append(Draft(t, rid, new["state"], members | {new["closed_by"]}, obj, tx, _int(block)))
    return out


# -- receivables ----------------------------------------------------------------------------------

_R = Receivable.__table__
_P = ReceivablePart.__table__
_M = Member.__table__


def receivable_object(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "supplier": r["supplier_id"], "buyer": r["buyer_id"], "invoice_number": r["invoice_number"],
            "face_value": _money(r["face_value_minor"], r["currency"]), "issue_date": _iso(r["issue_date"]),
            "due_date": _iso(r["due_date"]), "status": r["status"], "part_count": r["part_count"]}


def _part_object(p: Mapping[str, Any], currency: str) -> dict[str, Any]:
    return {"id": p["id"], "index": p["index"], "holder": p["holder_id"], "amount": _money(p["amount_minor"], currency),
            "financed": bool(p["financed"]), "request_open": bool(p["request_open"]), "financier": p["financier_id"],
            "offer_id": None if p["offer_id"] is None else str(p["offer_id"]),
            "advance": _money(p["advance_minor"], currency), "fee": _money(p["fee_minor"], currency)}


def _parties_of_receivables(conn: Connection, ids: Iterable[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    wanted = sorted(set(ids))
    for chunk in _chunks(wanted):
        for rid, holder, financier, seller in conn.execute(
                select(_P.c.receivable_id, _P.c.holder_id, _P.c.financier_id, _P.c.seller_id)
                .where(_P.c.receivable_id.in_(chunk))):
            out.setdefault(rid, set()).update(x for x in (holder, financier, seller) if x)
    return out


def _receivables(conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    """Only the refusal of a registration (the dispatcher's failure hook): every other receivable
    event comes from the chain's own event, in log order (:func:`on_receivable_event`)."""
    rejected = [(rid, new) for rid, old, new in changes if new is not None and new["status"] == "rejected"
                and (old is None or old["status"] != "rejected")]
    return [Draft("receivable.rejected", rid, "rejected", {new["supplier_id"], new["buyer_id"]},
                  receivable_object(new)) for rid, new in rejected]


# ReceivableRegistry event -> (event type, the argument naming the receivable or the part)
RECEIVABLE_CHAIN_EVENTS: dict[str, tuple[str, str]] = {
    "ReceivableRegistered": ("receivable.registered", "receivableId"),
    "ReceivableConfirmed": ("receivable.confirmed", "receivableId"),
    "PartSplit": ("receivable.split", "newPartId"),
    "PartTransferred": ("receivable.transferred", "partId"),
    "FinancingRequested": ("financing.requested", "partId"),
    "FinancingOffered": ("financing.offered", "partId"),
    "FinancingAccepted": ("financing.accepted", "partId"),
    "FinancingRequestWithdrawn": ("financing.withdrawn", "partId"),
    "ReceivableCancelled": ("receivable.cancelled", "receivableId"),
    "RepaymentReported": ("receivable.repayment_reported", "receivableId"),
    "PartRepaid": ("receivable.part_repaid", "partId"),
    "ReceivableSettled": ("receivable.repaid", "receivableId"),
    "ReceivableDefaulted": ("receivable.defaulted", "receivableId"),
}
_PART_FIELDS = ("id", "receivable_id", "index", "holder_id", "amount_minor", "financed", "request_open",
                "financier_id", "offer_id", "advance_minor", "fee_minor", "seller_id")


def _member_of(conn: Connection, onchain: Any) -> str | None:
    if not onchain:
        return None
    return conn.execute(select(_M.c.id).where(_M.c.onchain_id == str(onchain).lower())).scalar()


def on_receivable_event(session: Session, lg: DecodedLog) -> None:
    """Follower (after the receivables domain's handler, so the store shows the state after the
    event): one catalogued event per ReceivableRegistry event of one of our receivables, in log
    order. Recipients: the supplier and the parties the step concerns (docs/events.md)."""
    spec = RECEIVABLE_CHAIN_EVENTS.get(lg.event)
    if spec is None:
        return
    event_type, key = spec
    session.flush()  # the domain handler's changes, visible to the reads below
    conn = session.connection()
    part = None
    if key == "receivableId":
        receivable_id = str(lg.args.get(key, "")).lower()
    else:
        part = conn.execute(select(*(_P.c[c] for c in _PART_FIELDS))
                            .where(_P.c.id == str(lg.args.get(key, "")).lower())).mappings().first()
        if part is None:
            return  # not one of ours
        receivable_id = part["receivable_id"]
    r = conn.execute(select(*(_R.c[c] for c in ("id", "supplier_id", "buyer_id", "invoice_number",
                                                "face_value_minor", "currency", "issue_date", "due_date",
                                                "status", "part_count")))
                     .where(_R.c.id == receivable_id)).mappings().first()
    if r is None:
        return
    obj = receivable_object(r)
    parties = {r["supplier_id"]}
    if part is not None:
        obj["part"] = _part_object(part, r["currency"])
        parties.add(part["holder_id"])
    if event_type in ("receivable.registered", "receivable.confirmed", "receivable.cancelled",
                      "receivable.repayment_reported", "receivable.repaid", "receivable.defaulted"):
        parties |= {r["buyer_id"]} | _parties_of_receivables(conn, [r["id"]]).get(r["id"], set())
    elif event_type == "receivable.split":
        parties.add(r["buyer_id"])  # the buyer pays each part's holder at maturity
    elif event_type == "receivable.transferred":
        previous = _member_of(conn, lg.args.get("fromId"))
        obj["part"]["previous_holder"] = previous
        obj["part"]["amount"] = _money(int(lg.args["amountMinor"]), r["currency"])
        parties |= {r["buyer_id"], previous}
    elif event_type == "receivable.part_repaid":
        parties.add(r["buyer_id"])  # the payer, beside the supplier and the holder
    elif event_type == "financing.withdrawn":
        parties.add(_member_of(conn, lg.args.get("financierId")))
    elif event_type == "financing.requested":
        obj["part"]["financier"] = _member_of(conn, lg.args.get("financierId"))
        parties.add(obj["part"]["financier"])
    elif event_type == "financing.offered":
        parties.add(_member_of(conn, lg.args.get("financierId")))
    elif event_type == "financing.accepted":
        parties |= {r["buyer_id"], part["financier_id"], part["seller_id"]}  # type: ignore[index]
    emit(conn, [Draft(event_type, r["id"], r["status"], parties, obj, lg.tx_hash, lg.block_number)])


def emit_overdue(conn: Connection, due_before: date) -> int:
    """``receivable.overdue`` once for each confirmed receivable due before ``due_before`` (the
    job: chain today minus the grace period)."""
    already = exists().where(and_(_EVENTS.c.object_type == "receivable", _EVENTS.c.object_id == _R.c.id,
                                  _EVENTS.c.type == "receivable.overdue"))
    cols = [_R.c[c] for c in ("id", "supplier_id", "buyer_id", "invoice_number", "face_value_minor", "currency",
                              "issue_date", "due_date", "status", "part_count")]
    rows = conn.execute(select(*cols).where(_R.c.status == "confirmed", _R.c.due_date < due_before, ~already)
                        .order_by(_R.c.due_date, _R.c.id).limit(OVERDUE_PER_PASS_MAX)).mappings().all()
    if not rows:
        return 0
    parties = _parties_of_receivables(conn, [r["id"] for r in rows])
    drafts = []
    for r in rows:
        obj = receivable_object(r)
        obj["status"] = "overdue"
        drafts.append(Draft("receivable.overdue", r["id"], "overdue", {r["supplier_id"], r["buyer_id"]}
                            | parties.get(r["id"], set()), obj))
    return emit(conn, drafts)


# -- payments, reconciliation ---------------------------------------------------------------------

_A = ProviderAccountRow.__table__


def _callbacks(conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    applied = [(rid, new) for rid, old, new in changes if new is not None and new["kind"] == "payment"
               and new["succeeded"] and new["outcome"] == "applied" and new["settlement_id"]
               and (old is None or old["outcome"] != "applied")]
    if not applied:
        return []
    settlements = _rows_by(conn, _S, _S.c.id, [n["settlement_id"] for _r, n in applied], _S.c.payer_id, _S.c.payee_id)
    owners: dict[tuple[str, str], str] = {}
    for provider, account, owner in conn.execute(select(_A.c.provider, _A.c.account, _A.c.owner).where(
            _A.c.account.in_(sorted({n["account"] for _r, n in applied})))):
        owners[(provider, account)] = owner
    out = []
    for rid, new in applied:
        s = settlements.get(new["settlement_id"])
        parties = {owners.get((new["provider"], new["account"]), "")}
        if s is not None:
            parties |= {s.payer_id, s.payee_id}
        obj = {"id": rid, "provider": new["provider"], "account": new["account"],
               "provider_txn_id": new["provider_txn_id"], "merchant_reference": new["merchant_reference"],
               "amount": _money(new["amount_minor"], new["currency"]),
               "applied": _money(new["applied_amount_minor"], new["currency"]),
               "settlement_id": new["settlement_id"], "occurred_at": new["occurred_at"], "outcome": new["outcome"]}
        out.append(Draft("payment.received", rid, "applied", parties, obj))
    return out


def _runs(_conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    out = []
    for rid, old, new in changes:
        if new is None or new["status"] != "completed" or (old is not None and old["status"] == "completed"):
            continue
        obj = {"id": rid, "statement_id": new["statement_id"], "provider": new["provider"], "account": new["account"],
               "status": new["status"], "ledger_entries": new["ledger_entries"],
               "exception_count": new["exception_count"], "started_at": new["started_at"],
               "finished_at": new["finished_at"]}
        out.append(Draft("reconciliation.run_completed", rid, "completed", {new["owner"]}, obj))
    return out


def _exceptions(_conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    out = []
    for rid, old, new in changes:
        if new is None:
            continue
        if old is None and new["state"] == "open":
            t = "reconciliation.exception_opened"
        elif old is not None and old["state"] != "resolved" and new["state"] == "resolved":
            t = "reconciliation.exception_resolved"
        else:
            continue
        obj = {k: new[k] for k in ("origin", "run_id", "bucket", "reason", "kind", "reference", "provider_txn_id",
                                   "currency", "state", "resolution_action", "resolved_by", "resolved_at")}
        obj["id"] = rid
        for name in ("statement_amount_minor", "ledger_amount_minor", "difference_minor"):
            obj[name.removesuffix("_minor")] = _money(new[name], new["currency"])
        out.append(Draft(t, rid, new["state"], {new["owner"]}, obj))
    return out


# -- the member itself ----------------------------------------------------------------------------


def _members(_conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    out = []
    for rid, old, new in changes:
        if new is None:
            continue
        obj = {"id": rid, "name": new["name"], "country": new["country"], "roles": new["roles"],
               "status": new["status"]}
        types = []
        if old is None:
            types.append("member.onboarded")
        else:
            if old["status"] != new["status"]:
                types.append("member.suspended" if new["status"] == "suspended" else "member.reactivated")
            if sorted(old["roles"] or []) != sorted(new["roles"] or []):
                types.append("member.roles_changed")
            if old["country"] != new["country"]:
                types.append("member.country_changed")
        out.extend(Draft(t, rid, new["status"], {rid}, obj) for t in types)
    return out


def _accounts(_conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    out = []
    for address, old, new in changes:
        if old is None and new is not None:
            out.append(Draft("member.key_added", new["member_id"], None, {new["member_id"]},
                             {"id": new["member_id"], "address": address, "custodial": new["custodial"]}))
        elif old is not None and new is None:
            out.append(Draft("member.key_removed", old["member_id"], None, {old["member_id"]},
                             {"id": old["member_id"], "address": address}))
    return out


def _apikeys(_conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    out = []
    for rid, old, new in changes:
        if new is None:
            continue
        obj = {"id": new["member_id"], "api_key": {"id": rid, "prefix": new["prefix"], "label": new["label"],
                                                   "revoked_at": new["revoked_at"]}}
        if old is None:
            out.append(Draft("member.api_key_created", new["member_id"], None, {new["member_id"]}, obj))
        elif old["revoked_at"] is None and new["revoked_at"] is not None:
            out.append(Draft("member.api_key_revoked", new["member_id"], None, {new["member_id"]}, obj))
    return out


# -- governance actions -----------------------------------------------------------------------------

_GP = GovernanceProposal.__table__
_GA = GovernanceApproval.__table__
_PROPOSAL_EVENTS = {"scheduled": "governance.scheduled", "executed": "governance.executed",
                    "cancelled": "governance.cancelled", "stale": "governance.stale", "failed": "governance.failed"}
# Operator members read per event-writing transaction (bound on the query).
OPERATORS_MAX = 100


def _governor_members(conn: Connection) -> dict[str, str]:
    """Governor address -> member id, as the process's Runtime knows the deployment."""
    known = engine_info(conn.engine).get("governor_members")
    return dict(known()) if known is not None else {}


def _governance_audience(conn: Connection, subjects: Iterable[str | None]) -> tuple[set[str], set[str]]:
    """(the governors' members and the operator members, the subjects that are members): who
    sees every proposal at the API (docs/governance.md), and the members actions are about."""
    audience = set(_governor_members(conn).values())
    for member_id, roles in conn.execute(select(_M.c.id, _M.c.roles).where(
            sa_cast(_M.c.roles, String).like('%"operator"%')).order_by(_M.c.id).limit(OPERATORS_MAX)):
        if "operator" in (roles or []):
            audience.add(member_id)
    wanted = sorted({s for s in subjects if s})
    present: set[str] = set()
    for chunk in _chunks(wanted):
        present.update(conn.execute(select(_M.c.id).where(_M.c.id.in_(chunk))).scalars())
    return audience, present


def _eta(eta_s: Any) -> str | None:
    return None if eta_s is None else datetime.fromtimestamp(int(eta_s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def proposal_object(r: Mapping[str, Any]) -> dict[str, Any]:
    """A proposal's public fields (what GET /v1/governance/proposals/{id} shows, without calls)."""
    return {"id": r["id"], "safe": r["safe"], "action": r["action"], "member_id": r["member_id"],
            "description": r["description"], "status": r["status"], "safe_nonce": _int(r["safe_nonce"]),
            "params": r["params"] or {}, "proposed_by": r["proposed_by"], "proposer": r["proposer"],
            "op_id": r["op_id"], "earliest_execution_at": _eta(r["eta_s"]), "error": r["error"]}


def _recipients(audience: set[str], present: set[str], r: Mapping[str, Any]) -> set[str]:
    # The subject of an onboarding is not a member yet (member.onboarded tells it once it is).
    subject = r["member_id"] if r["member_id"] in present else None
    return audience | ({subject} if subject else set())


def _proposals(conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    typed: list[tuple[str, str, Mapping[str, Any]]] = []
    for rid, old, new in changes:
        if new is None:
            continue
        before = "proposed" if old is None else old["status"]
        if old is None:
            typed.append((rid, "governance.proposed", new))
        if new["status"] != before and new["status"] in _PROPOSAL_EVENTS:
            typed.append((rid, _PROPOSAL_EVENTS[new["status"]], new))
    if not typed:
        return []
    audience, present = _governance_audience(conn, [new["member_id"] for _r, _t, new in typed])
    out = []
    for rid, t, new in typed:
        tx, block = {"governance.proposed": (new["published_tx_hash"], None),
                     "governance.scheduled": (new["scheduled_tx_hash"], None),
                     "governance.executed": (new["executed_tx_hash"], new["executed_block"])}.get(t, (None, None))
        out.append(Draft(t, rid, new["status"], _recipients(audience, present, new), proposal_object(new), tx,
                         _int(block)))
    return out


def _approvals(conn: Connection, changes: Sequence[tuple[str, Any, Any]]) -> list[Draft]:
    approved = [new for _rid, old, new in changes if new is not None and new["status"] == "approved"
                and (old is None or old["status"] != "approved")]
    if not approved:
        return []
    cols = [_GP.c[c] for c in ("safe", "action", "member_id", "description", "status", "safe_nonce", "params",
                              "proposed_by", "proposer", "op_id", "eta_s", "error")]
    proposals = _rows_by(conn, _GP, _GP.c.id, [a["proposal_id"] for a in approved], *cols)
    counts: dict[str, int] = {}
    for chunk in _chunks(sorted(proposals)):
        counts.update(conn.execute(select(_GA.c.proposal_id, func.count()).where(
            _GA.c.proposal_id.in_(chunk), _GA.c.status == "approved").group_by(_GA.c.proposal_id)).all())
    audience, present = _governance_audience(conn, [p.member_id for p in proposals.values()])
    owners = _governor_members(conn)
    out = []
    for a in approved:
        p = proposals.get(a["proposal_id"])
        if p is None:
            continue
        row = {"id": a["proposal_id"], **p._mapping}
        obj = proposal_object(row)
        obj["approval"] = {"governor": a["governor"], "governor_member_id": owners.get(a["governor"]),
                           "method": "signature" if a["signature"] is not None else "approveHash",
                           "approvals": int(counts.get(a["proposal_id"], 0))}
        out.append(Draft("governance.approved", a["proposal_id"], p.status, _recipients(audience, present, row), obj,
                         a["tx_hash"]))
    return out


_MAPPERS = {"settlement": _settlements, "netting.cycle": _cycles, "receivable": _receivables,
            "callback": _callbacks, "reconciliation.run": _runs,
            "reconciliation.exception": _exceptions, "member": _members, "member.account": _accounts,
            "apikey": _apikeys, "governance.proposal": _proposals, "governance.approval": _approvals}


def on_journal(conn: Connection, kind: str, changes: list[tuple[str, Any, Any]]) -> None:
    """The journal observer: the events of these changes, in the same transaction."""
    mapper = _MAPPERS.get(kind)
    if mapper is not None:
        emit(conn, mapper(conn, changes))


# -- anchoring ------------------------------------------------------------------------------------

_B = AnchorBatch.__table__
_E = ProvenanceEventRow.__table__
ANCHOR_MEMBERS_MAX = 10_000


def on_root_anchored(session: Session, lg: DecodedLog) -> None:
    """Follower (after the anchoring domain's handler): ``anchor.anchored`` to the members whose
    provenance events the anchored batch holds."""
    root = str(lg.args.get("root", "")).lower()
    session.flush()  # the anchoring handler's changes, visible to the reads below
    conn = session.connection()
    batch = conn.execute(select(_B.c.id, _B.c.kind, _B.c.root, _B.c.sequence, _B.c.leaf_count)
                         .where(_B.c.root == root)).mappings().first()
    if batch is None:
        return
    members = set(conn.execute(select(_E.c.member_id).where(_E.c.batch_id == batch["id"]).distinct()
                               .limit(ANCHOR_MEMBERS_MAX)).scalars())
    if not members:
        return
    already = conn.execute(select(_EVENTS.c.seq).where(
        _EVENTS.c.type == "anchor.anchored", _EVENTS.c.object_id == str(batch["id"]),
        _EVENTS.c.tx_hash == lg.tx_hash).limit(1)).first()
    if already is not None:
        return
    obj = {"id": str(batch["id"]), "root": batch["root"], "sequence": _int(batch["sequence"]),
           "leaf_count": _int(batch["leaf_count"])}
    emit(conn, [Draft("anchor.anchored", str(batch["id"]), "anchored", members, obj, lg.tx_hash,
                      lg.block_number)])
