"""The README tour cannot rot: ``docs/tour.sh`` (the tour's commands, with the ids taken from the
answers, waiting for the chain where the tour depends on it) runs against a real ``ledger up
--demo`` and ends with "tour done"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .demo_service import start_demo

ROOT = Path(__file__).resolve().parents[2]
TOUR_TIMEOUT_S = 420


@pytest.mark.slow(seconds=100)
@pytest.mark.timeout(900)
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    # `ledger` as this interpreter runs it (the checkout's code, whatever the venv has installed)
    ledger = tmp_path / "ledger"
    ledger.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ledger_api.cli "$@"\n')
    ledger.chmod(0o755)
    service = start_demo(tmp_path / "home")
    try:
        env = dict(service.env(), API=service.api, LEDGER=str(ledger))
        done = subprocess.run(["bash", str(ROOT / "docs" / "tour.sh")], env=env, capture_output=True, text=True,
                              timeout=TOUR_TIMEOUT_S, cwd=tmp_path)
    finally:
        service.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "VERIFIED" in done.stdout and "== tour done" in done.stdout
    assert "matched                       1" in done.stdout and "missing_in_ledger             1" in done.stdout
