"""Where an op's added time goes: the same op under more and more of gpumon's machinery.

    python benchmarks/op_parts.py --op torch --device cuda --dtype bfloat16 --size 256
    python benchmarks/op_parts.py --op torch --size 64 --rounds 30 --seconds 0.3

One process, one worker thread, the pool's own op (`Backend.make_op` on the state
`new_thread_state` built). Each round runs every level once, in a shuffled order, for
`--seconds` after a short warm-up; a level's figure is its ops/s over the bare level's in the same
round, so drift and neighbours hit every level alike. Levels, each adding one thing:

  bare       op(); count it                           (what anyone would write)
  clock      + one perf_counter read per op
  record     + the op's time appended to a list, which a 10 Hz thread takes with a slice
  sampled    + the 10 Hz thread is the runtime's own `Runtime.sample()` (sort, percentiles,
               histogram, the backend's memory figures) building a Sample, not sent
  pool       the real worker Runtime: its thread loop, the sampler on the main thread, each
             Sample encoded and written to a socket a `cat > /dev/null` child drains
  pool-off   the same, but the sampler on a thread of its own while the main thread waits in
             join(), as in a real worker process (gpumon.worker.__main__.run_on_own_thread)
  pool-mute  the same as pool-off, but each Sample is encoded and dropped, never written
             (the socket and the reader it wakes taken out)
(pool-off and pool-mute are not in the default list; name them with --levels.)

The step from one level to the next is the cost of what it adds; `pool` against `sampled` is
the runtime's loop and the encoding and sending. Printed as a table and, with --json, saved.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from op_cost import add_op_arguments, make_backend, run_pool  # noqa: E402
from op_cost import drain as op_cost_drain  # noqa: E402  (puts gpumon on sys.path too)

from gpumon.worker.runtime import Runtime, Slot  # noqa: E402

LEVELS = ("bare", "clock", "record", "sampled", "pool")


def run_runtime(backend: Any, wl: Any, warmup: float, seconds: float, mute: bool) -> float:
    """The real Runtime with its sampler off the main thread, as a worker process runs it;
    with `mute`, Samples are encoded and dropped instead of written to a socket. The rate is
    read off the Samples themselves: the ops of the windows inside the measured span over
    those windows' intervals (reading the runtime's counters from outside races the sampler)."""
    from gpumon import protocol
    from gpumon.worker.__main__ import run_on_own_thread

    sent: list[tuple[float, int, float]] = []  # (when, ops, interval) of each Sample
    sock, sink = (None, None) if mute else op_cost_drain()

    class Tap:
        def send(self, msg: Any) -> None:
            data = protocol.encode(msg)
            sent.append((time.perf_counter(), msg.total_ops, msg.interval))
            if sock is not None:
                sock.sock.sendall(data)

    rt = Runtime("parts", backend, wl, 1, Tap())  # type: ignore[arg-type]
    rt.start()
    while min(rt.sample(0.0).ops, default=0) == 0:
        time.sleep(0.01)
    stop = threading.Event()
    span: list[float] = []

    def measure() -> None:
        time.sleep(warmup)
        span.append(time.perf_counter())
        time.sleep(seconds)
        span.append(time.perf_counter())
        stop.set()

    threading.Thread(target=measure, daemon=True).start()
    run_on_own_thread(rt.run_sampler, stop, name="gpumon_sampler")
    rt.stop()
    if sock is not None and sink is not None:
        sock.sock.close()
        sink.wait(5)
    t0, t1 = span
    inside = [(n, dt) for when, n, dt in sent if when - dt >= t0 and when <= t1 + 0.05]
    ops, secs = sum(n for n, _ in inside), sum(dt for _, dt in inside)
    return ops / secs if secs else 0.0


def run_level(level: str, backend: Any, wl: Any, warmup: float, seconds: float) -> float:
    """Ops per second of one level, measured for `seconds` after `warmup`."""
    if level == "pool":
        r = run_pool(backend, wl, 1, seconds, 0)
        return r["ops"] / r["seconds"]
    if level in ("pool-off", "pool-mute"):
        return run_runtime(backend, wl, warmup, seconds, mute=level == "pool-mute")
    stop = [False]
    count = [0]
    lat: list[float] = []
    clock = time.perf_counter
    built = threading.Event()

    def worker() -> None:
        # The op's state is built on the thread that runs it, as the Runtime does: a CUDA
        # stream is made current per thread, and a state built on another thread would launch
        # on this thread's default stream and synchronise an empty one (no wait per op).
        state = backend.new_thread_state(wl, 0)
        try:
            loop(backend.make_op(state, 1))
        finally:
            backend.thread_exit(state)

    def loop(op: Any) -> None:
        built.set()
        if level == "bare":
            while not stop[0]:
                op()
                count[0] += 1
        elif level == "clock":
            while not stop[0]:
                op()
                clock()
                count[0] += 1
        else:
            record, t0 = lat.append, clock()
            while not stop[0]:
                op()
                t1 = clock()
                record(t1 - t0)
                t0 = t1

    # For `sampled`: a Runtime that never starts threads, whose slot 0 is this list.
    rt = Runtime("parts", backend, wl, 1, None)  # type: ignore[arg-type]

    def drain() -> None:
        while not stop[0]:
            time.sleep(0.1)
            if level == "record":
                n = len(lat)
                count[0] += len(lat[:n])
                del lat[:n]
            else:
                count[0] += sum(rt.sample(0.1).ops)

    if level == "sampled":
        rt.slots[0] = Slot(index=0, lat=lat)
    threads = [threading.Thread(target=worker)]
    if level in ("record", "sampled"):
        threads.append(threading.Thread(target=drain))
    for t in threads:
        t.start()
    built.wait()
    time.sleep(warmup)
    c0, t0 = count[0] + len(lat), time.perf_counter()
    time.sleep(seconds)
    c1, t1 = count[0] + len(lat), time.perf_counter()
    stop[0] = True
    for t in threads:
        t.join()
    return (c1 - c0) / (t1 - t0)


def shuffled_rounds(
    names: list[str], rounds: int, measure: Callable[[str], float]
) -> dict[str, list[float]]:
    """`measure(name)` for every name once per round, in a shuffled order each round (seeded),
    so drift and neighbours hit every name alike; the rates per name, in round order."""
    rates: dict[str, list[float]] = {n: [] for n in names}
    rng = random.Random(1)
    for k in range(rounds):
        order = names[:]
        rng.shuffle(order)
        for n in order:
            rates[n].append(measure(n))
        print(f"round {k + 1}/{rounds}", file=sys.stderr, flush=True)
    return rates


def ratio_figures(rates: list[float], base: list[float]) -> dict[str, Any]:
    """Each round's rate over the base's in the same round: median, mean, IQR and all."""
    ratios = [r / b for r, b in zip(rates, base, strict=True) if b]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "ratio_median": round(statistics.median(ratios), 4),
        "ratio_mean": round(statistics.mean(ratios), 4),
        "ratio_iqr": [round(q[0], 4), round(q[2], 4)],
        "ratios": [round(r, 4) for r in ratios],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_op_arguments(p, "torch")
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--warmup", type=float, default=0.15)
    p.add_argument("--levels", default=",".join(LEVELS))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    levels = [lv for lv in args.levels.split(",") if lv]
    if "bare" not in levels:
        raise SystemExit("--levels must include bare (every level is a ratio to it)")
    backend, wl = make_backend(args)
    rates = shuffled_rounds(
        levels, args.rounds, lambda lv: run_level(lv, backend, wl, args.warmup, args.seconds)
    )
    rows = []
    for lv in levels:
        med = statistics.median(rates[lv])
        rows.append(
            {
                "level": lv,
                "ops_per_s_median": round(med, 1),
                "us_per_op": round(1e6 / med, 3) if med else None,
                **ratio_figures(rates[lv], rates["bare"]),
            }
        )
    b_us = rows[0]["us_per_op"] or 0.0
    print(f"{'level':8} {'ops/s':>10} {'µs/op':>8} {'+ns/op':>8} {'ratio':>7} {'mean':>7}  IQR")
    for r in rows:
        added = (r["us_per_op"] - b_us) * 1000 if r["us_per_op"] else float("nan")
        print(
            f"{r['level']:8} {r['ops_per_s_median']:10.0f} {r['us_per_op']:8.3f} {added:8.0f} "
            f"{r['ratio_median']:7.4f} {r['ratio_mean']:7.4f}  "
            f"[{r['ratio_iqr'][0]:.3f}-{r['ratio_iqr'][1]:.3f}]"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": {k: str(v) for k, v in vars(args).items()},
                    "machine": f"{platform.node()}, {platform.platform()}",
                    "python": platform.python_version(),
                    "rows": rows,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
