"""MLX pools: Metal GPU on macOS, CUDA when the CUDA build is installed, else CPU.

Threads build and evaluate their own arrays on the stream their policy gives them (see
mlx_policies.py for what each policy means on each MLX version) and call `mx.clear_streams()`
before they exit where MLX has it. Only APIs present since mlx 0.30 are assumed: gpumon must
start on the old versions whose threading bugs it exists to show.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from gpumon.worker.backends import mlx_policies
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
from gpumon.worker.backends.mlx_generate import MlxDecoder, gelu

INSTALL_FIX = (
    "install it with: pip install 'gpumon[mlx]' (macOS: mlx; Linux CPU: mlx[cpu]; "
    "Linux CUDA: mlx[cuda])"
)


def _device_info(mx: Any) -> dict[str, Any]:
    """mx.device_info where it exists, mx.metal.device_info on older builds; {} if neither."""
    for fn in (getattr(mx, "device_info", None), getattr(mx.metal, "device_info", None)):
        if fn is None:
            continue
        try:
            return dict(fn())
        except (RuntimeError, AttributeError, TypeError, ValueError):
            continue
    return {}


def _memory_fn(mx: Any, what: str) -> Any:
    """mx.get_<what>_memory, or the older mx.metal.get_<what>_memory."""
    name = f"get_{what}_memory"
    return getattr(mx, name, None) or getattr(mx.metal, name, None)


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
        if self.gpu_kind:
            name = f"{_device_info(mx).get('device_name', '?')} ({self.gpu_kind})"
        else:
            name = cpu_name()
        dev = "gpu" if self.gpu_kind else "cpu"
        self.version = str(getattr(mx, "__version__", "0"))
        self._dtypes_ok: set[str] = set()
        self.streams = self._plan_streams()
        for policy, how in self.streams.plan.how.items():
            # For the stderr log that goes with every crash record: what a policy meant here.
            print(f"gpumon mlx {self.version}: {policy} = {how}", file=sys.stderr, flush=True)
        versions = {"mlx": self.version, "python": sys.version.split()[0]}
        if self.gpu_kind:
            # The GPU family on Apple silicon (applegpu_g16s), the SM on CUDA builds.
            arch = _device_info(mx).get("architecture")
            if arch:
                versions["gpu architecture"] = str(arch)
            if self.gpu_kind == "CUDA":
                versions.update(cuda_library_versions())
        return DeviceChoice(dev, name, reason, f"mlx {self.version}", versions)

    def _plan_streams(self) -> mlx_policies.Streams:
        """Probe only what this version leaves in doubt; the default behaviour is never probed."""
        mx, dev = self.mx, self.mx_device
        unsafe = hasattr(mx, "new_thread_unsafe_stream")
        per_thread_err = shared_err = None
        shared = None
        if mlx_policies.shares_default_stream(self.version):
            per_thread_err = mlx_policies.probe_own_stream(mx, dev)
        elif not unsafe:
            shared, shared_err = mlx_policies.probe_cross_thread_stream(mx, dev)
        plan = mlx_policies.plan(self.version, unsafe, per_thread_err, shared_err)
        return mlx_policies.Streams(mx, dev, plan, shared=None if shared_err else shared)

    def is_gpu(self) -> bool:
        return self.gpu_kind is not None

    def default_size(self, kind: str = "matmul") -> int:
        if kind == "generate" or self.is_gpu():
            return super().default_size(kind)
        # MLX's CPU GEMM is far slower than torch's here (about 6 GFLOP/s at 512 on 2 cores);
        # 256 keeps a CPU pool at tens of ops/s so the live view has something to show.
        return 256

    def policies(self) -> dict[str, str]:
        return dict(self.streams.plan.reasons)

    def default_policy(self) -> str:
        return self.streams.plan.default

    def policy_meanings(self) -> dict[str, str]:
        return dict(self.streams.plan.how)

    def validate(self, workload: Workload, threads: int) -> None:
        if self.gpu_kind is None:
            super().validate(workload, threads)
        else:
            info = _device_info(self.mx)
            try:
                limit = int(
                    info.get("max_recommended_working_set_size") or info.get("memory_size") or 0
                )
            except (TypeError, ValueError):
                limit = 0
            check_fits(workload.kind, workload.size, workload.dtype, threads, limit or None, "GPU")
        if workload.dtype in self._dtypes_ok:
            # Proven once is enough: a second probe would race the running threads' evals on
            # versions where every thread shares the default stream.
            return
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
        self._dtypes_ok.add(workload.dtype)

    def new_thread_state(self, workload: Workload, slot: int) -> ThreadState:
        mx = self.mx
        stream = self.streams.for_policy(workload.policy)
        if workload.kind == "generate":
            model = MlxDecoder(mx, workload.size, workload.dtype, stream, seed=1000 + slot)
            return ThreadState("generate", stream=stream, model=model)
        dt = getattr(mx, workload.dtype)
        n = workload.size
        # A per-thread key, never the global random state: building inputs must be safe on
        # every version, so only the workload itself decides whether threads share state.
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
        return ThreadState(workload.kind, inputs, stream)

    def run_ops(self, state: ThreadState, n: int) -> None:
        mx = self.mx
        s = state.stream
        if state.kind == "generate":
            # Each token needs the one before it on the host, so every step waits anyway.
            for _ in range(n):
                state.model.step()
            return
        if state.kind == "matmul":
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
                        h = gelu(mx, h @ w)
                    outs.append(h)
        # mx.eval blocks until the results exist: an op counts once the device is done.
        mx.eval(*outs)

    def make_op(self, state: ThreadState, n: int) -> Callable[[], object]:
        # One op per call, without run_ops's frame and branches around it (see torch's).
        if n != 1 or state.kind == "mlp":
            return super().make_op(state, n)
        if state.kind == "generate":
            return state.model.step
        c, a, b = state.inputs
        s, addmm, evaluate = state.stream, self.mx.addmm, self.mx.eval

        def op() -> None:
            evaluate(addmm(c, a, b, stream=s))

        return op

    def thread_exit(self, state: ThreadState) -> None:
        # Streams and their command encoders belong to this thread; release them here, as
        # MLX asks (0.32 on CPU aborts at exit otherwise), instead of at interpreter shutdown.
        if hasattr(self.mx, "clear_streams"):
            self.mx.clear_streams()

    def memory(self) -> tuple[dict[str, int], str]:
        mx = self.mx
        out: dict[str, int] = {}
        for what in ("active", "peak", "cache"):
            fn = _memory_fn(mx, what)
            if fn is not None:
                out[what] = int(fn())
        where = "mlx.core" if hasattr(mx, "get_active_memory") else "mlx.core.metal"
        return out, f"{where}.get_active_memory/get_peak_memory/get_cache_memory"
