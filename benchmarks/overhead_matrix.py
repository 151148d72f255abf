"""gpumon's measuring cost across sizes, threads and workloads: pool vs bare loop, alternating.

    python benchmarks/overhead_matrix.py --backend torch --device cpu --json out.json
    python benchmarks/overhead_matrix.py --backend mlx --device gpu --dtype bfloat16 \
        --sizes 4096,256 --threads 1 --generate-sizes 1024 --json out.json
    python benchmarks/overhead_matrix.py --gpumon /path/to/other/checkout ...   # "before"

Two long-lived processes per backend, so a cell costs seconds, not a framework import:
  - the **bare** side, benchmarks/bare_loop.py: N threads calling the op inline and counting it;
  - the **pool** side: a real gpumon session (open_session: supervisor, 10 Hz samples, psutil,
    the host sampler, every event through the bus) with one pool, reconfigured per cell by the
    same commands the TUI sends (SetWorkload, SetThreads) and paused while the bare side runs.
Each cell runs `--pairs` pairs, the order flipping every pair (bare-pool, pool-bare, ...) so
drift and neighbours hit both sides alike. A pool run counts the ops of the samples whose whole
window lies after `--warmup`, over those windows' summed (worker-clock) intervals; a bare run
counts ops over the same warm-up and window by the wall clock. The ratio of a pair is pool/bare;
a cell reports the median ratio, its range, and each side's run-to-run spread (max/min - 1).
With `--control` a second bare process takes part as a third side, measured the same way: its
ratio to the bare loop is the noise floor of the run (two identical loops), the yardstick for
reading any pool/bare ratio of the same run.

What the paused pool and the monitor spend while the bare side runs is measured too
(`idle_cpu_percent`): it is charged to the bare side, so it bounds how much the pairing flatters
the pool. On a machine shared with other jobs wall-clock rates swing by tens of percent, so each
cell also reports ops per CPU-second (`cpu_ratio_median`: pool = worker + monitor processes,
bare = its process), which time stolen by neighbours does not move. torch pools run with
intra-op=1 on the CPU (both sides: OMP_NUM_THREADS=MKL_NUM_THREADS=1) so threads x intra-op
threads do not oversubscribe the cores and the op has one size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from child_env import with_gpumon  # benchmarks/ is the script's own folder on sys.path

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=("torch", "mlx"), default="torch")
    p.add_argument("--device", default="cpu", help="torch: cpu|cuda; mlx: cpu|gpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--sizes", default="", help="matmul sizes (default: 64,128,256,512)")
    p.add_argument("--generate-sizes", default="256", help="generate widths ('' for none)")
    p.add_argument("--threads", default="1,2,4,16")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.6)
    p.add_argument(
        "--intra-op", type=int, default=1, help="torch CPU intra-op threads (0: torch's own)"
    )
    p.add_argument(
        "--gpumon", type=Path, default=HERE.parent, help="checkout whose gpumon to measure"
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="a second bare process measured like the pool (bare/bare: the run's noise floor)",
    )
    p.add_argument("--json", type=Path)
    return p.parse_args()


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(s) for s in (args.sizes or "64,128,256,512").split(",") if s]
    gen = [int(s) for s in args.generate_sizes.split(",") if s]
    threads = [int(t) for t in args.threads.split(",")]
    work = [("matmul", s) for s in sizes] + [("generate", s) for s in gen]
    return [
        {"workload": w, "size": s, "dtype": args.dtype, "threads": t}
        for w, s in work
        for t in threads
    ]


class Bare:
    def __init__(self, args: argparse.Namespace) -> None:
        env = with_gpumon(args.gpumon)
        intra = args.intra_op if args.backend == "torch" and args.device == "cpu" else 0
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "bare_loop.py"), args.backend, args.device, str(intra)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            # A session of its own, as gpumon gives each worker: with autogroup scheduling
            # (Linux's default) a session is one scheduling group, so on a busy machine a
            # loop sharing the benchmark's session got a fraction of the CPU the pool's worker
            # got, and loaded runs measured the pool 1.5-4x "faster" than the bare loop.
            start_new_session=True,
        )
        self._read()  # ready: the framework is imported

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bare loop died (exit {self.proc.wait()})")
        return json.loads(line)

    async def run(self, cell: dict[str, Any], warmup: float, seconds: float) -> tuple[float, float]:
        """(ops per wall second, ops per CPU second of the bare process)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cell | {"warmup": warmup, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        r = await asyncio.to_thread(self._read)
        return r["ops"] / r["seconds"], r["ops"] / r["cpu_s"] if r["cpu_s"] else 0.0

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(60)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    from gpumon import events as ev
    from gpumon.control import Pause, Resume, SetThreads, SetWorkload
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool

    spec = f"{args.backend}:{args.device},name=bench,native=off,dtype={args.dtype}"
    if args.backend == "torch" and args.device == "cpu" and args.intra_op:
        spec += f",intra-op={args.intra_op}"
    samples: list[ev.Sample] = []
    seen: list[ev.Event] = []

    def listen(e: ev.Event) -> None:
        if isinstance(e, ev.Sample):
            samples.append(e)
        elif not isinstance(e, ev.HostSample):
            seen.append(e)

    t_start = time.monotonic()

    def progress(what: str) -> None:
        # Each step on stderr as it happens: an H200 run once printed nothing for 370 s, and
        # which step it was in could not be told afterwards.
        print(f"  [{time.monotonic() - t_start:6.1f} s] {what}", file=sys.stderr, flush=True)

    bare = Bare(args)
    control = Bare(args) if args.control else None
    progress("bare loop ready (framework imported)")
    me = psutil.Process()
    out: list[dict[str, Any]] = []
    async with open_session(
        [parse_pool(spec)], mode="benchmark", argv=sys.argv, record=False, listeners=[listen]
    ) as session:
        while not any(isinstance(e, (ev.PoolReady, ev.PoolFailed)) for e in seen):
            await asyncio.sleep(0.05)
        progress(
            "pool ready" if not any(isinstance(e, ev.PoolFailed) for e in seen) else "pool failed"
        )
        if any(isinstance(e, ev.PoolFailed) for e in seen):
            raise SystemExit(f"pool failed: {[e for e in seen if isinstance(e, ev.PoolFailed)]}")
        sup = session.supervisor
        worker = psutil.Process(sup.pool("bench").worker.pid)  # type: ignore[union-attr]

        async def cmd(c: Any) -> None:
            r = await sup.command("bench", c)
            if not r.ok:
                raise SystemExit(f"{c}: {r.detail}")

        split: list[tuple[float, float]] = []  # (worker, monitor) CPU % during pool runs

        def cpu_of(procs: list[Any]) -> float:
            return sum(sum(p.cpu_times()[:2]) for p in procs)

        async def pool_run(cell: dict[str, Any]) -> tuple[float, float]:
            """(ops per worker-clock second, ops per CPU second of worker + monitor)."""
            await cmd(Resume())
            start = time.time() + args.warmup
            await asyncio.sleep(args.warmup)
            c0, w0, t0 = cpu_of([me, worker]), cpu_of([worker]), time.monotonic()
            await asyncio.sleep(args.seconds)
            c1, w1, t1 = cpu_of([me, worker]), cpu_of([worker]), time.monotonic()
            split.append(((w1 - w0) / (t1 - t0) * 100, (c1 - c0 - w1 + w0) / (t1 - t0) * 100))
            await asyncio.sleep(0.25)  # the window's last sample
            await cmd(Pause())
            mine = [s for s in samples if s.t - s.interval >= start and s.state == "running"]
            mine = mine[: max(1, round(args.seconds / 0.1))]
            ops = sum(s.total_ops for s in mine)
            secs = sum(s.interval for s in mine)
            rate = ops / secs if secs else 0.0
            return rate, rate * args.seconds / (c1 - c0) if c1 > c0 else 0.0

        await cmd(Pause())
        for cell in cells(args):
            await cmd(
                SetWorkload(workload=cell["workload"], size=cell["size"], dtype=cell["dtype"])
            )
            await cmd(SetThreads(threads=cell["threads"]))
            pairs, cpu_pairs, idle = [], [], []
            split.clear()
            progress(f"{cell['workload']} {cell['size']} x{cell['threads']}: pairs begin")
            sides = ["bare", "pool"] + (["control"] if control else [])
            for k in range(args.pairs):
                # Every side takes every position in turn (bare-pool, pool-bare; with a
                # control: bare-pool-control, pool-control-bare, control-bare-pool, ...).
                order = sides[k % len(sides) :] + sides[: k % len(sides)]
                got: dict[str, float] = {}
                per_cpu: dict[str, float] = {}
                for side in order:
                    if side == "pool":
                        got[side], per_cpu[side] = await pool_run(cell)
                        continue
                    proc = bare if side == "bare" else control
                    assert proc is not None
                    c0, t0 = cpu_of([me, worker]), time.monotonic()
                    got[side], per_cpu[side] = await proc.run(cell, args.warmup, args.seconds)
                    if side == "bare":
                        idle.append((cpu_of([me, worker]) - c0) / (time.monotonic() - t0) * 100)
                pairs.append(got)
                cpu_pairs.append(per_cpu)
            ratios = [p["pool"] / p["bare"] for p in pairs if p["bare"]]
            cpu_ratios = [p["pool"] / p["bare"] for p in cpu_pairs if p["bare"]]
            row = cell | {
                "bare_ops_per_s": [round(p["bare"], 2) for p in pairs],
                "pool_ops_per_s": [round(p["pool"], 2) for p in pairs],
                "ratios": [round(r, 4) for r in ratios],
                "ratio_median": round(statistics.median(ratios), 4),
                "bare_spread": _spread([p["bare"] for p in pairs]),
                "pool_spread": _spread([p["pool"] for p in pairs]),
                "idle_cpu_percent": round(statistics.median(idle), 2),
                # Ops per CPU-second, pool (worker + monitor processes) over bare: what gpumon
                # costs in CPU, blind to time stolen by other jobs (not to GIL waits).
                "cpu_ratios": [round(r, 4) for r in cpu_ratios],
                "cpu_ratio_median": round(statistics.median(cpu_ratios), 4),
                "pool_worker_cpu_percent": round(statistics.median(w for w, _ in split), 1),
                "pool_monitor_cpu_percent": round(statistics.median(m for _, m in split), 1),
            }
            if control:
                # The same loop in a second process, measured like the pool: how far two
                # identical loops land apart in this run, the floor under any pool/bare ratio.
                cr = [p["control"] / p["bare"] for p in pairs if p["bare"]]
                row |= {
                    "control_ops_per_s": [round(p["control"], 2) for p in pairs],
                    "control_ratios": [round(r, 4) for r in cr],
                    "control_ratio_median": round(statistics.median(cr), 4),
                    "control_spread": _spread([p["control"] for p in pairs]),
                }
            out.append(row)
            print(_line(row), file=sys.stderr, flush=True)
            if args.json:  # the cells so far, in case the run is cut short (a device's limit)
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"rows": out, "partial": True}, indent=1))
    bare.close()
    if control:
        control.close()
    (ready,) = [e for e in seen if isinstance(e, ev.PoolReady)]
    return {
        "rows": out,
        "pool": {
            "framework": ready.framework,
            "device": ready.device_name,
            "versions": ready.versions,
        },
    }


def _spread(v: list[float]) -> float:
    return round(max(v) / min(v) - 1, 4) if v and min(v) > 0 else 0.0


def _line(r: dict[str, Any]) -> str:
    bare, pool = statistics.median(r["bare_ops_per_s"]), statistics.median(r["pool_ops_per_s"])
    lo, hi = min(r["ratios"]), max(r["ratios"])
    return (
        f"{r['workload']:8} {r['size']:5} x{r['threads']:<3} ratio {r['ratio_median']:.4f} "
        f"[{lo:.3f}-{hi:.3f}]  bare {bare:10.1f} (spread {r['bare_spread']:.1%})  "
        f"pool {pool:10.1f} (spread {r['pool_spread']:.1%})  idle {r['idle_cpu_percent']:.1f}%  "
        f"per-CPU ratio {r['cpu_ratio_median']:.4f} (worker {r['pool_worker_cpu_percent']}%, "
        f"monitor {r['pool_monitor_cpu_percent']}%)"
        + (
            f"  control/bare {r['control_ratio_median']:.4f} "
            f"[{min(r['control_ratios']):.3f}-{max(r['control_ratios']):.3f}]"
            if "control_ratios" in r
            else ""
        )
    )


def main() -> int:
    args = parse_args()
    if args.backend == "torch" and args.device == "cpu" and args.intra_op:
        # Both sides, and gpumon before and after its own fix: torch.set_num_threads on the
        # main thread does not bind worker threads' OpenMP teams (docs/performance.md).
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.intra_op)
    sys.path.insert(0, str(args.gpumon))
    # Prepended, not replaced: the pool's worker inherits this environment, and on a host whose
    # packages come from PYTHONPATH (the offline H200 unpacks msgspec and MLX into one) a
    # replaced PYTHONPATH left the worker unable to import msgspec.
    os.environ["PYTHONPATH"] = with_gpumon(args.gpumon)["PYTHONPATH"]
    import gpumon

    t0, load0 = time.time(), os.getloadavg()
    result = asyncio.run(measure(args))
    result |= {
        "config": {k: str(v) for k, v in vars(args).items()},
        "gpumon": str(Path(gpumon.__file__).parent),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        # Other jobs on the machine show up here: the 1-minute load at the start and the end.
        "load_avg_at_start_end": [load0[0], os.getloadavg()[0]],
        "wall_s": round(time.time() - t0, 1),
    }
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
