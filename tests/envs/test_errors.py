"""Each failure a user can cause, produced with the real installer, ends as one line that
names the cause and the way out, and leaves no environment that looks complete."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gpumon.envs import EnvError, ensure, find, list_envs, request_for
from gpumon.envs.build import EnvRequest
from gpumon.envs.tools import find_uv
from gpumon.envs.versions import releases

TOOLS = ["uv", "pip"]


def _tool(tool: str) -> str:
    if tool == "uv" and find_uv() is None:
        pytest.skip("uv is not installed")
    return tool


def _fails(req: EnvRequest, root: Path, tool: str) -> EnvError:
    with pytest.raises(EnvError) as e:
        ensure(req, root=root, tool=tool)
    err = e.value
    assert "\n" not in str(err) and "Traceback" not in str(err)
    assert err.message and err.fix
    assert find(req, root=root) is None
    assert all(not env.complete for env in list_envs(root)) and not list_envs(root)
    assert psutil.Process().children(recursive=True) == []
    return err


@pytest.mark.parametrize("tool", TOOLS)
def test_a_version_that_does_not_exist(index: str, fresh_root: Path, tool: str) -> None:
    req = request_for("mlx@0.0.1", device="cpu")
    err = _fails(req, fresh_root, _tool(tool))
    assert err.kind == "no-version"
    assert err.message == "mlx has no release 0.0.1 on the package index"
    assert err.fix.startswith("use a released version, e.g. ")
    assert err.detail  # the installer's own words are kept for the record


@pytest.fixture(scope="module")
def wheelless(index: str) -> str:
    """A released mlx version with no wheel for this platform and Python, from the index."""
    req = request_for("mlx@0.31.1", device="cpu")
    found = [
        r
        for r in releases("mlx", variant=req.variant, target=req.target, index_url=index)
        if not r.installable and r.reason.startswith("no wheel")
    ]
    if not found:
        pytest.skip("every mlx release has a wheel for this platform and Python")
    return found[-1].version


@pytest.mark.parametrize("tool", TOOLS)
def test_a_version_with_no_wheel_here(wheelless: str, fresh_root: Path, tool: str) -> None:
    req = request_for(f"mlx@{wheelless}", device="cpu")
    err = _fails(req, fresh_root, _tool(tool))
    assert err.kind == "no-wheel"
    assert err.message == f"mlx {wheelless} has no wheel for {req.target.describe()}"
    assert "python=PATH" in err.fix and "e.g." in err.fix


@pytest.mark.parametrize("tool", TOOLS)
def test_an_unreachable_index(
    dead_index: str, fresh_root: Path, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user's own index setting, as each tool reads it; one try so the test is quick.
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.setenv(var, dead_index)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("PIP_RETRIES", "0")
    req = request_for("mlx@0.31.2", device="cpu")
    err = _fails(req, fresh_root, _tool(tool))
    assert err.kind == "unreachable", str(err)
    host = dead_index.split("/")[2]
    assert err.message.startswith(f"cannot reach the package index {host}")
    assert err.fix == "offline? run the pool under an existing interpreter with python=PATH"


def test_an_unreachable_torch_cpu_index_stops_before_installing(
    dead_index: str, fresh_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip would otherwise fall back to PyPI's multi-GB CUDA torch without a word.
    monkeypatch.setenv("GPUMON_TORCH_INDEX_URL", dead_index)
    req = request_for("torch@2.5.1", device="cpu")
    if req.variant != "cpu":
        pytest.skip("the CPU torch index is only used on Linux")
    for tool in TOOLS:
        if tool == "uv" and find_uv() is None:
            continue
        err = _fails(req, fresh_root, tool)
        assert err.kind == "unreachable"
        assert dead_index.split("/")[2] in err.message and "python=PATH" in err.fix


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or 'no permission'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@pytest.mark.parametrize(("tool", "size"), [("uv", "2m"), ("pip", "4m")])
def test_a_full_disk(index: str, tmp_path: Path, tool: str, size: str) -> None:
    # uv fills it while copying mlx's libraries; venv fills it while ensurepip installs pip.
    with _tmpfs(tmp_path / "tiny", f"size={size}") as mnt:
        req = request_for("mlx@0.31.1", device="cpu")
        err = _fails(req, mnt / "envs", _tool(tool))
        assert err.kind == "no-space", str(err)
        assert err.message.startswith("no space left on the device while building mlx 0.31.1")
        assert "GPUMON_ENV_DIR" in err.fix and "--prune" in err.fix


def test_a_read_only_cache(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as mnt:
        req = request_for("mlx@0.31.1", device="cpu")
        with pytest.raises(EnvError) as e:
            ensure(req, root=mnt / "envs")
        assert e.value.kind == "not-writable"
        assert "Read-only file system" in str(e.value)
        assert e.value.fix == "point GPUMON_ENV_DIR at a writable directory"


def test_bad_specs_are_refused_before_anything_runs() -> None:
    for spec in ("mlx@latest", "mlx@>=0.31", "numpy@2.0.0"):
        with pytest.raises(EnvError) as e:
            request_for(spec)
        assert e.value.kind == "bad-spec"
    with pytest.raises(EnvError) as e:
        request_for("mlx@0.31.1", variant="rocm")  # type: ignore[arg-type]
    assert e.value.kind == "bad-spec"


def test_a_missing_interpreter(tmp_path: Path) -> None:
    with pytest.raises(EnvError) as e:
        request_for("mlx@0.31.1", python=str(tmp_path / "no-such-python"))
    assert e.value.kind == "interpreter" and "python=PATH" in e.value.fix
