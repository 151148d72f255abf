"""The Prometheus endpoint, scraped for real over HTTP and read with prometheus-client's own
parser: from a replayed real session (deterministic), and from live `pipe` and `sweep` runs."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpumon.metrics import POOL_LABELS, Exporter, MetricsError

from .replay import replay

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)
QUICK = "fault,fault-at-threads=99,native=off"


def scrape(url: str) -> dict[str, list]:
    """metric name (as the parser names samples) -> [(labels, value)]"""
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_a_replayed_crash_session_scrapes_as_valid_prometheus_text() -> None:
    ex = Exporter(0, interval=1.0).start()
    try:
        replay("h200-mlx-shrink", ex.listener, 1.0, lambda: None)
        m = scrape(ex.url)
    finally:
        ex.stop()
    (info,) = m["gpumon_session_info"]
    assert info[0]["session_id"] == "e5f487360970" and info[1] == 1
    (crash,) = m["gpumon_crashes_total"]
    labels, n = crash
    assert n == 1 and labels["signal"] == "SIGABRT"
    assert {k: labels[k] for k in POOL_LABELS} == {
        "pool": "mlx:gpu",
        "backend": "mlx",
        "device": "gpu",
        "version": "0.32.4",
        "policy": "per-thread",
    }
    ops = {lab["policy"]: v for lab, v in m["gpumon_ops_total"]}
    assert ops["per-thread"] > 35_000  # every op of the run, counted once
    # the framework's memory figures, by the framework's own names
    kinds = {lab["kind"] for lab, _ in m.get("gpumon_framework_memory_bytes", [])}
    assert kinds <= {"active", "peak", "cache"}
    assert m["gpumon_hangs_total"][0][1] == 0  # counters exist at 0 before the first hang
    doc = (ROOT / "docs" / "metrics.md").read_text()
    for name in m:
        assert f"`{name.removesuffix('_total')}" in doc, f"docs/metrics.md does not name {name}"


def test_a_taken_port_is_one_sentence() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(MetricsError, match=f"127.0.0.1:{port}"):
            Exporter(port).start()


def _pipe(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpumon", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _url(p: subprocess.Popen[str]) -> str:
    assert p.stderr is not None
    line = p.stderr.readline()
    assert "metrics at http://127.0.0.1:" in line, line
    return line.split("metrics at ")[1].strip()


def test_pipe_serves_live_pool_metrics_and_counts_crashes_and_restarts() -> None:
    p = _pipe(
        "pipe",
        "--pool",
        QUICK,
        "--pool",
        "fault,name=dies,threads=2,fault-rate=20,native=off",
        "--interval",
        "0.3",
        "--no-record",
        "--metrics-port",
        "0",
    )
    try:
        url = _url(p)
        assert p.stdout is not None
        seen_restart = False
        while not seen_restart:  # the stream says when there is something to scrape
            line = json.loads(p.stdout.readline())
            seen_restart = line["type"] == "restart"
        for _ in range(4):  # and a few intervals more, so the gauges have closed ones
            p.stdout.readline()
        m = scrape(url)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    up = {lab["pool"]: v for lab, v in m["gpumon_pool_up"]}
    assert up["fault"] == 1
    rate = {lab["pool"]: v for lab, v in m["gpumon_ops_per_second"]}
    assert rate["fault"] > 0
    crashes = [(lab, v) for lab, v in m["gpumon_crashes_total"] if lab["pool"] == "dies"]
    assert crashes and all(lab["signal"] == "SIGSEGV" for lab, _ in crashes)
    assert sum(v for _, v in crashes) >= 1
    restarts = sum(v for lab, v in m["gpumon_restarts_total"] if lab["pool"] == "dies")
    assert restarts >= 1
    threads = {lab["pool"]: v for lab, v in m["gpumon_pool_threads"]}
    assert threads["fault"] == 1
    assert p.returncode == 3  # a worker crashed


def test_sweep_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    p = _pipe(
        "sweep",
        "--pool",
        QUICK,
        "--threads",
        "1",
        "--seconds",
        "30",
        "--warmup",
        "0",
        "--no-record",
        "--metrics-port",
        "0",
    )
    try:
        url = _url(p)
        import time

        deadline = time.monotonic() + 120
        m: dict[str, list] = {}
        while time.monotonic() < deadline:  # until the cell's worker has been measured a while
            m = scrape(url)
            if any(v > 0 for _, v in m.get("gpumon_ops_per_second", [])):
                break
            time.sleep(0.2)
        assert any(lab["pool"] == "fault" and v > 0 for lab, v in m["gpumon_ops_total"])
        (info,) = m["gpumon_session_info"]
        assert info[0]["mode"] == "sweep"
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)


def test_a_taken_port_stops_the_command_before_any_pool_starts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = str(s.getsockname()[1])
        for cmd in ("pipe", "sweep"):  # (nothing is recorded: it stops before the session)
            r = subprocess.run(
                [sys.executable, "-m", "gpumon", cmd, "--pool", QUICK, "--metrics-port", port],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            assert r.returncode == 1 and r.stdout == ""
            assert r.stderr.count("\n") == 1 and "cannot serve metrics" in r.stderr, r.stderr


def test_without_prometheus_client_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"  # as if never installed
        "from gpumon.cli import main\n"
        "sys.exit(main(['pipe', '--pool', 'fault', '--no-record', '--metrics-port', '0']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == (
        "gpumon pipe: --metrics-port needs prometheus-client: pip install 'gpumon[metrics]'"
    )


async def test_the_live_monitor_feeds_the_endpoint_from_its_own_session(tmp_path: Path) -> None:
    # `gpumon live --metrics-port` hands the exporter to the app as one more listener.
    import asyncio

    from gpumon.spec import parse_pool
    from gpumon.tui.app import live_app
    from tests.conftest import wait_for

    ex = Exporter(0, interval=0.3).start()
    try:
        app = live_app([parse_pool(QUICK)], session_dir=tmp_path, listeners=[ex.listener])
        async with app.run_test(size=(120, 36)):
            await wait_for(lambda: ex.state.last and ex.state.last[0].ops > 0, 120, what="ops")
            m = await asyncio.to_thread(scrape, ex.url)
        assert m["gpumon_session_info"][0][0]["mode"] == "tui"
        assert {lab["pool"]: v for lab, v in m["gpumon_pool_up"]} == {"fault": 1}
    finally:
        ex.stop()


def test_linger_keeps_the_final_figures_for_the_last_scrape() -> None:
    p = _pipe(
        "pipe",
        "--pool",
        "fault,threads=2,fault-rate=50,native=off",
        "--no-restart",
        "--count",
        "1",
        "--no-record",
        "--metrics-port",
        "0",
        "--metrics-linger",
        "60",
    )
    try:
        url = _url(p)
        assert p.stdout is not None
        while json.loads(p.stdout.readline())["type"] != "session_end":
            pass
        m = scrape(url)  # the run is over; the endpoint still answers with how it ended
        assert sum(v for _, v in m["gpumon_crashes_total"]) == 1
        assert {lab["pool"]: v for lab, v in m["gpumon_pool_up"]} == {"fault": 0}
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    assert p.returncode == 130  # interrupted while lingering: the session had already ended
