"""tests.chain_clock: a day-reasoning test never starts within hours of midnight on its chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement.chain.anvil import rpc_call
from tests.chain_clock import DAY_S, MARGIN_S, clear_of_midnight
from tests.conftest import start_anvil


@pytest.fixture
def rpc(tmp_path: Path) -> Iterator:
    node = start_anvil(tmp_path)
    try:
        yield lambda method, params: rpc_call(node.rpc_url, method, params)
    finally:
        node.stop()


def _latest(rpc) -> int:  # type: ignore[no-untyped-def]
    return int(rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def test_a_clock_near_midnight_moves_past_it_and_one_clear_of_it_stays(rpc) -> None:  # type: ignore[no-untyped-def]
    day = _latest(rpc) // DAY_S + 3
    rpc("evm_setNextBlockTimestamp", [day * DAY_S + 600])  # 00:10
    rpc("evm_mine", [])
    assert clear_of_midnight(rpc, _latest(rpc)) == day
    assert _latest(rpc) == day * DAY_S + 600  # untouched: no block mined

    rpc("evm_setNextBlockTimestamp", [(day + 1) * DAY_S - MARGIN_S + 1])  # within the margin
    rpc("evm_mine", [])
    assert clear_of_midnight(rpc, _latest(rpc)) == day + 1
    assert _latest(rpc) == (day + 1) * DAY_S + 60
    # The next day's blocks follow from there: a day's advance lands on the day after, mid-morning.
    rpc("evm_increaseTime", [DAY_S])
    rpc("evm_mine", [])
    assert _latest(rpc) // DAY_S == day + 2
