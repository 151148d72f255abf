"""`gpumon pipe` end to end, as a user runs it: real worker processes, a real pipe to a reader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpumon.session.log import load

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)
QUICK = "fault,fault-at-threads=99,native=off"  # a real worker that never faults


def gpumon(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines()]


def test_count_gives_that_many_intervals_of_every_pool_and_records_the_session(
    tmp_path: Path,
) -> None:
    r = gpumon(
        "pipe",
        "--pool",
        QUICK,
        "--pool",
        "torch:cpu,size=64,intra-op=1",
        "--count",
        "2",
        "--interval",
        "0.5",
        "--session-dir",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    got = lines(r.stdout)  # every stdout line is JSON
    assert got[0]["type"] == "session_start" and got[-1]["type"] == "session_end"
    pools = [x for x in got if x["type"] == "pool"]
    assert [x["pool"] for x in pools] == ["fault", "torch:cpu"] * 2
    torch = [x for x in pools if x["backend"] == "torch"]
    for x in torch:
        assert x["state"] == "running" and x["version"].startswith("2.")
        assert x["ops"] > 0 and x["ops_per_s"] > 0 and x["flop_per_s"] > 0
        assert x["lat_p50_s"] <= x["lat_p99_s"] <= x["lat_max_s"] * 1.1
        assert x["rss_bytes"] > 0 and 0 < x["measured_s"] <= 1.0
    assert all(x["flop_per_s"] is None for x in pools if x["backend"] == "fault")
    log = r.stderr.split("session log ")[1].strip()
    session = load(log)
    assert session.start.mode == "pipe" and session.start.session_id == got[0]["session_id"]


def test_a_crash_is_its_own_line_and_exits_3(tmp_path: Path) -> None:
    r = gpumon(
        "pipe",
        "--pool",
        "fault,threads=2,fault-rate=50,native=off",
        "--no-restart",
        "--count",
        "2",
        "--interval",
        "0.5",
        "--no-record",
    )
    assert r.returncode == 3, r.stderr
    got = lines(r.stdout)
    (crash,) = [x for x in got if x["type"] == "crash"]
    assert crash["signal"] == "SIGSEGV" and crash["threads"] == 2 and crash["pool"] == "fault"
    last = [x for x in got if x["type"] == "pool"][-1]
    assert last["crashes"] == 1 and last["crash_signals"] == {"SIGSEGV": 1}
    assert last["state"] in ("crashed", "failed", "stopped")


def test_a_hang_is_its_own_line_and_exits_5() -> None:
    r = gpumon(
        "pipe",
        "--pool",
        "fault,threads=2,fault=hang,fault-rate=50,native=off",
        "--stall-after",
        "0.5",
        "--count",
        "3",
        "--interval",
        "1",
        "--no-record",
    )
    assert r.returncode == 5, r.stderr
    got = lines(r.stdout)
    assert [x["pool"] for x in got if x["type"] == "hang"] == ["fault"]
    assert [x for x in got if x["type"] == "pool"][-1]["hangs"] == 1


def test_a_pool_that_cannot_run_is_a_line_and_exits_1() -> None:
    r = gpumon("pipe", "--pool", QUICK, "--pool", "mlx:metal", "--count", "1", "--no-record")
    assert r.returncode == 1, r.stderr
    got = lines(r.stdout)
    (failed,) = [x for x in got if x["type"] == "pool_failed"]
    assert failed["pool"] == "mlx:metal" and failed["message"]
    states = {x["pool"]: x["state"] for x in got if x["type"] == "pool"}
    assert states == {"fault": "running", "mlx:metal": "failed"}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--pool", "nope"], "unknown backend"),
        (["--interval", "0"], "--interval"),
        (["--count", "0"], "--count"),
        (["--metrics-port", "70000"], "--metrics-port"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(argv: list[str], needle: str) -> None:
    r = gpumon("pipe", *argv, "--no-record", timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpumon", "pipe", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _stat(pid)


def _stat(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_pools_and_end_the_session(tmp_path: Path, signo: int) -> None:
    p = _start("--pool", QUICK, "--interval", "0.2", "--session-dir", str(tmp_path))
    assert p.stdout is not None
    first = json.loads(p.stdout.readline())
    pool_line = json.loads(p.stdout.readline())
    assert first["type"] == "session_start" and pool_line["type"] == "pool"
    worker = pool_line["pid"]
    p.send_signal(signo)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["type"] == "session_end"
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the worker outlived the pipe"
    session = load(err.split("session log ")[1].strip())
    assert session.end is not None and session.end.reason == "pipe finished"


def test_a_reader_that_goes_away_ends_it_cleanly(tmp_path: Path) -> None:
    p = _start("--pool", QUICK, "--interval", "0.2", "--session-dir", str(tmp_path))
    assert p.stdout is not None
    p.stdout.readline()
    p.stdout.readline()
    p.stdout.close()  # like `| head -2`
    err = p.stderr.read() if p.stderr else ""
    assert p.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    session = load(err.split("session log ")[1].strip())
    assert session.end is not None
