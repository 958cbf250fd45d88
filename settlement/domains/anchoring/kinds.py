"""The record kinds of the journal and their canonical encodings: one table row -> one record.

Every record users rely on is a row of one of these tables. Its *record* is a JSON object built
from named columns of the row by the encoders below, and nothing else, so that anyone holding the
row (a replica, a dump, ``psql``) can rebuild it; its digest is ``keccak256`` of the record's
canonical JSON (see :mod:`.digests`). The service digests the record in the transaction that
changes the row, and ``ledger anchors audit`` rebuilds it from the live row through this very
module, so the write path and the audit cannot drift apart.

What is left out, on purpose: operational columns that move without any business meaning
(``chain_status``, outbox ids, ``updated_at``, ``last_used_at``, retry counters) and secrets (an
encrypted blob enters only as its SHA-256). Chain facts (transaction hashes, blocks) are checked
on the chain itself.

Encoders (how a column becomes a JSON value):

=========  ====================================================================================
text       a string, or null
amount     an integer of minor units as a decimal string (amounts reach 2**96: beyond a JSON
           number's exact range in most tools), or null
int        a JSON integer (|x| < 2**53), or null
bool       true / false
date       ``YYYY-MM-DD``, or null
time       UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits), or null
json       the column's JSON value as stored (objects, arrays, strings, integers, booleans, null)
sha256     lowercase hex SHA-256 of a binary column, or null
hex        a binary column as ``0x`` + lowercase hex (public bytes: calldata, signatures), or null
present    true when a binary column is not null
=========  ====================================================================================

A ``posting`` (one balanced journal transaction) also holds ``lines``: its journal entries in
entry order, each ``{"owner","account","currency","side","amount_minor"}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from settlement.core.errors import JournalRecordInvalidError
from settlement.domains.anchoring.canonical import canonical_record_json
from settlement.store.models import ApiKey, Member, MemberAccount
from settlement.store.models.governance import GovernanceApproval, GovernanceProposal
from settlement.store.models.payments import (
    ExceptionResolutionRow,
    ProviderAccountRow,
    ProviderCallback,
    ReconciliationException,
    ReconciliationRun,
    StatementImport,
)
from settlement.store.models.receivables import (
    Receivable,
    ReceivableEvidence,
    ReceivableOperation,
    ReceivablePart,
    ReceivablePayment,
)
from settlement.store.models.settlements import (
    JournalEntry,
    JournalTransaction,
    NettingCycle,
    Settlement,
    SettlementRefund,
)

__all__ = ["KINDS", "LOAD_CHUNK_MAX", "Field", "RecordKind", "TOMBSTONE", "kind_of", "record_id_of"]

# Ids per IN list when rows are loaded by id (bound on the SQL statement).
LOAD_CHUNK_MAX = 500
# A JSON integer an auditor's tools read exactly (JavaScript's Number.MAX_SAFE_INTEGER).
JSON_INT_ABS_MAX = (1 << 53) - 1
# The record of a row that was deleted through the service: its last version says so.
TOMBSTONE: dict[str, Any] = {"$deleted": True}


# -- encoders -----------------------------------------------------------------------------------


def _bad(name: str, value: Any, why: str) -> JournalRecordInvalidError:
    return JournalRecordInvalidError(f"column {name}: {why} (got {type(value).__name__})", field=name)


def enc_text(name: str, value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    raise _bad(name, value, "text expected")


def enc_amount(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, value, "an integer amount expected")
    return str(value)


def enc_int(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > JSON_INT_ABS_MAX:
        raise _bad(name, value, f"an integer within ±{JSON_INT_ABS_MAX} expected")
    return value


def enc_bool(name: str, value: Any) -> Any:
    if value in (True, False):  # SQLite hands back 0/1 where a driver skips the Boolean processor
        return bool(value)
    raise _bad(name, value, "a boolean expected")


def enc_date(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise _bad(name, value, "a date expected")
    return value.isoformat()


def enc_time(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise _bad(name, value, "a datetime expected")
    # SQLite hands back naive datetimes of what the store wrote in UTC; PostgreSQL aware ones.
    utc = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def enc_json(_name: str, value: Any) -> Any:
    return value  # checked by the canonical encoder (no floats, bounded depth and size)


def enc_sha256(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _bad(name, value, "bytes expected")
    return hashlib.sha256(bytes(value)).hexdigest()


def enc_hex(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _bad(name, value, "bytes expected")
    return "0x" + bytes(value).hex()


def enc_present(_name: str, value: Any) -> Any:
    return value is not None


Encoder = Callable[[str, Any], Any]
ENCODERS: dict[str, Encoder] = {"text": enc_text, "amount": enc_amount, "int": enc_int, "bool": enc_bool,
                                "date": enc_date, "time": enc_time, "json": enc_json, "sha256": enc_sha256,
                                "hex": enc_hex, "present": enc_present}


@dataclass(frozen=True)
class Field:
    """One key of the record: ``name`` in the record, from ``column`` of the row, by ``encoder``."""

    name: str
    encoder: str
    column: str = ""

    @property
    def source(self) -> str:
        return self.column or self.name


def _fields(spec: str) -> tuple[Field, ...]:
    """``"id:text state:text amount_minor:amount custodial:present=encrypted_key"``."""
    out = []
    for item in spec.split():
        name, _, rest = item.partition(":")
        encoder, _, column = rest.partition("=")
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r} for {name}")
        out.append(Field(name, encoder, column))
    return tuple(out)


# -- kinds --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordKind:
    """A journal record kind: its table, the column holding the record id, its fields, and the
    fields that never change once recorded (the audit flags a later version that changes one)."""

    name: str
    table: Table
    key: str
    fields: tuple[Field, ...]
    immutable: frozenset[str] = frozenset()
    # posting only: the entries table, its foreign key and its line fields
    lines: tuple[Table, str, tuple[Field, ...]] | None = None

    def __post_init__(self) -> None:
        # (record key, encoder, column) resolved once, and the projection compiled once per kind
        # into straight-line code (the write paths project every record they journal).
        plan = tuple((f.name, f.encoder, f.source) for f in self.fields)
        line_plan = tuple((f.name, f.encoder, f.source) for f in self.lines[2]) if self.lines else ()
        object.__setattr__(self, "_project_row", _compile(plan))
        object.__setattr__(self, "_project_line", _compile(line_plan) if line_plan else None)
        # Records of kinds with no ``json`` field hold only what the encoders make (strings, null,
        # booleans, integers within ±2**53, and lines of those, all keys ASCII): their canonical
        # text is what the C JSON encoder writes with sorted keys, no check needed.
        object.__setattr__(self, "_plain", all(f.encoder != "json" for f in self.fields))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.key, *(f.source for f in self.fields)]))

    def project(self, row: Any) -> dict[str, Any]:
        """The record of one row: a mapping of column values, or an object with them as
        attributes (an ORM row, the plain records of a bulk insert); a posting also has
        ``lines`` (mappings or objects with the line fields)."""
        get = _getter(row)
        record = self._project_row(get)  # type: ignore[attr-defined]
        if self.lines is not None:
            project_line = self._project_line  # type: ignore[attr-defined]
            record["lines"] = [project_line(_getter(line)) for line in get("lines")]
        return record

    def project_reference(self, row: Any) -> dict[str, Any]:
        """:meth:`project`, field by field through the encoders (what the compiled one must equal)."""
        get = _getter(row)
        record = {f.name: ENCODERS[f.encoder](f.source, get(f.source)) for f in self.fields}
        if self.lines is not None:
            record["lines"] = [{f.name: ENCODERS[f.encoder](f.source, _getter(line)(f.source))
                                for f in self.lines[2]} for line in get("lines")]
        return record

    def canonical(self, row: Any) -> str:
        """The canonical JSON text of the row's record (what its digest is taken of)."""
        return self.text_of(self.project(row))

    def text_of(self, record: dict[str, Any]) -> str:
        """The canonical JSON text of a record this kind projected."""
        if not self._plain:  # type: ignore[attr-defined]
            return canonical_record_json(record)
        text = _fast_json(record)
        if len(text) > RECORD_TEXT_CHARS_MAX:
            return canonical_record_json(record)  # the size bound is checked (and reported) there
        return text

    def record_id(self, row: Any) -> str:
        return str(_getter(row)(self.key))

    def load(self, conn: Connection, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current records of ``record_ids`` (absent ids: no row), read in chunks."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(record_ids), LOAD_CHUNK_MAX):
            chunk = [self.key_value(r) for r in record_ids[start:start + LOAD_CHUNK_MAX]]
            rows = [dict(r) for r in conn.execute(select(*(self.table.c[c] for c in self.columns))
                                                  .where(self.table.c[self.key].in_(chunk))).mappings()]
            self._attach_lines(conn, rows)
            for row in rows:
                out[self.record_id(row)] = self.project(row)
        return out

    def scan(self, conn: Connection, page_rows: int) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """Every live row as (record id, record), a page at a time in key order (keyset paging)."""
        key = self.table.c[self.key]
        cols = [self.table.c[c] for c in self.columns]
        last: Any = None
        while True:
            q = select(*cols).order_by(key).limit(page_rows)
            if last is not None:
                q = q.where(key > last)
            rows = [dict(r) for r in conn.execute(q).mappings()]
            if not rows:
                return
            last = rows[-1][self.key]
            self._attach_lines(conn, rows)
            yield [(self.record_id(r), self.project(r)) for r in rows]

    def key_value(self, record_id: str) -> Any:
        column = self.table.c[self.key]
        if column.type.python_type is int:
            try:
                return int(record_id)
            except ValueError:
                return -1  # matches nothing: not an id of this table
        return record_id

    def _attach_lines(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if self.lines is None or not rows:
            return
        table, fk, line_fields = self.lines
        by_parent: dict[Any, list[dict[str, Any]]] = {r[self.key]: [] for r in rows}
        cols = [table.c[fk], *(table.c[f.source] for f in line_fields)]
        for line in conn.execute(select(*cols).where(table.c[fk].in_(list(by_parent)))
                                 .order_by(table.c[fk], table.c.id)).mappings():
            by_parent[line[fk]].append(dict(line))
        for row in rows:
            row["lines"] = by_parent[row[self.key]]


_fast_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                              allow_nan=False).encode
# A record's text in characters below which its UTF-8 size cannot reach the 256 KiB bound.
RECORD_TEXT_CHARS_MAX = 64 * 1024


def _compile(plan: tuple[tuple[str, str, str], ...]) -> Callable[[Callable[[str], Any]], dict[str, Any]]:
    """A function ``get -> record`` for ``plan`` (record key, encoder name, column): text and
    amount columns inline (the common case), the other encoders called. Equal to encoding field
    by field (:meth:`RecordKind.project_reference`; tests/anchoring/test_kinds.py)."""
    body = ["def project(get):"]
    for i, (_name, encoder, source) in enumerate(plan):
        body.append(f"    v{i} = get({source!r})")
        if encoder == "text":
            body.append(f"    if v{i} is not None and v{i}.__class__ is not str: enc_text({source!r}, v{i})")
        elif encoder == "amount":
            body.append(f"    if v{i} is not None: v{i} = str(v{i}) if v{i}.__class__ is int "
                        f"else enc_amount({source!r}, v{i})")
        else:
            body.append(f"    v{i} = ENCODERS[{encoder!r}]({source!r}, v{i})")
    body.append("    return {" + ", ".join(f"{name!r}: v{i}" for i, (name, _e, _s) in enumerate(plan)) + "}")
    scope: dict[str, Any] = {"enc_text": enc_text, "enc_amount": enc_amount, "ENCODERS": ENCODERS}
    exec("\n".join(body), scope)  # noqa: S102 - our own constant plan, built once per kind at import
    return scope["project"]  # type: ignore[no-any-return]


def _getter(row: Any) -> Callable[[str], Any]:
    return row.__getitem__ if isinstance(row, Mapping) else lambda name: getattr(row, name)


def _kind(name: str, model: type, key: str, spec: str, immutable: str = "", **extra: Any) -> RecordKind:
    fields = _fields(spec)
    frozen = frozenset(immutable.split())
    unknown = frozen - {f.name for f in fields} - ({"lines"} if extra.get("lines") else set())
    if unknown:
        raise ValueError(f"{name}: immutable fields {sorted(unknown)} are not fields")
    return RecordKind(name, model.__table__, key, fields, frozen, **extra)  # type: ignore[attr-defined]


_SETTLEMENT_TERMS = ("id payer_id payee_id payer_onchain_id payee_onchain_id client_reference client_reference_hash "
                     "source_amount_minor source_currency target_amount_minor target_currency fx_rate_scaled "
                     "fees_minor value_date purpose_code payment_reference payment_ref_hash")

_ALL = (
    _kind("settlement", Settlement, "id",
          "id:text payer_id:text payee_id:text payer_onchain_id:text payee_onchain_id:text client_reference:text "
          "client_reference_hash:text source_amount_minor:amount source_currency:text target_amount_minor:amount "
          "target_currency:text fx_rate_scaled:amount fees_minor:amount value_date:date purpose_code:text "
          "payment_reference:text payment_ref_hash:text state:text paid_minor:amount refunded_minor:amount "
          "provider:text provider_tx_hash:text cycle_id:text", _SETTLEMENT_TERMS),
    _kind("settlement.refund", SettlementRefund, "id",
          "id:int settlement_id:text amount_minor:amount reference:text reference_hash:text requested_by:text "
          "status:text", "id settlement_id amount_minor reference reference_hash requested_by"),
    _kind("netting.cycle", NettingCycle, "id",
          "id:text currency:text state:text settlement_ids:json members:json nets:json gross_count:int "
          "gross_value_minor:amount net_count:int net_value_minor:amount closed_by:text "
          "settle_journal_txn_id:text",
          "id currency settlement_ids members nets gross_count gross_value_minor net_count net_value_minor "
          "closed_by"),
    _kind("posting", JournalTransaction, "id", "id:text kind:text settlement_id:text cycle_id:text reverses:text "
          "memo:text", "id kind settlement_id cycle_id reverses memo lines",
          lines=(JournalEntry.__table__, "txn_id",
                 _fields("owner:text account:text currency:text side:text amount_minor:amount"))),
    _kind("callback", ProviderCallback, "id",
          "id:int provider:text account:text evidence_hash:text kind:text provider_status:text succeeded:bool "
          "provider_txn_id:text merchant_reference:text refund_reference:text provider_refund_id:text "
          "amount_minor:amount currency:text amount_is_cumulative:bool occurred_at:time notification_id:text "
          "body_sha256:text raw_body_sha256:sha256=raw_body outcome:text outcome_reason:text settlement_id:text "
          "refund_id:int applied_amount_minor:amount",
          "id provider account evidence_hash kind provider_status succeeded provider_txn_id merchant_reference "
          "refund_reference provider_refund_id amount_minor currency amount_is_cumulative occurred_at "
          "notification_id body_sha256 raw_body_sha256"),
    _kind("receivable", Receivable, "id",
          "id:text supplier_id:text buyer_id:text invoice_number:text invoice_number_normalized:text "
          "invoice_hash:text face_value_minor:amount currency:text issue_date:date due_date:date status:text "
          "confirmation:text confirmed_by:text rejection:text part_count:int",
          "id supplier_id buyer_id invoice_hash face_value_minor currency"),
    _kind("receivable.part", ReceivablePart, "id",
          "id:text receivable_id:text index:int holder_id:text holder_onchain_id:text amount_minor:amount "
          "financed:bool request_open:bool financier_id:text offer_id:text advance_minor:amount fee_minor:amount "
          "discount_rate_ppm:int day_count_basis:int offer_valid_until:int seller_id:text repaid_minor:amount",
          "id receivable_id index"),
    _kind("receivable.operation", ReceivableOperation, "id",
          "id:int receivable_id:text part_id:text kind:text requested_by:text params:json status:text "
          "error_name:text", "id receivable_id part_id kind requested_by params"),
    _kind("receivable.payment", ReceivablePayment, "id",
          "id:int receivable_id:text part_id:text kind:text payer_id:text payee_id:text amount_minor:amount "
          "currency:text status:text settlement_id:text settlement_error:text tx_hash:text block_number:int",
          "id receivable_id part_id kind payer_id payee_id amount_minor currency tx_hash block_number"),
    _kind("receivable.evidence", ReceivableEvidence, "id",
          "id:int receivable_id:text label:text leaf_hash:text root:text anchor_tx_hash:text "
          "anchor_block_number:int added_by:text",
          "id receivable_id label leaf_hash root added_by"),
    _kind("member", Member, "id", "id:text onchain_id:text name:text country:text roles:json status:text",
          "id onchain_id"),
    _kind("member.account", MemberAccount, "address", "address:text member_id:text custodial:present=encrypted_key "
          "custodial_key_sha256:sha256=encrypted_key", "address member_id"),
    _kind("apikey", ApiKey, "id", "id:int member_id:text prefix:text key_hash:text label:text created_at:time "
          "revoked_at:time", "id member_id prefix key_hash label created_at"),
    _kind("provider.account", ProviderAccountRow, "id",
          "id:int provider:text account:text status:text public_config:json secrets_sha256:sha256=encrypted_secrets "
          "version:int created_by:text owner:text", "id provider account created_by"),
    _kind("reconciliation.statement", StatementImport, "id",
          "id:text format:text provider:text account:text filename:text size_bytes:int sha256:text encoding:text "
          "line_count:int row_error_count:int uploaded_by:text uploaded_at:time owner:text",
          "id format provider account filename size_bytes sha256 encoding line_count row_error_count uploaded_by "
          "uploaded_at owner"),
    _kind("reconciliation.run", ReconciliationRun, "id",
          "id:text statement_id:text provider:text account:text config:json status:text summary:json "
          "row_errors:json ledger_entries:int exception_count:int started_by:text started_at:time "
          "finished_at:time owner:text", "id statement_id provider account config started_by started_at owner"),
    _kind("reconciliation.exception", ReconciliationException, "exception_id",
          "exception_id:text origin:text run_id:text callback_id:int bucket:text "
          "reason:text kind:text reference:text provider_txn_id:text currency:text "
          "statement_amount_minor:amount ledger_amount_minor:amount difference_minor:amount "
          "statement_source:text statement_line_nos:json statement_status:text ledger_entry_id:text "
          "ledger_status:text chain_state:text tx_hash:text booked_at:text detail:text state:text "
          "resolution_action:text resolution_note:text resolved_by:text resolved_at:time owner:text",
          "exception_id origin run_id callback_id bucket reason kind reference provider_txn_id currency "
          "statement_amount_minor ledger_amount_minor difference_minor owner"),
    _kind("reconciliation.resolution", ExceptionResolutionRow, "id",
          "id:int exception_id:text action:text note:text resolved_by:text resolved_at:time "
          "adjustment_entry_id:text",
          "id exception_id action note resolved_by resolved_at adjustment_entry_id"),
    # Governance actions (docs/governance.md): a proposal (one Safe transaction, its id the Safe
    # transaction hash) through proposed -> scheduled -> executed (or cancelled, stale, failed),
    # and each governor's approval of it. What is decided (Safe, nonce, target, calldata, the
    # timelock batch) is fixed at creation; the calldata and signatures are public bytes, in hex.
    _kind("governance.proposal", GovernanceProposal, "id",
          "id:text safe:text safe_address:text safe_nonce:int to:text data:hex description:text action:text "
          "member_id:text member_onchain_id:text params:json calls:json salt:text op_id:text delay_s:int "
          "status:text proposed_by:text proposer:text eta_s:int published_tx_hash:text scheduled_tx_hash:text "
          "executed_tx_hash:text executed_block:int error:text created_at:time",
          "id safe safe_address safe_nonce to data description action member_id member_onchain_id params calls "
          "salt op_id delay_s proposed_by created_at"),
    _kind("governance.approval", GovernanceApproval, "id",
          "id:int proposal_id:text governor:text signature:hex status:text tx_hash:text created_at:time",
          "id proposal_id governor signature created_at"),
)

KINDS: dict[str, RecordKind] = {k.name: k for k in _ALL}


def kind_of(name: str) -> RecordKind:
    kind = KINDS.get(name)
    if kind is None:
        raise JournalRecordInvalidError(f"no record kind {name!r}; kinds: {', '.join(sorted(KINDS))}", field="kind")
    return kind


def record_id_of(kind: RecordKind, item: Any) -> str:
    """The record id of an id or an ORM object / plain record of the kind's table."""
    if isinstance(item, (str, int)) and not isinstance(item, bool):
        return str(item)
    value = item.get(kind.key) if isinstance(item, Mapping) else getattr(item, kind.key, None)
    if value is None:
        raise JournalRecordInvalidError(f"{kind.name}: the record has no {kind.key} yet (flush first)")
    return str(value)
