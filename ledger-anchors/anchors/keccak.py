"""keccak256, from the fastest backend installed.

Measured on the project's CI machine (one call per 64-byte / 192-byte message, see
docs/anchors.md): safe-pysha3 ~0.68 / 0.34 M hashes/s, pycryptodome (and eth_hash, which wraps
it) ~0.10-0.12 / 0.08-0.10 M hashes/s. safe-pysha3 is a small C extension with a manylinux wheel;
pycryptodome is the fallback because the project already depends on it. Both give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

KeccakFn = Callable[[bytes], bytes]


def _pick_backend() -> tuple[str, KeccakFn]:
    try:
        import sha3  # safe-pysha3

        new = sha3.keccak_256

        def keccak_pysha3(data: bytes) -> bytes:
            return new(data).digest()

        return "safe-pysha3", keccak_pysha3
    except ImportError:
        from Crypto.Hash import keccak as _keccak

        new_cd = _keccak.new

        def keccak_pycryptodome(data: bytes) -> bytes:
            return new_cd(digest_bits=256, data=data).digest()

        return "pycryptodome", keccak_pycryptodome


KECCAK_BACKEND, keccak256 = _pick_backend()

# Known answer, checked at import so that a broken backend can never produce wrong roots
# (a plain `if`, not an `assert`: `python -O` must not remove it).
_EMPTY_DIGEST = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
if keccak256(b"") != _EMPTY_DIGEST:
    raise RuntimeError(f"keccak backend {KECCAK_BACKEND} gives a wrong digest")

__all__ = ["KECCAK_BACKEND", "keccak256"]
