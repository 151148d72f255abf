"""Fixtures for framework environments: a reachable index, one real cached mlx 0.31.1 env.

The shared environment lives in a fixed folder ($GPUMON_TEST_ENV_DIR, else
~/.cache/gpumon-test-envs) so it is built once and reused across runs, as a user's would be.
Tests that build, break or remove environments use their own fresh roots. Nothing here fakes
the installer or the index: when the index cannot be reached (checked with a real request)
the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from gpumon.envs import EnvError, ensure, request_for
from gpumon.envs.build import EnvRequest
from gpumon.envs.cache import Env
from gpumon.envs.interpreter import monitor_python
from gpumon.envs.simple_api import project_files
from gpumon.envs.variant import choose_variant
from gpumon.envs.versions import index_for, release_status

PIN = "mlx@0.31.1"


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A test that forgets root= must not touch the user's real cache.
    monkeypatch.setenv("GPUMON_ENV_DIR", str(tmp_path / "default-root"))


@pytest.fixture(scope="session")
def index() -> str:
    """The index the installer will use; skips when a real request to it fails."""
    target = monitor_python()
    url = index_for("mlx", choose_variant("mlx", "cpu", target))
    try:
        if project_files(url, "mlx", timeout=15) is None:
            pytest.skip(f"the package index {url} has no mlx project")
    except EnvError as e:
        pytest.skip(f"the package index cannot be reached: {e}")
    return url


@pytest.fixture(scope="session")
def mlx_request(index: str) -> EnvRequest:
    req = request_for(PIN, device="cpu")
    status = release_status(req.pin, req.variant, req.target, index_url=index)
    if status is None or not status.installable:
        why = status.reason if status else "not on the index"
        pytest.skip(f"{PIN} cannot be installed here: {why}")
    return req


@pytest.fixture(scope="session")
def shared_root() -> Path:
    root = os.environ.get("GPUMON_TEST_ENV_DIR") or Path.home() / ".cache" / "gpumon-test-envs"
    return Path(root)


@pytest.fixture(scope="session")
def mlx_env(mlx_request: EnvRequest, shared_root: Path) -> Env:
    """The real mlx 0.31.1 (CPU build on Linux) environment, built once and kept."""
    t0 = time.perf_counter()
    env = ensure(mlx_request, root=shared_root)
    took = time.perf_counter() - t0
    print(f"\nshared {env.key.name}: {'built' if env.built else 'cached'} in {took:.2f} s")
    return env


@pytest.fixture
def fresh_root(tmp_path: Path) -> Path:
    return tmp_path / "envs"


@pytest.fixture
def dead_index() -> str:
    """An http index URL on the loopback where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"


def python_code(*lines: str) -> list[str]:
    return [sys.executable, "-c", "\n".join(lines)]
