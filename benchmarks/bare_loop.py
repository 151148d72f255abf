"""The bare side of benchmarks/overhead_matrix.py: the same ops as a gpumon pool, without gpumon.

    python benchmarks/bare_loop.py BACKEND DEVICE INTRA_OP     (then one JSON cell per stdin line)

A long-lived process that, for each cell it is sent ({"workload", "size", "dtype", "threads",
"warmup", "seconds"}), starts that many threads, each building its inputs the way the pool's
backend does and then calling the op inline in a `while` loop with one list increment to count
it — what anyone would write to measure throughput — and answers {"ops", "seconds", "cpu_s"}
for the measured window (cpu_s: this process's CPU time in it, all threads). Nothing of
gpumon's runs here: no timer, no sampler, no socket. The `generate` workload's model classes
are imported from gpumon because they *are* the workload's definition (the same decoder on
either side), not its measuring.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any


def torch_cell(device: str, cell: dict[str, Any]) -> tuple[list[Any], Any]:
    import torch

    dev = torch.device("cuda:0" if device == "cuda" else device)
    return _run(
        cell, lambda i, ready, stop, counts: _torch_body(torch, dev, cell, i, ready, stop, counts)
    )


def _torch_body(
    torch: Any, dev: Any, cell: dict, i: int, ready: Any, stop: list, counts: list
) -> None:
    torch.set_grad_enabled(False)
    stream = None
    if dev.type == "cuda":
        stream = torch.cuda.Stream(dev)  # per-thread streams, as a gpumon pool's default policy
        torch.cuda.set_stream(stream)
    n, dt = cell["size"], getattr(torch, cell["dtype"])
    if cell["workload"] == "generate":
        from gpumon.worker.backends.torch_generate import TorchDecoder

        step = TorchDecoder(torch, dev, n, cell["dtype"], seed=1000 + i).step
        ready.wait()
        while not stop[0]:
            step()
            counts[i] += 1
        return
    gen = torch.Generator(device="cpu").manual_seed(1000 + i)
    c, a, b = ((torch.randn(n, n, generator=gen) / n**0.5).to(dev, dt) for _ in range(3))
    addmm = torch.addmm
    ready.wait()
    if stream is None:
        while not stop[0]:
            addmm(c, a, b)
            counts[i] += 1
    else:
        sync = stream.synchronize
        while not stop[0]:
            addmm(c, a, b)
            sync()
            counts[i] += 1


def mlx_cell(device: str, cell: dict[str, Any]) -> tuple[list[Any], Any]:
    import mlx.core as mx

    dev = mx.gpu if device in ("gpu", "cuda", "metal") else mx.cpu
    return _run(
        cell, lambda i, ready, stop, counts: _mlx_body(mx, dev, cell, i, ready, stop, counts)
    )


def _mlx_body(mx: Any, dev: Any, cell: dict, i: int, ready: Any, stop: list, counts: list) -> None:
    n, dt = cell["size"], getattr(mx, cell["dtype"])
    try:
        if cell["workload"] == "generate":
            from gpumon.worker.backends.mlx_generate import MlxDecoder

            step = MlxDecoder(mx, n, cell["dtype"], dev, seed=1000 + i).step
            ready.wait()
            while not stop[0]:
                step()
                counts[i] += 1
            return
        key = mx.random.key(1000 + i)
        c, a, b = (
            (mx.random.normal((n, n), key=k, stream=dev) / n**0.5).astype(dt, stream=dev)
            for k in mx.random.split(key, 3)
        )
        mx.eval(c, a, b)
        evaluate, addmm = mx.eval, mx.addmm
        ready.wait()
        while not stop[0]:
            evaluate(addmm(c, a, b, stream=dev))
            counts[i] += 1
    finally:
        if hasattr(mx, "clear_streams"):
            mx.clear_streams()  # as gpumon's threads do: MLX 0.32 aborts at exit otherwise


def _run(cell: dict, body: Any) -> tuple[list[Any], Any]:
    threads = cell["threads"]
    counts = [0] * threads
    stop = [False]
    ready = threading.Barrier(threads + 1)
    ts = [
        threading.Thread(target=body, args=(i, ready, stop, counts), daemon=True)
        for i in range(threads)
    ]
    for t in ts:
        t.start()
    ready.wait()
    time.sleep(cell["warmup"])
    c0, t0, cpu0 = sum(counts), time.perf_counter(), time.process_time()
    time.sleep(cell["seconds"])
    c1, t1, cpu1 = sum(counts), time.perf_counter(), time.process_time()
    stop[0] = True
    for t in ts:
        t.join()
    return [c1 - c0, cpu1 - cpu0], t1 - t0


INTRA_OP = [0]


def main() -> int:
    backend, device, intra_op = sys.argv[1], sys.argv[2], int(sys.argv[3])
    INTRA_OP[0] = intra_op  # applied on each worker thread, as the pool's intra-op= is
    if backend == "torch" and intra_op:
        import torch

        torch.set_num_threads(intra_op)  # and on the main thread, as the pool's setup() does
    run = torch_cell if backend == "torch" else mlx_cell
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cell = json.loads(line)
        (ops, cpu), seconds = run(device, cell)
        print(json.dumps({"ops": ops, "seconds": seconds, "cpu_s": cpu}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
