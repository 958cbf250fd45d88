"""Looking for private keys we do not know, by the addresses they would have.

A key generated in the token is never seen by anyone, tests included, so it cannot be searched for
as bytes. What can be checked is every value that *could* be one: each 32-byte window of a file
(raw), each run of 64 hex digits, each base64 token decoded; each bytes, int or hex string reachable
from an object. A candidate is a private key of interest if the address it derives is one of the
addresses looked for. A secp256k1 scalar is uniformly random, so windows with many zero bytes
(SQLite's empty page space) are skipped: a real key has more than 8 zero bytes with probability
below 1e-12. The scanners are checked against keys planted on purpose (tests/custody/test_hsm_service.py).
"""

from __future__ import annotations

import base64
import binascii
import gc
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FunctionType, ModuleType

import coincurve

from settlement.chain.signing import SECP256K1_N, address_of

ZERO_BYTES_MAX = 8
FILE_BYTES_MAX = 64 * 1024 * 1024
OBJECTS_MAX = 200_000
_HEX64 = re.compile(rb"[0-9a-fA-F]{64,}")
_B64 = re.compile(rb"[A-Za-z0-9+/_-]{43,}={0,2}")


def _address_if_key(candidate: bytes) -> bytes | None:
    if len(candidate) != 32 or candidate.count(0) > ZERO_BYTES_MAX:
        return None
    if not 0 < int.from_bytes(candidate, "big") < SECP256K1_N:
        return None
    return address_of(coincurve.PrivateKey(candidate).public_key.format(compressed=False))


def _windows(data: bytes) -> Iterator[bytes]:
    for i in range(len(data) - 31):
        yield data[i:i + 32]


def _candidates_in_bytes(data: bytes) -> Iterator[bytes]:
    yield from _windows(data)
    for m in _HEX64.finditer(data):
        run = m.group()
        for i in range(len(run) - 63):
            yield bytes.fromhex(run[i:i + 64].decode())
    for m in _B64.finditer(data):
        token = m.group().rstrip(b"=")
        for alphabet in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = alphabet(token + b"=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            yield from _windows(decoded)


def keys_in_files(root: Path, addresses: Iterable[bytes]) -> list[tuple[Path, bytes]]:
    """(file, address) for every private key of one of ``addresses`` found under ``root``."""
    wanted = set(addresses)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()[:FILE_BYTES_MAX]
        for candidate in _candidates_in_bytes(data):
            address = _address_if_key(candidate)
            if address in wanted:
                found.append((path, address))
    return found


def _values(roots: Iterable[object]) -> Iterator[object]:
    """Everything reachable from ``roots``: attributes (``__dict__`` and ``__slots__``), items of
    containers, and what the garbage collector sees an object refer to; bounded."""
    seen: set[int] = set()
    stack = list(roots)
    while stack and len(seen) < OBJECTS_MAX:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (ModuleType, type, FunctionType)):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, (bytes, bytearray, memoryview, str, int, float, bool)) or obj is None:
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                try:
                    stack.append(getattr(obj, name))
                except AttributeError:
                    pass
        stack.extend(gc.get_referents(obj))


def keys_in_objects(roots: Iterable[object], addresses: Iterable[bytes]) -> list[tuple[str, bytes]]:
    """(type of the holding value, address) for every private key of ``addresses`` reachable
    from ``roots`` as bytes, an int or a hex string."""
    wanted = set(addresses)
    found = []
    for value in _values(roots):
        if isinstance(value, (bytes, bytearray, memoryview)):
            candidates = list(_candidates_in_bytes(bytes(value)))
        elif isinstance(value, int) and not isinstance(value, bool) and 0 < value < SECP256K1_N:
            candidates = [value.to_bytes(32, "big")]
        elif isinstance(value, str):
            candidates = list(_candidates_in_bytes(value.encode("utf-8", "replace")))
        else:
            continue
        for candidate in candidates:
            address = _address_if_key(candidate)
            if address in wanted:
                found.append((type(value).__name__, address))
    return found
