"""gpumon's own nanoseconds per op, measured directly on the worker runtime.

    python benchmarks/op_cost.py                       # null op, wall clock, 5 alternating pairs
    python benchmarks/op_cost.py --op torch --size 64  # a real 64x64 addmm on the CPU
    valgrind --tool=callgrind --separate-threads=yes \
        python benchmarks/op_cost.py --mode pool --ops 200000 --pairs 1   # instructions

One process, no supervisor: the real `Runtime` (worker threads, the 10 Hz sampler on the main
thread, Samples encoded and written to a socket that a `cat > /dev/null` child drains) against a
bare loop of the *same* op callable in the same process, alternating bare/pool. With `--op null`
the op does nothing, so the difference per op is exactly what gpumon adds around one op: the
timer, the counters, the latency record, the loop's checks, plus its share of the sampler.
Under callgrind, `--mode bare|pool` runs one side only for a fixed op count, and
`--separate-threads=yes` gives the worker thread's instructions apart from the sampler's.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `--gpumon PATH` measures another checkout's runtime (the "before" of a change).
_at = sys.argv.index("--gpumon") if "--gpumon" in sys.argv else -1
sys.path.insert(0, sys.argv[_at + 1] if _at >= 0 else str(ROOT))

from gpumon.spec import parse_pool  # noqa: E402
from gpumon.worker.backends import load  # noqa: E402
from gpumon.worker.backends.base import Backend, DeviceChoice, Workload  # noqa: E402
from gpumon.worker.runtime import Channel, Runtime  # noqa: E402


class NullBackend(Backend):
    """An op that does nothing: what remains per op is the runtime's own bookkeeping."""

    name = "null"

    def setup(self) -> DeviceChoice:
        return DeviceChoice("cpu", "null", "benchmark", "none")

    def validate(self, workload: Workload, threads: int) -> None:
        return None

    def new_thread_state(self, workload: Workload, slot: int) -> Any:
        return None

    def run_ops(self, state: Any, n: int) -> None:
        for _ in range(n):
            NOTHING()

    def make_op(self, state: Any, n: int) -> Any:
        return NOTHING if n == 1 else super().make_op(state, n)


NOTHING = int  # a C call that does nothing: the null op on both sides


def make_backend(args: argparse.Namespace) -> tuple[Backend, Workload]:
    if args.op == "null":
        b: Backend = NullBackend(parse_pool("fault"))
        b.setup()
        return b, Workload("matmul", 1, "float32", "per-thread", 1)
    spec = f"{args.op}:{args.device},size={args.size},workload={args.workload}"
    if args.op == "torch" and args.device == "cpu":
        spec += ",intra-op=1"
    b = load(parse_pool(spec))
    b.setup()
    wl = Workload(args.workload, args.size, args.dtype, b.default_policy(), 1)
    b.validate(wl, args.threads)
    return b, wl


def bare_loop(backend: Backend, state: Any, stop: list[bool], counts: list[int], i: int) -> None:
    """The op as a user would write it in their own loop: called inline, counted, nothing more."""
    if backend.name == "null":
        nothing = NOTHING
        while not stop[0]:
            nothing()
            counts[i] += 1
    elif state.kind == "generate":
        step = state.model.step
        while not stop[0]:
            step()
            counts[i] += 1
    elif backend.name == "torch":
        c, a, b = state.inputs
        addmm = backend.torch.addmm  # type: ignore[attr-defined]
        if state.stream is None:
            while not stop[0]:
                addmm(c, a, b)
                counts[i] += 1
        else:  # CUDA: an op counts once the GPU has done it, as in the pool
            sync = state.stream.synchronize
            while not stop[0]:
                addmm(c, a, b)
                sync()
                counts[i] += 1
    else:
        mx = backend.mx  # type: ignore[attr-defined]
        c, a, b = state.inputs
        s = state.stream
        while not stop[0]:
            mx.eval(mx.addmm(c, a, b, stream=s))
            counts[i] += 1


def run_bare(backend: Backend, wl: Workload, threads: int, seconds: float, ops: int) -> dict:
    counts = [0] * threads
    stop = [False]
    ready = threading.Barrier(threads + 1)

    def body(i: int) -> None:
        state = backend.new_thread_state(wl, i)
        ready.wait()
        bare_loop(backend, state, stop, counts, i)
        backend.thread_exit(state)

    ts = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    ready.wait()
    time.sleep(0.2)  # as the pool side: past the first ops
    t0, cpu0 = time.perf_counter(), time.process_time()
    c0 = sum(counts)
    if ops:
        while sum(counts) - c0 < ops:
            time.sleep(0.01)
    else:
        time.sleep(seconds)
    elapsed, done = time.perf_counter() - t0, sum(counts) - c0
    cpu = time.process_time() - cpu0
    stop[0] = True
    for t in ts:
        t.join()
    return {"ops": done, "seconds": elapsed, "cpu_s": cpu, "ops_all": sum(counts)}


def drain() -> tuple[Channel, subprocess.Popen]:
    a, b = socket.socketpair()
    sink = subprocess.Popen(["cat"], stdin=b, stdout=subprocess.DEVNULL)
    b.close()
    return Channel(a.detach()), sink


def run_pool(backend: Backend, wl: Workload, threads: int, seconds: float, ops: int) -> dict:
    chan, sink = drain()
    rt = Runtime("bench", backend, wl, threads, chan)
    rt.start()
    # Let every thread build its state and run before the clock starts, as the bare side does.
    while min(rt.sample(0.0).ops, default=0) == 0:
        time.sleep(0.01)
    time.sleep(0.2)
    rt.sample(0.0)  # drop the start-up ops and latencies
    base = rt.ops_total
    stop = threading.Event()
    samples = [0]
    t0, cpu0 = time.perf_counter(), time.process_time()

    def watch() -> None:
        if ops:
            while rt.ops_total - base < ops:
                time.sleep(0.01)
        else:
            time.sleep(seconds)
        stop.set()

    # The sampler must run on the main thread, as in the worker; count what it sends.
    send = chan.send

    def counting_send(msg: Any) -> None:
        samples[0] += 1
        send(msg)

    chan.send = counting_send  # type: ignore[method-assign]
    threading.Thread(target=watch, daemon=True).start()
    rt.run_sampler(stop)  # its last sample holds the ops up to now
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    done = rt.ops_total - base
    rt.stop()
    rt.sample(0.0)  # the ops finished while stopping, for the instruction count per op
    chan.sock.close()
    sink.wait(5)
    return {
        "ops": done,
        "seconds": elapsed,
        "cpu_s": cpu,
        "samples": samples[0],
        "ops_all": rt.ops_total,
    }


def add_op_arguments(p: argparse.ArgumentParser, default_op: str) -> None:
    """The options `make_backend` reads: which op, on what, how large (op_parts.py too)."""
    p.add_argument("--op", choices=("null", "torch", "mlx"), default=default_op)
    p.add_argument("--workload", default="matmul", choices=("matmul", "generate"))
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="torch: cpu|cuda; mlx: cpu|gpu")
    p.add_argument("--dtype", default="float32")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_op_arguments(p, "null")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--ops", type=int, default=0, help="run a fixed op count instead (callgrind)")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--mode", choices=("both", "bare", "pool"), default="both")
    p.add_argument("--gpumon", default=str(ROOT), help="checkout whose gpumon to measure")
    args = p.parse_args()
    backend, wl = make_backend(args)
    rows = []
    for k in range(args.pairs):
        row = {}
        sides = [m for m in ("bare", "pool") if args.mode in ("both", m)]
        for side in sides if k % 2 == 0 else sides[::-1]:  # drift hits both sides alike
            run = run_bare if side == "bare" else run_pool
            row[side] = run(backend, wl, args.threads, args.seconds, args.ops)
        for r in row.values():
            # Wall time per op across all threads; with 1 thread it is the op's own period.
            r["ns_per_op"] = r["seconds"] / r["ops"] * 1e9 * args.threads if r["ops"] else None
            # CPU of the whole process (worker threads and, on the pool side, the sampler) per
            # op: what neighbours stealing the cores do not change.
            r["cpu_ns_per_op"] = r["cpu_s"] / r["ops"] * 1e9 if r["ops"] else None
        if len(row) == 2:
            row["added_ns_per_op"] = row["pool"]["ns_per_op"] - row["bare"]["ns_per_op"]
            row["ratio"] = row["bare"]["ns_per_op"] / row["pool"]["ns_per_op"]
            row["cpu_ratio"] = row["bare"]["cpu_ns_per_op"] / row["pool"]["cpu_ns_per_op"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    out: dict[str, Any] = {"config": vars(args), "python": platform.python_version(), "rows": rows}
    if args.mode == "both":
        added = [r["added_ns_per_op"] for r in rows]
        ratios = [r["ratio"] for r in rows]
        out["added_ns_per_op_median"] = statistics.median(added)
        out["added_ns_per_op_range"] = [min(added), max(added)]
        out["ratio_median"] = statistics.median(ratios)
        out["ratio_range"] = [min(ratios), max(ratios)]
        cpu = [r["cpu_ratio"] for r in rows]
        out["cpu_ratio_median"] = statistics.median(cpu)
        out["cpu_ratio_range"] = [min(cpu), max(cpu)]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
