"""The errors this package raises. Each also inherits the built-in it resembles, so a plain caller
can catch ``ValueError`` or ``ConnectionError``; a service embedding the package may subclass
them for its own catalogue.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnchorsError", "InvalidInputError", "NodeUnavailableError"]


class AnchorsError(Exception):
    """Base of every error of the package; ``detail`` says what is wrong, ``extra`` carries data
    a caller needs to act (the field, the ABI type, ...)."""

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInputError(AnchorsError, ValueError):
    """A malformed value, leaf, proof, event or proof document."""


class NodeUnavailableError(AnchorsError, ConnectionError):
    """The JSON-RPC node could not be asked, or answered with an error or something unusable."""
