"""Per-pool live figures over an interval: the one fold `gpumon pipe` and the Prometheus
exporter share, so a JSON line and a scraped gauge can never disagree.

A listener on the session's bus: it folds every event (samples ~10/s per pool, crashes,
stalls, restarts, lifecycle) into per-pool accumulators, and `roll()` closes the interval and
returns one `PoolFigures` per pool. Rates are over the seconds the worker measured in the
interval (the sum of its samples' windows), not the monitor's wall clock, so a late message
does not change a figure; latency percentiles come from the merged histograms
(gpumon.latency: buckets about 9% wide), memory figures are the interval's peaks.

Cumulative counts (ops, crashes by signal, hangs, restarts) never reset: Prometheus counters
and the pipe's totals read them. Pure and Textual-free; nothing here touches a process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpumon import events as ev
from gpumon.latency import hist_percentile, merge

# What a pool is doing, as both consumers name it.
STATES = ("starting", "running", "paused", "stalled", "crashed", "restarting", "failed", "stopped")


@dataclass(frozen=True)
class PoolFigures:
    """One pool over one interval. Units are in the names (`_s`, `_bytes`, `per_s`)."""

    pool: str
    backend: str
    version: str  # the version of `backend` the worker imported ("" before ready, fault)
    framework: str  # "mlx 0.31.1", "torch 2.13.0+cpu", "synthetic (fault backend)"
    device: str  # what the worker picked ("auto"/requested until it is ready)
    policy: str
    workload: str
    size: int | None
    dtype: str
    threads: int
    state: str  # one of STATES
    pid: int | None
    measured_s: float  # worker-measured seconds the interval's samples cover
    ops: int  # ops completed in the interval
    ops_per_s: float | None  # None: no sample arrived in the interval
    flop_per_s: float | None  # None also for the synthetic backend (it does no FLOPs)
    lat_p50_s: float | None
    lat_p99_s: float | None
    lat_max_s: float | None
    mem_bytes: dict[str, int]  # framework allocator, peak in the interval, framework's names
    mem_source: str
    gpu_mem_bytes: int | None  # driver-side (NVML, by pid), peak in the interval
    cpu_percent: float | None  # of one core, whole worker process (psutil), last reading
    rss_bytes: int | None  # peak in the interval (psutil)
    ops_total: int  # since the session started, all of this pool's processes
    crashes: int
    crash_signals: dict[str, int]  # "SIGSEGV" / "exit 1" -> count, since the session started
    hangs: int
    restarts: int
    thread_failures: int

    @property
    def up(self) -> bool:
        return self.state in ("running", "paused")


@dataclass
class _Pool:
    name: str
    backend: str = ""
    version: str = ""
    framework: str = ""
    device: str = "auto"
    policy: str = "default"
    workload: str = ""
    size: int | None = None
    dtype: str = ""
    threads: int = 0
    state: str = "starting"
    pid: int | None = None
    # the open interval
    measured_s: float = 0.0
    ops: int = 0
    flop: float = 0.0
    lat_hist: dict[int, int] = field(default_factory=dict)
    lat_max: float | None = None
    mem: dict[str, int] = field(default_factory=dict)
    mem_source: str = ""
    gpu_mem: int | None = None
    cpu_percent: float | None = None
    rss: int | None = None
    # since the session started
    ops_total: int = 0
    crashes: int = 0
    crash_signals: dict[str, int] = field(default_factory=dict)
    hangs: int = 0
    restarts: int = 0
    thread_failures: int = 0

    def add(self, s: ev.Sample) -> None:
        n = s.total_ops
        self.measured_s += s.interval
        self.ops += n
        self.ops_total += n
        self.flop += n * s.flop_per_op
        self.threads = s.threads
        if self.state in ("starting", "running", "paused"):
            self.state = s.state
        if s.policy:
            self.policy = s.policy
        if s.workload:
            self.workload = s.workload
        merge(self.lat_hist, s.lat_hist)
        if s.lat_max is not None:
            self.lat_max = max(self.lat_max or 0.0, s.lat_max)
        for k, v in s.mem.items():
            self.mem[k] = max(self.mem.get(k, 0), v)
        if s.mem_source:
            self.mem_source = s.mem_source
        if s.gpu_mem is not None:
            self.gpu_mem = max(self.gpu_mem or 0, s.gpu_mem)
        if s.cpu_percent is not None:
            self.cpu_percent = s.cpu_percent
        if s.rss is not None:
            self.rss = max(self.rss or 0, s.rss)

    def snapshot(self) -> PoolFigures:
        m = self.measured_s
        per_s = self.ops / m if m > 0 else None
        flops = self.flop / m if m > 0 and self.backend != "fault" else None
        return PoolFigures(
            pool=self.name,
            backend=self.backend,
            version=self.version,
            framework=self.framework,
            device=self.device,
            policy=self.policy,
            workload=self.workload,
            size=self.size,
            dtype=self.dtype,
            threads=self.threads,
            state=self.state,
            pid=self.pid,
            measured_s=m,
            ops=self.ops,
            ops_per_s=per_s,
            flop_per_s=flops,
            lat_p50_s=hist_percentile(self.lat_hist, 50),
            lat_p99_s=hist_percentile(self.lat_hist, 99),
            lat_max_s=self.lat_max,
            mem_bytes=dict(self.mem),
            mem_source=self.mem_source,
            gpu_mem_bytes=self.gpu_mem,
            cpu_percent=self.cpu_percent,
            rss_bytes=self.rss,
            ops_total=self.ops_total,
            crashes=self.crashes,
            crash_signals=dict(self.crash_signals),
            hangs=self.hangs,
            restarts=self.restarts,
            thread_failures=self.thread_failures,
        )

    def reset(self) -> None:
        """Begin a new interval (the cumulative counts stay)."""
        self.measured_s, self.ops, self.flop = 0.0, 0, 0.0
        self.lat_hist, self.lat_max = {}, None
        self.mem, self.gpu_mem, self.rss = {}, None, None


class LiveFigures:
    """A bus listener; `roll()` ends the interval. Pools are listed in the order they first
    appeared and stay listed once stopped (their state says so)."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}

    def _pool(self, name: str) -> _Pool:
        p = self._pools.get(name)
        if p is None:
            p = self._pools[name] = _Pool(name)
        return p

    def __call__(self, e: ev.Event) -> None:
        match e:
            case ev.Sample():
                self._pool(e.pool).add(e)
            case ev.PoolStarting(config=cfg):
                p = self._pool(e.pool)
                p.backend, p.workload, p.threads = cfg.backend, cfg.workload, cfg.threads
                p.device = p.device if p.pid else (cfg.device or "auto")
                p.policy = cfg.policy or p.policy
                p.size, p.dtype = cfg.size, cfg.dtype or ""
                p.state, p.pid = "starting", None
            case ev.PoolReady():
                p = self._pool(e.pool)
                p.backend, p.device, p.pid = e.backend, e.device, e.pid
                p.framework, p.version = e.framework, e.versions.get(e.backend, "")
                p.policy = e.policy or p.policy
                p.size, p.dtype = e.size, e.dtype
                p.state = "running"
            case ev.Crash():
                p = self._pool(e.pool)
                p.crashes += 1
                key = e.signal or (f"exit {e.exit_code}" if e.exit_code is not None else "death")
                p.crash_signals[key] = p.crash_signals.get(key, 0) + 1
                p.state = "crashed"
            case ev.Stall():
                p = self._pool(e.pool)
                p.hangs += 1
                p.state = "stalled"
            case ev.StallCleared():
                p = self._pool(e.pool)
                if p.state == "stalled":
                    p.state = "running"
            case ev.PoolRestart():
                p = self._pool(e.pool)
                p.restarts += 1
                p.state = "restarting"
            case ev.PoolFailed():
                self._pool(e.pool).state = "failed"
            case ev.PoolStopped():
                p = self._pool(e.pool)
                if p.state != "failed":
                    p.state = "stopped"
            case ev.ThreadFailed():
                self._pool(e.pool).thread_failures += 1
            case ev.Control(config=cfg) if cfg is not None and e.ok:
                p = self._pool(e.pool)
                p.threads, p.workload = cfg.threads, cfg.workload
                p.policy = cfg.policy or p.policy
                p.size, p.dtype = cfg.size, cfg.dtype or p.dtype

    @property
    def pools(self) -> list[str]:
        return list(self._pools)

    def identity(self, pool: str) -> tuple[str, str, str, str]:
        """(backend, device, version, policy) of a pool as now known: what labels it."""
        p = self._pool(pool)
        return (p.backend, p.device, p.version, p.policy)

    def peek(self) -> list[PoolFigures]:
        """The open interval's figures so far, without ending it."""
        return [p.snapshot() for p in self._pools.values()]

    def roll(self) -> list[PoolFigures]:
        """End the interval: one PoolFigures per pool, and a fresh interval begins."""
        out = self.peek()
        for p in self._pools.values():
            p.reset()
        return out
