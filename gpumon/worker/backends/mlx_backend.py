"""MLX pools: Metal GPU on macOS, CUDA when the CUDA build is installed, else CPU.

Threads follow MLX's current thread model (0.31.2+): each thread builds and evaluates its own
arrays on its own default stream and calls `mx.clear_streams()` before it exits. `shared`
reproduces the pre-0.31.2 behaviour with one `mx.new_thread_unsafe_stream` used by every
thread and no lock, which is exactly the unsafe pattern behind ml-explore/mlx #2067/#3078.
"""

from __future__ import annotations

import sys
from typing import Any

from gpumon.worker.backends.base import (
    MLP_BATCH,
    MLP_LAYERS,
    Backend,
    BackendUnavailable,
    DeviceChoice,
    ThreadState,
    Workload,
)

INSTALL_FIX = (
    "install it with: pip install 'gpumon[mlx]' (macOS: mlx; Linux CPU: mlx[cpu]; "
    "Linux CUDA: mlx[cuda])"
)
PER_THREAD_STREAMS = (0, 31, 2)  # first release with a default stream per thread


def version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


class MlxBackend(Backend):
    name = "mlx"

    def setup(self) -> DeviceChoice:
        try:
            import mlx.core as mx
        except ImportError as e:
            raise BackendUnavailable(f"MLX is not installed ({e})", INSTALL_FIX) from None
        self.mx = mx
        metal = bool(mx.metal.is_available())
        cuda = bool(getattr(mx, "cuda", None) and mx.cuda.is_available())
        gpu_kind = "Metal" if metal else "CUDA" if cuda else None
        req = self.config.device
        if req is None:
            if gpu_kind:
                self.mx_device, reason = mx.gpu, f"auto: MLX {gpu_kind} backend is available"
            else:
                self.mx_device = mx.cpu
                reason = "auto: this MLX build has no Metal or CUDA GPU here"
        elif req == "cpu":
            self.mx_device, reason = mx.cpu, "requested"
        else:
            want = {"metal": "Metal", "cuda": "CUDA"}.get(req)
            if gpu_kind is None or (want and want != gpu_kind):
                what = want or "GPU"
                raise BackendUnavailable(
                    f"MLX has no {what} backend here (installed build: "
                    f"{'Metal' if metal else 'CUDA' if cuda else 'CPU only'})",
                    "use --pool mlx:cpu, or install mlx on Apple Silicon / mlx[cuda] on an "
                    "NVIDIA machine",
                )
            self.mx_device, reason = mx.gpu, "requested"
        self.gpu_kind = gpu_kind if self.mx_device == mx.gpu else None
        name = "?"
        try:
            info = mx.device_info() if hasattr(mx, "device_info") else mx.metal.device_info()
            name = str(info.get("device_name", "?"))
        except (RuntimeError, AttributeError, TypeError):
            pass
        if self.gpu_kind is None:
            from gpumon.worker.backends.base import cpu_name

            name = cpu_name()
        dev = "gpu" if self.gpu_kind else "cpu"
        if self.gpu_kind:
            name = f"{name} ({self.gpu_kind})"
        self.version = mx.__version__
        versions = {"mlx": mx.__version__, "python": sys.version.split()[0]}
        self._shared_stream = None
        return DeviceChoice(dev, name, reason, f"mlx {mx.__version__}", versions)

    def is_gpu(self) -> bool:
        return self.gpu_kind is not None

    def default_size(self) -> int:
        # MLX's CPU GEMM is far slower than torch's here (about 6 GFLOP/s at 512 on 2 cores);
        # 256 keeps a CPU pool at tens of ops/s so the live view has something to show.
        return 4096 if self.is_gpu() else 256

    def policies(self) -> dict[str, str]:
        v = version_tuple(self.version)
        pol = {"per-thread": "", "shared": "", "locked": ""}
        if v < PER_THREAD_STREAMS:
            pol["per-thread"] = (
                f"mlx {self.version} shares one default stream between threads "
                "(per-thread streams arrived in 0.31.2)"
            )
        if not hasattr(self.mx, "new_thread_unsafe_stream"):
            pol["shared"] = (
                f"mlx {self.version} has no mx.new_thread_unsafe_stream (added in 0.32.0)"
            )
        return pol

    def validate(self, workload: Workload, threads: int) -> None:
        if self.gpu_kind is None:
            super().validate(workload, threads)
        else:
            from gpumon.worker.backends.base import check_fits

            limit = None
            try:
                info = self.mx.device_info()
                limit = (
                    int(
                        info.get("max_recommended_working_set_size") or info.get("memory_size") or 0
                    )
                    or None
                )
            except (RuntimeError, AttributeError, TypeError, ValueError):
                pass
            check_fits(workload.kind, workload.size, workload.dtype, threads, limit, "GPU")
        mx = self.mx
        try:
            with mx.stream(self.mx_device):
                a = mx.ones((8, 8), dtype=getattr(mx, workload.dtype))
                mx.eval(mx.addmm(a, a, a))
        except (RuntimeError, ValueError, TypeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise BackendUnavailable(
                f"mlx cannot run {workload.dtype} on {self.mx_device}: {first}",
                "use --dtype float32",
            ) from None

    def _stream_for(self, policy: str) -> Any:
        if policy == "shared" and hasattr(self.mx, "new_thread_unsafe_stream"):
            if self._shared_stream is None:
                self._shared_stream = self.mx.new_thread_unsafe_stream(self.mx_device)
            return self._shared_stream
        # A Device as stream argument means "this thread's default stream on that device".
        return self.mx_device

    def new_thread_state(self, workload: Workload, slot: int) -> ThreadState:
        mx = self.mx
        stream = self._stream_for(workload.policy)
        dt = getattr(mx, workload.dtype)
        n = workload.size
        key = mx.random.key(1000 + slot)

        def rand(*shape: int) -> Any:
            nonlocal key
            key, sub = mx.random.split(key)
            return (mx.random.normal(shape, key=sub) / n**0.5).astype(dt)

        with mx.stream(stream):
            if workload.kind == "matmul":
                inputs: tuple[Any, ...] = (rand(n, n), rand(n, n), rand(n, n))
            else:
                inputs = (rand(MLP_BATCH, n), *[rand(n, n) for _ in range(MLP_LAYERS)])
            mx.eval(*inputs)
        return ThreadState(inputs, stream)

    def run_ops(self, state: ThreadState, n: int) -> None:
        mx = self.mx
        s = state.stream
        if len(state.inputs) == 3:
            # explicit stream= rather than a `with mx.stream()` per op: cheaper per call
            c, a, b = state.inputs
            outs = [mx.addmm(c, a, b, stream=s) for _ in range(n)]
        else:
            outs = []
            with mx.stream(s):
                x, *ws = state.inputs
                for _ in range(n):
                    h = x
                    for w in ws:
                        h = _gelu(mx, h @ w)
                    outs.append(h)
        # mx.eval blocks until the results exist: an op counts once the device is done.
        mx.eval(*outs)

    def thread_exit(self, state: ThreadState) -> None:
        # Streams and their command encoders belong to this thread; release them here, as
        # MLX asks, instead of leaving them to interpreter shutdown.
        if hasattr(self.mx, "clear_streams"):
            self.mx.clear_streams()

    def memory(self) -> tuple[dict[str, int], str]:
        mx = self.mx
        return (
            {
                "active": mx.get_active_memory(),
                "peak": mx.get_peak_memory(),
                "cache": mx.get_cache_memory(),
            },
            "mlx.core.get_active_memory/get_peak_memory/get_cache_memory",
        )


def _gelu(mx: Any, x: Any) -> Any:
    # tanh approximation from core ops, so it runs on whatever stream is current
    return 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
