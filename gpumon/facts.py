"""Report facts: the figures every report shows, computed once from the event stream.

`sweep`'s table, its JSON, the Markdown evidence report and `gpumon compare` all print these
objects, so "they cannot disagree" is a property of the code, not a hope. Each figure keeps
the unit in its name (`_s`, `_bytes`, `per_s`) and the cell keeps what it was measured on
(backend, device, the framework version the worker actually imported).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gpumon import analysis
from gpumon import events as ev

# Framework memory figure shown as "peak" when a cell has several (first present wins).
PEAK_KEYS = ("peak", "active", "allocated", "current")


@dataclass(frozen=True)
class RunFacts:
    seconds: float
    ops: int
    crashed: bool
    signal: str | None
    crash_after_s: float | None
    stop_crash_signal: str | None
    stalled: bool
    threads_failed: int


@dataclass(frozen=True)
class CellFacts:
    pool: str
    backend: str
    device: str
    device_name: str
    framework: str  # "mlx 0.31.1", "torch 2.13.0+cpu", "synthetic (fault backend)"
    version: str  # the version of `backend` the worker imported ("" for fault)
    policy: str
    workload: str
    size: int
    dtype: str
    threads: int
    runs: int
    measured_s: float
    ops_per_s: float | None  # median over runs
    ops_per_s_min: float | None
    ops_per_s_max: float | None
    flop_per_s: float | None  # median; None for the synthetic backend
    lat_p50_s: float | None
    lat_p99_s: float | None
    mem_peak_bytes: dict[str, int]  # framework allocator figures, by the framework's names
    mem_source: str
    rss_peak_bytes: int | None
    crashes: int  # runs that died while measuring (or starting)
    crash_signals: tuple[str, ...]
    first_crash_after_s: float | None
    stop_crashes: int  # deaths after gpumon asked the worker to stop
    stop_crash_signals: tuple[str, ...]
    hangs: int  # runs in which the worker stopped answering
    threads_failed: int  # worker threads that raised (the process lived on)
    run_details: tuple[RunFacts, ...] = field(default=())

    @property
    def synthetic(self) -> bool:
        return self.backend == "fault"

    @property
    def failures(self) -> int:
        """Runs that crashed or hung."""
        return sum(r.crashed or r.stalled for r in self.run_details)

    @property
    def headline_mem(self) -> tuple[str, int] | None:
        for k in PEAK_KEYS:
            if k in self.mem_peak_bytes:
                return k, self.mem_peak_bytes[k]
        return None


def cells(events: Iterable[ev.Event], warmup: float = analysis.WARMUP) -> list[CellFacts]:
    fold = CellFold(warmup)
    for e in events:
        fold.add(e)
    return fold.cells()


class CellFold:
    """`cells()` one event at a time, for a reader that never holds the whole log (the
    streaming export): the runs fold as they come, and what the cells name besides the runs
    (the worker's PoolReady, the memory figures' source) is the last one seen per pool."""

    def __init__(self, warmup: float = analysis.WARMUP) -> None:
        self.runs = analysis.RunFold(warmup)
        self.ready: dict[str, ev.PoolReady] = {}
        self.mem_source: dict[str, str] = {}

    def add(self, e: ev.Event) -> None:
        self.runs.add(e)
        if type(e) is ev.Sample:
            if e.mem_source:
                self.mem_source[e.pool] = e.mem_source
        elif isinstance(e, ev.PoolReady):
            self.ready[e.pool] = e

    def cells(self) -> list[CellFacts]:
        """The cells of the events added so far."""
        return _cells(self.runs.runs, self.ready, self.mem_source)


def _cells(
    runs: list[analysis.Run], ready: dict[str, ev.PoolReady], mem_source: dict[str, str]
) -> list[CellFacts]:
    out = []
    for c in analysis.cells(runs):
        r = c.first
        rd = ready.get(r.pool)
        rng = c.ops_per_s_range
        out.append(
            CellFacts(
                pool=r.pool,
                backend=r.backend,
                device=r.device,
                device_name=rd.device_name if rd else "",
                framework=rd.framework if rd else "",
                version=(rd.versions.get(r.backend, "") if rd else ""),
                policy=r.policy,
                workload=r.workload,
                size=r.size,
                dtype=r.dtype,
                threads=r.threads,
                runs=len(c.runs),
                measured_s=sum(x.seconds for x in c.runs),
                ops_per_s=c.ops_per_s,
                ops_per_s_min=rng[0] if rng else None,
                ops_per_s_max=rng[1] if rng else None,
                flop_per_s=None if r.backend == "fault" else c.flops,
                lat_p50_s=c.latency(50),
                lat_p99_s=c.latency(99),
                mem_peak_bytes=c.mem_peak,
                mem_source=mem_source.get(r.pool, ""),
                rss_peak_bytes=c.rss_peak or None,
                crashes=c.crashes,
                crash_signals=tuple(sorted({x.crash_signal for x in c.runs if x.crash_signal})),
                first_crash_after_s=c.first_crash_after,
                stop_crashes=c.stop_crashes,
                stop_crash_signals=tuple(
                    sorted({x.stop_crash_signal for x in c.runs if x.stop_crash_signal})
                ),
                hangs=c.hangs,
                threads_failed=c.threads_failed,
                run_details=tuple(
                    RunFacts(
                        seconds=x.seconds,
                        ops=x.ops,
                        crashed=x.crashed,
                        signal=x.crash_signal,
                        crash_after_s=x.crash_after,
                        stop_crash_signal=x.stop_crash_signal,
                        stalled=x.stalled,
                        threads_failed=x.threads_failed,
                    )
                    for x in c.runs
                ),
            )
        )
    return out
