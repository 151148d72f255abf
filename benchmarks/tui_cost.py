"""What the monitor itself costs: CPU and RSS of the `gpumon` TUI process, and its first frame.

    python3 benchmarks/tui_cost.py [--seconds 30] [--threads 16] [--size 120x36]

Runs the real binary in a real terminal (a detached tmux session of the given size) with two
pools of N threads each — a `fault` pool whose fault is never armed and a `torch:cpu` pool —
waits until both panels show ops/s, then measures the gpumon process (not its workers) over
the window with psutil: CPU time / wall time, in % of one core, and RSS at the end. "First
frame" is the time from launching the command until tmux shows the title bar. The numbers go
to stdout as a small table (and as JSON with --json) for docs/performance.md.

Not a test: it asserts nothing about speed. Needs tmux.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SESSION = f"gpumon-bench-{os.getpid()}"


def tmux(*args: str, check: bool = True) -> str:
    r = subprocess.run(["tmux", *args], capture_output=True, text=True, check=check)
    return r.stdout


def pane() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION, check=False)


def wait_pane(pred, timeout: float, step: float = 0.02) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred(pane()):
            return time.monotonic()
        time.sleep(step)
    raise SystemExit(f"timed out after {timeout:.0f} s; the screen was:\n{pane()}")


def gpumon_process(shell_pid: int) -> psutil.Process:
    """The python process running `-m gpumon` under tmux's shell."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for p in psutil.Process(shell_pid).children(recursive=True):
            try:
                cmd = p.cmdline()
            except psutil.Error:
                continue
            if "gpumon" in cmd and "gpumon.worker" not in cmd:
                return p
        time.sleep(0.05)
    raise SystemExit("could not find the gpumon process")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring window (default 30)")
    ap.add_argument("--threads", type=int, default=16, help="threads per pool (default 16)")
    ap.add_argument("--size", default="120x36", help="terminal size (default 120x36)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tui_cost: tmux is not installed", file=sys.stderr)
        return 1
    w, h = (int(x) for x in args.size.split("x"))
    n = args.threads
    pools = [
        f"fault,threads={n},fault-at-threads=256,native=off",
        f"torch:cpu,threads={n},size=64,native=off",
    ]
    with tempfile.TemporaryDirectory(prefix="gpumon-bench-") as tmp:
        cmd = [sys.executable, "-m", "gpumon", "--session-dir", tmp]
        for p in pools:
            cmd += ["--pool", p]
        # COLUMNS/LINES in our environment would override the tmux window's size.
        shell = f"cd {ROOT} && exec env -u COLUMNS -u LINES {' '.join(cmd)}"
        launched = time.monotonic()
        tmux("new-session", "-d", "-s", SESSION, "-x", str(w), "-y", str(h), shell)
        try:
            first = wait_pane(lambda s: "gpumon" in s and "live" in s, 30) - launched
            shell_pid = int(tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip())
            proc = psutil.Process(shell_pid)
            if "gpumon" not in " ".join(proc.cmdline()):
                proc = gpumon_process(shell_pid)
            ready = wait_pane(lambda s: len(re.findall(r"\d k?ops/s", s)) >= 2, 180) - launched
            time.sleep(3.0)  # let both pools reach all their threads
            t0, c0 = time.monotonic(), proc.cpu_times()
            rss_peak = 0
            while time.monotonic() - t0 < args.seconds:
                time.sleep(0.5)
                rss_peak = max(rss_peak, proc.memory_info().rss)
            t1, c1 = time.monotonic(), proc.cpu_times()
            cpu = (c1.user - c0.user + c1.system - c0.system) / (t1 - t0) * 100
            rss = proc.memory_info().rss
            workers = [c for c in proc.children(recursive=True)]
            tmux("send-keys", "-t", SESSION, "q")
            proc.wait(30)
        finally:
            tmux("kill-session", "-t", SESSION, check=False)
    result = {
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "terminal": args.size,
        "pools": pools,
        "window_s": round(args.seconds, 1),
        "tui_cpu_percent_of_one_core": round(cpu, 2),
        "tui_rss_mib": round(rss / 2**20, 1),
        "tui_rss_peak_mib": round(rss_peak / 2**20, 1),
        "first_frame_s": round(first, 3),
        "both_pools_measuring_s": round(ready, 2),
        "worker_processes_during_run": len(workers),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:<30} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
