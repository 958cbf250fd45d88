"""Every bound of anchoring, named, with the batcher's configurable limits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from settlement.core.errors import ConfigurationError

# -- one request -------------------------------------------------------------------------------
EVENTS_PER_REQUEST_MAX = 1_000
# Sum of the events' canonical JSON sizes; the HTTP body bound (1 MiB) is checked before this.
EVENTS_REQUEST_BYTES_MAX = 512 * 1024

# -- the batcher (defaults; see BatchLimits) ---------------------------------------------------
BATCH_EVENTS_DEFAULT = 1_000
BATCH_BYTES_DEFAULT = 256 * 1024
BATCH_DELAY_S_DEFAULT = 2.0
JOURNAL_RECORDS_DEFAULT = 10_000
JOURNAL_INTERVAL_S_DEFAULT = 60.0
# Hard ceilings the configuration cannot exceed: a batch is rebuilt in memory for every proof.
BATCH_EVENTS_CEILING = 65_536
BATCH_BYTES_CEILING = 16 * 1024 * 1024
JOURNAL_RECORDS_CEILING = 100_000
# One batcher pass creates at most this many batches, so a backlog cannot starve the loop.
BATCHES_PER_PASS_MAX = 16
# Anchored batches whose block time a pass looks up (one eth_getBlockByNumber each).
BLOCK_TIMES_PER_PASS_MAX = 64

# -- the chain ---------------------------------------------------------------------------------
ANCHOR_CONTRACT = "TraceAnchor"
ANCHOR_OUTBOX_KIND = "anchors.anchor"
# Measured: 82,979 gas for the first anchor ever, 65,855 later, the same for 1 and 2^20 leaves.
ANCHOR_GAS_LIMIT = 150_000
# A batch is re-sequenced at most this many times when another anchor took its sequence.
ANCHOR_ATTEMPTS_MAX = 5

# -- reading -----------------------------------------------------------------------------------
TRACE_EVENTS_MAX = 1_000
BATCH_LIST_MAX = 500
EXPORT_BATCHES_MAX = 10_000
EXPORT_PAGE_ROWS = 1_000


@dataclass(frozen=True)
class BatchLimits:
    """When the batcher flushes: a batch closes at ``events_max`` events or ``bytes_max`` bytes of
    event JSON, or when its oldest event has waited ``delay_s``; journal digests are anchored
    every ``journal_interval_s`` (or at ``journal_records_max`` digests)."""

    events_max: int = BATCH_EVENTS_DEFAULT
    bytes_max: int = BATCH_BYTES_DEFAULT
    delay_s: float = BATCH_DELAY_S_DEFAULT
    journal_records_max: int = JOURNAL_RECORDS_DEFAULT
    journal_interval_s: float = JOURNAL_INTERVAL_S_DEFAULT

    def __post_init__(self) -> None:
        if not 1 <= self.events_max <= BATCH_EVENTS_CEILING:
            raise ConfigurationError(f"events_max must be 1..{BATCH_EVENTS_CEILING}, got {self.events_max}")
        if not 1_024 <= self.bytes_max <= BATCH_BYTES_CEILING:
            raise ConfigurationError(f"bytes_max must be 1024..{BATCH_BYTES_CEILING}, got {self.bytes_max}")
        if not 0 <= self.delay_s <= 3_600:
            raise ConfigurationError(f"delay_s must be 0..3600, got {self.delay_s}")
        if not 1 <= self.journal_records_max <= JOURNAL_RECORDS_CEILING:
            raise ConfigurationError(f"journal_records_max must be 1..{JOURNAL_RECORDS_CEILING}")
        if not 0 <= self.journal_interval_s <= 86_400:
            raise ConfigurationError(f"journal_interval_s must be 0..86400, got {self.journal_interval_s}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BatchLimits:
        """Read ``LEDGER_ANCHOR_BATCH_EVENTS_MAX``, ``LEDGER_ANCHOR_BATCH_BYTES_MAX``,
        ``LEDGER_ANCHOR_BATCH_DELAY_MS``, ``LEDGER_ANCHOR_JOURNAL_RECORDS_MAX`` and
        ``LEDGER_ANCHOR_JOURNAL_INTERVAL_S``; unset ones keep their defaults."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float, cast: type) -> float:
            text = env.get(name)
            if text is None or not text.strip():
                return default
            try:
                return cast(text)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, got {text[:40]!r}") from None

        return cls(
            events_max=int(number("LEDGER_ANCHOR_BATCH_EVENTS_MAX", BATCH_EVENTS_DEFAULT, int)),
            bytes_max=int(number("LEDGER_ANCHOR_BATCH_BYTES_MAX", BATCH_BYTES_DEFAULT, int)),
            delay_s=number("LEDGER_ANCHOR_BATCH_DELAY_MS", BATCH_DELAY_S_DEFAULT * 1000, int) / 1000,
            journal_records_max=int(number("LEDGER_ANCHOR_JOURNAL_RECORDS_MAX", JOURNAL_RECORDS_DEFAULT, int)),
            journal_interval_s=number("LEDGER_ANCHOR_JOURNAL_INTERVAL_S", JOURNAL_INTERVAL_S_DEFAULT, float),
        )


DEFAULT_LIMITS = BatchLimits()
