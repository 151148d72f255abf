"""Folds the event stream into what a viewer needs: per-pool state, bounded history, crashes.

Live sessions and replays feed the same `SessionState.apply`, which is why a replay looks like
the original. History is bounded (deques), so an hour-long session costs the same memory as a
minute-long one.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from gpumon import control
from gpumon import events as ev
from gpumon.crash.model import CrashReport, with_thread_names
from gpumon.spec import PoolConfig

HISTORY = 1200  # samples kept per pool: 2 minutes at 10/s
THREAD_HISTORY = 100
LOG_LENGTH = 2000


@dataclass
class Evidence:
    """The artifacts attached to one incident (a crash or a stall), newest last."""

    artifacts: list[ev.Artifact] = field(default_factory=list)

    def report(self, kind: str) -> CrashReport | None:
        for a in reversed(self.artifacts):
            if a.kind == kind and a.report is not None:
                return a.report
        return None

    @property
    def native(self) -> CrashReport | None:
        """Native stacks of every thread: the macOS report if any, else gdb's."""
        return self.report("ips") or self.report("native")

    @property
    def python(self) -> CrashReport | None:
        """faulthandler's Python stacks, their threads named from the native stacks."""
        python = self.report("faulthandler")
        return with_thread_names(python, self.native) if python is not None else None

    def text(self, kind: str) -> str:
        for a in reversed(self.artifacts):
            if a.kind == kind and a.text:
                return a.text
        return ""

    @property
    def notes(self) -> list[str]:
        return [a.note for a in self.artifacts if a.note]


@dataclass(kw_only=True)
class StallRecord(Evidence):
    stall: ev.Stall
    cleared: ev.StallCleared | None = None


@dataclass(kw_only=True)
class CrashRecord(Evidence):
    crash: ev.Crash

    @property
    def verdict(self) -> str:
        from gpumon.crash.classify import verdict

        c = self.crash
        native, python = self.native, self.python
        head = c.signal or (f"exit code {c.exit_code}" if c.exit_code is not None else "death")
        if native is not None or python is not None:
            return verdict(native or python, python if native is not None else None)  # type: ignore[arg-type]
        return f"{head}; no stacks captured yet"


@dataclass
class PoolView:
    name: str
    config: PoolConfig | None = None
    ready: ev.PoolReady | None = None
    state: str = "starting"
    attempt: int = 0
    crashes: int = 0
    failure: ev.PoolFailed | None = None
    last: ev.Sample | None = None
    ops_total: int = 0
    ready_t: float | None = None
    stalled: bool = False
    # (t, ops/s, FLOP/s) per sample
    history: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )
    # The last THREAD_HISTORY samples, whose per-thread counts `thread_history` reads when a
    # screen draws them (a few times a second), not 16-256 deque appends per sample.
    recent: deque[ev.Sample] = field(default_factory=lambda: deque(maxlen=THREAD_HISTORY))
    samples: int = 0  # samples applied since the worker started
    # per thread slot 0..n-1: the number of the sample it first appeared in (a pool that
    # shrinks loses its top slots; one that grows again starts them afresh)
    born: list[int] = field(default_factory=list)
    thread_errors: dict[int, str] = field(default_factory=dict)
    last_crash: str | None = None
    # When a restart is scheduled: the session time it will start at, so a viewer can count
    # down ("restarting in 2.0 s") against its own clock, live or replayed.
    restart_at: float | None = None
    last_control: ev.Control | None = None  # the latest command and its answer
    stall: ev.Stall | None = None  # the latest stall, while stalled
    stopped: ev.PoolStopped | None = None
    preparing: ev.PoolPreparing | None = None  # its framework env being built, if it is
    threads_failed: int = 0  # worker threads that died of a Python-level error

    def add_sample(self, s: ev.Sample) -> None:
        width, born = len(s.ops), self.born
        if width > len(born):
            born.extend([self.samples] * (width - len(born)))
        elif width < len(born):
            del born[width:]  # the pool shrank
        self.recent.append(s)
        self.samples += 1

    def reset_threads(self) -> None:
        self.recent.clear()
        self.samples = 0
        self.born = []

    @property
    def thread_slots(self) -> int:
        return len(self.born)

    @property
    def thread_history(self) -> dict[int, list[float]]:
        """Per worker thread slot: its recent ops/s, oldest first (at most THREAD_HISTORY)."""
        first = self.samples - len(self.recent)  # the number of recent[0]
        out: dict[int, list[float]] = {}
        for slot, b in enumerate(self.born):
            out[slot] = [
                x.ops[slot] / x.interval if x.interval > 0 else 0.0
                for x in islice(self.recent, max(b - first, 0), None)
            ]
        return out

    def __deepcopy__(self, memo: dict[int, object]) -> PoolView:
        """Replay snapshots copy the state often. A view holds events (shared: never changed
        once recorded), immutable values and containers of those: only the containers are
        copied, not the 1,200 history tuples and 100 samples one by one."""
        new = copy.copy(self)
        new.history = self.history.copy()
        new.recent = self.recent.copy()
        new.born = list(self.born)
        new.thread_errors = dict(self.thread_errors)
        return new

    @property
    def threads(self) -> int:
        if self.last is not None and self.state in ("running", "paused"):
            return self.last.threads
        return self.config.threads if self.config else 0

    @property
    def policy(self) -> str:
        return (
            self.last.policy
            if self.last and self.last.policy
            else (self.config.policy or "default")
            if self.config
            else ""
        )

    @property
    def workload(self) -> str:
        return (
            self.last.workload
            if self.last and self.last.workload
            else self.config.workload
            if self.config
            else ""
        )


@dataclass
class ScenarioView:
    """A scripted demo in this session: its title and the step it has reached."""

    started: ev.ScenarioStarted
    step: ev.ScenarioStep | None = None
    ended: ev.ScenarioEnded | None = None


class SessionState:
    def __init__(self) -> None:
        self.start: ev.SessionStart | None = None
        self.end: ev.SessionEnd | None = None
        self.pools: dict[str, PoolView] = {}
        self.crashes: dict[str, CrashRecord] = {}
        self.stalls: dict[str, StallRecord] = {}
        self.recording_stopped: ev.RecordingStopped | None = None
        self.scenario: ScenarioView | None = None
        self.log: deque[ev.Event] = deque(maxlen=LOG_LENGTH)
        self.host: ev.HostSample | None = None
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.events = 0

    def pool(self, name: str) -> PoolView:
        view = self.pools.get(name)
        if view is None:
            view = self.pools[name] = PoolView(name)
        return view

    def apply(self, e: ev.Event) -> None:
        self.events += 1
        if self.first_t is None:
            self.first_t = e.t
        self.last_t = e.t
        if isinstance(e, ev.Sample):
            self._sample(e)
            return
        if isinstance(e, ev.HostSample):
            self.host = e
            return
        self.log.append(e)
        if isinstance(e, ev.SessionStart):
            self.start = e
        elif isinstance(e, ev.SessionEnd):
            self.end = e
        elif isinstance(e, ev.PoolStarting):
            p = self.pool(e.pool)
            p.config, p.attempt, p.state = e.config, e.attempt, "starting"
            p.failure, p.stalled, p.thread_errors = None, False, {}
            p.restart_at, p.stall, p.stopped, p.last = None, None, None, None
            p.reset_threads()
        elif isinstance(e, ev.PoolPreparing):
            self.pool(e.pool).preparing = e
        elif isinstance(e, ev.PoolReady):
            p = self.pool(e.pool)
            p.ready, p.state, p.ready_t, p.preparing = e, "running", e.t, None
        elif isinstance(e, ev.PoolFailed):
            p = self.pool(e.pool)
            p.failure, p.state = e, "failed"
        elif isinstance(e, ev.Control):
            self._control(e)
        elif isinstance(e, ev.ThreadFailed):
            p = self.pool(e.pool)
            p.thread_errors[e.slot] = e.error
            p.threads_failed += 1
        elif isinstance(e, ev.Crash):
            p = self.pool(e.pool)
            p.crashes, p.state, p.last_crash = e.crash_number, "crashed", e.crash_id
            self.crashes[e.crash_id] = CrashRecord(crash=e)
        elif isinstance(e, ev.CrashArtifact):
            rec = self.crashes.get(e.crash_id)
            if rec is not None:
                rec.artifacts.append(e)
        elif isinstance(e, ev.Stall):
            p = self.pool(e.pool)
            p.stalled, p.stall = True, e
            self.stalls[e.stall_id] = StallRecord(stall=e)
        elif isinstance(e, ev.StallArtifact):
            srec = self.stalls.get(e.stall_id)
            if srec is not None:
                srec.artifacts.append(e)
        elif isinstance(e, ev.StallCleared):
            p = self.pool(e.pool)
            if p.stall is not None and p.stall.stall_id in self.stalls:
                self.stalls[p.stall.stall_id].cleared = e
            p.stalled = False
        elif isinstance(e, ev.RecordingStopped):
            self.recording_stopped = e
        elif isinstance(e, ev.ScenarioStarted):
            self.scenario = ScenarioView(e)
        elif isinstance(e, ev.ScenarioStep) and self.scenario is not None:
            self.scenario.step = e
        elif isinstance(e, ev.ScenarioEnded) and self.scenario is not None:
            self.scenario.ended = e
        elif isinstance(e, ev.PoolRestart):
            p = self.pool(e.pool)
            p.state, p.restart_at = "restarting", e.t + e.delay
        elif isinstance(e, ev.PoolStopped):
            p = self.pool(e.pool)
            p.state, p.stopped, p.restart_at = "stopped", e, None

    def _control(self, e: ev.Control) -> None:
        p = self.pool(e.pool)
        if e.source != "supervisor":
            p.last_control = e
        if not e.ok:
            return
        if isinstance(e.command, control.Pause):
            p.state = "paused"
        elif isinstance(e.command, control.Resume) and p.state == "paused":
            p.state = "running"
        if e.config is not None:
            p.config = e.config

    def _sample(self, s: ev.Sample) -> None:
        p = self.pool(s.pool)
        p.last = s
        ops = sum(s.ops)  # once: Sample.total_ops, ops_per_s and flops would sum it thrice
        p.ops_total += ops
        if p.state in ("starting",):
            p.state = "running"
        rate = ops / s.interval if s.interval > 0 else 0.0
        p.history.append((s.t, rate, rate * s.flop_per_op))
        p.add_sample(s)
