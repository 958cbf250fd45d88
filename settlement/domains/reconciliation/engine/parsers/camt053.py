"""ISO 20022 camt.053 (BankToCustomerStatement) XML, any version (namespace-agnostic).

Read per ``Ntry``: ``Amt`` (+ ``@Ccy``), ``CdtDbtInd`` (CRDT: payment, DBIT: refund, DBIT with a
bank transaction code of family/sub-family ``CHRG`` or ``FEES``: fee), ``Sts`` (plain text or
``Sts/Cd``: BOOK -> succeeded, PDNG/INFO -> pending, anything else a row error), ``BookgDt/Dt``
or ``BookgDt/DtTm`` (``ValDt`` as fallback), ``AcctSvcrRef``, and from each
``NtryDtls/TxDtls``: ``Refs/AcctSvcrRef``, ``Refs/EndToEndId``, ``Amt``, ``RmtInf/Ustrd``.
One line per ``TxDtls`` when an entry carries several (batch booking), otherwise per entry.

Safety: the document is refused before parsing if it declares a DOCTYPE or ENTITY, and the
expat parser is told to fail on any entity or DOCTYPE declaration it still meets.
"""

from __future__ import annotations

import re
from datetime import datetime
from xml.etree import ElementTree as ET
from xml.parsers import expat

from settlement.core.errors import StatementFormatError, UnsafeStatementError
from settlement.core.money import Money
from settlement.domains.reconciliation.engine.model import (
    KIND_FEE,
    KIND_PAYMENT,
    KIND_REFUND,
    STATUS_PENDING,
    STATUS_SUCCEEDED,
    ParseResult,
    RowError,
    StatementTable,
)

FORMAT_CAMT053 = "camt.053"
XML_BYTES_MAX = 256 * 1024 * 1024
_UNSAFE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_STATUS = {"BOOK": STATUS_SUCCEEDED, "PDNG": STATUS_PENDING, "INFO": STATUS_PENDING}
_FEE_CODES = {"CHRG", "FEES", "COMM"}
_NO_REF = {"", "NOTPROVIDED", "NONREF"}


class _Fault(ValueError):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _text(el: ET.Element | None, *path: str) -> str:
    found = _child(el, *path)
    return (found.text or "").strip() if found is not None else ""


def _refuse_unsafe(data: bytes) -> None:
    if len(data) > XML_BYTES_MAX:
        raise UnsafeStatementError(f"camt.053 larger than {XML_BYTES_MAX} bytes")
    probe = data
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16: look at the decoded text too
        probe = data.decode("utf-16", "ignore").encode()
    if _UNSAFE.search(probe):
        raise UnsafeStatementError("camt.053 with a DOCTYPE/ENTITY declaration refused")


def _parse_tree(data: bytes) -> tuple[ET.Element, dict[int, int]]:
    """Parse with a bare expat parser feeding a TreeBuilder: DOCTYPE and entity declarations
    fail the parse, and each ``<Ntry>`` remembers its source line."""
    lines: dict[int, int] = {}
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def forbid(*_args: object) -> None:
        raise UnsafeStatementError("camt.053 with a DOCTYPE/ENTITY declaration refused")

    def clark(tag: str) -> str:  # expat's "uri}local" -> ElementTree's "{uri}local"
        return "{" + tag if "}" in tag else tag

    def start(tag: str, attrs: dict) -> None:
        element = builder.start(clark(tag), attrs)
        if _local(tag) == "Ntry":
            lines[id(element)] = parser.CurrentLineNumber

    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.ExternalEntityRefHandler = forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(clark(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        root = builder.close()
    except (expat.ExpatError, AssertionError, IndexError) as exc:
        raise StatementFormatError(f"camt.053 is not well-formed XML: {exc}") from None
    return root, lines


def _booked(entry: ET.Element) -> datetime:
    for container in ("BookgDt", "ValDt"):
        for field in ("DtTm", "Dt"):
            text = _text(entry, container, field)
            if text:
                try:
                    return datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    raise _Fault(f"{container}/{field}: not a date: {text!r}") from None
    raise _Fault("no BookgDt or ValDt")


def _amount(el: ET.Element | None, where: str) -> Money:
    if el is None:
        raise _Fault(f"{where}: missing Amt")
    currency = el.get("Ccy", "")
    try:
        return Money.from_decimal_str((el.text or "").strip(), currency)
    except ValueError as exc:
        raise _Fault(f"{where}: {exc}") from None


def parse_camt053(data: bytes, *, source: str = "camt053") -> ParseResult:
    """Statement lines of a camt.053 document; ``line_no`` is the source line of the ``<Ntry>``."""
    _refuse_unsafe(data)
    root, ntry_lines = _parse_tree(data)
    if _local(root.tag) != "Document" or _child(root, "BkToCstmrStmt") is None:
        raise StatementFormatError("not a camt.053 document (no Document/BkToCstmrStmt)")
    table = StatementTable()
    errors: list[RowError] = []
    ordinal = 0
    for stmt in (c for c in _child(root, "BkToCstmrStmt") if _local(c.tag) == "Stmt"):  # type: ignore[union-attr]
        for entry in (c for c in stmt if _local(c.tag) == "Ntry"):
            ordinal += 1
            line_no = ntry_lines.get(id(entry), ordinal)
            raw = ET.tostring(entry, encoding="unicode")
            try:
                rows = _entry_lines(entry, source, line_no, raw)
            except _Fault as exc:
                errors.append(RowError(source, line_no, str(exc), raw))
                continue
            for row in rows:
                table.append(row)
    return ParseResult(table, errors, FORMAT_CAMT053, "xml")


def _entry_lines(entry: ET.Element, source: str, line_no: int, raw: str) -> list[tuple]:
    indicator = _text(entry, "CdtDbtInd")
    codes = {_text(entry, "BkTxCd", "Domn", "Fmly", "Cd"), _text(entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd"),
             _text(entry, "BkTxCd", "Prtry", "Cd")}
    if indicator == "CRDT":
        kind = KIND_PAYMENT
    elif indicator == "DBIT":
        kind = KIND_FEE if codes & _FEE_CODES else KIND_REFUND
    else:
        raise _Fault(f"CdtDbtInd: unknown {indicator!r}")
    status_text = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
    status = _STATUS.get(status_text)
    if status is None:
        raise _Fault(f"Sts: unsupported status {status_text!r}")
    booked = _booked(entry)
    entry_amount = _amount(_child(entry, "Amt"), "Ntry/Amt")
    entry_ref = _text(entry, "AcctSvcrRef") or None
    details = [tx for d in entry if _local(d.tag) == "NtryDtls" for tx in d if _local(tx.tag) == "TxDtls"]
    out = []
    for tx in details or [None]:
        if tx is not None and len(details) > 1:
            amt_el = _child(tx, "Amt") or _child(tx, "AmtDtls", "TxAmt", "Amt")
            amount = _amount(amt_el, "TxDtls/Amt")
        else:
            amount = entry_amount
        txn = _text(tx, "Refs", "AcctSvcrRef") or entry_ref
        reference = _text(tx, "Refs", "EndToEndId")
        if reference in _NO_REF:
            reference = _text(tx, "RmtInf", "Ustrd") or _text(entry, "AddtlNtryInf")
        if txn and len(details) > 1 and txn == entry_ref:
            txn = f"{entry_ref}#{len(out) + 1}"
        out.append((source, line_no, txn or None, reference or None, kind, amount.value, amount.currency,
                    status, booked, raw))
    return out
