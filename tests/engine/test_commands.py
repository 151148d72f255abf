"""`gpumon sweep` and `gpumon doctor` end to end, as a user runs them (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpumon.session.log import load

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def gpumon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
    )


def test_sweep_of_real_cpu_pools(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    r = gpumon(
        "sweep",
        "--pool",
        "mlx:cpu",
        "--pool",
        "torch:cpu,policy=locked",  # a pool's own policy= holds in a sweep without --policies
        "--size",
        "64",
        "--threads",
        "1,2",
        "--seconds",
        "0.6",
        "--warmup",
        "0.3",
        "--repeat",
        "2",
        "--json",
        str(out),
        "--session-dir",
        str(tmp_path / "sessions"),
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for needle in ("gpumon sweep", "mlx:cpu", "torch:cpu", "FLOP/s", "p99", "0/2"):
        assert needle in r.stdout, r.stdout
    data = json.loads(out.read_text())
    assert data["crashed"] is False and data["hung"] is False and not data["failed_pools"]
    cells = {(c["pool"], c["threads"]): c for c in data["cells"]}
    assert set(cells) == {("mlx:cpu", 1), ("mlx:cpu", 2), ("torch:cpu", 1), ("torch:cpu", 2)}
    for c in cells.values():
        assert c["runs"] == 2 and c["crashes"] == 0
        assert c["ops_per_s"] > 0 and c["flop_per_s"] > 0
        assert c["ops_per_s_min"] <= c["ops_per_s"] <= c["ops_per_s_max"]
        assert c["lat_p50_s"] <= c["lat_p99_s"]
        assert c["size"] == 64 and c["dtype"] == "float32"
        assert c["hangs"] == 0 and c["stop_crashes"] == 0 and len(c["run_details"]) == 2
        assert c["version"]  # the version the worker imported
    assert cells[("mlx:cpu", 1)]["mem_peak_bytes"]  # MLX's allocator figures
    assert {c["policy"] for c in cells.values() if c["pool"] == "torch:cpu"} == {"locked"}
    assert {c["policy"] for c in cells.values() if c["pool"] == "mlx:cpu"} == {"per-thread"}
    # the sweep was recorded like any session, and the log agrees with the JSON
    (log,) = (tmp_path / "sessions").glob("*/session.jsonl")
    s = load(log)
    assert s.start is not None and s.start.mode == "sweep" and s.end is not None


def test_sweep_exits_3_when_a_worker_crashes(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    r = gpumon(
        "sweep",
        "--pool",
        "fault,native=off,fault-rate=50",
        "--threads",
        "1,2",
        "--seconds",
        "0.8",
        "--warmup",
        "0.2",
        "--json",
        str(out),
        "--no-record",
    )
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "SIGSEGV" in r.stdout and "synthetic" in r.stdout
    data = json.loads(out.read_text())
    crashed = {c["threads"]: c["crashes"] for c in data["cells"]}
    assert crashed == {1: 0, 2: 1}
    assert data["cells"][0]["flop_per_s"] is None  # no FLOP/s for the synthetic loop


def test_sweep_exits_1_when_a_pool_cannot_run(tmp_path: Path) -> None:
    r = gpumon(
        "sweep",
        "--pool",
        "torch:mps",
        "--pool",
        "fault,native=off",
        "--threads",
        "1",
        "--seconds",
        "0.4",
        "--warmup",
        "0.2",
        "--no-record",
    )
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "gpumon sweep: torch:mps: torch cannot use MPS" in r.stderr
    assert "fault" in r.stdout  # the other pool still ran
    assert "Traceback" not in r.stderr


def test_doctor_reports_backends_and_capture() -> None:
    r = gpumon("doctor", "--json")
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    by_spec = {b["spec"]: b for b in f["backends"]}
    assert set(by_spec) == {"mlx", "torch", "fault"}
    for spec in ("mlx", "torch"):
        b = by_spec[spec]
        assert b["ok"], b
        assert b["reason"].startswith(("auto:", "requested"))
        assert set(b["policies"]) == {"per-thread", "shared", "locked"}
    assert "synthetic" in by_spec["fault"]["framework"]
    assert f["host"]["python"] == sys.version.split()[0]
    assert f["crash_capture"]["native_stacks"]
    text = gpumon("doctor")
    assert text.returncode == 0 and "Crash capture" in text.stdout and "Backends" in text.stdout
