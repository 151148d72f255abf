"""gpumon's per-op cost in CPU instructions: repeatable where wall clocks are not.

    python benchmarks/callgrind_ops.py [--ops 50000] [--op null|torch] [--size 64] [--json F]

Runs `benchmarks/op_cost.py --mode bare|pool` under `valgrind --tool=callgrind
--separate-threads=yes` at two op counts, N and 2N, and reads the instructions of the worker
thread (the first thread the script starts). The difference between the two runs divided by the
difference in ops is the worker thread's instructions per op, start-up cancelled out; pool minus
bare is what gpumon adds to every op on the thread that runs it. The main thread's (the
sampler's) instructions per Sample are reported the same way. Instruction counts do not depend
on what else the machine is doing, so they compare runs across days where timings cannot.
Not for MLX: its CPU stream evaluates on a scheduler thread of its own, so the first thread's
instructions are not the op's. Needs valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def thread_totals(prefix: Path) -> dict[int, int]:
    """Thread number (1 = main) -> instructions, from callgrind's per-thread files."""
    out = {}
    for f in prefix.parent.glob(prefix.name + "-*"):
        m = re.search(r"-(\d+)$", f.name)
        text = f.read_text(errors="replace")
        s = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if m and s:
            out[int(m.group(1))] = int(s.group(1))
    return out


def one(mode: str, ops: int, args: argparse.Namespace, tmp: Path) -> dict:
    prefix = tmp / f"{mode}-{ops}"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={prefix}",
        # The real interpreter, not a shim script: valgrind follows no exec by default.
        os.path.realpath(sys.executable),
        str(HERE / "op_cost.py"),
        "--mode",
        mode,
        "--ops",
        str(ops),
        "--pairs",
        "1",
        "--op",
        args.op,
        "--size",
        str(args.size),
        "--workload",
        args.workload,
        "--gpumon",
        str(args.gpumon),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"valgrind failed: {r.stderr[-2000:]}")
    row = json.loads(r.stdout.strip().splitlines()[-1])["rows"][0][mode]
    ir = thread_totals(prefix)
    return {"ops_all": row["ops_all"], "samples": row.get("samples", 0), "ir": ir}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ops", type=int, default=50_000)
    p.add_argument("--op", choices=("null", "torch"), default="null")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workload", default="matmul")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--gpumon", type=Path, default=HERE.parent, help="checkout to measure")
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("callgrind_ops: valgrind is not installed")
    result: dict = {"config": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="gpumon-cg-") as d:
        tmp = Path(d)
        per_op = {}
        for mode in ("bare", "pool"):
            a = one(mode, args.ops, args, tmp)
            b = one(mode, 2 * args.ops, args, tmp)
            d_ops = b["ops_all"] - a["ops_all"]
            worker = (b["ir"].get(2, 0) - a["ir"].get(2, 0)) / d_ops
            per_op[mode] = worker
            result[mode] = {"runs": [a, b], "worker_ir_per_op": round(worker, 1)}
            if mode == "pool":
                d_samples = b["samples"] - a["samples"]
                main_ir = b["ir"].get(1, 0) - a["ir"].get(1, 0)
                result[mode]["sampler_ir_per_sample"] = (
                    round(main_ir / d_samples) if d_samples > 0 else None
                )
                # Before per-thread histograms the sampler's work grew with the ops it summed.
                result[mode]["sampler_ir_per_op"] = round(main_ir / d_ops, 1)
        result["added_ir_per_op"] = round(per_op["pool"] - per_op["bare"], 1)
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
