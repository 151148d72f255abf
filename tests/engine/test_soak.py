"""Short versions of benchmarks/soak.py (the 200-crash run is `-m slow` and the benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import soak

pytestmark = pytest.mark.timeout(600)


async def test_consecutive_crashes_are_each_recorded_once(tmp_path) -> None:
    result = soak.check(await soak.soak(15, "off", tmp_path), 15)
    assert result["ok"], result
    assert result["restarts"] == 14 and not result["warnings"]


def test_log_survives_sigkill_of_the_monitor(tmp_path) -> None:
    result = soak.killed_run(40, 8, "off", tmp_path)
    assert result["ok"], result
    assert result["crashes"] >= 8


@pytest.mark.slow
async def test_two_hundred_crashes(tmp_path) -> None:
    result = soak.check(await soak.soak(200, "off", tmp_path), 200)
    assert result["ok"], result
