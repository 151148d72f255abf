"""Turns an event stream into runs and table cells: throughput vs threads, crash rates.

A *run* is a stretch of one pool at one configuration (threads, policy, workload, size, dtype)
that ends with a change, a stop or a crash. A *cell* groups the runs of one configuration.
`gpumon sweep`'s table and the Markdown evidence report are both built from these, from the
same events the live screen shows, so none of them can disagree.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from gpumon import control
from gpumon import events as ev
from gpumon.latency import hist_percentile, merge

WARMUP = 0.3  # seconds after a (re)configuration whose samples are not measured
# A crash this soon after the change that began its run is reported as following that change
# ("0.23 s after threads 8→1"), not as a crash of the new configuration alone: a shrink or a
# policy switch is itself a code path (threads exiting, streams torn down) that can crash.
ATTRIBUTION_WINDOW = 2.0  # seconds


@dataclass
class Run:
    pool: str
    backend: str
    device: str
    policy: str
    workload: str
    size: int
    dtype: str
    threads: int
    start_t: float
    seconds: float = 0.0
    ops: int = 0
    flop: float = 0.0
    lat_hist: dict[int, int] = field(default_factory=dict)
    mem_peak: dict[str, int] = field(default_factory=dict)
    rss_peak: int = 0
    crashed: bool = False
    crash_signal: str | None = None
    crash_after: float | None = None  # seconds from run start to the death
    # Deaths after gpumon asked the worker to stop (MLX aborting in teardown): counted apart,
    # they are not crashes of the measured configuration.
    stop_crash_signal: str | None = None
    stalled: bool = False  # the worker stopped answering (a hang) during this run
    threads_failed: int = 0  # worker threads that died of a Python-level error
    end_t: float | None = None
    crash_id: str = ""
    # The command that began this run ("threads 8→1", "policy shared"); "" for a run that
    # began with its process.
    began_with: str = ""
    # A command the worker had not acknowledged when it died, and how long before it was sent.
    in_flight: str = ""
    in_flight_for: float | None = None

    @property
    def key(self) -> tuple[str, str, str, str, str, int, str, int]:
        return (
            self.pool,
            self.backend,
            self.device,
            self.policy,
            self.workload,
            self.size,
            self.dtype,
            self.threads,
        )

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def attribution(self) -> str | None:
        """`0.23 s after threads 8→1` when the crash followed the change that began the run
        within ATTRIBUTION_WINDOW; None otherwise."""
        if self.crashed and self.in_flight and self.in_flight_for is not None:
            sent = f"{self.in_flight_for:.2f} s after {self.in_flight} was sent"
            return f"{sent}, not yet acknowledged"
        if not (self.crashed and self.began_with and self.crash_after is not None):
            return None
        if self.crash_after > ATTRIBUTION_WINDOW:
            return None
        return f"{self.crash_after:.2f} s after {self.began_with}"

    @property
    def flops(self) -> float:
        return self.flop / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Cell:
    runs: list[Run]

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def measured(self) -> list[Run]:
        return [r for r in self.runs if r.seconds > 0]

    def _rates(self, attr: str) -> list[float]:
        return [getattr(r, attr) for r in self.measured]

    @property
    def ops_per_s(self) -> float | None:
        v = self._rates("ops_per_s")
        return statistics.median(v) if v else None

    @property
    def ops_per_s_range(self) -> tuple[float, float] | None:
        v = self._rates("ops_per_s")
        return (min(v), max(v)) if v else None

    @property
    def flops(self) -> float | None:
        v = self._rates("flops")
        return statistics.median(v) if v else None

    @property
    def lat_hist(self) -> dict[int, int]:
        h: dict[int, int] = {}
        for r in self.runs:
            merge(h, r.lat_hist)
        return h

    def latency(self, q: float) -> float | None:
        return hist_percentile(self.lat_hist, q)

    @property
    def mem_peak(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            for k, v in r.mem_peak.items():
                out[k] = max(out.get(k, 0), v)
        return out

    @property
    def rss_peak(self) -> int:
        return max((r.rss_peak for r in self.runs), default=0)

    @property
    def crashes(self) -> int:
        return sum(r.crashed for r in self.runs)

    @property
    def stop_crashes(self) -> int:
        return sum(r.stop_crash_signal is not None for r in self.runs)

    @property
    def hangs(self) -> int:
        return sum(r.stalled for r in self.runs)

    @property
    def threads_failed(self) -> int:
        return sum(r.threads_failed for r in self.runs)

    @property
    def failures(self) -> int:
        """Runs that crashed or hung: what a sweep's exit status and crash rate count."""
        return sum(r.crashed or r.stalled for r in self.runs)

    @property
    def first_crash_after(self) -> float | None:
        v = [r.crash_after for r in self.runs if r.crash_after is not None]
        return min(v) if v else None


@dataclass
class _PoolTrack:
    backend: str = ""
    device: str = ""
    size: int = 0
    dtype: str = ""
    run: Run | None = None
    # The latest run of the current worker process, open or closed: a death while stopping,
    # a stall or a thread failure after its last sample belongs to it.
    last: Run | None = None
    changed_t: float = 0.0
    # The process has died: a sample it sent while dying (its sampler thread runs on while
    # faulthandler or gdb write their dumps) is no new run of its configuration.
    dead: bool = False
    policy: str = ""  # the configuration a stall without samples is a run of
    workload: str = ""
    threads: int = 0
    change: str = ""  # the command that began the coming run, as Run.began_with


def runs(events: Iterable[ev.Event], warmup: float = WARMUP) -> list[Run]:
    fold = RunFold(warmup)
    for e in events:
        fold.add(e)
    return fold.runs


class RunFold:
    """`runs()` one event at a time: what a reader that never holds the whole log (the
    streaming export) folds the samples into. `runs` grows as events are added; a run's
    figures are final once a later event has closed it (or the events have ended)."""

    def __init__(self, warmup: float = WARMUP) -> None:
        self.warmup = warmup
        self.runs: list[Run] = []
        self._tracks: dict[str, _PoolTrack] = {}

    def _close(self, tr: _PoolTrack, t: float) -> None:
        if tr.run is not None:
            tr.run.end_t = t
            tr.run = None

    def _begin(
        self,
        tr: _PoolTrack,
        pool: str,
        e: ev.Sample | ev.Crash | ev.Stall | ev.ThreadFailed,
        backend: str,
        device: str,
    ) -> Run:
        """End the pool's current run and start one for the configuration `e` reports."""
        self._close(tr, e.t)
        policy = getattr(e, "policy", "") or tr.policy
        workload = getattr(e, "workload", "") or tr.workload
        r = tr.run = Run(
            pool,
            backend,
            device,
            policy,
            workload,
            tr.size,
            tr.dtype,
            getattr(e, "threads", 0) or tr.threads,
            start_t=tr.changed_t or e.t,
            began_with=tr.change,
        )
        tr.last = r
        self.runs.append(r)
        return r

    def add(self, e: ev.Event) -> None:
        if type(e) is ev.Sample:  # most of a log: its own path, first
            self._sample(e)
            return
        pool = getattr(e, "pool", "")
        if not pool:
            return
        tr = self._tracks.get(pool)
        if tr is None:
            tr = self._tracks[pool] = _PoolTrack()
        close, begin = self._close, self._begin
        r: Run | None
        if isinstance(e, ev.PoolReady):
            tr.backend, tr.device, tr.size, tr.dtype = e.backend, e.device, e.size, e.dtype
            tr.policy = e.policy or tr.policy  # what the worker resolved a default to
            close(tr, e.t)
            tr.changed_t = e.t
            tr.change = ""
        elif isinstance(e, ev.Control) and e.ok:
            before = tr.threads
            if e.config is not None:
                tr.size, tr.dtype = e.config.size or tr.size, e.config.dtype or tr.dtype
                tr.policy, tr.workload = e.config.policy or tr.policy, e.config.workload
                tr.threads = e.config.threads
            if isinstance(e.command, control.RECONFIGURING):
                close(tr, e.t)
                tr.changed_t = e.t
                tr.change = (
                    f"threads {before}→{tr.threads}"
                    if isinstance(e.command, control.SetThreads)
                    else control.describe(e.command)
                )
        elif isinstance(e, ev.Crash):
            how = e.signal or (f"exit {e.exit_code}" if e.exit_code is not None else "death")
            if e.during == "stopping":
                ended = tr.run or tr.last or begin(tr, pool, e, tr.backend, tr.device)
                ended.stop_crash_signal = how
                close(tr, e.t)
                return
            r = tr.run
            if r is None:  # died before its first sample: still a run of its configuration
                r = begin(tr, pool, e, e.backend or tr.backend, e.device or tr.device)
            r.crashed, r.crash_signal, r.crash_id = True, how, e.crash_id
            r.in_flight, r.in_flight_for = e.in_flight, e.in_flight_for
            r.crash_after = max(0.0, e.t - r.start_t)
            close(tr, e.t)
            tr.dead = True
        elif isinstance(e, ev.Stall):
            r = tr.run or tr.last
            if r is None:  # silent before its first measured sample: a run of its config
                r = begin(tr, pool, e, tr.backend, tr.device)
            r.stalled = True
        elif isinstance(e, ev.ThreadFailed):
            raised = tr.run or tr.last or begin(tr, pool, e, tr.backend, tr.device)
            raised.threads_failed += 1
        elif isinstance(e, ev.PoolStarting):
            close(tr, e.t)
            tr.last = None  # a new process: nothing after this belongs to the previous one
            tr.dead = False
            tr.policy, tr.workload = e.config.policy or "", e.config.workload
            tr.threads = e.config.threads
        elif isinstance(e, (ev.PoolStopped, ev.PoolFailed)):
            close(tr, e.t)

    def _sample(self, e: ev.Sample) -> None:
        pool = e.pool
        if not pool:
            return
        tr = self._tracks.get(pool)
        if tr is None:
            tr = self._tracks[pool] = _PoolTrack()
        if tr.dead:
            return
        if e.state != "running":
            self._close(tr, e.t)
            return
        r = tr.run
        if r is None or (r.threads, r.policy, r.workload) != (e.threads, e.policy, e.workload):
            r = self._begin(tr, pool, e, tr.backend, tr.device)
        if e.t - e.interval < r.start_t + self.warmup:
            return  # the window overlaps start-up or the change itself
        r.seconds += e.interval
        ops = sum(e.ops)
        r.ops += ops
        r.flop += ops * e.flop_per_op
        merge(r.lat_hist, e.lat_hist)
        for k, v in e.mem.items():
            r.mem_peak[k] = max(r.mem_peak.get(k, 0), v)
        if e.rss:
            r.rss_peak = max(r.rss_peak, e.rss)


def cells(all_runs: Iterable[Run]) -> list[Cell]:
    grouped: dict[tuple[object, ...], list[Run]] = {}
    for r in all_runs:
        grouped.setdefault(r.key, []).append(r)
    return [Cell(v) for _k, v in sorted(grouped.items(), key=lambda kv: kv[0])]


def attributions(all_runs: Iterable[Run]) -> dict[str, str]:
    """crash_id → `0.23 s after threads 8→1`, for crashes that followed a change closely."""
    return {r.crash_id: a for r in all_runs if r.crash_id and (a := r.attribution) is not None}
