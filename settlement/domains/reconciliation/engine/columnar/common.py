"""What the sections of the columnar run share: the optional NumPy and pyarrow imports and the few
Arrow compute kernels they call, the two sides' names, the byte codes of the coded columns, and
small Arrow arrays and NumPy views built straight from buffers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from settlement.core.money import CURRENCY_EXPONENTS
from settlement.domains.reconciliation.engine.model import (
    CHAIN_CONFIRMED,
    CHAIN_STATES,
    KINDS,
    STATUS_SUCCEEDED,
    STATUSES,
)

try:  # a declared dependency; without it the serial path still works
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
except ImportError:  # pragma: no cover - exercised only on an incomplete install
    np = pa = pa_csv = None  # type: ignore[assignment]

# The few compute kernels the columnar run calls, through pyarrow's kernel module: importing
# pyarrow.compute builds a Python wrapper for every kernel (about 70 ms of the run).
_call: Callable[..., Any] | None = None
_CastOptions = _SetLookupOptions = None
if pa is not None:
    try:
        from pyarrow import _compute

        _call, _CastOptions, _SetLookupOptions = (_compute.call_function, _compute.CastOptions,
                                                  _compute.SetLookupOptions)
    except (ImportError, AttributeError):  # pragma: no cover - the public module has the same names
        import pyarrow.compute as _public

        _call, _CastOptions, _SetLookupOptions = _public.call_function, _public.CastOptions, _public.SetLookupOptions

STATEMENT = "statement"
LEDGER = "ledger"

# Byte codes of the packed columns; 0 is "None" (chain state) and never a valid kind/status/currency.
_KIND_CODES: tuple[str | None, ...] = (None, *KINDS)
_STATUS_CODES: tuple[str | None, ...] = (None, *STATUSES)
_CHAIN_CODES: tuple[str | None, ...] = (None, *CHAIN_STATES)
_CURRENCY_CODES: tuple[str | None, ...] = (None, *sorted(CURRENCY_EXPONENTS))
_CODE_VALUES: dict[str, tuple[str | None, ...]] = {
    "kind": _KIND_CODES, "status": _STATUS_CODES, "currency": _CURRENCY_CODES, "chain_state": _CHAIN_CODES}
_CODED = tuple(_CODE_VALUES)
if len(_CURRENCY_CODES) > 256:
    raise AssertionError("currency codes must fit in one byte")
# the text of each code in a file ("" is how the file writes a None chain state), code order
_CODE_TEXTS: dict[str, list[str]] = {name: ["" if v is None else v for v in values]
                                     for name, values in _CODE_VALUES.items()}
_KIND_SPACE = len(_KIND_CODES)  # (id, kind) keys are id_index * _KIND_SPACE + kind code
_SUCCEEDED = _STATUS_CODES.index(STATUS_SUCCEEDED)
_CONFIRMED = _CHAIN_CODES.index(CHAIN_CONFIRMED)


def columnar_available() -> bool:
    return pa is not None


# pa.array() and pa.scalar() on Python or NumPy values ask whether pandas is installed, which imports
# it (about 0.3 s); these build the few small arrays the columnar run needs from buffers instead.
def _utf8_array(values: list[str]) -> Any:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    np.cumsum(np.fromiter(map(len, encoded), np.int32, len(encoded)), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _int64_array(values: Any) -> Any:
    values = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _numbers(col: Any, dtype: Any) -> Any:
    """A numeric Arrow array or chunked array without nulls as one NumPy array (``to_numpy`` too
    asks after pandas)."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if any(c.null_count for c in chunks):
        raise AssertionError("nulls in a column checked to have none")
    size = np.dtype(dtype).itemsize
    parts = [np.frombuffer(c.buffers()[1], dtype, count=len(c), offset=c.offset * size) for c in chunks if len(c)]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _string_layout(col: Any) -> list[tuple[Any, Any]]:
    """Per chunk: (offsets, value bytes) of a string column without nulls, as NumPy views."""
    return [_array_layout(chunk) for chunk in col.chunks]


def _array_layout(chunk: Any) -> tuple[Any, Any]:
    """(offsets, value bytes) of a string array without nulls, as NumPy views."""
    _, offsets_buf, data_buf = chunk.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
    if data_buf is None or not len(chunk):
        return offsets, np.zeros(0, np.uint8)
    return offsets, np.frombuffer(data_buf, np.uint8, count=int(offsets[-1]) - int(offsets[0]), offset=int(offsets[0]))
