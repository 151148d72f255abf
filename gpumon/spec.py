"""Pool specifications: what `--pool BACKEND[:DEVICE][,key=value...]` means, everywhere.

The same parser serves the TUI, `sweep` and the tests, so a spec that works in one place works
in all of them. Nothing here imports a framework: deciding *which* device a backend gets is the
worker's job (it is the only process that may import torch or mlx).
"""

from __future__ import annotations

import math

import msgspec

BACKENDS = ("mlx", "torch", "fault")
DEVICES: dict[str, tuple[str, ...]] = {
    # "gpu" lets MLX pick Metal or CUDA, whichever build is installed.
    "mlx": ("gpu", "cpu", "metal", "cuda"),
    "torch": ("mps", "cuda", "cpu"),
    "fault": ("cpu",),
}
WORKLOADS = ("matmul", "mlp", "generate")
DTYPES = ("float32", "float16", "bfloat16")
POLICIES = ("per-thread", "shared", "locked")
FAULT_KINDS = ("segv", "abort", "hang")
NATIVE_MODES = ("auto", "gdb", "off")

MAX_THREADS = 256
MAX_SIZE = 32768
MIN_SIZE = 8


class SpecError(ValueError):
    """A pool spec a user typed is wrong; the message is one sentence that names the fix."""


class FaultConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Synthetic fault injection for the `fault` backend (and only it)."""

    kind: str = "segv"
    # The fault is armed only while the pool runs at least this many threads, which is how
    # a demo reproduces "fine at 1 thread, dies at 2".
    at_threads: int = 2
    # Expected faults per second while armed (a Poisson process over worker threads' ops).
    rate: float = 2.0


class PoolConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker process needs to start one pool. Travels to the child as JSON."""

    name: str
    backend: str
    device: str | None = None  # None: the worker picks the best one and says why
    threads: int = 1
    workload: str = "matmul"
    size: int | None = None  # None: a default that suits the device
    dtype: str | None = None  # None: float32 on CPU, bfloat16 on GPUs
    # None: the framework's own behaviour (MLX < 0.31.2: shared; otherwise per-thread); the
    # worker resolves it and reports the policy it chose in every Sample and Ack. The default
    # becomes None once the supervisor records the resolved policy (a Crash before any Ack
    # would carry None, which the session log cannot load back).
    policy: str | None = "per-thread"
    # Ops between synchronisations; 1 means every measured op waited for the device.
    sync_every: int = 1
    fault: FaultConfig | None = None
    native_stacks: str = "auto"
    # torch only: intra-op threads per worker thread (torch.set_num_threads); None keeps
    # torch's default (one per core), which oversubscribes a CPU that runs several pools.
    intra_op: int | None = None

    @property
    def label(self) -> str:
        dev = self.device or "auto"
        return f"{self.backend}:{dev}"


def _check_int(key: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SpecError(f"{key}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise SpecError(f"{key}={value} is out of range; use {lo}..{hi}")
    return value


def _check_choice(key: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise SpecError(f"{key}={raw!r} is not one of: {', '.join(choices)}")
    return raw


def validate_threads(n: int) -> int:
    if not 1 <= n <= MAX_THREADS:
        raise SpecError(f"thread count {n} is out of range; use 1..{MAX_THREADS}")
    return n


def validate_size(n: int) -> int:
    if not MIN_SIZE <= n <= MAX_SIZE:
        raise SpecError(f"size {n} is out of range; use {MIN_SIZE}..{MAX_SIZE}")
    return n


def parse_fault_rate(raw: str) -> float:
    try:
        rate = float(raw)
    except ValueError:
        raise SpecError(f"fault rate {raw!r} is not a number (faults per second)") from None
    if not (rate > 0 and math.isfinite(rate)):
        raise SpecError(f"fault rate {raw!r} must be a positive number of faults per second")
    return rate


def parse_pool(text: str, defaults: PoolConfig | None = None) -> PoolConfig:
    """Parse `BACKEND[:DEVICE][,key=value...]`, e.g. `torch:cpu,threads=4,policy=locked`.

    `defaults` carries the command line's global options (--threads, --workload ...); keys in
    the spec override them for this pool only.
    """
    head, *pairs = [p.strip() for p in text.strip().split(",")]
    backend, _, device = head.partition(":")
    backend = backend.lower()
    if backend not in BACKENDS:
        raise SpecError(
            f"unknown backend {backend!r} in --pool {text!r}; use one of: " + ", ".join(BACKENDS)
        )
    dev: str | None = device.lower() or None
    if dev is not None:
        base = dev.split(":")[0]
        if base not in DEVICES[backend]:
            raise SpecError(
                f"{backend} has no device {dev!r}; use one of: " + ", ".join(DEVICES[backend])
            )
        if ":" in dev and not (base == "cuda" and dev.split(":", 1)[1].isdigit()):
            raise SpecError(f"device {dev!r} is not valid; an index is only allowed as cuda:N")
    fields: dict[str, object] = {}
    fault: dict[str, object] = {}
    for pair in pairs:
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        key = key.strip().replace("_", "-")
        value = value.strip()
        if not sep:
            raise SpecError(f"{pair!r} in --pool {text!r} should be key=value")
        if key == "threads":
            fields["threads"] = _check_int(key, value, 1, MAX_THREADS)
        elif key == "size":
            fields["size"] = _check_int(key, value, MIN_SIZE, MAX_SIZE)
        elif key == "workload":
            fields["workload"] = _check_choice(key, value, WORKLOADS)
        elif key == "dtype":
            fields["dtype"] = _check_choice(key, value, DTYPES)
        elif key == "policy":
            fields["policy"] = _check_choice(key, value, POLICIES)
        elif key == "sync-every":
            fields["sync_every"] = _check_int(key, value, 1, 10_000)
        elif key == "name":
            if not value or not value.replace("-", "").replace("_", "").isalnum():
                raise SpecError(f"pool name {value!r} must be letters, digits, '-' or '_'")
            fields["name"] = value
        elif key == "fault":
            fault["kind"] = _check_choice(key, value, FAULT_KINDS)
        elif key == "fault-at-threads":
            fault["at_threads"] = _check_int(key, value, 1, MAX_THREADS)
        elif key == "fault-rate":
            fault["rate"] = parse_fault_rate(value)
        elif key == "intra-op":
            if backend != "torch":
                raise SpecError("intra-op is a torch setting (torch.set_num_threads)")
            fields["intra_op"] = _check_int(key, value, 1, 1024)
        elif key == "native":
            fields["native_stacks"] = _check_choice(key, value, NATIVE_MODES)
        else:
            raise SpecError(f"unknown pool option {key!r} in --pool {text!r}")
    if fault and backend != "fault":
        raise SpecError("fault injection is only available on the synthetic 'fault' backend")

    base = defaults or PoolConfig(name="", backend=backend)
    merged_fault = base.fault
    if backend == "fault":
        merged_fault = msgspec.structs.replace(base.fault or FaultConfig(), **fault)
    else:
        merged_fault = None
    name = str(fields.pop("name", "")) or (head.lower() if dev else backend)
    return msgspec.structs.replace(
        base, name=name, backend=backend, device=dev, fault=merged_fault, **fields
    )


def unique_names(pools: list[PoolConfig]) -> list[PoolConfig]:
    """Give repeated pools distinct names (`torch:cpu`, `torch:cpu#2`) so events stay apart."""
    seen: dict[str, int] = {}
    out = []
    for p in pools:
        n = seen.get(p.name, 0) + 1
        seen[p.name] = n
        out.append(p if n == 1 else msgspec.structs.replace(p, name=f"{p.name}#{n}"))
    return out


def parse_thread_list(text: str) -> list[int]:
    """`1,2,4,8` or `1-4` (inclusive) or a mix; used by `sweep --threads`."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise SpecError(f"thread list {text!r} should look like 1,2,4,8 or 1-4") from None
        if a > b:
            raise SpecError(f"thread range {part!r} runs backwards")
        out.extend(range(a, b + 1))
    if not out:
        raise SpecError("thread list is empty; give e.g. --threads 1,2,4,8")
    for n in out:
        validate_threads(n)
    return out
