"""Isolated framework environments for tests that need another version (e.g. mlx 0.31.1).

The one place tests get such an environment, so it can later be pointed at gpumon's own env
cache (`gpumon/envs/`). An environment is a venv with the framework and msgspec (all a worker
needs besides gpumon itself, which comes from PYTHONPATH), built with uv when present, else
venv + pip, into a fixed cache directory that is reused between runs:
`$GPUMON_TEST_ENVS` or `~/.cache/gpumon-test-envs/<package>-<version>`.

A test is skipped only when the package index cannot be reached (checked with a real request);
any other failure to build is a failure, because it means the test could not do its job.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BUILD_TIMEOUT = 900


def cache_root() -> Path:
    return Path(os.environ.get("GPUMON_TEST_ENVS", "~/.cache/gpumon-test-envs")).expanduser()


def index_url() -> str:
    return (
        os.environ.get("UV_INDEX_URL")
        or os.environ.get("PIP_INDEX_URL")
        or "https://pypi.org/simple"
    ).rstrip("/")


def index_unreachable(package: str) -> str | None:
    """Why the package index cannot serve `package`, or None when it can."""
    url = f"{index_url()}/{package}/"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read(1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"the package index cannot be reached ({url}: {e})"
    return None


def requirement(package: str, version: str) -> str:
    if package == "mlx" and sys.platform.startswith("linux"):
        return f"mlx[cpu]=={version}"  # Linux wheels need the CPU (or CUDA) extra
    return f"{package}=={version}"


def _python_in(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _build(env: Path, req: str) -> None:
    uv = shutil.which("uv")
    run = {"check": True, "capture_output": True, "text": True, "timeout": BUILD_TIMEOUT}
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(env)], **run)
        subprocess.run([uv, "pip", "install", "-q", "-p", str(env), req, "msgspec"], **run)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(env)], **run)
        pip = [str(_python_in(env)), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, req, "msgspec"], **run)


def framework_env(package: str, version: str) -> Path:
    """The python executable of a cached env with `package==version`; built on first use.

    A lock file keeps two test processes from building the same env at once; a `.ready`
    marker, written last, keeps a half-built env (killed mid-install) from being used.
    """
    env = cache_root() / f"{package}-{version}"
    ready = env / ".ready"
    py = _python_in(env)
    if ready.exists() and py.exists():
        return py
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f".{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and py.exists():
            return py
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(env)
        try:
            _build(env, requirement(package, version))
        except subprocess.CalledProcessError as e:
            raise RuntimeError(
                f"could not build {env} with {requirement(package, version)}:\n"
                f"{e.stdout}\n{e.stderr}"
            ) from None
        ready.write_text(version)
    return py


def require_env(package: str, version: str) -> Path:
    """framework_env(), or skip the test when the package index cannot be reached."""
    env = cache_root() / f"{package}-{version}"
    if not (env / ".ready").exists():
        why = index_unreachable(package)
        if why:
            pytest.skip(f"needs {package} {version} in an isolated env, and {why}")
    return framework_env(package, version)
