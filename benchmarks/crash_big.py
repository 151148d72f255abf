"""`gpumon crash` on 100 MB inputs: wall time and peak RSS, measured on the real command.

    python benchmarks/crash_big.py                # all cases, 100 MB each
    python benchmarks/crash_big.py --mb 20 --case faulthandler

Each case writes a synthetic report into a temporary directory and runs `python -m gpumon
crash FILE` (a summary, and with --json where asked) as a child process; the peak resident set
size is the child's own (os.wait4), the wall time includes interpreter start-up (with
--repeat N: the median wall time and the largest RSS of N runs). Cases:

- faulthandler: one thread of a runaway recursion, ~3.4 M frames (the evidence issue's dump);
- gdb: `thread apply all bt` of 400 threads, ~1 M frame lines;
- ips: an .ips report whose JSON body is 100 MB (read whole up to 64 MiB, so it is partial).

Target (docs/performance.md): any 100 MB input summarised in <= 5 s and <= 300 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def write_faulthandler(path: Path, size: int) -> str:
    line = '  File "/w/r.py", line 7 in f\n'
    head = (
        "Fatal Python error: Segmentation fault\n\n"
        "Current thread 0x00007f3f58fc16c0 (most recent call first):\n"
    )
    n = (size - len(head)) // len(line)
    with path.open("w") as f:
        f.write(head)
        block = line * 10_000
        for _ in range(n // 10_000):
            f.write(block)
        f.write(line * (n % 10_000))
    return f"{n:,} frames in one thread"


def write_gdb(path: Path, size: int) -> str:
    frame = (
        "#{n:<3} 0x00007ffff7afd9c3 in _PyEval_EvalFrameDefault (tstate=<optimized out>, "
        "frame=<optimized out>, throwflag=<optimized out>) at Python/ceval.c:4769\n"
    )
    threads = 400
    per_thread = max(1, size // threads // len(frame.format(n=0)))
    with path.open("w") as f:
        f.write('Thread 1 "python" received signal SIGSEGV, Segmentation fault.\n\n')
        for t in range(threads, 0, -1):
            f.write(f'Thread {t} (Thread 0x7fff{t:08x} (LWP {1000 + t}) "worker-{t}"):\n')
            f.write("".join(frame.format(n=i) for i in range(per_thread)))
            f.write("\n")
    return f"{threads} threads x {per_thread:,} frames"


def write_ips(path: Path, size: int) -> str:
    header = {"bug_type": "309", "app_name": "python3", "os_version": "macOS 26.1 (25B78)"}
    frame = {
        "imageOffset": 123456,
        "symbol": "_PyEval_EvalFrameDefault",
        "symbolLocation": 24,
        "imageIndex": 0,
    }
    frame_json = json.dumps(frame)
    per_thread = 2000
    thread_json_size = per_thread * (len(frame_json) + 1)
    threads = max(1, size // thread_json_size)
    with path.open("w") as f:
        f.write(json.dumps(header) + "\n")
        f.write(
            '{"procName":"python3","pid":4242,"faultingThread":0,'
            '"exception":{"type":"EXC_BAD_ACCESS","signal":"SIGSEGV"},'
            '"usedImages":[{"name":"Python","base":4294967296,"size":65536}],"threads":['
        )
        body = ",".join([frame_json] * per_thread)
        for t in range(threads):
            f.write(("," if t else "") + f'{{"id":{t},"frames":[{body}]}}')
        f.write("]}\n")
    return f"{threads} threads x {per_thread:,} frames of JSON"


CASES = {"faulthandler": write_faulthandler, "gdb": write_gdb, "ips": write_ips}


def measure(args: list[str]) -> tuple[float, float, int, int]:
    """(wall seconds, peak RSS MB, exit status, stdout lines) of `python -m gpumon crash`."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpumon", "crash", *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        lines = sum(1 for _ in out)
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100, help="input size in MiB (default 100)")
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="default: all")
    ap.add_argument("--json", action="store_true", help="also measure --json (every frame)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (median shown)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sys.platform}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.case or sorted(CASES):
            path = Path(tmp) / f"big-{name}.txt"
            what = CASES[name](path, args.mb * MB)
            size = path.stat().st_size / MB
            runs = [("summary", [str(path)])]
            if args.json:
                runs.append(("--json", ["--json", str(path)]))
            for label, cmd in runs:
                results = sorted(measure(cmd) for _ in range(max(1, args.repeat)))
                wall, _, code, lines = results[len(results) // 2]
                rss = max(r[1] for r in results)
                print(
                    f"{name:13} {size:6.1f} MiB ({what}) {label:8} wall {wall:5.2f} s  "
                    f"peak RSS {rss:6.1f} MB  exit {code}  {lines:,} lines printed"
                )
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
