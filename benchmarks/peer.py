"""gpumon's monitor next to a peer's sampling loop at the same interval: "cheap" as a ratio.

    python benchmarks/peer.py --peer-python /tmp/peer-venv/bin/python --json out.json

Each probe runs alone in its own process for `--seconds` and reports that process's CPU time
per wall second (% of one core) and its RSS; probes run one after another, `--repeats` times
in turn (a, b, c, a, b, c, ...) so a busy neighbour hits them alike.

  gpumon-host       gpumon.host.HostSampler.sample() every interval: system CPU and memory, the
                    monitor's own CPU/RSS, and NVML memory/utilisation per GPU where present.
  nvitop-host       nvitop's ResourceMetricCollector (its documented API for sampling in a
                    background thread) at the same interval, on every GPU NVML shows (none
                    without an NVIDIA driver: then host metrics only, as gpumon-host).
  gpumon-monitor-K  the whole headless monitor (open_session with K paused `fault` pools): 10 Hz
                    samples from every worker decoded and folded, psutil on every worker each
                    sample, the recorder, the host sampler at its own 1 s.
  nvitop-procs-K    the nvitop collector plus one nvitop HostProcess snapshot (CPU%, RSS,
                    command line ...) of each of the same K worker processes per interval: what
                    nvitop does per process it shows.
The peer runs from its own environment (`--peer-python`, a venv with `pip install nvitop`) so
nothing of it enters gpumon's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from child_env import with_gpumon  # benchmarks/ is the script's own folder on sys.path

ROOT = Path(__file__).resolve().parents[1]

# Every probe: warm up 1 s, then measure its own process over `seconds`.
MEASURE = textwrap.dedent("""
    import json, resource, time
    def measure(step, interval, seconds):
        step()
        end_warm = time.monotonic() + 1.0
        while time.monotonic() < end_warm:
            step(); time.sleep(interval)
        t0, c0 = time.monotonic(), time.process_time()
        n, nxt = 0, t0
        while time.monotonic() - t0 < seconds:
            step(); n += 1
            nxt += interval
            time.sleep(max(0.0, nxt - time.monotonic()))
        dt = time.monotonic() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"cpu_percent": (time.process_time() - c0) / dt * 100,
                          "samples_per_s": n / dt, "max_rss_mib": rss}))
""")

GPUMON_HOST = MEASURE + textwrap.dedent("""
    import sys
    from gpumon.host import HostSampler
    s = HostSampler()
    measure(s.sample, float(sys.argv[1]), float(sys.argv[2]))
""")

NVITOP_HOST = MEASURE + textwrap.dedent("""
    import sys, threading
    from nvitop import Device, HostProcess, ResourceMetricCollector
    try:
        devices = Device.all()
    except Exception:
        devices = []  # no NVIDIA driver: host metrics only
    interval, seconds = float(sys.argv[1]), float(sys.argv[2])
    pids = [int(p) for p in sys.argv[3].split(",") if p]
    procs = [HostProcess(p) for p in pids]
    c = ResourceMetricCollector(devices=devices, interval=interval)
    c.start(tag="bench")
    # The collector samples in its own thread; the loop here adds the per-process snapshots
    # (and nothing when there are none) at the same interval.
    def step():
        for p in procs:
            p.as_snapshot()
    measure(step, interval, seconds)
    c.stop()
""")

GPUMON_MONITOR = textwrap.dedent("""
    import asyncio, json, resource, sys, time
    from gpumon import events as ev
    from gpumon.control import Pause, SetThreads
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool
    K, seconds, tmp = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]

    async def main():
        cfgs = [parse_pool(f"fault,name=p{i},threads=1,fault-at-threads=256,native=off")
                for i in range(K)]
        ready = set()
        def listen(e):
            if isinstance(e, ev.PoolReady):
                ready.add(e.pool)
        async with open_session(cfgs, mode="benchmark", argv=sys.argv, session_dir=tmp,
                                listeners=[listen]) as s:
            while len(ready) < K:
                await asyncio.sleep(0.05)
            for c in cfgs:
                await s.supervisor.command(c.name, Pause())
                await s.supervisor.command(c.name, SetThreads(threads=8))
            pids = [s.supervisor.pool(c.name).worker.pid for c in cfgs]
            print(json.dumps({"pids": pids}), flush=True)
            await asyncio.sleep(1.0)
            t0, c0 = time.monotonic(), time.process_time()
            await asyncio.sleep(seconds)
            dt = time.monotonic() - t0
            cpu = (time.process_time() - c0) / dt * 100
            # Hold the workers for the peer's turn: it watches these same processes.
            print(json.dumps({"cpu_percent": cpu, "samples_per_s": 10.0 * K,
                              "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                              / 1024}), flush=True)
            sys.stdin.readline()
    asyncio.run(main())
""")


def run_probe(python: str, code: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    p = subprocess.run(
        [python, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600
    )
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1:] or [f"exit {p.returncode}"]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer-python", default="", help="python of a venv with nvitop installed")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pools", type=int, default=4, help="K worker processes to watch")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    env = with_gpumon(ROOT)
    peer_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ivl, secs = str(args.interval), str(args.seconds)
    runs: dict[str, list[dict[str, Any]]] = {}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpumon-peer-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    k = args.pools
    for _ in range(args.repeats):
        runs.setdefault("gpumon-host", []).append(
            run_probe(sys.executable, GPUMON_HOST, [ivl, secs], env)
        )
        if args.peer_python:
            runs.setdefault("nvitop-host", []).append(
                run_probe(args.peer_python, NVITOP_HOST, [ivl, secs, ""], peer_env)
            )
        # The monitor with K pools, then the peer watching the same K workers.
        mon = subprocess.Popen(
            [sys.executable, "-c", GPUMON_MONITOR, str(k), secs, str(tmp)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert mon.stdout is not None and mon.stdin is not None
        pids = json.loads(mon.stdout.readline())["pids"]
        runs.setdefault(f"gpumon-monitor-{k}", []).append(json.loads(mon.stdout.readline()))
        if args.peer_python:
            pid_arg = ",".join(str(p) for p in pids)
            runs.setdefault(f"nvitop-procs-{k}", []).append(
                run_probe(args.peer_python, NVITOP_HOST, [ivl, secs, pid_arg], peer_env)
            )
        mon.stdin.write("\n")
        mon.stdin.flush()
        mon.wait(60)
        time.sleep(0.5)
    summary = {}
    for name, rs in runs.items():
        ok = [r for r in rs if "cpu_percent" in r]
        if not ok:
            summary[name] = {"error": rs[0].get("error")}
            continue
        cpu = [r["cpu_percent"] for r in ok]
        summary[name] = {
            "cpu_percent_median": round(statistics.median(cpu), 2),
            "cpu_percent_range": [round(min(cpu), 2), round(max(cpu), 2)],
            "max_rss_mib": round(max(r["max_rss_mib"] for r in ok), 1),
        }
    peer_version = ""
    if args.peer_python:
        peer_version = subprocess.run(
            [args.peer_python, "-c", "import nvitop; print(nvitop.__version__)"],
            capture_output=True,
            text=True,
            env=peer_env,
        ).stdout.strip()
    result = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "interval_s": args.interval,
        "seconds": args.seconds,
        "nvitop": peer_version,
        "summary": summary,
        "runs": runs,
    }
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
