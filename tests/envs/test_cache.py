"""Real environments: build, reuse, build once under contention, survive interruption.

Every build here is real (uv or venv + pip against the package index). Fresh roots keep the
tests apart; the shared mlx 0.31.1 environment is built once per machine (conftest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from gpumon.envs import BuildProgress, EnvCancelled, ensure, find, layout, list_envs
from gpumon.envs.build import EnvRequest
from gpumon.envs.cache import Env
from gpumon.envs.lock import env_lock
from gpumon.envs.tools import find_uv

from .conftest import PIN

REPO = Path(__file__).resolve().parents[2]


def _mlx_version(env: Env) -> str:
    r = subprocess.run(
        [str(env.python), "-I", "-c", "import mlx.core as mx; print(mx.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_env_runs_the_pinned_mlx(mlx_env: Env, mlx_request: EnvRequest) -> None:
    assert _mlx_version(mlx_env) == "0.31.1"
    meta = mlx_env.meta
    assert (meta.framework, meta.version, meta.variant) == ("mlx", "0.31.1", mlx_request.variant)
    assert meta.installed["mlx"] == "0.31.1" and "msgspec" in meta.installed
    if mlx_request.variant == "cpu":
        assert meta.installed["mlx-cpu"] == "0.31.1"
    assert meta.python_key == mlx_request.target.key
    assert meta.python.startswith(mlx_request.target.minor + ".")
    assert mlx_env.path.name == mlx_request.key.name
    # The worker needs msgspec from the env itself (PYTHONPATH will hold gpumon only).
    r = subprocess.run(
        [str(mlx_env.python), "-I", "-c", "import msgspec, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and Path(r.stdout.strip()) == mlx_env.path


def test_second_ensure_is_a_cache_hit(
    mlx_env: Env, mlx_request: EnvRequest, shared_root: Path, record_property
) -> None:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        again = ensure(mlx_request, root=shared_root)
        times.append(time.perf_counter() - t0)
        assert not again.built and again.path == mlx_env.path
    best = min(times)
    record_property("cache_hit_s", best)
    print(f"\ncache hit: best {best * 1e3:.2f} ms of {len(times)}")
    found = find(mlx_request, root=shared_root)
    assert found is not None and found.meta == mlx_env.meta


def test_find_marks_last_use(mlx_env: Env, mlx_request: EnvRequest, shared_root: Path) -> None:
    marker = layout.last_used_path(mlx_env.path)
    os.utime(marker, (1_000_000_000, 1_000_000_000))
    assert find(mlx_request, root=shared_root) is not None
    assert marker.stat().st_mtime > time.time() - 60


def test_a_folder_without_metadata_is_not_an_env(mlx_request: EnvRequest, fresh_root: Path) -> None:
    env = ensure(mlx_request, root=fresh_root)
    assert env.built and find(mlx_request, root=fresh_root) is not None
    layout.metadata_path(env.path).unlink()
    assert find(mlx_request, root=fresh_root) is None
    rebuilt = ensure(mlx_request, root=fresh_root)
    assert rebuilt.built and _mlx_version(rebuilt) == "0.31.1"
    assert not layout.leftovers(fresh_root)  # the incomplete one went to trash and away


_ENSURE_IN_CHILD = """
import json, sys
from pathlib import Path
from gpumon.envs import ensure, request_for
phases = []
env = ensure(request_for(sys.argv[1], device="cpu"), root=Path(sys.argv[2]),
             progress=lambda p: phases.append(p.phase))
print(json.dumps({"built": env.built, "created": env.meta.created, "phases": phases}))
"""


def test_concurrent_processes_build_once(mlx_request: EnvRequest, fresh_root: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ENSURE_IN_CHILD, PIN, str(fresh_root)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=110)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["built"] for r in results) == 1, results
    assert len({r["created"] for r in results}) == 1
    assert [e.name for e in list_envs(fresh_root)] == [mlx_request.key.name]


def test_concurrent_threads_build_once(mlx_request: EnvRequest, fresh_root: Path) -> None:
    envs: list[Env] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            envs.append(ensure(mlx_request, root=fresh_root))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(110)
    assert not errors and len(envs) == 3
    assert sum(e.built for e in envs) == 1


def test_a_waiter_reports_waiting_then_builds(mlx_request: EnvRequest, fresh_root: Path) -> None:
    seen: list[BuildProgress] = []
    result: list[Env] = []
    lock = layout.lock_path(fresh_root, mlx_request.key.name)
    with env_lock(lock):
        t = threading.Thread(
            target=lambda: result.append(ensure(mlx_request, root=fresh_root, progress=seen.append))
        )
        t.start()
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen and seen[0].phase == "waiting"
        assert str(os.getpid()) in seen[0].message  # names the holder
        time.sleep(0.3)
        assert not result  # still waiting while we hold the lock
    t.join(110)
    assert result and result[0].built
    assert [p.phase for p in seen][-1] == "done"


def test_cancel_while_waiting(mlx_request: EnvRequest, fresh_root: Path) -> None:
    cancel = threading.Event()
    with env_lock(layout.lock_path(fresh_root, mlx_request.key.name)):
        cancel.set()
        with pytest.raises(EnvCancelled) as e:
            ensure(mlx_request, root=fresh_root, cancel=cancel)
    assert e.value.kind == "cancelled" and "\n" not in str(e.value)


@pytest.mark.parametrize("tool", ["uv", "pip"])
def test_cancel_during_a_build_kills_the_installer(
    mlx_request: EnvRequest, fresh_root: Path, tool: str
) -> None:
    if tool == "uv" and find_uv() is None:
        pytest.skip("uv is not installed")
    cancel = threading.Event()

    def on_progress(p: BuildProgress) -> None:
        if p.phase == "resolving":
            cancel.set()  # the install step is just starting

    with pytest.raises(EnvCancelled):
        ensure(mlx_request, root=fresh_root, tool=tool, progress=on_progress, cancel=cancel)
    assert psutil.Process().children(recursive=True) == []
    assert find(mlx_request, root=fresh_root) is None
    assert list_envs(fresh_root) == [] and layout.leftovers(fresh_root) == []


_KILL_SELF_AT = """
import os, signal, sys
from pathlib import Path
from gpumon.envs import ensure, request_for
def die(p):
    if p.phase == sys.argv[3]:
        os.kill(os.getpid(), signal.SIGKILL)
ensure(request_for(sys.argv[1], device="cpu"), root=Path(sys.argv[2]), progress=die)
"""


@pytest.mark.parametrize("phase", ["creating", "verifying"])
def test_a_killed_build_leaves_nothing_complete(
    mlx_request: EnvRequest, fresh_root: Path, phase: str
) -> None:
    r = subprocess.run(
        [sys.executable, "-c", _KILL_SELF_AT, PIN, str(fresh_root), phase],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert find(mlx_request, root=fresh_root) is None
    assert list_envs(fresh_root) == []
    if phase == "verifying":  # killed after installing: the half-built folder is still there
        assert layout.leftovers(fresh_root, mlx_request.key.name)
    env = ensure(mlx_request, root=fresh_root)
    assert env.built and _mlx_version(env) == "0.31.1"
    assert layout.leftovers(fresh_root) == []


_INTERRUPT_AT_RESOLVING = """
import json, os, signal, sys
from pathlib import Path
import psutil
from gpumon.envs import ensure, request_for
root = Path(sys.argv[2])
def interrupt(p):
    if p.phase == "resolving":
        os.kill(os.getpid(), signal.SIGINT)
try:
    ensure(request_for(sys.argv[1], device="cpu"), root=root, progress=interrupt)
    print(json.dumps({"interrupted": False}))
except KeyboardInterrupt:
    left = [p.name for p in root.iterdir() if p.name.startswith((".build-", ".trash-"))]
    print(json.dumps({"interrupted": True, "children": len(psutil.Process().children(True)),
                      "left": left}))
"""


def test_ctrl_c_kills_the_installer_and_cleans_up(
    mlx_request: EnvRequest, fresh_root: Path
) -> None:
    r = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_AT_RESOLVING, PIN, str(fresh_root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"interrupted": True, "children": 0, "left": []}
    assert find(mlx_request, root=fresh_root) is None


def test_the_venv_pip_fallback_builds_a_working_env(
    mlx_request: EnvRequest, fresh_root: Path
) -> None:
    phases: list[str] = []
    env = ensure(
        mlx_request, root=fresh_root, tool="pip", progress=lambda p: phases.append(p.phase)
    )
    assert env.built and env.meta.tool.startswith("pip ")
    assert _mlx_version(env) == "0.31.1"
    assert phases[0] == "creating" and phases[-1] == "done" and "installing" in phases


def test_the_worker_code_runs_under_the_env(mlx_env: Env, shared_root: Path) -> None:
    """End to end: gpumon's own probe, run by the env's interpreter with a PYTHONPATH that
    holds gpumon alone, reports the pinned mlx (the monitor's own mlx, if any, stays out)."""
    from gpumon.envs.launch import gpumon_package, gpumon_path, worker_environ

    path = gpumon_path(shared_root)
    assert [p.name for p in path.iterdir()] == ["gpumon"]
    assert (path / "gpumon").resolve() == gpumon_package()
    assert gpumon_path(shared_root) == path  # reused
    r = subprocess.run(
        [str(mlx_env.python), "-m", "gpumon.worker.probe", "mlx:cpu"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=shared_root,  # not the repo: the worker must find gpumon through PYTHONPATH
        env=worker_environ(os.environ, path),
    )
    assert r.returncode == 0, r.stderr
    (probe,) = json.loads(r.stdout.strip().splitlines()[-1])
    assert probe["ok"], probe
    assert probe["versions"]["mlx"] == "0.31.1"


def test_a_relative_cache_root_works(
    mlx_request: EnvRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GPUMON_ENV_DIR", "rel/envs")
    env = ensure(mlx_request)
    assert env.path == tmp_path / "rel" / "envs" / mlx_request.key.name
    assert _mlx_version(env) == "0.31.1"
