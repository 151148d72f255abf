"""What a backend must provide to the worker runtime, and the errors it may raise."""

from __future__ import annotations

import functools
import os
import platform
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpumon.spec import PoolConfig
from gpumon.worker.backends import generate_shape

# mlp workload shape: a fixed batch through a fixed depth, so FLOP/op depends on size only.
MLP_BATCH = 256
MLP_LAYERS = 4


class BackendUnavailable(Exception):
    """This pool cannot run here. `message` says what is wrong, `fix` what to do about it."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


@dataclass(frozen=True)
class Workload:
    kind: str  # matmul | mlp | generate
    size: int
    dtype: str
    policy: str
    sync_every: int


@dataclass
class DeviceChoice:
    device: str
    device_name: str
    reason: str
    framework: str
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class ThreadState:
    """One worker thread's tensors, and the stream it submits to (a torch.cuda.Stream, an MLX
    Stream or Device, or None where the device has no streams). `generate` keeps its model
    (weights and KV cache) in `model` and has no `inputs`."""

    kind: str
    inputs: tuple[Any, ...] = ()
    stream: Any = None
    model: Any = None


class RuntimeView(Protocol):
    """What a backend may read from the runtime (the fault backend arms on thread count)."""

    @property
    def threads_running(self) -> int: ...


def flop_per_op(kind: str, size: int) -> float:
    if kind == "matmul":
        return 2.0 * size**3  # addmm: N^3 multiply-adds; the N^2 add is noise
    if kind == "generate":
        return generate_shape.flop_per_token(size)  # one op is one token
    return MLP_LAYERS * 2.0 * MLP_BATCH * size**2


def bytes_per_thread(kind: str, size: int, itemsize: int) -> int:
    """Device memory one worker thread's tensors need (inputs, weights, one live output)."""
    if kind == "matmul":
        return 4 * size * size * itemsize
    if kind == "generate":
        return generate_shape.bytes_per_thread(size, itemsize)
    return (MLP_LAYERS * size * size + 3 * MLP_BATCH * size) * itemsize


ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


def suggest_policy(reasons: dict[str, str], default: str, refused: str) -> str:
    """The policy to offer instead of `refused`: the default when it is available, else the
    first available one; never `refused` itself, so an error and its fix cannot disagree."""
    for cand in (default, "per-thread", "shared", "locked"):
        if cand != refused and reasons.get(cand) == "":
            return cand
    return "locked"  # gpumon's own lock works on every backend


def free_host_memory() -> int | None:
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (OSError, ValueError):
        return None


def check_fits(
    kind: str, size: int, dtype: str, threads: int, free: int | None, where: str
) -> None:
    """Refuse sizes that cannot fit instead of letting the allocator kill the worker."""
    if free is None:
        return
    need = bytes_per_thread(kind, size, ITEMSIZE[dtype]) * threads
    if need > 0.8 * free:
        gib = 1 << 30
        raise BackendUnavailable(
            f"{kind} size {size} {dtype} x {threads} threads needs {need / gib:.1f} GiB, "
            f"but only {free / gib:.1f} GiB of {where} memory is free",
            "use a smaller --size or fewer --threads",
        )


def cpu_name() -> str:
    name = platform.processor() or platform.machine()
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        name = line.split(":", 1)[1].strip()
                        break
        elif sys.platform == "darwin":
            import subprocess

            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=2,
            )
            name = out.stdout.strip() or name
    except (OSError, ValueError):
        pass
    return f"{name} ({os.cpu_count()} cores)"


# NVIDIA libraries a framework's wheels pull in, by package name (-cu12 and -cu13 alike):
# their versions are what an upstream CUDA bug report asks for beside the CUDA toolkit's.
CUDA_LIBRARIES = {
    "nvidia-cublas": "cuBLAS",
    "nvidia-cudnn": "cuDNN",
    "nvidia-cuda-runtime": "CUDA runtime",
    "nvidia-nccl": "NCCL",
}


def cuda_library_versions() -> dict[str, str]:
    """`{"cuBLAS": "12.8.4.1", ...}` from the installed NVIDIA wheels' metadata; {} for a build
    that links its own (the figures then come from the framework itself, or nowhere)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        for prefix, label in CUDA_LIBRARIES.items():
            if (name == prefix or name.startswith(prefix + "-cu")) and label not in out:
                out[label] = dist.version
    return out


class Backend(ABC):
    """One framework on one device. Per-thread methods run on the worker thread itself, because
    MLX (>= 0.31.2) and CUDA streams belong to the thread that made them."""

    name: str = ""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.runtime: RuntimeView | None = None

    @abstractmethod
    def setup(self) -> DeviceChoice:
        """Import the framework and pick the device. Raises BackendUnavailable."""

    def is_gpu(self) -> bool:
        return False

    def default_size(self, kind: str = "matmul") -> int:
        if kind == "generate":
            # A decoding step is a chain of small matrix-vector products: per-op overhead, not
            # FLOPs, sets its pace, so a width near a small model's keeps tokens/s meaningful.
            return 1024 if self.is_gpu() else 256
        return 4096 if self.is_gpu() else 512

    def default_dtype(self) -> str:
        return "bfloat16" if self.is_gpu() else "float32"

    def flop_per_op(self, workload: Workload) -> float:
        return flop_per_op(workload.kind, workload.size)

    def policies(self) -> dict[str, str]:
        """Policy -> "" when available, else why not (shown to the user as is)."""
        return {"per-thread": "", "shared": "", "locked": ""}

    def default_policy(self) -> str:
        """The framework's own behaviour, used when a pool names no policy; never refused."""
        return "per-thread"

    def policy_meanings(self) -> dict[str, str]:
        """Policy -> what it does with this framework version, in words (for the record)."""
        return {}

    def suggest_policy(self, refused: str) -> str:
        return suggest_policy(self.policies(), self.default_policy(), refused)

    def validate(self, workload: Workload, threads: int) -> None:
        """Raise BackendUnavailable if the workload cannot run (dtype, memory)."""
        check_fits(
            workload.kind, workload.size, workload.dtype, threads, free_host_memory(), "host"
        )

    @abstractmethod
    def new_thread_state(self, workload: Workload, slot: int) -> Any:
        """Build this thread's inputs on this thread."""

    @abstractmethod
    def run_ops(self, state: Any, n: int) -> None:
        """Run n ops and wait until the device has finished them."""

    def make_op(self, state: Any, n: int) -> Callable[[], object]:
        """`run_ops(state, n)` as one call without arguments, made once per thread and workload.
        The runtime calls it in its hot loop, so a backend may return something cheaper to call
        than this method (a C-level partial, a bound method): whatever it returns must do
        exactly what run_ops does."""
        return functools.partial(self.run_ops, state, n)

    def thread_exit(self, state: Any) -> None:  # noqa: B027 - optional hook
        """Release per-thread framework state before the thread ends."""

    def memory(self) -> tuple[dict[str, int], str]:
        return {}, ""
