"""PyTorch pools on mps, cuda or cpu (auto: mps > cuda > cpu)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from gpumon.worker.backends.base import (
    MLP_BATCH,
    MLP_LAYERS,
    Backend,
    BackendUnavailable,
    DeviceChoice,
    ThreadState,
    Workload,
    check_fits,
    cpu_name,
    cuda_library_versions,
)
from gpumon.worker.backends.torch_generate import TorchDecoder

INSTALL_FIX = (
    "install it with: pip install 'gpumon[torch]' (on Linux run `pip install torch==2.13.0` "
    "first for the CPU build)"
)


class TorchBackend(Backend):
    name = "torch"

    def setup(self) -> DeviceChoice:
        if self.config.intra_op:
            # torch.set_num_threads below binds the calling thread's OpenMP team only: worker
            # threads still ran MKL's sgemm on an OpenMP team of one per core, 10-1000x slower
            # at 64x64 on a busy 2-core machine. The environment, read at import, binds them all.
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(var, str(self.config.intra_op))
        try:
            import torch
        except ImportError as e:
            raise BackendUnavailable(f"PyTorch is not installed ({e})", INSTALL_FIX) from None
        self.torch = torch
        if self.config.intra_op:
            torch.set_num_threads(self.config.intra_op)
        req = self.config.device
        mps_ok = torch.backends.mps.is_available()
        cuda_ok = torch.cuda.is_available()
        if req is None:
            if mps_ok:
                dev, reason = "mps", "auto: Metal (MPS) is available"
            elif cuda_ok:
                dev, reason = (
                    "cuda:0",
                    f"auto: CUDA is available ({torch.cuda.device_count()} device(s)); MPS is not",
                )
            else:
                build = "CUDA build" if torch.version.cuda else "CPU-only build"
                dev, reason = "cpu", f"auto: no MPS or CUDA device (torch is a {build})"
        else:
            dev, reason = req, "requested"
            if req == "mps" and not mps_ok:
                raise BackendUnavailable(
                    "torch cannot use MPS here (needs Apple Silicon and macOS 12.3+)",
                    "use --pool torch:cpu, or torch:cuda on an NVIDIA machine",
                )
            if req.startswith("cuda"):
                if not cuda_ok:
                    why = (
                        "torch is a CPU-only build"
                        if not torch.version.cuda
                        else "no CUDA device is visible"
                    )
                    raise BackendUnavailable(
                        f"torch cannot use CUDA: {why}",
                        "use --pool torch:cpu, or install a CUDA build "
                        "of torch on a machine with an NVIDIA GPU",
                    )
                idx = int(req.split(":")[1]) if ":" in req else 0
                if idx >= torch.cuda.device_count():
                    raise BackendUnavailable(
                        f"there is no {req}: {torch.cuda.device_count()} CUDA device(s)",
                        "use --pool torch:cuda:0",
                    )
                dev = f"cuda:{idx}"
        self.device = torch.device(dev)
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        elif self.device.type == "mps":
            name = f"{cpu_name()} GPU (Metal Performance Shaders)"
        else:
            n = torch.get_num_threads()
            name = f"{cpu_name()}, {n} intra-op thread{'s' if n != 1 else ''}"
        versions = {"torch": str(torch.__version__), "python": sys.version.split()[0]}
        if torch.version.cuda:
            versions["cuda"] = str(torch.version.cuda)
        if self.device.type == "cuda":
            major, minor = torch.cuda.get_device_capability(self.device)
            versions["compute capability"] = f"{major}.{minor}"
            if torch.backends.cudnn.is_available():
                versions["cuDNN (torch)"] = str(torch.backends.cudnn.version())
            versions.update(cuda_library_versions())
        return DeviceChoice(dev, name, reason, f"torch {torch.__version__}", versions)

    def is_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")

    def policies(self) -> dict[str, str]:
        pol = {"per-thread": "", "shared": "", "locked": ""}
        if self.device.type == "cpu":
            pol["shared"] = "torch on cpu has no streams: same as per-thread"
        elif self.device.type == "mps":
            # torch.mps encodes every thread's work on one queue whatever we do.
            pol["per-thread"] = "torch.mps has one command queue for all threads"
        return pol

    def default_policy(self) -> str:
        # On MPS every thread's work already shares one queue: that is torch's own behaviour.
        return "shared" if self.device.type == "mps" else "per-thread"

    def validate(self, workload: Workload, threads: int) -> None:
        torch = self.torch
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            check_fits(workload.kind, workload.size, workload.dtype, threads, free, "GPU")
        else:
            super().validate(workload, threads)
        # Prove the dtype works on this device before any thread depends on it.
        try:
            dt = getattr(torch, workload.dtype)
            a = torch.ones((8, 8), dtype=dt, device=self.device)
            torch.addmm(a, a, a)
        except (RuntimeError, TypeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise BackendUnavailable(
                f"torch cannot run {workload.dtype} on {self.device}: {first}",
                "use --dtype float32",
            ) from None

    def new_thread_state(self, workload: Workload, slot: int) -> ThreadState:
        torch = self.torch
        torch.set_grad_enabled(False)  # grad mode is per thread
        stream = None
        if self.device.type == "cuda":
            # per-thread: each thread owns a stream; shared/locked: the device's default one.
            stream = (
                torch.cuda.Stream(self.device)
                if workload.policy == "per-thread"
                else torch.cuda.default_stream(self.device)
            )
        if stream is not None:
            torch.cuda.set_stream(stream)  # current stream is per thread: set it once
        if workload.kind == "generate":
            model = TorchDecoder(
                torch, self.device, workload.size, workload.dtype, seed=1000 + slot
            )
            return ThreadState("generate", stream=stream, model=model)
        dt = getattr(torch, workload.dtype)
        n = workload.size
        gen = torch.Generator(device="cpu").manual_seed(1000 + slot)

        def rand(*shape: int) -> Any:
            return (torch.randn(*shape, generator=gen) / n**0.5).to(self.device, dt)

        if workload.kind == "matmul":
            inputs: tuple[Any, ...] = (rand(n, n), rand(n, n), rand(n, n))
        else:
            inputs = (rand(MLP_BATCH, n), *[rand(n, n) for _ in range(MLP_LAYERS)])
        return ThreadState(workload.kind, inputs, stream)

    def run_ops(self, state: ThreadState, n: int) -> None:
        # The thread's current stream was set once in new_thread_state: entering a stream
        # context per op cost ~10% of a 0.25 ms H200 matmul (benchmarks/overhead.py).
        if state.kind == "generate":
            # Each step brings its token id back to the host (.item()), which waits for the
            # device: a token counts once it exists, like every other op.
            for _ in range(n):
                state.model.step()
            return
        if state.kind == "matmul":
            c, a, b = state.inputs
            addmm = self.torch.addmm
            for _ in range(n):
                addmm(c, a, b)
        else:
            x, *ws = state.inputs
            gelu = self.torch.nn.functional.gelu
            for _ in range(n):
                h = x
                for w in ws:
                    h = gelu(h @ w)
        if state.stream is not None:
            state.stream.synchronize()
        elif self.device.type == "mps":
            self.torch.mps.synchronize()

    def make_op(self, state: ThreadState, n: int) -> Callable[[], object]:
        # One op per call is the common case, and at 64x64 on a CPU an op takes ~10 us: going
        # through run_ops there (a frame, a range, `device.type`, ~0.4 us) cost 4% of it.
        if n != 1 or state.kind == "mlp":
            return super().make_op(state, n)
        if state.kind == "generate":
            return state.model.step
        c, a, b = state.inputs
        addmm = self.torch.addmm
        if state.stream is None and self.device.type != "mps":
            return functools.partial(addmm, c, a, b)  # nothing to wait for on the CPU
        sync = state.stream.synchronize if state.stream is not None else self.torch.mps.synchronize

        def op() -> None:
            addmm(c, a, b)
            sync()

        return op

    def memory(self) -> tuple[dict[str, int], str]:
        torch = self.torch
        if self.device.type == "cuda":
            # One read of the allocator's counters: memory_allocated, memory_reserved and
            # max_memory_allocated each flatten and sort the whole statistics dict (~150 keys)
            # in Python, on the sampler thread, holding the GIL the worker threads wait for.
            stats = torch.cuda.memory_stats_as_nested_dict(self.device)
            allocated = stats.get("allocated_bytes", {}).get("all", {})
            return (
                {
                    "allocated": int(allocated.get("current", 0)),
                    "reserved": int(
                        stats.get("reserved_bytes", {}).get("all", {}).get("current", 0)
                    ),
                    "peak": int(allocated.get("peak", 0)),
                },
                "torch.cuda memory_stats: allocated/reserved/peak allocated bytes",
            )
        if self.device.type == "mps":
            return (
                {
                    "current": torch.mps.current_allocated_memory(),
                    "driver": torch.mps.driver_allocated_memory(),
                },
                "torch.mps.current_allocated_memory/driver_allocated_memory",
            )
        return {}, "torch cpu has no allocator figures; see process RSS"
