"""How gpumon's own cost grows with scale: threads, pools, hours of log, a 200 MB export.

    python benchmarks/scale.py --json out.json                   # every part
    python benchmarks/scale.py --only monitor,tui --seconds 5    # some parts

Parts (each prints one line per measurement to stderr and adds a key to the JSON):
  monitor  the headless monitor (open_session: supervisor, recorder, host sampler) with P real
           `fault` pools of N threads, paused so only gpumon works: its CPU (% of one core) and
           RSS over a window, against N = 1..256 threads (1 pool) and P = 1..16 pools (8 threads).
  tui      the same with the Textual app (make_app + run_test, headless driver) hosting the
           session, as `gpumon` does, plus 8 pools x 32 threads: CPU, RSS, first frame, and
           sample-to-screen latency (the sample's arrival in `deliver` to the end of the refresh
           tick that drew it). benchmarks/tui_cost.py measures a real terminal.
  ingest   benchmarks/ingest.py while recording (messages/s, RSS at 10/50/100 %).
  log      log bytes per hour of a recorded session (2 x 16 and 8 x 32 threads), by feeding a
           synthetic hour of 10 Hz samples through the real Recorder on a virtual clock.
  seek     load that 1-hour 8 x 32 log and seek the replay to 25/50/100 % (first and again).
  export   a ~200 MB log from the same recorder (hours of 8 x 32), then `gpumon export` to md,
           csv and json in a child process: wall time and peak RSS; then the loader and the md
           export under tracemalloc in a child: where the memory goes.

Paused pools still send their 10 Hz samples (per-thread op counts, state, memory figures) through
the whole path; only their latency histograms are empty. What the workers themselves cost is
benchmarks/overhead_matrix.py's subject, not this one's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from child_env import with_gpumon  # benchmarks/ is the script's own folder on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpumon import events as ev  # noqa: E402
from gpumon.control import Pause, SetThreads  # noqa: E402
from gpumon.spec import PoolConfig, parse_pool  # noqa: E402

PARTS = ("monitor", "tui", "ingest", "log", "seek", "export")
THREAD_STEPS = (1, 16, 64, 256)
POOL_STEPS = (1, 4, 16)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fault_pools(pools: int) -> list[PoolConfig]:
    # Never armed: a fault at 256 threads, and the pools grow only while paused (no op runs).
    return [
        parse_pool(f"fault,name=p{i},threads=1,fault-at-threads=256,native=off")
        for i in range(pools)
    ]


def shapes(text: str) -> list[tuple[int, int]]:
    """`POOLSxTHREADS,...`, or the default ramp: 1 pool of 1..256 threads, 1..16 pools of 8
    threads, and the brief's 8 x 32."""
    if text:
        return [(int(a), int(b)) for a, b in (x.split("x") for x in text.split(","))]
    out = [(1, n) for n in THREAD_STEPS] + [(p, 8) for p in POOL_STEPS if p != 1]
    return [*out, (8, 32)]


class Window:
    """This process's CPU and RSS over a stretch of wall time."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.t0, self.c0 = time.monotonic(), self._cpu()

    def _cpu(self) -> float:
        c = self.me.cpu_times()
        return c.user + c.system

    def result(self) -> dict[str, float]:
        dt = time.monotonic() - self.t0
        return {
            "cpu_percent_of_one_core": round((self._cpu() - self.c0) / dt * 100, 2),
            "rss_mib": round(self.me.memory_info().rss / 2**20, 1),
        }


async def _settle(
    command: Any, pools: list[PoolConfig], threads: int, ready: Any, timeout: float = 120
) -> None:
    """Wait for every pool's worker, pause it, then grow it to `threads` (threads start and
    wait: nothing runs ops)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit("pools did not start")
        await asyncio.sleep(0.05)
    for p in pools:
        for cmd in (Pause(), SetThreads(threads=threads)):
            r = await command(p.name, cmd)
            if not r.ok:
                raise SystemExit(f"{p.name}: {cmd}: {r.detail}")


async def monitor_one(pools: int, threads: int, seconds: float, tmp: Path) -> dict[str, Any]:
    from gpumon.live_session import open_session

    cfgs = fault_pools(pools)
    seen: set[str] = set()
    samples = [0]

    def listen(e: ev.Event) -> None:
        if isinstance(e, ev.PoolReady):
            seen.add(e.pool)
        elif isinstance(e, ev.Sample):
            samples[0] += 1

    async with open_session(
        cfgs, mode="benchmark", argv=sys.argv, session_dir=tmp, listeners=[listen]
    ) as s:
        await _settle(s.supervisor.command, cfgs, threads, lambda: len(seen) == pools)
        await asyncio.sleep(1.0)
        w, n0 = Window(), samples[0]
        await asyncio.sleep(seconds)
        r = w.result()
        r["samples_per_s"] = round((samples[0] - n0) / seconds, 1)
        rec = s.recorder
        r["log_bytes_per_s"] = None if rec is None else round(rec.bytes / (seconds + 1), 0)
    return {"pools": pools, "threads": threads} | r


def part_monitor(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for pools, threads in shapes(args.shapes):
        r = asyncio.run(monitor_one(pools, threads, args.seconds, tmp))
        log(f"monitor {pools:2} pools x {threads:3} threads: {r}")
        rows.append(r)
    return rows


async def tui_one(pools: int, threads: int, seconds: float, tmp: Path) -> dict[str, Any]:
    from gpumon.tui.app import make_app

    cfgs = fault_pools(pools)
    launched = time.monotonic()
    app = make_app(pools=cfgs, session_dir=tmp, record=True, argv=["gpumon", "benchmark"])
    # Sample-to-screen: stamp each sample as it enters the app, close the stamps of every pool
    # the next drawing tick repainted.
    arrived: dict[str, list[float]] = {}
    latencies: list[float] = []
    deliver, draw = app.deliver, app.draw

    def timed_deliver(e: ev.Event) -> None:
        if isinstance(e, ev.Sample):
            arrived.setdefault(e.pool, []).append(time.monotonic())
        deliver(e)

    def timed_draw() -> None:
        draw()
        now = time.monotonic()
        for stamps in arrived.values():
            latencies.extend(now - t for t in stamps)
            stamps.clear()

    app.deliver = timed_deliver  # type: ignore[method-assign]
    app.draw = timed_draw  # type: ignore[method-assign]
    async with app.run_test(size=(160, 50)):
        src = app.source

        def ready() -> bool:
            st = app.state
            return all(st.pool(c.name).ready is not None for c in cfgs)

        await _settle(src.command, cfgs, threads, ready)
        first = (app.first_frame_at or launched) - launched
        await asyncio.sleep(1.0)
        latencies.clear()
        w, f0 = Window(), app.frames
        await asyncio.sleep(seconds)
        r = w.result()
        r["frames_per_s"] = round((app.frames - f0) / seconds, 1)
        lat = sorted(latencies)
        if lat:
            r["sample_to_screen_ms"] = {
                "p50": round(lat[len(lat) // 2] * 1e3, 1),
                "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 1),
                "max": round(lat[-1] * 1e3, 1),
                "n": len(lat),
            }
        r["first_frame_s"] = round(first, 3)
        await app.action_quit()
    return {"pools": pools, "threads": threads} | r


def part_tui(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for pools, threads in shapes(args.shapes):
        r = asyncio.run(tui_one(pools, threads, args.seconds, tmp))
        log(f"tui {pools:2} pools x {threads:3} threads: {r}")
        rows.append(r)
    return rows


def part_ingest(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--messages", "200000"],
        capture_output=True,
        text=True,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"ingest while recording: {r}")
    return r


# ---- synthetic recordings -----------------------------------------------------------------


def record_synthetic(
    folder: Path, pools: int, threads: int, hours: float, stop_at_bytes: int | None = None
) -> tuple[Path, dict[str, Any]]:
    """A session of `pools` x `threads` at 10 Hz for `hours` of virtual time, written by the
    real Recorder (decimation included) from the events a real session would publish."""
    from gpumon.bus import Bus
    from gpumon.control import SetThreads as Set
    from gpumon.live_session import start_event
    from gpumon.session.recorder import Recorder

    rec = Recorder(folder)
    bus = Bus()
    bus.subscribe(rec)
    t = time.time() - hours * 3600
    bus.publish(msgspec_replace(start_event(rec.session_id, "benchmark", ["gpumon"]), t))
    names = [f"p{i}" for i in range(pools)]
    for i, name in enumerate(names):
        cfg = parse_pool(f"fault,name={name},threads={threads},native=off")
        bus.publish(ev.PoolStarting(t=t, pool=name, config=cfg))
        bus.publish(
            ev.PoolReady(
                t=t,
                pool=name,
                pid=10_000 + i,
                backend="fault",
                device="cpu",
                device_name="synthetic",
                device_reason="benchmark",
                framework="synthetic (fault backend)",
                size=64,
                dtype="float32",
                flop_per_op=0.0,
            )
        )
    steps = int(hours * 36_000)
    wall = time.perf_counter()
    k = 0
    for k in range(steps):
        t += 0.1
        for i, name in enumerate(names):
            ops = [900 + (k * 7 + j * 13 + i) % 200 for j in range(threads)]
            bus.publish(
                ev.Sample(
                    t=t,
                    pool=name,
                    interval=0.1,
                    threads=threads,
                    ops=ops,
                    flop_per_op=0.0,
                    workload="matmul",
                    policy="per-thread",
                    lat_count=sum(ops),
                    lat_p50=1.1e-4,
                    lat_p99=2.3e-4,
                    lat_max=4.1e-4,
                    lat_hist={104 + (k + b) % 3: sum(ops) // 12 for b in range(12)},
                    cpu_percent=180.0,
                    rss=300 << 20,
                )
            )
        if k % 10 == 0:
            bus.publish(ev.HostSample(t=t, cpu_percent=95.0, mem_used=8 << 30, mem_total=24 << 30))
        if k % 6000 == 0 and k:  # a user's change every 10 minutes: runs for the report
            bus.publish(
                ev.Control(t=t, pool=names[0], command=Set(threads=threads), detail="bench")
            )
        if stop_at_bytes and k % 100 == 0 and rec.bytes >= stop_at_bytes:
            break
    bus.publish(ev.SessionEnd(t=t, reason="benchmark"))
    hours_done = (k + 1) / 36_000
    return rec.path, {
        "pools": pools,
        "threads": threads,
        "virtual_hours": round(hours_done, 3),
        "log_bytes": rec.path.stat().st_size,
        "log_mib_per_hour": round(rec.path.stat().st_size / hours_done / 2**20, 2),
        "raw_samples": (k + 1) * pools,
        "recorded_s": round(time.perf_counter() - wall, 1),
    }


def msgspec_replace(e: ev.SessionStart, t: float) -> ev.SessionStart:
    import msgspec

    return msgspec.structs.replace(e, t=t)


def part_log(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for pools, threads in ((2, 16), (8, 32)):
        path, r = record_synthetic(tmp / f"log-{pools}x{threads}", pools, threads, 1.0)
        r["path"] = str(path)
        log(f"log {pools} x {threads}: {r}")
        rows.append(r)
    return rows


def _where(args: argparse.Namespace, tmp: Path, name: str) -> Path:
    """Where a synthetic log is recorded: kept under --keep-logs, else in the temp dir."""
    return (args.keep_logs or tmp) / name


def kept_log(args: argparse.Namespace, name: str) -> Path | None:
    """A log recorded by an earlier run with the same --keep-logs, so that before/after
    measurements read the same bytes (and the 200 MB one is not recorded again)."""
    if args.keep_logs is None:
        return None
    found = sorted((args.keep_logs / name).glob("*/session.jsonl"))
    return found[-1] if found else None


def part_seek(args: argparse.Namespace, tmp: Path, hour_log: Path | None) -> dict[str, Any]:
    from gpumon.session.log import load
    from gpumon.session.replay import Replay

    if hour_log is None:
        hour_log = kept_log(args, "seek")
    if hour_log is None:
        hour_log, _ = record_synthetic(_where(args, tmp, "seek"), 8, 32, 1.0)
    t0 = time.perf_counter()
    session = load(hour_log)
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    replay = Replay(session.events)
    built = time.perf_counter() - t0
    seeks = {}
    for frac in (0.25, 0.5, 1.0, 0.5):
        t0 = time.perf_counter()
        replay.seek(replay.duration * frac)
        key = f"{int(frac * 100)}%" + (" again" if f"{int(frac * 100)}%" in seeks else "")
        seeks[key] = round((time.perf_counter() - t0) * 1e3, 1)
    r = {
        "log_bytes": hour_log.stat().st_size,
        "events": len(session.events),
        "load_s": round(loaded, 2),
        "replay_build_s": round(built, 3),
        "seek_ms": seeks,
    }
    log(f"seek in a 1-hour 8 x 32 log: {r}")
    return r


EXPORT_CHILD = """
import sys, time, resource, json, subprocess
from gpumon.cli import main
t0 = time.perf_counter()
try:
    code = main(["export", sys.argv[1], "--format", sys.argv[2], "-o", sys.argv[3]])
except SystemExit as e:
    code = e.code
# ru_maxrss keeps the parent's high-water mark across fork and exec on Linux (this benchmark's
# own, after the seek part loaded a log); VmHWM is this process's own image's.
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
except OSError:
    pass
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "max_rss_mib": peak}))
"""

TRACE_CHILD = """
import sys, tracemalloc, json
tracemalloc.start(12)
from gpumon.session.log import load
from gpumon.session.export import render


def where(tb):
    return [f"{f.filename.split('/gpumon/')[-1]}:{f.lineno}" for f in tb
            if "/gpumon/" in f.filename][-4:]


s = load(sys.argv[1])
after_load = tracemalloc.take_snapshot()
cur_load, _ = tracemalloc.get_traced_memory()
text = render(s, sys.argv[2])
cur, peak = tracemalloc.get_traced_memory()
after_render = tracemalloc.take_snapshot()
print(json.dumps({
    "events": len(s.events),
    "traced_after_load_mib": round(cur_load / 2**20, 1),
    "traced_peak_mib": round(peak / 2**20, 1),
    "output_mib": round(len(text) / 2**20, 1),
    "top_after_load": [
        {"mib": round(st.size / 2**20, 1), "blocks": st.count, "where": where(st.traceback)}
        for st in after_load.statistics("traceback")[:8]
    ],
    "top_growth_in_render": [
        {"mib": round(d.size_diff / 2**20, 1), "where": where(d.traceback)}
        for d in after_render.compare_to(after_load, "traceback")[:6]
    ],
}))
"""


def part_export(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    target = args.export_mb * 2**20
    kept = kept_log(args, f"export-{args.export_mb}")
    if kept is not None:
        path, made = kept, {"log_bytes": kept.stat().st_size, "reused": str(kept)}
    else:
        folder = _where(args, tmp, f"export-{args.export_mb}")
        path, made = record_synthetic(folder, 8, 32, 48.0, stop_at_bytes=target)
    log(f"export: made a {made['log_bytes'] / 2**20:.0f} MiB log: {made}")
    env = with_gpumon(ROOT)
    runs = {}
    for fmt in ("md", "csv", "json"):
        out = tmp / f"export.{fmt}"
        p = subprocess.run(
            [sys.executable, "-c", EXPORT_CHILD, str(path), fmt, str(out)],
            capture_output=True,
            text=True,
            env=env,
        )
        r = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
        r |= {"output_mib": round(out.stat().st_size / 2**20, 1) if out.exists() else None}
        r = {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
        runs[fmt] = r
        log(f"export {fmt}: {r}")
        out.unlink(missing_ok=True)
    trace = {}
    if args.tracemalloc:
        p = subprocess.run(
            [sys.executable, "-c", TRACE_CHILD, str(path), "md"],
            capture_output=True,
            text=True,
            env=env,
        )
        trace = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
        log(f"export md under tracemalloc: {json.dumps(trace)[:2000]}")
    if args.keep_logs is None:
        path.unlink()
    return {"log": made, "runs": runs, "tracemalloc_md": trace}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated: {','.join(PARTS)}")
    p.add_argument("--seconds", type=float, default=5.0, help="measuring window per shape")
    p.add_argument("--shapes", default="", help="POOLSxTHREADS,... (default: the whole ramp)")
    p.add_argument("--export-mb", type=int, default=200)
    p.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--keep-logs",
        type=Path,
        default=None,
        metavar="DIR",
        help="seek/export: record the synthetic logs here and reuse them on the next run",
    )
    args = p.parse_args()
    parts = [x for x in args.only.split(",") if x]
    result: dict[str, Any] = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "load_avg_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="gpumon-scale-") as d:
        tmp = Path(d)
        hour_log = None
        if "monitor" in parts:
            result["monitor"] = part_monitor(args, tmp)
        if "tui" in parts:
            result["tui"] = part_tui(args, tmp)
        if "ingest" in parts:
            result["ingest"] = part_ingest(args, tmp)
        if "log" in parts:
            result["log"] = part_log(args, tmp)
            hour_log = Path(result["log"][-1]["path"])
        if "seek" in parts:
            result["seek"] = part_seek(args, tmp, hour_log)
        if "export" in parts:
            result["export"] = part_export(args, tmp)
    result["load_avg_at_end"] = os.getloadavg()[0]
    result["monitor_max_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
