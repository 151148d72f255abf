"""Worker death -> Crash event: how long does the monitor take to know?

    python benchmarks/crash_latency.py --crashes 20 --native off
    python benchmarks/crash_latency.py --crashes 20 --native gdb

The synthetic fault backend prints the wall-clock time just before it faults (to the worker's
stderr log); the Crash event carries the time the supervisor emitted it. Same host clock, so
the difference is the detection latency: signal delivery, faulthandler's dump, process exit,
the asyncio child watcher, and the event fan-out. With gdb the crash is announced by the
debugger as soon as it sees the signal, before it collects every thread's stack.
Target (docs/performance.md): <= 100 ms on the faulthandler path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INJECTED = re.compile(r"injecting \w+ on \S+ at t=([0-9.]+)")


async def measure(args: argparse.Namespace) -> list[float]:
    from gpumon import events as ev
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool
    from gpumon.supervisor.backoff import RestartPolicy

    seen: list[ev.Event] = []
    spec = f"fault,threads=2,fault={args.fault},fault-rate=20,native={args.native}"
    async with open_session(
        [parse_pool(spec)],
        mode="benchmark",
        argv=sys.argv,
        record=False,
        listeners=[seen.append],
        restart=RestartPolicy(
            enabled=True,
            base_delay=0.05,
            max_delay=0.05,
            max_restarts=args.crashes,
            loop_crashes=None,
        ),
    ):
        while sum(isinstance(e, ev.Crash) for e in seen) < args.crashes:
            await asyncio.sleep(0.05)
    out = []
    for c in (e for e in seen if isinstance(e, ev.Crash)):
        log = (Path(c.artifacts_dir) / "stderr.log").read_text(errors="replace")
        m = INJECTED.search(log)
        if m:
            out.append(c.t - float(m.group(1)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crashes", type=int, default=20)
    p.add_argument("--native", choices=("off", "gdb"), default="off")
    p.add_argument("--fault", choices=("segv", "abort"), default="segv")
    args = p.parse_args()
    lat = sorted(asyncio.run(measure(args)))
    ms = [x * 1e3 for x in lat]
    print(
        json.dumps(
            {
                "config": vars(args),
                "n": len(ms),
                "ms": {
                    "min": round(ms[0], 1),
                    "median": round(statistics.median(ms), 1),
                    "p90": round(ms[int(0.9 * (len(ms) - 1))], 1),
                    "max": round(ms[-1], 1),
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
