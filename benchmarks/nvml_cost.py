"""What gpumon's NVML polling costs a CUDA loop running beside it.

    python benchmarks/nvml_cost.py --device cuda --dtype bfloat16 --size 4096 --json out.json

The monitor asks NVML two things while pools run: the per-process memory table
(`Nvml.process_memory`, the supervisor's GpuMemory, at most once a second) and the per-GPU
reading (`Nvml.sample`: memory, utilisation, power, temperature; the host sampler's). NVML calls
go into the driver, and a driver call can hold a lock a CUDA launch or synchronise needs, so
"the monitor is another process" does not by itself make it free for the GPU work.

This process runs the pool's own op in a bare loop (benchmarks/op_parts.py's `bare` level: no
gpumon machinery) while a neighbour process polls NVML in one of these modes:

  quiet        the neighbour idles (the baseline)
  procs-1hz    process_memory once a second, as GpuMemory does while samples arrive
  procs-10hz   process_memory ten times a second (ten times gpumon's rate)
  sample-10hz  sample() ten times a second

Each round runs every mode once in a shuffled order; a mode's figure is its ops/s over the quiet
mode's in the same round. The neighbour also reports how long its NVML calls took (wall time
per call, its median and maximum), the length of any lock a launch would wait behind.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from child_env import with_gpumon  # noqa: E402
from op_cost import add_op_arguments, make_backend  # noqa: E402  (puts gpumon on sys.path)
from op_parts import ratio_figures, run_level, shuffled_rounds  # noqa: E402

MODES = ("quiet", "procs-1hz", "procs-10hz", "sample-10hz")

# The neighbour: reads one mode per stdin line, polls NVML at that mode's rate until the next
# line, and answers "stats" with the call times it saw per mode (seconds).
NEIGHBOUR = textwrap.dedent(
    """
    import json, select, sys, time
    from gpumon.nvml import open_nvml
    nv, why = open_nvml()
    if nv is None:
        print(json.dumps({"error": why}), flush=True)
        raise SystemExit(1)
    print(json.dumps({"ready": True}), flush=True)
    calls = {"procs": nv.process_memory, "sample": nv.sample}
    times = {}
    mode, call, period, due = "quiet", None, 1.0, time.monotonic()
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], max(0.0, due - time.monotonic()))
        if ready:
            line = sys.stdin.readline().strip()
            if not line or line == "exit":
                break
            if line == "stats":
                print(json.dumps(times), flush=True)
                continue
            mode = line
            call = None if mode == "quiet" else calls[mode.split("-")[0]]
            period = 1.0 / float(mode.split("-")[1][:-2]) if call else 1.0
            due = time.monotonic()  # the first call at once, then one per period
            print(json.dumps({"mode": mode}), flush=True)
            continue
        due += period
        if call is not None:
            t0 = time.perf_counter()
            call()
            times.setdefault(mode, []).append(time.perf_counter() - t0)
    """
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_op_arguments(p, "torch")
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--seconds", type=float, default=2.0, help="per mode per round")
    p.add_argument("--warmup", type=float, default=0.3)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if "quiet" not in modes or any(m not in MODES for m in modes):
        raise SystemExit(f"--modes: a comma list of {', '.join(MODES)} that includes quiet")
    neighbour = subprocess.Popen(
        [sys.executable, "-c", NEIGHBOUR],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=with_gpumon(HERE.parent),
    )
    assert neighbour.stdin is not None and neighbour.stdout is not None
    first = json.loads(neighbour.stdout.readline() or '{"error": "neighbour died"}')
    if "error" in first:
        raise SystemExit(f"no NVML here: {first['error']}")

    def tell(line: str) -> str:
        assert neighbour.stdin is not None and neighbour.stdout is not None
        neighbour.stdin.write(line + "\n")
        neighbour.stdin.flush()
        return neighbour.stdout.readline()

    backend, wl = make_backend(args)

    def measure(mode: str) -> float:
        tell(mode)
        return run_level("bare", backend, wl, args.warmup, args.seconds)

    rates = shuffled_rounds(modes, args.rounds, measure)
    times: dict[str, list[float]] = json.loads(tell("stats"))
    tell("exit")
    neighbour.wait(timeout=10)

    rows = []
    for m in modes:
        ts = times.get(m, [])
        rows.append(
            {
                "mode": m,
                "ops_per_s_median": round(statistics.median(rates[m]), 1),
                **ratio_figures(rates[m], rates["quiet"]),
                "nvml_calls": len(ts),
                "nvml_call_us_median": round(statistics.median(ts) * 1e6, 1) if ts else None,
                "nvml_call_us_max": round(max(ts) * 1e6, 1) if ts else None,
            }
        )
    print(f"{'mode':12} {'ops/s':>9} {'ratio':>7} {'mean':>7}  {'IQR':15} {'NVML call µs':>20}")
    for r in rows:
        call = (
            f"{r['nvml_call_us_median']:.0f} (max {r['nvml_call_us_max']:.0f})"
            if r["nvml_calls"]
            else "-"
        )
        print(
            f"{r['mode']:12} {r['ops_per_s_median']:9.0f} {r['ratio_median']:7.4f} "
            f"{r['ratio_mean']:7.4f}  [{r['ratio_iqr'][0]:.3f}-{r['ratio_iqr'][1]:.3f}]  "
            f"{call:>20}"
        )
    if args.json:
        out: dict[str, Any] = {
            "config": {k: str(v) for k, v in vars(args).items()},
            "machine": f"{platform.node()}, {platform.platform()}",
            "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "rows": rows,
        }
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
