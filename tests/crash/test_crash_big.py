"""Huge inputs: line formats stream in bounded memory, summaries cap frames per thread ("...
N more frames"), --full and --json keep them all. (benchmarks/crash_big.py measures the
100 MB case; these tests use inputs just past the streaming threshold.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from gpumon.crash import parse
from gpumon.crash.render import FRAME_CAP, render_report

ROOT = Path(__file__).resolve().parents[2]


def recursion_dump(frames: int) -> str:
    """A faulthandler dump of a runaway recursion (one thread, `frames` frames)."""
    lines = [
        "Fatal Python error: Segmentation fault",
        "",
        "Current thread 0x00007f3f58fc16c0 (most recent call first):",
    ]
    lines += [f'  File "/w/deep.py", line {i % 997 + 1} in recurse' for i in range(frames)]
    return "\n".join(lines) + "\n"


def test_a_large_dump_streams_with_a_frame_cap(tmp_path: Path) -> None:
    n = 220_000  # ~9 MB: past parse.STREAM_ABOVE
    path = tmp_path / "deep.txt"
    path.write_text(recursion_dump(n))
    assert path.stat().st_size > parse.STREAM_ABOVE
    capped = parse.parse_file(path, frame_cap=500)
    (thread,) = capped.threads
    assert len(thread.frames) == 500 and thread.frames_omitted == n - 500
    assert capped.warnings == [] and capped.signal == "SIGSEGV"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_report(capped))
    out = console.file.getvalue()
    # The summary folds nothing here (Python frames), so it shows FRAME_CAP of them.
    assert f"... {n - FRAME_CAP} more frames (all of them with --full)" in out
    assert len(out.splitlines()) < FRAME_CAP + 20
    whole = parse.parse_file(path)
    assert len(whole.threads[0].frames) == n and whole.threads[0].frames_omitted == 0


def test_the_command_caps_the_summary_but_not_full_or_json(tmp_path: Path) -> None:
    n = 5_000
    path = tmp_path / "deep.txt"
    path.write_text(recursion_dump(n))

    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "gpumon", "crash", *args, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    summary = run()
    assert len(summary.splitlines()) < FRAME_CAP + 20
    assert "more frames (all of them with --full)" in summary
    assert run("--full").count(" recurse  /w/deep.py:") == n
    data = json.loads(run("--json"))
    assert len(data["threads"][0]["frames"]) == n


def test_streaming_a_gdb_capture_from_a_pipe() -> None:
    text = ROOT / "tests/fixtures/crash-reports/gpumon__mlx0311-cpu-2threads.gdb-all.txt"
    streamed = parse.parse_stream(io.BytesIO(text.read_bytes().replace(b"\n", b"\r\n")))
    whole = parse.parse_file(text)
    assert streamed.threads == whole.threads and streamed.signal == whole.signal


def test_a_gdb_thread_longer_than_the_cap_stays_one_thread() -> None:
    frame = "#{n:<3} 0x00007ffff7afd9c3 in _PyEval_EvalFrameDefault () at Python/ceval.c:4769\n"
    text = 'Thread 2 "w" received signal SIGSEGV, Segmentation fault.\n\n'
    for t in (2, 1):
        text += f'Thread {t} (Thread 0x7fff0000000{t} (LWP 10{t}) "w{t}"):\n'
        text += "".join(frame.format(n=i) for i in range(1200)) + "\n"
    capped = parse.parse_report(text, frame_cap=500)
    assert capped.warnings == []
    assert [(t.index, len(t.frames), t.frames_omitted) for t in capped.threads] == [
        (1, 500, 700),
        (2, 500, 700),
    ]
    assert capped.crashed_thread_index == 2
