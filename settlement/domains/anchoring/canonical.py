"""Canonical JSON of journal records: the one text each record's digest is taken of.

Objects with string keys sorted by UTF-16 code units, no whitespace, strings escaped as
JSON.stringify does (non-ASCII kept), integers (no floats: money is in minor units, rates are
decimal strings), booleans, null; at most RECORD_JSON_BYTES_MAX bytes and RECORD_JSON_DEPTH_MAX
levels. Passing bytes or a string checks that it already is in this form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from settlement.core.errors import JournalRecordInvalidError

__all__ = ["RECORD_INT_ABS_MAX", "RECORD_JSON_BYTES_MAX", "RECORD_JSON_DEPTH_MAX", "canonical_record_json"]

RECORD_JSON_BYTES_MAX = 256 * 1024
RECORD_JSON_DEPTH_MAX = 32
RECORD_INT_ABS_MAX = (1 << 63) - 1

# -- canonical JSON ----------------------------------------------------------------------------

# json.dumps(text, ensure_ascii=False) without building an encoder per call (the same C function).
_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _canonical(value: Any, depth: int) -> str:
    if depth > RECORD_JSON_DEPTH_MAX:
        raise JournalRecordInvalidError(f"record nests deeper than {RECORD_JSON_DEPTH_MAX}")
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > RECORD_INT_ABS_MAX:
            raise JournalRecordInvalidError("record integers must fit in a signed 64-bit integer")
        return str(value)
    if isinstance(value, float):
        raise JournalRecordInvalidError("records may not hold floats: use integers of minor units or "
                                        "decimal strings")
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(v, depth + 1) for v in value) + "]"
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise JournalRecordInvalidError("record keys must be strings")
        if all(key.isascii() for key in value):  # the usual case: UTF-16 order is str order
            items = sorted(value.items())
        else:
            items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_json_string(k) + ":" + _canonical(v, depth + 1) for k, v in items) + "}"
    raise JournalRecordInvalidError(f"records may not hold {type(value).__name__}: convert it to a string "
                                    "or an integer first")


def canonical_record_json(record: Mapping[str, Any] | str | bytes) -> str:
    """The canonical JSON text of ``record`` (a mapping, or JSON text that must already be canonical)."""
    if isinstance(record, (bytes, bytearray)):
        try:
            record = bytes(record).decode("utf-8")
        except UnicodeDecodeError:
            raise JournalRecordInvalidError("record bytes are not UTF-8") from None
    if isinstance(record, str):
        if len(record.encode("utf-8")) > RECORD_JSON_BYTES_MAX:
            raise JournalRecordInvalidError(f"record larger than {RECORD_JSON_BYTES_MAX} bytes")
        try:
            parsed = json.loads(record, parse_float=_reject_float)
        except ValueError as exc:
            raise JournalRecordInvalidError(f"record is not JSON: {exc}") from None
        if not isinstance(parsed, Mapping):
            raise JournalRecordInvalidError("a record must be a JSON object")
        text = _canonical(parsed, 0)
        if text != record:
            raise JournalRecordInvalidError("record JSON is not canonical (sorted keys, no whitespace)")
        return text
    if not isinstance(record, Mapping):
        raise JournalRecordInvalidError("a record must be a JSON object (mapping)")
    text = _canonical(record, 0)
    if len(text.encode("utf-8")) > RECORD_JSON_BYTES_MAX:
        raise JournalRecordInvalidError(f"record larger than {RECORD_JSON_BYTES_MAX} bytes")
    return text


def _reject_float(text: str) -> Any:
    raise JournalRecordInvalidError(f"records may not hold floats ({text[:40]})")
