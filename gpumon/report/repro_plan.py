"""Which worker process a repro script reproduces, and what it ran: a pure fold of the events.

A crash belongs to one worker process: the `pool_ready` with the crash's pid, the commands
acknowledged after it, and the crash. The script replays the configuration the pool ran when
it died, with the thread-count steps (grow, shrink) at the offsets the session recorded them.
A policy or workload change (or a resume) rebuilds every thread's framework state, so the
replay starts at the last such change and the header says which steps came before it.

Values from the log end up in Python source that a person will run, so every value that goes
into code is checked against what gpumon itself writes (`gpumon.spec`) and anything else is
refused: a log is untrusted input.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from gpumon import control
from gpumon import events as ev
from gpumon.fmt import plural
from gpumon.spec import (
    DTYPES,
    MAX_INTRA_OP,
    MAX_SIZE,
    MAX_SYNC_EVERY,
    MAX_THREADS,
    MIN_SIZE,
    POLICIES,
    VERSIONED,
    WORKLOADS,
    SpecError,
    parse_version,
)

# MLX's thread model by release (the same facts as gpumon/worker/backends/mlx_policies.py,
# which the monitor side may not import; tests/report checks the two agree).
MLX_PER_THREAD_DEFAULT_STREAMS = (0, 31, 2)
MLX_UNSAFE_STREAM = (0, 32, 0)

# Logs recorded before the monitor published a Control as its Ack was read: a worker that died
# just after acknowledging a command (a grow that kills it within milliseconds) could have its
# crash logged first. A thread-count command logged this soon after the crash, before the
# pool's next start, was acknowledged by the dead worker: the script replays it at the crash's
# offset, and says so. Newer logs have the Control first, or `Crash.in_flight` when the worker
# died before acknowledging.
LATE_ACK_S = 0.5
_IN_FLIGHT_THREADS = re.compile(r"threads \d+→(\d+)")
MIN_EXTRA_S = 5.0  # a crashing run gets twice its recorded lifetime, and at least this more
START_CRASH_S = 5.0  # a pool that died before it was ready: run this long


class ReproError(Exception):
    """No script can be made; str() is one sentence for the user."""


@dataclass(frozen=True)
class Step:
    at_s: float  # seconds after the replay starts
    threads: int


@dataclass(frozen=True)
class CrashFacts:
    crash_id: str
    how: str  # SIGSEGV, "exit 1", "death"
    after_s: float  # seconds after the replay started
    uptime_s: float  # seconds after the worker was ready
    threads: int
    during: str  # run | stopping | starting


@dataclass(frozen=True)
class ReproPlan:
    session_id: str
    session_name: str  # the session folder's name
    gpumon_version: str
    pool: str
    backend: str  # mlx | torch
    version: str  # as the worker imported it: 0.31.1, 2.13.0+cpu
    device: str  # as the worker resolved it: mlx cpu|gpu, torch cpu|cuda:N|mps
    build: str  # which build the device needs: cpu | cuda | metal | gpu | mps
    workload: str
    size: int
    dtype: str
    policy: str
    sync_every: int
    intra_op: int | None
    steps: tuple[Step, ...]
    seconds: float  # how long the script runs before it stops by itself
    crash: CrashFacts | None
    notes: tuple[str, ...] = field(default=())

    @property
    def release(self) -> str:
        """The version without a local build tag (torch's `+cpu` follows the build)."""
        return self.version.split("+")[0]

    @property
    def requires(self) -> str:
        """The header's pin, read back by `gpumon repro`: `mlx==0.31.1 (cpu)`."""
        return f"{self.backend}=={self.release} ({self.build})"


def version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("+")[0].split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        out.append(int(digits) if digits else 0)
    return tuple(out + [0] * (3 - len(out)))


def default_policy(backend: str, version: str, device: str) -> str:
    """The framework's own behaviour, as the worker resolves a pool that named no policy."""
    if backend == "mlx":
        return "shared" if version_tuple(version) < MLX_PER_THREAD_DEFAULT_STREAMS else "per-thread"
    return "shared" if device == "mps" else "per-thread"


# ---- finding the process ------------------------------------------------------------------


@dataclass
class _Process:
    pool: str
    starting: ev.PoolStarting | None = None
    ready: ev.PoolReady | None = None
    controls: list[ev.Control] = field(default_factory=list)
    crash: ev.Crash | None = None
    end_t: float | None = None  # when it stopped (or was asked to), for a clean one
    late: list[ev.Control] = field(default_factory=list)  # see LATE_ACK_S


def _process_of(events: list[ev.Event], crash: ev.Crash) -> _Process:
    """The crashed worker: the pool's last start before the crash, and the ready event with
    the crash's pid (none when it died before it was ready)."""
    p = _Process(crash.pool)
    after = False
    for e in events:
        if e is crash:
            after = True
            continue
        if getattr(e, "pool", None) != crash.pool:
            continue
        if after:
            if isinstance(e, ev.PoolStarting | ev.PoolRestart | ev.PoolStopped | ev.PoolFailed):
                break
            if (
                isinstance(e, ev.Control)
                and e.ok
                and isinstance(e.command, control.SetThreads)
                and e.t - crash.t <= LATE_ACK_S
                and p.ready is not None
            ):
                p.late.append(e)
            continue
        if isinstance(e, ev.PoolStarting):
            p.starting, p.ready, p.controls = e, None, []
        elif isinstance(e, ev.PoolReady):
            p.ready = e if e.pid == crash.pid else None
            p.controls = []
        elif isinstance(e, ev.Control) and p.ready is not None and e.ok:
            p.controls.append(e)
    p.crash = crash
    return p


def _last_process(events: list[ev.Event]) -> _Process:
    """The last worker process of a real framework pool that became ready, up to its stop."""
    procs: list[_Process] = []
    open_: dict[str, _Process] = {}
    for e in events:
        pool = getattr(e, "pool", None)
        if isinstance(e, ev.PoolStarting):
            if pool in open_ and open_[pool].end_t is None:
                open_[pool].end_t = e.t
            if e.config.backend in VERSIONED:
                open_[e.pool] = _Process(e.pool, starting=e)
                procs.append(open_[e.pool])
            continue
        p = open_.get(pool) if isinstance(pool, str) else None
        if p is None or p.end_t is not None:
            continue
        if isinstance(e, ev.PoolReady):
            p.ready = e
        elif isinstance(e, ev.Control) and e.ok:
            if isinstance(e.command, control.Stop):
                p.end_t = e.t
            else:
                p.controls.append(e)
        elif isinstance(e, ev.PoolStopped | ev.PoolFailed | ev.Crash):
            p.end_t = e.t
    ready = [p for p in procs if p.ready is not None]
    if not ready:
        fault = next((e for e in events if isinstance(e, ev.Crash)), None)
        if fault is not None:  # only fault pools can have crashed here
            raise ReproError(
                f"the session's crashes are of the synthetic fault pool {fault.pool!r}: its "
                "faults are injected by gpumon, so there is no framework bug to reproduce"
            )
        raise ReproError(
            "the session ran no MLX or torch pool that started: there is no framework "
            "configuration to reproduce"
        )
    last = ready[-1]
    if last.end_t is None:
        last.end_t = max(e.t for e in events)
    return last


def _choose_crash(events: list[ev.Event], crash_id: str | None) -> ev.Crash | None:
    crashes = [e for e in events if isinstance(e, ev.Crash)]
    if crash_id is None:
        return next((c for c in crashes if c.backend in VERSIONED), None)
    for c in crashes:
        if c.crash_id == crash_id:
            if c.backend not in VERSIONED:
                raise ReproError(
                    f"crash {crash_id} is of the synthetic fault pool {c.pool!r}: its faults are "
                    "injected by gpumon, so there is no framework bug to reproduce"
                )
            return c
    known = ", ".join(c.crash_id for c in crashes) if crashes else "none"
    raise ReproError(f"the session has no crash {crash_id!r} (its crashes: {known})")


# ---- the plan ------------------------------------------------------------------------------


def plan(events: list[ev.Event], session_name: str, crash_id: str | None = None) -> ReproPlan:
    """The script's configuration for `crash_id` (default: the session's first crash of an
    MLX or torch pool; with none, the last configuration a framework pool ran)."""
    start = events[0]
    assert isinstance(start, ev.SessionStart)
    crash = _choose_crash(events, crash_id)
    p = _process_of(events, crash) if crash is not None else _last_process(events)
    if p.starting is None:
        raise ReproError(f"the log lost the start of pool {p.pool!r}: its configuration is unknown")
    cfg, ready = p.starting.config, p.ready
    versions = ready.versions if ready is not None else (crash.versions if crash else {})
    version = versions.get(cfg.backend, "")
    if not version:
        raise ReproError(
            f"the log does not say which {cfg.backend} version pool {p.pool!r} ran (it died "
            "before reporting it): a script cannot pin it"
        )
    device = ready.device if ready is not None else (crash.device if crash else "")
    r = _replay(p)
    if crash is not None:  # what the worker itself said it ran when it died
        r.policy, r.workload = crash.policy or r.policy, crash.workload or r.workload
    facts = _crash_facts(crash, r.begin, r.origin) if crash is not None else None
    if facts is not None and r.late_threads is not None:
        # The crash event took the thread count gpumon knew of; the worker had acknowledged more.
        facts = dataclasses.replace(facts, threads=r.late_threads)
    if facts is None:
        assert p.end_t is not None
        seconds = max(1.0, p.end_t - r.begin)
    elif facts.during == "stopping" and r.stop_t is not None:
        seconds = max(0.1, r.stop_t - r.begin)  # then stop, as gpumon did: the death came after
    elif facts.during == "starting":
        seconds = START_CRASH_S
    else:
        seconds = max(2 * facts.after_s, facts.after_s + MIN_EXTRA_S)
    return _checked(
        ReproPlan(
            session_id=start.session_id,
            session_name=session_name,
            gpumon_version=start.gpumon_version,
            pool=p.pool,
            backend=cfg.backend,
            version=version,
            device=device,
            build=_build(cfg.backend, device, ready.device_name if ready else "", cfg.device),
            workload=r.workload,
            size=r.size or 0,
            dtype=r.dtype or "",
            policy=r.policy or default_policy(cfg.backend, version, device),
            sync_every=cfg.sync_every,
            intra_op=cfg.intra_op if cfg.backend == "torch" else None,
            steps=_merge_steps(r.steps),
            seconds=round(seconds, 1),
            crash=facts,
            notes=tuple(r.notes),
        )
    )


@dataclass
class _Replay:
    """The stretch of a process the script replays, and the configuration it ran."""

    origin: float  # when the worker was ready (or started): offsets in notes count from here
    begin: float  # where the replay starts: `origin`, or the last policy/workload change
    size: int | None
    dtype: str | None
    policy: str
    workload: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stop_t: float | None = None  # when gpumon asked the crashed worker to stop
    late_threads: int | None = None  # a thread count acknowledged just before the death


def _replay(p: _Process) -> _Replay:
    assert p.starting is not None
    cfg, ready = p.starting.config, p.ready
    origin = ready.t if ready is not None else p.starting.t
    r = _Replay(
        origin=origin,
        begin=origin,
        size=ready.size if ready is not None else cfg.size,
        dtype=ready.dtype if ready is not None else cfg.dtype,
        policy=(ready.policy if ready is not None else "") or cfg.policy or "",
        workload=cfg.workload,
        steps=[Step(0.0, cfg.threads)],
    )
    threads = cfg.threads
    skipped: list[str] = []
    for c in p.controls:
        at = f"{c.t - origin:.2f} s"
        if p.crash is not None and isinstance(c.command, control.Stop):
            r.stop_t = c.t
            break
        if c.config is not None:
            r.size, r.dtype = c.config.size or r.size, c.config.dtype or r.dtype
            r.policy, r.workload = c.config.policy or r.policy, c.config.workload
        if isinstance(c.command, control.SetThreads):
            threads = c.config.threads if c.config is not None else c.command.threads
            r.steps.append(Step(c.t - r.begin, threads))
        elif isinstance(c.command, control.RECONFIGURING):  # policy, workload, resume
            shift = r.begin - origin
            skipped += [f"{plural(s.threads, 'thread')} at {s.at_s + shift:.2f} s" for s in r.steps]
            skipped.append(f"{control.describe(c.command)} at {at}")
            r.begin, r.steps = c.t, [Step(0.0, threads)]
        elif isinstance(c.command, control.Pause):
            r.notes.append(f"the pool was paused at {at}; the script does not pause")
    if p.crash is not None and r.stop_t is None and p.crash.in_flight_for is not None:
        grow = _IN_FLIGHT_THREADS.fullmatch(p.crash.in_flight)
        if grow is not None:
            n, sent = int(grow.group(1)), p.crash.t - p.crash.in_flight_for
            r.steps.append(Step(max(0.0, sent - r.begin), n))
            r.late_threads = n
            r.notes.append(
                f"the worker died {p.crash.in_flight_for:.2f} s after gpumon sent it "
                f"{p.crash.in_flight}, before acknowledging it; the script grows when it was sent"
            )
    if p.crash is not None and r.stop_t is None:
        for c in p.late:
            assert isinstance(c.command, control.SetThreads)
            n = c.config.threads if c.config is not None else c.command.threads
            r.steps.append(Step(p.crash.t - r.begin, n))
            r.late_threads = n
            r.notes.append(
                f"the command to {plural(n, 'thread')} was logged {c.t - p.crash.t:.2f} s after "
                "the crash (gpumon logs a command when the acknowledgement is read, and this "
                "worker died right after acknowledging it); the script grows at the crash's offset"
            )
    if skipped:
        r.notes.insert(
            0,
            "the script starts at the pool's last policy/workload change or resume; before it, "
            f"after the pool started, the session ran {', '.join(skipped)} (not replayed)",
        )
    return r


def _merge_steps(steps: list[Step]) -> tuple[Step, ...]:
    """Offsets rounded to 10 ms; a step to the count already running is dropped."""
    out: list[Step] = []
    for s in steps:
        if out and out[-1].threads == s.threads:
            continue
        out.append(Step(round(max(0.0, s.at_s), 2), s.threads))
    return tuple(out)


def _crash_facts(c: ev.Crash, begin: float, origin: float) -> CrashFacts:
    how = c.signal or (f"exit {c.exit_code}" if c.exit_code is not None else "death")
    return CrashFacts(
        c.crash_id, how, max(0.0, c.t - begin), max(0.0, c.t - origin), c.threads, c.during
    )


def _build(backend: str, device: str, device_name: str, asked: str | None) -> str:
    """The build the device needs, as `gpumon repro` asks gpumon.envs for it."""
    base = device.split(":")[0]
    if backend == "torch" or base == "cpu":
        return base
    for kind in ("Metal", "CUDA"):
        if f"({kind})" in device_name:
            return kind.lower()
    return asked if asked in ("metal", "cuda") else "gpu"


_DEVICES = {"mlx": ("cpu", "gpu"), "torch": ("cpu", "mps", "cuda")}


def _checked(p: ReproPlan) -> ReproPlan:
    """Refuse values gpumon never writes: they would go into code someone runs."""

    def bad(what: str, value: object) -> ReproError:
        return ReproError(
            f"the log's {what} {value!r} for pool {p.pool!r} is not one gpumon writes (the log "
            "was edited or damaged): no script was made"
        )

    try:
        parse_version(p.version)
    except SpecError:
        raise bad("framework version", p.version) from None
    base, colon, index = p.device.partition(":")
    if base not in _DEVICES.get(p.backend, ()) or (
        colon and not (base == "cuda" and index.isdigit() and len(index) <= 3)
    ):
        raise bad("device", p.device)
    checks: list[tuple[str, object, bool]] = [
        ("workload", p.workload, p.workload in WORKLOADS),
        ("dtype", p.dtype, p.dtype in DTYPES),
        ("policy", p.policy, p.policy in POLICIES),
        ("size", p.size, MIN_SIZE <= p.size <= MAX_SIZE),
        ("sync_every", p.sync_every, 1 <= p.sync_every <= MAX_SYNC_EVERY),
        ("intra_op", p.intra_op, p.intra_op is None or 1 <= p.intra_op <= MAX_INTRA_OP),
        ("build", p.build, p.build in ("cpu", "cuda", "metal", "gpu", "mps")),
    ]
    for s in p.steps:
        checks.append(("thread count", s.threads, 1 <= s.threads <= MAX_THREADS))
    for what, value, ok in checks:
        if not ok:
            raise bad(what, value)
    return p


def describe_steps(steps: tuple[Step, ...]) -> str:
    """`2 threads` or `1 thread, 8 at 0.02 s, 1 at 3.03 s`."""
    first = plural(steps[0].threads, "thread")
    return ", ".join([first, *(f"{s.threads} at {s.at_s:.2f} s" for s in steps[1:])])
