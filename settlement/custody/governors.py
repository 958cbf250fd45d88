"""Governor keys the service may hold: only the deterministic demo governors of the managed dev
chain and the test fixtures, never a real consortium's.

On a real network each governing bank holds its own governor key and approves with it (an
``approveHash`` transaction of its own, or a signature over the Safe transaction's typed data that
the service submits). The demo's keys are derived from a public seed, so anyone can compute them:
they are worth nothing outside a loopback dev chain, which is why a manifest whose governance is
not marked ``demo`` never gets custodial governors.
"""

from __future__ import annotations

from settlement.chain.governance import GovernanceParams, Governor
from settlement.chain.signing import LocalSigner, keccak256

__all__ = ["DEMO_GOVERNOR_MEMBERS", "DEMO_THRESHOLD", "DEMO_GUARDIAN_THRESHOLD", "DEMO_DELAY_S",
           "demo_governor_signers", "demo_governance", "demo_governor_keys"]

# 2-of-3, the demo consortium's bank, payment institution and core-enterprise buyer; guardians are
# the same keys with a threshold of 2; a delay short enough to watch.
DEMO_GOVERNOR_MEMBERS: tuple[str, ...] = ("bank", "payments", "buyer")
DEMO_THRESHOLD = 2
DEMO_GUARDIAN_THRESHOLD = 2
DEMO_DELAY_S = 20
_DEMO_SEED = b"ledger demo governor "


def demo_governor_signers(count: int = len(DEMO_GOVERNOR_MEMBERS)) -> list[LocalSigner]:
    """The demo governors' keys: keccak256 of a public seed, so every demo and test run has the
    same governors (their keys are published in demo.json)."""
    return [LocalSigner(keccak256(_DEMO_SEED + str(i).encode())) for i in range(1, count + 1)]


def demo_governance(member_ids: tuple[str, ...] = DEMO_GOVERNOR_MEMBERS, *, threshold: int = DEMO_THRESHOLD,
                    guardian_threshold: int = DEMO_GUARDIAN_THRESHOLD,
                    delay_s: int = DEMO_DELAY_S) -> tuple[GovernanceParams, dict[str, LocalSigner]]:
    """Demo governance parameters and the custodial signers of its governors, by address."""
    signers = demo_governor_signers(len(member_ids))
    params = GovernanceParams(governors=tuple(Governor(m, s.address) for m, s in zip(member_ids, signers)),
                              threshold=threshold, guardian_threshold=guardian_threshold, delay_s=delay_s, demo=True)
    return params, {s.address: s for s in signers}


def demo_governor_keys(count: int = len(DEMO_GOVERNOR_MEMBERS)) -> list[str]:
    """The demo governors' private keys as 0x hex, for demo.json (a test client approves with them)."""
    return ["0x" + keccak256(_DEMO_SEED + str(i).encode()).hex() for i in range(1, count + 1)]
