"""`gpumon bisect` end to end: real MLX releases in their own envs, real crashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpumon import events as ev
from gpumon.session.log import load

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


def gpumon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args],
        capture_output=True,
        text=True,
        timeout=580,
        cwd=ROOT,
    )


def test_a_short_bisect_finds_where_the_mlx_crash_went_away(tmp_path: Path, mlx_env) -> None:
    mlx_env("0.31.1"), mlx_env("0.31.2")  # built once into the test env cache
    out = tmp_path / "bisect.json"
    r = gpumon(
        "bisect",
        "--pool",
        "mlx:cpu,workload=generate,threads=2,size=64,native=off",
        "--versions",
        "0.31.1..0.31.2",
        "--runs",
        "2",
        "--seconds",
        "1.5",
        "--json",
        str(out),
        "--session-dir",
        str(tmp_path / "s"),
    )
    assert r.returncode == 0, (r.stdout, r.stderr)
    data = json.loads(out.read_text())
    assert (data["direction"], data["last_bad"], data["first_good"]) == (
        "fixed",
        "0.31.1",
        "0.31.2",
    )
    steps = {s["version"]: s for s in data["steps"]}
    assert steps["0.31.1"]["died"] == 2 and set(steps["0.31.1"]["signals"]) == {"SIGSEGV"}
    assert steps["0.31.2"]["died"] == 0
    assert "last bad: mlx 0.31.1" in r.stdout and "first good: mlx 0.31.2" in r.stdout
    # recorded like any session, the result as an event
    (log,) = (tmp_path / "s").glob("*/session.jsonl")
    s = load(log)
    (result,) = [e for e in s.events if isinstance(e, ev.BisectResult)]
    assert (result.older, result.newer) == ("0.31.1", "0.31.2")
    crashes = [e for e in s.events if isinstance(e, ev.Crash)]
    assert len(crashes) == 2 and {c.versions["mlx"] for c in crashes} == {"0.31.1"}


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--pool", "fault", "--versions", "1..2"], 2, "needs a framework pool"),
        (["--pool", "mlx@0.31.1", "--versions", "0.31..0.32"], 2, "leave version="),
        (["--pool", "mlx:cpu", "--versions", "latest"], 2, "is not a version range"),
        (["--pool", "mlx:cpu", "--versions", "0.32..0.30"], 2, "runs backwards"),
    ],
)
def test_bad_bisect_options_are_one_line(args: list[str], code: int, needle: str) -> None:
    r = gpumon("bisect", *args)
    assert r.returncode == code, r
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
