"""What every test shares: a clean environment, one wait helper, and framework environments.

Each test starts with no GPUMON_* setting of the machine's or the developer's, and records
sessions into its own temporary folder. Framework environments (`mlx@0.31.1`) are built by
gpumon's own env cache into one kept folder ($GPUMON_TEST_ENV_DIR, else
~/.cache/gpumon-test-envs), so a pool on an old version builds its env once, not per test.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

TEST_ENV_ROOT = Path(
    os.environ.get("GPUMON_TEST_ENV_DIR") or Path.home() / ".cache" / "gpumon-test-envs"
)
# Settings a developer may have exported that would change what a test sees; GPUMON_DEBUG
# (tracebacks for internal errors) only adds output and may stay.
_KEEP = {"GPUMON_DEBUG", "GPUMON_TEST_ENV_DIR"}


async def wait_for(
    pred: Callable[[], object], timeout: float = 30.0, what: str = "condition", step: float = 0.05
) -> None:
    """Wait on a predicate: a live monitor never goes idle, so pauses prove nothing."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(step)


def wait_until(
    pred: Callable[[], object], timeout: float = 30.0, what: str = "condition", step: float = 0.01
) -> None:
    """`wait_for` for a test without an event loop (threads, files, processes)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@pytest.fixture(autouse=True)
def _clean_gpumon_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GPUMON_") and name not in _KEEP:
            monkeypatch.delenv(name)
    monkeypatch.setenv("GPUMON_SESSION_DIR", str(tmp_path / "sessions"))
    monkeypatch.setenv("GPUMON_ENV_DIR", str(TEST_ENV_ROOT))


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    d = tmp_path / "artifacts"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def mlx_env() -> Callable[[str], Path]:
    """`mlx_env("0.31.1")`: that MLX (the CPU build on Linux) in gpumon's env cache, built on
    first use and kept; returns its interpreter. Skips only when the package index cannot be
    reached (a real request) or has no build of that version for this machine."""
    from gpumon import envs
    from gpumon.envs.versions import release_status

    built: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version in built:
            return built[version]
        req = envs.request_for(f"mlx@{version}", device="cpu")
        found = envs.find(req, TEST_ENV_ROOT)
        if found is None:
            try:
                status = release_status(req.pin, req.variant, req.target)
            except envs.EnvError as e:
                pytest.skip(f"the package index cannot be reached: {e}")
            if status is None or not status.installable:
                pytest.skip(f"mlx {version} has no build for this machine")
            found = envs.ensure(req, root=TEST_ENV_ROOT)
        built[version] = found.python
        return found.python

    return get
