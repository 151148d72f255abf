"""Shared test helpers: waiting on predicates (a live monitor never goes idle)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest


async def wait_for(
    pred: Callable[[], object], timeout: float = 30.0, step: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(step)


@pytest.fixture
def artifacts(tmp_path):
    d = tmp_path / "artifacts"
    d.mkdir()
    return d
