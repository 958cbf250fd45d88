"""Multilateral netting, pure: what each member receives (+) or pays (-) for a set of transfers.

The contract recomputes the same nets from the settlements it is given and refuses a cycle whose
members are not strictly ascending by on-chain id, or whose nets differ or do not sum to zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from settlement.core.errors import JournalImbalanceError

__all__ = ["Transfer", "NetResult", "compute_nets", "SETTLEMENTS_PER_CYCLE_MAX", "MEMBERS_PER_CYCLE_MAX"]

SETTLEMENTS_PER_CYCLE_MAX = 200  # the contract's bounds
MEMBERS_PER_CYCLE_MAX = 64


@dataclass(frozen=True)
class Transfer:
    payer: str  # on-chain member id, 0x hex (lower case)
    payee: str
    amount_minor: int  # outstanding: paid minus refunded, > 0


@dataclass(frozen=True)
class NetResult:
    members: tuple[str, ...]  # ascending by on-chain id (as bytes32, i.e. as lower-case hex)
    nets: tuple[int, ...]  # receives (+) / pays (-), same order
    gross_count: int
    gross_value_minor: int
    net_count: int  # transfers needed after netting: one per member with a non-zero net
    net_value_minor: int  # what moves after netting: the sum of positive nets

    @property
    def transfers_saved(self) -> int:
        return self.gross_count - self.net_count

    @property
    def value_saved_minor(self) -> int:
        return self.gross_value_minor - self.net_value_minor


def compute_nets(transfers: Iterable[Transfer]) -> NetResult:
    """Nets per member over ``transfers``; raises if they do not sum to zero (cannot happen)."""
    flows: dict[str, int] = {}
    gross_count = gross_value = 0
    for t in transfers:
        if t.amount_minor <= 0 or t.payer == t.payee:
            raise ValueError(f"not a transfer: {t}")
        flows[t.payer] = flows.get(t.payer, 0) - t.amount_minor
        flows[t.payee] = flows.get(t.payee, 0) + t.amount_minor
        gross_count += 1
        gross_value += t.amount_minor
    members = tuple(sorted(flows, key=lambda m: int(m, 16)))
    nets = tuple(flows[m] for m in members)
    if sum(nets) != 0:  # a hard check: python -O must not strip it
        raise JournalImbalanceError(f"nets sum to {sum(nets)}, not zero")
    positive = sum(n for n in nets if n > 0)
    return NetResult(members=members, nets=nets, gross_count=gross_count, gross_value_minor=gross_value,
                     net_count=sum(1 for n in nets if n != 0), net_value_minor=positive)


def members_of(transfers: Sequence[Transfer]) -> set[str]:
    return {t.payer for t in transfers} | {t.payee for t in transfers}
