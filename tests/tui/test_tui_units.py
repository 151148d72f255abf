"""Small pure parts of the monitor: units, charts, the key table and the docs that list it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gpumon import events as ev
from gpumon import fmt
from gpumon.control import SetThreads
from gpumon.tui import keys
from gpumon.tui.app import LiveScreen, ReplayScreen
from gpumon.tui.widgets import chart
from gpumon.tui.widgets.event_log import describe

from .helpers import DEMO_LOG, ROOT


def test_units_are_always_written() -> None:
    assert fmt.si(12345, "ops/s") == "12.3 kops/s"
    assert fmt.si(5.7e14, "FLOP/s") == "570 TFLOP/s"
    assert fmt.si(0.5, "ops/s") == "0.50 ops/s"
    assert fmt.nbytes(3 * 2**30 // 2) == "1.50 GiB"
    assert fmt.nbytes(512) == "512 B"
    assert fmt.seconds(850e-6) == "850 µs" and fmt.seconds(0.0012) == "1.20 ms"
    assert fmt.uptime(4.9) == "4 s" and fmt.uptime(125) == "2 m 05 s"
    assert fmt.clock(187.4) == "03:07.4"
    assert fmt.plural(1, "crash") == "1 crash" and fmt.plural(2, "crash") == "2 crashes"


def test_chart_slots_leave_gaps_where_the_pool_was_down() -> None:
    # 1 s slots; samples in slots 95, 96 and 99; slot 100 is still filling and left out
    pts = [(95.2, 10.0), (95.7, 20.0), (96.5, 30.0), (99.1, 40.0), (100.3, 99.0)]
    assert chart.slots(pts, 100, 6, 1.0) == [None, 15.0, 30.0, None, None, 40.0]
    rows = chart.bars([None, 4.0, 8.0], 2, 8.0)
    assert [r.plain for r in rows] == ["  █", " ██"]
    assert chart.sparkline([0.0, 1.0, 0.01], 4, 1.0).plain == " " + " █▁"


def test_every_bound_action_exists_where_it_is_sent() -> None:
    from gpumon.tui.app import GpumonApp

    for screen, mode in ((LiveScreen, keys.LIVE), (ReplayScreen, keys.REPLAY)):
        for b in [*keys.bindings(mode), *keys.app_bindings()]:
            action = b.action.split("(")[0]
            target = GpumonApp if action.startswith("app.") or b in keys.app_bindings() else screen
            name = action.removeprefix("app.")
            assert hasattr(target, f"action_{name}"), (mode, b.action)


def test_docs_list_every_key() -> None:
    doc = (ROOT / "docs" / "tui.md").read_text()
    for k in keys.KEYS:
        for shown in k.shown.replace(" / ", " ").replace(" … ", " ").split():
            assert f"`{shown}`" in doc, shown


def test_log_lines_say_what_happened() -> None:
    crash = ev.Crash(
        crash_id="p-1-9",
        pool="p",
        pid=9,
        signal="SIGSEGV",
        threads=2,
        uptime=4.4,
        ops_total=1234,
        policy="shared",
        workload="matmul",
        backend="mlx",
        device="gpu",
    )
    kind, text = describe(crash)
    assert kind == "crash"
    assert "CRASH SIGSEGV" in text.plain and "2 threads" in text.plain and "1,234 ops" in text.plain
    ctl = ev.Control(pool="p", command=SetThreads(threads=4), ok=False, detail="worker is gone")
    assert describe(ctl)[1].plain == "threads 4: worker is gone"
    assert describe(ev.Sample(pool="p", interval=0.1, threads=1, ops=[1], flop_per_op=0)) is None


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def test_user_errors_are_one_line_and_a_status(tmp_path: Path) -> None:
    bad = run_cli("--pool", "cuda-magic")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "unknown backend" in bad.stderr
    flag = run_cli("live", "--stall-after", "0")
    assert flag.returncode == 2 and len(flag.stderr.strip().splitlines()) == 1
    missing = run_cli("replay", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    # no terminal (captured output): say so instead of drawing into a pipe
    piped = run_cli("replay", str(DEMO_LOG))
    assert piped.returncode == 1 and "terminal" in piped.stderr
