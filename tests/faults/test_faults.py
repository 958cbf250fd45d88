"""The fault suite: the real service under a mixed load (single and batch settlements,
receivable registrations, signed payment notifications of the demo providers, each delivered
again), on SQLite and PostgreSQL, through faults:

- managed chain: SIGKILL of the service's process group; SIGKILL of the managed anvil (the
  service restarts it when it supervises it, else the operator restarts the service); SIGKILL of
  both at once;
- external node (interval mining, like the production network): paused with SIGSTOP for
  ``PAUSE_S`` seconds (10 s here, not the 60 s of the issue's report, to keep the suite short: a
  pause is a pause), SIGKILL of the node and a restart from its state file (the blocks since its
  last dump are lost), SIGKILL of the service.

After the faults every accepted (2xx) request is on chain exactly once, counted from the chain's
own events (not the store); nothing the API shows as confirmed lacks a receipt; a notification
delivered again after the faults is applied once.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import EXTERNAL_FAULTS, MANAGED_FAULTS, Ledger, Load, Stack, inject, verify

WARMUP_S = 6.0
BETWEEN_S = 5.0
PAUSE_S = 10.0


@pytest.mark.slow(seconds=60)
@pytest.mark.parametrize("mode", ["managed", "external"])
def test_every_accepted_request_is_on_chain_exactly_once_through_faults(tmp_path, database_url, mode):
    external = mode == "external"
    stack = Stack(home=tmp_path / "home", database_url=None if database_url.startswith("sqlite") else database_url,
                  external=external, block_time_s=1 if external else None)
    try:
        stack.start()
        ledger = Ledger()
        load = Load(stack, ledger).start()
        try:
            time.sleep(WARMUP_S)
            for fault in EXTERNAL_FAULTS if external else MANAGED_FAULTS:
                inject(stack, fault, pause_s=PAUSE_S)
                time.sleep(BETWEEN_S)
        finally:
            load.stop()
        load.redeliver_all()
        verdict = verify(stack, ledger)
        assert verdict.accepted > 0 and ledger.requests["payment"] > 0 and ledger.requests["batch"] > 0, verdict
        assert verdict.detail["shown_confirmed"] > 0, verdict
        assert verdict.ok, verdict
    finally:
        stack.close()
