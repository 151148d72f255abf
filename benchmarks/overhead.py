"""What does gpumon's measuring cost? A pool versus the same loop without gpumon.

    python benchmarks/overhead.py --backend torch --device cpu --threads 2 --size 256
    python benchmarks/overhead.py --backend mlx --device gpu --size 4096 --dtype bfloat16

The baseline is a plain script (`baseline_loop` below, run in its own process) with N threads
doing exactly the op a gpumon pool does (addmm, synchronised per op), counting ops and nothing
else. The pool runs under a real Supervisor with 10 Hz samples, latency timing, memory queries
and the monitor reading every message. Runs alternate (baseline, pool, baseline, ...) so
thermal drift and noisy neighbours hit both; the result is the median ratio of the pairs.
Target (docs/performance.md): pool >= 98% of baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE = textwrap.dedent("""
    import sys, threading, time, json
    backend, device, threads, size, dtype, warmup, seconds = sys.argv[1:8]
    threads, size, warmup, seconds = int(threads), int(size), float(warmup), float(seconds)
    counts = [0] * threads
    stop = threading.Event()
    measuring = threading.Event()
    if backend == "torch":
        import torch
        dev = torch.device("cuda:0" if device == "cuda" else device)
        def body(i):
            torch.set_grad_enabled(False)
            dt = getattr(torch, dtype)
            stream = torch.cuda.Stream(dev) if dev.type == "cuda" else None
            ctx = torch.cuda.stream(stream) if stream else __import__("contextlib").nullcontext()
            with ctx:
                a, b, c = (torch.randn(size, size, device=dev, dtype=dt) / size**0.5
                           for _ in range(3))
                while not stop.is_set():
                    torch.addmm(c, a, b)
                    if stream is not None:
                        stream.synchronize()
                    elif dev.type == "mps":
                        torch.mps.synchronize()
                    if measuring.is_set():
                        counts[i] += 1
    else:
        import mlx.core as mx
        dev = mx.gpu if device == "gpu" else mx.cpu
        def body(i):
            dt = getattr(mx, dtype)
            with mx.stream(dev):
                a, b, c = ((mx.random.normal((size, size)) / size**0.5).astype(dt)
                           for _ in range(3))
                mx.eval(a, b, c)
                while not stop.is_set():
                    mx.eval(mx.addmm(c, a, b))
                    if measuring.is_set():
                        counts[i] += 1
            mx.clear_streams()
    ts = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(threads)]
    [t.start() for t in ts]
    time.sleep(warmup)
    measuring.set()
    t0 = time.perf_counter()
    time.sleep(seconds)
    measuring.clear()
    elapsed = time.perf_counter() - t0
    stop.set()
    print(json.dumps({"ops": sum(counts), "seconds": elapsed}))
    import os; os._exit(0)
""")


def baseline(args: argparse.Namespace) -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            BASELINE,
            args.backend,
            args.device,
            str(args.threads),
            str(args.size),
            args.dtype,
            str(args.warmup),
            str(args.seconds),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        # Its own session, as gpumon's worker has: one scheduling group each under autogroup
        # (see overhead_matrix.py), so a busy machine cannot favour either side.
        start_new_session=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"baseline failed: {out.stderr.strip().splitlines()[-1:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["ops"] / r["seconds"]


async def pool(args: argparse.Namespace) -> float:
    from gpumon import analysis
    from gpumon import events as ev
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool

    spec = (
        f"{args.backend}:{args.device},threads={args.threads},size={args.size},"
        f"dtype={args.dtype},native={args.native}"
    )
    seen: list[ev.Event] = []
    async with open_session(
        [parse_pool(spec)], mode="benchmark", argv=sys.argv, record=False, listeners=[seen.append]
    ):
        while not any(isinstance(e, (ev.PoolReady, ev.PoolFailed)) for e in seen):
            await asyncio.sleep(0.05)
        if any(isinstance(e, ev.PoolFailed) for e in seen):
            raise SystemExit(f"pool failed: {[e for e in seen if isinstance(e, ev.PoolFailed)]}")
        await asyncio.sleep(args.warmup + args.seconds)
    (run,) = [r for r in analysis.runs(seen, warmup=args.warmup) if r.seconds > 0]
    return run.ops_per_s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=("torch", "mlx"), default="torch")
    p.add_argument("--device", default="cpu", help="torch: cpu|cuda|mps; mlx: cpu|gpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--native", default="off", help="gpumon pool's --native-stacks (off|gdb)")
    args = p.parse_args()
    ratios, base_rates, pool_rates = [], [], []
    for _ in range(args.pairs):
        b = baseline(args)
        g = asyncio.run(pool(args))
        base_rates.append(b)
        pool_rates.append(g)
        ratios.append(g / b)
        print(
            f"  baseline {b:10.2f} ops/s   gpumon pool {g:10.2f} ops/s   ratio {g / b:.4f}",
            flush=True,
        )
    result = {
        "config": vars(args),
        "machine": platform.node(),
        "cpu": platform.processor(),
        "baseline_ops_per_s": base_rates,
        "pool_ops_per_s": pool_rates,
        "median_ratio": statistics.median(ratios),
        "overhead_percent": round((1 - statistics.median(ratios)) * 100, 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
