"""Session events: the one stream the TUI, the session log, the exporters and `sweep` consume.

Producers are the supervisor (pool lifecycle, samples, crashes), the crash capture chain
(artifacts attached after a death) and the host sampler. Every event carries `t`, wall-clock
seconds since the epoch, so a recorded session replays with its original timing.

The schema is versioned (`SCHEMA_VERSION`): adding an optional field is backward compatible
and keeps the version; renaming, removing or changing the meaning of a field bumps it, and
gpumon.session.upgrade reads the older versions (schema 1: commands as text; see there).
"""

from __future__ import annotations

import time
from typing import Union

import msgspec

from gpumon.control import PoolCommand
from gpumon.crash.model import CrashReport
from gpumon.spec import PoolConfig

SCHEMA_VERSION = 2


class Event(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    t: float = msgspec.field(default_factory=time.time)


class GpuDevice(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One NVIDIA GPU as NVML describes it at session start."""

    index: int
    name: str
    uuid: str = ""
    mem_total: int | None = None  # bytes
    power_limit_w: float | None = None  # watts, the enforced limit
    source: str = "NVML"


class HostInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    hostname: str
    user: str
    home: str
    os: str  # "Linux", "Darwin"
    os_version: str  # "Debian 12 / kernel 6.18", "macOS 15.3 (24D60)"
    machine: str  # x86_64, arm64
    chip: str  # "Apple M4 Max", "Intel(R) Xeon(R) ..."
    cpu_count: int
    mem_total: int  # bytes
    python: str
    gpus: list[str] = msgspec.field(default_factory=list)
    # Installed framework versions as seen from package metadata (the monitor never imports
    # them); the versions a pool actually loaded arrive in PoolReady.
    frameworks: dict[str, str] = msgspec.field(default_factory=dict)
    # NVIDIA facts from NVML (nvidia-ml-py, `gpumon[nvidia]`); empty where there is none.
    driver_version: str = ""  # "550.54.15"
    cuda_driver_version: str = ""  # the newest CUDA the driver supports: "12.4"
    gpu_devices: list[GpuDevice] = msgspec.field(default_factory=list)
    nvml: str = ""  # why NVML gave nothing ("nvidia-ml-py is not installed"); "" when it did


class SessionStart(Event, tag="session_start", kw_only=True, omit_defaults=False):
    # omit_defaults=False: `schema` must be on disk even when it equals today's version, or a
    # future gpumon could not tell an old log from a new one.
    session_id: str
    schema: int = SCHEMA_VERSION
    gpumon_version: str
    mode: str  # tui | sweep | test | replay
    argv: list[str]
    cwd: str
    host: HostInfo


class SessionEnd(Event, tag="session_end", kw_only=True):
    reason: str = "quit"


class PoolStarting(Event, tag="pool_starting", kw_only=True):
    pool: str
    config: PoolConfig
    attempt: int = 1


class PoolPreparing(Event, tag="pool_preparing", kw_only=True):
    """A pool's framework environment is being built (first use of `mlx@0.31.1`); published a
    few times a second at most, with the installer's phase."""

    pool: str
    env: str  # "mlx 0.31.1 (cpu, py3.11)"
    phase: str  # waiting | creating | resolving | downloading | installing | verifying | done
    fraction: float | None = None  # within the phase, when the installer says
    elapsed: float = 0.0  # seconds since the build started
    message: str = ""


class PoolReady(Event, tag="pool_ready", kw_only=True):
    pool: str
    pid: int
    backend: str
    device: str  # what the worker picked: cpu, cuda:0, mps, gpu (metal) ...
    device_name: str  # "NVIDIA H200", "Apple M4 Max (Metal)", "CPU (x86_64, 16 cores)"
    device_reason: str  # why this device: "requested", "auto: CUDA build and a GPU present"
    framework: str  # "mlx 0.32.4", "torch 2.13.0+cpu", "synthetic (fault backend)"
    versions: dict[str, str] = msgspec.field(default_factory=dict)
    # policy name -> "" when available, else the reason it is not.
    policies: dict[str, str] = msgspec.field(default_factory=dict)
    policy: str = ""  # the policy it runs (the framework's default when none was asked)
    # policy name -> what it means with this framework version ("the one default stream
    # every thread shares, unlocked" on mlx 0.31.1)
    policy_meanings: dict[str, str] = msgspec.field(default_factory=dict)
    # How native stacks of every thread will be captured if this worker dies, or why not.
    native_capture: str = ""
    size: int
    dtype: str
    flop_per_op: float
    artifacts_dir: str = ""
    # The interpreter the worker runs under, and the isolated environment it came from
    # ("" = the one gpumon itself runs in).
    interpreter: str = ""
    env: str = ""


class PoolFailed(Event, tag="pool_failed", kw_only=True):
    """A pool that could not start (or cannot be restarted). `fix` names what to do."""

    pool: str
    message: str
    fix: str = ""


class Control(Event, tag="control", kw_only=True):
    """A command to a pool and its answer. `config` is the pool's configuration after the
    command (what the worker acknowledged), so no reader has to reconstruct it."""

    pool: str
    command: PoolCommand
    ok: bool = True
    detail: str = ""  # for people: "2 -> 4 threads", or why the command was refused
    source: str = "user"  # user | scenario | sweep | supervisor
    config: PoolConfig | None = None


class Sample(Event, tag="sample", kw_only=True):
    """One ~100 ms measurement window of a pool, as measured inside the worker."""

    pool: str
    interval: float  # seconds this window covers (worker's monotonic clock)
    threads: int  # target thread count during the window
    ops: list[int]  # ops completed per worker thread in the window, index = thread slot
    flop_per_op: float
    state: str = "running"  # running | paused
    workload: str = ""
    policy: str = ""
    lat_count: int = 0
    lat_p50: float | None = None  # seconds
    lat_p99: float | None = None
    lat_max: float | None = None
    # Latency histogram of the window: bucket -> count, bucket b covers [2**(b/8), 2**((b+1)/8))
    # microseconds. Lets `sweep` merge windows into whole-run percentiles.
    lat_hist: dict[int, int] = msgspec.field(default_factory=dict)
    # 1: lat_p50/p99 and lat_hist were read from every op time of the window; k > 1: from every
    # k-th (windows of more than 2,048 ops), the histogram scaled to lat_count. lat_count and
    # lat_max are always exact (gpumon.latency.select).
    lat_every: int = 1
    # Framework memory figures in bytes, named as the framework names them
    # (mlx: active/peak/cache; torch.cuda: allocated/reserved; torch.mps: current/driver).
    mem: dict[str, int] = msgspec.field(default_factory=dict)
    mem_source: str = ""  # "mlx.core.get_active_memory()" ...
    cpu_percent: float | None = None  # of one core, psutil, whole worker process
    rss: int | None = None  # bytes, psutil
    # Driver-side GPU memory of the worker process (NVML, by pid; all GPUs), read by the
    # monitor about once a second: what nvidia-smi shows, beside the framework's own figure.
    gpu_mem: int | None = None

    @property
    def total_ops(self) -> int:
        return sum(self.ops)

    @property
    def ops_per_s(self) -> float:
        return sum(self.ops) / self.interval if self.interval > 0 else 0.0

    @property
    def flops(self) -> float:
        return self.ops_per_s * self.flop_per_op


class ThreadFailed(Event, tag="thread_failed", kw_only=True):
    """One worker thread raised (e.g. MLX "There is no Stream(gpu, 0) in current thread");
    the process and its other threads carry on."""

    pool: str
    slot: int
    error: str


class Crash(Event, tag="crash", kw_only=True):
    """A pool's worker died without being asked to. Recorded the moment the death is seen;
    stacks and reports follow as CrashArtifact events with the same crash_id."""

    crash_id: str
    pool: str
    pid: int
    signal: str | None = None  # SIGSEGV ...
    exit_code: int | None = None
    detected_by: str = "exit"  # exit | debugger (gdb saw the fatal signal first)
    threads: int
    uptime: float  # seconds since the worker became ready
    ops_total: int
    policy: str
    workload: str
    backend: str
    device: str
    versions: dict[str, str] = msgspec.field(default_factory=dict)
    crash_number: int = 1  # how many times this pool has crashed in the session
    # run: while working | stopping: after gpumon asked it to stop (e.g. MLX's abort during
    # interpreter shutdown) | starting: before it reported ready
    during: str = "run"
    artifacts_dir: str = ""  # the dead process's own folder: every artifact comes from there
    # A command sent to the worker that it had not acknowledged when it died ("threads 1→2"),
    # and how long before the death it was sent: the worker may have begun carrying it out.
    in_flight: str = ""
    in_flight_for: float | None = None  # seconds


class Artifact(Event, kw_only=True):
    """Evidence attached to an incident (a crash or a stall) after it was reported."""

    pool: str
    kind: str  # faulthandler | stderr | stdout | native | ips | note
    path: str = ""  # where the artifact is saved (next to the session log when recording)
    text: str = ""  # the artifact's text (tails are bounded)
    report: CrashReport | None = None  # parsed form, where the kind has one
    note: str = ""  # e.g. "gdb not installed: no native stacks"


class CrashArtifact(Artifact, tag="crash_artifact", kw_only=True):
    crash_id: str


class Stall(Event, tag="stall", kw_only=True):
    """A worker that stopped answering, reported the moment it is noticed; its stacks follow
    as StallArtifact events with the same stall_id (or a note saying why they are missing)."""

    pool: str
    silent_for: float  # seconds without any message from the worker
    threads: int
    stall_id: str = ""
    pid: int = 0
    # Schema 1 carried the stacks inline; gpumon.session.upgrade moves them to artifacts.
    stacks: str = ""
    native: CrashReport | None = None


class StallArtifact(Artifact, tag="stall_artifact", kw_only=True):
    stall_id: str


class StallCleared(Event, tag="stall_cleared", kw_only=True):
    """A stalled worker answered again."""

    pool: str
    silent_for: float = 0.0  # how long it had been silent in all


class RecordingStopped(Event, tag="recording_stopped", kw_only=True):
    """The session log could not be written (disk full, folder gone, permissions). What was
    written before stays loadable; the monitor keeps running and says so."""

    reason: str
    path: str = ""


class PoolRestart(Event, tag="pool_restart", kw_only=True):
    pool: str
    attempt: int
    delay: float  # seconds of backoff before this restart
    crashes: int


class PoolStopped(Event, tag="pool_stopped", kw_only=True):
    pool: str
    reason: str = "stopped"
    exit_code: int | None = None
    ops_total: int = 0


class Notice(Event, tag="notice", kw_only=True):
    """Something a user should know that is not a state change: unreadable worker output,
    a capture mechanism that is missing, a consumer of the stream that failed."""

    pool: str = ""
    level: str = "info"  # info | warning | error
    message: str


class BisectStep(Event, tag="bisect_step", kw_only=True):
    """One release tested by `gpumon bisect`: how many runs, how many died or hung."""

    framework: str
    version: str
    runs: int
    died: int
    signals: list[str] = msgspec.field(default_factory=list)  # SIGSEGV, exit 1, hang ...


class BisectResult(Event, tag="bisect_result", kw_only=True):
    """Where the behaviour changed. `direction`: fixed (old releases bad, new good),
    regressed (the reverse), always-bad / never-bad (nothing changed in the range)."""

    pool: str  # the pool spec every run used, without its version
    framework: str
    versions: list[str]  # the releases in the range that could run here, oldest first
    skipped: dict[str, str] = msgspec.field(default_factory=dict)  # version -> why not run
    runs_per_version: int
    direction: str
    older: str | None = None  # the boundary's older release (last bad, or last good)
    newer: str | None = None  # its newer release (first good, or first bad)
    # If the good side still had the bug at the rate seen on the bad side, the chance that
    # all its runs came out clean: at the observed rate, and at its 95% interval's low end.
    miss_at_rate: float | None = None
    miss_at_low: float | None = None


class ScenarioStarted(Event, tag="scenario_started", kw_only=True):
    """A scripted demo began (gpumon demo / run / live --scenario)."""

    name: str
    title: str
    source: str  # the file, or "built-in NAME"
    steps: int
    # True when a pinned framework version could not be had and the synthetic pools ran
    # instead; `note` says why.
    fallback: bool = False
    note: str = ""


class ScenarioStep(Event, tag="scenario_step", kw_only=True):
    """A step of the scenario was carried out: its caption and what it waited for."""

    index: int  # 1-based
    total: int
    caption: str = ""
    waited: str = ""  # "a crash of old after 0.21 s", "no crash within 30 s", "the presenter"
    pool: str = ""


class ScenarioEnded(Event, tag="scenario_ended", kw_only=True):
    reason: str = "finished"  # finished | stopped


class GpuSample(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    mem_used: int | None = None
    mem_total: int | None = None
    util_percent: float | None = None
    source: str = ""
    index: int | None = None
    power_w: float | None = None  # watts, NVML's power usage
    temperature_c: float | None = None  # GPU core, degrees Celsius


class HostSample(Event, tag="host_sample", kw_only=True):
    cpu_percent: float  # whole machine, 100 = all cores busy
    mem_used: int
    mem_total: int
    monitor_cpu_percent: float | None = None  # the gpumon process itself
    monitor_rss: int | None = None
    gpus: list[GpuSample] = msgspec.field(default_factory=list)


AnyEvent = Union[  # noqa: UP007 - msgspec needs a real Union of tagged Structs
    SessionStart,
    SessionEnd,
    PoolStarting,
    PoolPreparing,
    PoolReady,
    PoolFailed,
    Control,
    Sample,
    ThreadFailed,
    Crash,
    CrashArtifact,
    Stall,
    StallArtifact,
    StallCleared,
    RecordingStopped,
    PoolRestart,
    PoolStopped,
    Notice,
    HostSample,
    BisectStep,
    BisectResult,
    ScenarioStarted,
    ScenarioStep,
    ScenarioEnded,
]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(line: bytes | str) -> Event:
    return _decoder.decode(line)
