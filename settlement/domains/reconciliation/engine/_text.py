"""Encoding detection and per-line decoding shared by the statement parsers.

Chinese provider bills come as GBK (a subset of GB18030) or UTF-8, with or without a BOM. A
UTF-8 decode is self-validating, so UTF-8 wins whenever nearly every non-ASCII line decodes as
UTF-8; otherwise the file is read as GB18030. Lines that do not decode in the chosen encoding are
reported one by one instead of failing the file.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

ENCODING_UTF8 = "utf-8"
ENCODING_GB18030 = "gb18030"
# Share of non-ASCII lines that must decode as UTF-8 for the file to count as UTF-8: one corrupt
# line must not flip a UTF-8 file to GB18030 (which decodes UTF-8 bytes into garbage silently).
UTF8_SHARE_MIN = 0.9
SAMPLE_LINES_MAX = 20_000  # lines looked at to pick the encoding


def strip_bom(data: bytes) -> tuple[bytes, bool]:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):], True
    return data, False


def detect_encoding(data: bytes) -> str:
    """``utf-8`` or ``gb18030`` for ``data`` (BOM already stripped or not)."""
    data, had_bom = strip_bom(data)
    if had_bom:
        return ENCODING_UTF8
    try:
        data.decode(ENCODING_UTF8)
        return ENCODING_UTF8
    except UnicodeDecodeError:
        pass
    non_ascii = utf8_ok = 0
    for index, line in enumerate(data.split(b"\n")):
        if index >= SAMPLE_LINES_MAX:
            break
        if line.isascii():
            continue
        non_ascii += 1
        try:
            line.decode(ENCODING_UTF8)
            utf8_ok += 1
        except UnicodeDecodeError:
            pass
    if non_ascii and utf8_ok / non_ascii >= UTF8_SHARE_MIN:
        return ENCODING_UTF8
    return ENCODING_GB18030


def decoded_lines(data: bytes, encoding: str) -> Iterator[tuple[int, str | None, bytes]]:
    """Yield ``(line_no, text or None when undecodable, raw bytes)`` for every line, 1-based."""
    data, _ = strip_bom(data)
    for index, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield index, raw.decode(encoding), raw
        except UnicodeDecodeError:
            yield index, None, raw


def describe_undecodable(raw: bytes, encoding: str) -> str:
    return f"bytes not valid {encoding}: {raw[:60]!r}"
