"""Pool specifications: what `--pool BACKEND[@VERSION][:DEVICE][,key=value...]` means, everywhere.

The pool-config invariants live here and only here: one validator per key (`KEYS`) serves the
`--pool` keys, the command line's global options (argparse `type=`) and the worker's answer to a
live command, so `threads=0` is refused with the same sentence wherever it is typed. Nothing
here imports a framework: deciding *which* device a backend gets is the worker's job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

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
# segv/abort: the process dies; hang: it stops answering; raise: one worker thread fails with
# a Python error; teardown: it dies while stopping (at interpreter exit).
FAULT_KINDS = ("segv", "abort", "hang", "raise", "teardown")
NATIVE_MODES = ("auto", "gdb", "off")
VERSIONED = ("mlx", "torch")  # backends whose framework version can be chosen per pool

MAX_THREADS = 256
MAX_SIZE = 32768
MIN_SIZE = 8
MAX_SYNC_EVERY = 10_000
MAX_INTRA_OP = 1024


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
    # worker resolves it and reports the policy it chose in Hello, every Sample and Ack.
    policy: str | None = None
    # Ops between synchronisations; 1 means every measured op waited for the device.
    sync_every: int = 1
    fault: FaultConfig | None = None
    native_stacks: str = "auto"
    # torch only: intra-op threads per worker thread (torch.set_num_threads); None keeps
    # torch's default (one per core), which oversubscribes a CPU that runs several pools.
    intra_op: int | None = None
    # The framework version to run (`mlx@0.31.1`): None is the one installed beside gpumon.
    version: str | None = None
    # An existing interpreter (or venv) to run the worker with, instead of building one.
    python: str | None = None

    @property
    def label(self) -> str:
        dev = self.device or "auto"
        ver = f"@{self.version}" if self.version else ""
        return f"{self.backend}{ver}:{dev}"


# ---- one validator per key ---------------------------------------------------------------


def _whole(key: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SpecError(f"{key}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise SpecError(f"{key}={value} is out of range; use {lo}..{hi}")
    return value


def _choice(key: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise SpecError(f"{key}={raw!r} is not one of: {', '.join(choices)}")
    return raw


def _name(raw: str) -> str:
    if not raw or not raw.replace("-", "").replace("_", "").isalnum():
        raise SpecError(f"pool name {raw!r} must be letters, digits, '-' or '_'")
    return raw


_VERSION = re.compile(r"^\d+(\.\d+){0,3}([a-z]+\d*)?(\.post\d+|\.dev\d+)?(\+[\w.]+)?$")


def parse_version(raw: str) -> str:
    """An exact release such as 0.31.1 or 2.5.1+cpu; ranges and names are refused."""
    raw = raw.strip()
    if not _VERSION.match(raw):
        raise SpecError(f"version {raw!r} is not an exact release such as 0.31.1")
    return raw


def parse_fault_rate(raw: str) -> float:
    try:
        rate = float(raw)
    except ValueError:
        raise SpecError(f"fault rate {raw!r} is not a number (faults per second)") from None
    if not (rate > 0 and math.isfinite(rate)):
        raise SpecError(f"fault rate {raw!r} must be a positive number of faults per second")
    return rate


def parse_seconds(raw: str, what: str = "seconds", *, allow_zero: bool = False) -> float:
    """A finite number of seconds (> 0, or >= 0 with allow_zero): nan and inf are refused."""
    try:
        value = float(raw)
    except ValueError:
        raise SpecError(f"{what} {raw!r} is not a number of seconds") from None
    ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and ok):
        need = "0 or more" if allow_zero else "more than 0"
        raise SpecError(f"{what} {raw!r} must be a finite number of seconds, {need}")
    return value


@dataclass(frozen=True)
class Key:
    """A pool key: the PoolConfig field it sets (or fault.<field>) and its validator."""

    field: str
    parse: Callable[[str], object]
    backends: tuple[str, ...] = BACKENDS
    only_why: str = ""  # the sentence for a key given to a backend it does not apply to


KEYS: dict[str, Key] = {
    "threads": Key("threads", lambda v: _whole("threads", v, 1, MAX_THREADS)),
    "size": Key("size", lambda v: _whole("size", v, MIN_SIZE, MAX_SIZE)),
    "workload": Key("workload", lambda v: _choice("workload", v, WORKLOADS)),
    "dtype": Key("dtype", lambda v: _choice("dtype", v, DTYPES)),
    "policy": Key("policy", lambda v: _choice("policy", v, POLICIES)),
    "sync-every": Key("sync_every", lambda v: _whole("sync-every", v, 1, MAX_SYNC_EVERY)),
    "name": Key("name", _name),
    "native": Key("native_stacks", lambda v: _choice("native", v, NATIVE_MODES)),
    "intra-op": Key(
        "intra_op",
        lambda v: _whole("intra-op", v, 1, MAX_INTRA_OP),
        ("torch",),
        "intra-op is a torch setting (torch.set_num_threads)",
    ),
    "version": Key(
        "version",
        parse_version,
        VERSIONED,
        "version= chooses an MLX or torch release; the fault backend has none",
    ),
    "python": Key("python", lambda v: v or _fail("python= needs a path to an interpreter")),
    "fault": Key(
        "fault.kind",
        lambda v: _choice("fault", v, FAULT_KINDS),
        ("fault",),
        "fault injection is only available on the synthetic 'fault' backend",
    ),
    "fault-at-threads": Key(
        "fault.at_threads",
        lambda v: _whole("fault-at-threads", v, 1, MAX_THREADS),
        ("fault",),
        "fault injection is only available on the synthetic 'fault' backend",
    ),
    "fault-rate": Key(
        "fault.rate",
        parse_fault_rate,
        ("fault",),
        "fault injection is only available on the synthetic 'fault' backend",
    ),
}


def _fail(message: str) -> str:
    raise SpecError(message)


def parse_key(key: str, raw: str) -> object:
    """The value of one pool key as typed (`threads`, `4`); raises SpecError."""
    k = KEYS.get(key.strip().replace("_", "-"))
    if k is None:
        raise SpecError(f"unknown pool option {key!r}; use one of: {', '.join(KEYS)}")
    return k.parse(raw.strip())


def validate_threads(n: int) -> int:
    if not 1 <= n <= MAX_THREADS:
        raise SpecError(f"thread count {n} is out of range; use 1..{MAX_THREADS}")
    return n


def validate_size(n: int) -> int:
    if not MIN_SIZE <= n <= MAX_SIZE:
        raise SpecError(f"size {n} is out of range; use {MIN_SIZE}..{MAX_SIZE}")
    return n


# ---- the spec grammar --------------------------------------------------------------------


def _head(text: str, head: str) -> tuple[str, str | None, str | None]:
    """`mlx`, `mlx:cpu`, `mlx@0.31.1`, `mlx@0.31.1:cpu`, `mlx:cpu@0.31.1` -> parts."""
    left, at, right = head.partition("@")
    backend, _, device = left.partition(":")
    version = None
    if at:
        ver, _, dev2 = right.partition(":")
        if device and dev2:
            raise SpecError(f"--pool {text!r} names the device twice")
        device = device or dev2
        version = parse_version(ver)
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
    return backend, dev, version


def parse_pool(text: str, defaults: PoolConfig | None = None) -> PoolConfig:
    """Parse `BACKEND[@VERSION][:DEVICE][,key=value...]`, e.g. `mlx@0.31.1:cpu,threads=2`.

    `defaults` carries the command line's global options (--threads, --workload ...); keys in
    the spec override them for this pool only.
    """
    head, *pairs = [p.strip() for p in text.strip().split(",")]
    backend, dev, version = _head(text, head)
    fields: dict[str, object] = {}
    fault: dict[str, object] = {}
    for pair in pairs:
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        key = key.strip().replace("_", "-")
        if not sep:
            raise SpecError(f"{pair!r} in --pool {text!r} should be key=value")
        k = KEYS.get(key)
        if k is None:
            raise SpecError(f"unknown pool option {key!r} in --pool {text!r}")
        parsed = k.parse(value.strip())
        if backend not in k.backends:
            raise SpecError(k.only_why)
        if k.field.startswith("fault."):
            fault[k.field.removeprefix("fault.")] = parsed
        else:
            fields[k.field] = parsed
    if version is not None:
        if "version" in fields and fields["version"] != version:
            raise SpecError(f"--pool {text!r} names two versions")
        if backend not in VERSIONED:
            raise SpecError(KEYS["version"].only_why)
        fields["version"] = version

    base = defaults or PoolConfig(name="", backend=backend)
    merged_fault = None
    if backend == "fault":
        merged_fault = msgspec.structs.replace(base.fault or FaultConfig(), **fault)
    name = str(fields.pop("name", "")) or _default_name(backend, dev, fields.get("version"))
    cfg = msgspec.structs.replace(
        base, name=name, backend=backend, device=dev, fault=merged_fault, **fields
    )
    if backend != "torch" and cfg.intra_op is not None:
        cfg = msgspec.structs.replace(cfg, intra_op=None)  # a global --intra-op is torch's only
    if backend not in VERSIONED and cfg.version is not None:
        cfg = msgspec.structs.replace(cfg, version=None)
    return cfg


def _default_name(backend: str, dev: str | None, version: object) -> str:
    ver = f"@{version}" if version else ""
    return f"{backend}{ver}" + (f":{dev}" if dev else "")


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


def rate_unit(workload: str) -> str:
    """What one op of a workload is, as a rate: a decoding step makes one token."""
    return "tokens/s" if workload == "generate" else "ops/s"


def size_text(workload: str, size: int) -> str:
    """A size as the screen shows it: matmul and mlp multiply size × size matrices ("256²");
    generate's size is its model's width, not a matrix ("width 256")."""
    return f"width {size}" if workload == "generate" else f"{size}²"
