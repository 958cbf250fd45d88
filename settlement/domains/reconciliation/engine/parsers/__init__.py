"""Statement parsers: each returns a :class:`ParseResult` (lines, per-row errors, format, encoding)."""

from __future__ import annotations

import os
from pathlib import Path

from settlement.core.errors import StatementFormatError
from settlement.domains.reconciliation.engine._text import detect_encoding, strip_bom
from settlement.domains.reconciliation.engine.model import ParseResult
from settlement.domains.reconciliation.engine.parsers.alipay import FORMAT_ALIPAY, parse_alipay_bill
from settlement.domains.reconciliation.engine.parsers.camt053 import FORMAT_CAMT053, parse_camt053
from settlement.domains.reconciliation.engine.parsers.normalized import (
    FORMAT_LEDGER,
    FORMAT_NORMALIZED,
    LEDGER_COLUMNS,
    STATEMENT_COLUMNS,
    parse_ledger_csv,
    parse_normalized_csv,
    write_ledger_csv,
    write_normalized_csv,
)
from settlement.domains.reconciliation.engine.parsers.wechat import FORMAT_WECHAT, parse_wechat_bill

STATEMENT_FORMATS: tuple[str, ...] = (FORMAT_ALIPAY, FORMAT_WECHAT, FORMAT_NORMALIZED, FORMAT_CAMT053)
SNIFF_BYTES = 64 * 1024


def sniff_format(head: bytes) -> str:
    """Guess a statement's format from its first bytes."""
    body, _ = strip_bom(head)
    text = body.decode(detect_encoding(body), "replace").lstrip()
    if text.startswith("<"):
        return FORMAT_CAMT053
    if "支付宝交易号" in text or text.startswith("#支付宝"):
        return FORMAT_ALIPAY
    if text.startswith("交易时间") or text.startswith("`交易时间"):
        return FORMAT_WECHAT
    if text.split("\n", 1)[0].strip().startswith(",".join(STATEMENT_COLUMNS[:2])) or "provider_txn_id" in text[:200]:
        return FORMAT_NORMALIZED
    raise StatementFormatError("unrecognized statement format")


def parse_statement(path: str | os.PathLike, fmt: str | None = None, *, source: str | None = None) -> ParseResult:
    """Parse a statement file of ``fmt`` (sniffed when None). The normalized CSV is streamed;
    provider bills and camt.053 are read whole (bounded by each parser's size limit)."""
    path = Path(path)
    if fmt is None:
        with path.open("rb") as f:
            fmt = sniff_format(f.read(SNIFF_BYTES))
    if fmt == FORMAT_NORMALIZED:
        return parse_normalized_csv(path, source=source or "normalized")
    if fmt not in STATEMENT_FORMATS:
        raise StatementFormatError(f"unknown statement format {fmt!r}", allowed=list(STATEMENT_FORMATS))
    data = path.read_bytes()
    if fmt == FORMAT_ALIPAY:
        return parse_alipay_bill(data, source=source or "alipay")
    if fmt == FORMAT_WECHAT:
        return parse_wechat_bill(data, source=source or "wechatpay")
    return parse_camt053(data, source=source or "camt053")


__all__ = [
    "FORMAT_ALIPAY", "FORMAT_CAMT053", "FORMAT_LEDGER", "FORMAT_NORMALIZED", "FORMAT_WECHAT", "LEDGER_COLUMNS",
    "STATEMENT_COLUMNS", "STATEMENT_FORMATS", "parse_alipay_bill", "parse_camt053", "parse_ledger_csv",
    "parse_normalized_csv", "parse_statement", "parse_wechat_bill", "sniff_format", "write_ledger_csv",
    "write_normalized_csv",
]
