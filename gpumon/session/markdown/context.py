"""What every section of a Markdown report reads: the session folded once.

The crash records come from the screen's own reducer (gpumon.state) and the figures from
gpumon.facts and gpumon.analysis, the same objects `sweep`, `compare` and the live screen
print, so the report cannot pair or count anything differently from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gpumon import analysis, facts
from gpumon import events as ev
from gpumon.crash.classify import crash_frames, frame_label
from gpumon.crash.model import SYSTEM, UNKNOWN
from gpumon.session.digest import Digest
from gpumon.session.log import LoadedSession
from gpumon.state import CrashRecord, SessionState

# The fault backend's own words for itself (PoolReady.framework); repeated wherever it appears
# so no reader mistakes a synthetic crash for a framework bug.
SYNTHETIC = "synthetic (fault backend)"
SIGNATURE_FRAMES = 3  # crashed-thread frames that, with the signal, identify a signature


@dataclass
class Signature:
    """Crashes with the same signal and the same top frames of the crashed thread."""

    key: tuple[str, tuple[str, ...]]
    records: list[CrashRecord] = field(default_factory=list)

    @property
    def head(self) -> str:
        return self.key[0]

    @property
    def title(self) -> str:
        frames = self.key[1]
        return self.head + (f" in {frames[0]}" if frames else "")


@dataclass(frozen=True)
class Series:
    """One line of the throughput chart: a pool's framework build, device and policy."""

    pool: str
    label: str  # "mlx 0.31.1 cpu, shared"


class Context:
    def __init__(self, session: LoadedSession | Digest) -> None:
        self.s = session
        self.t0 = session.first_t
        self.ready: dict[str, list[ev.PoolReady]] = {}
        self.backend: dict[str, str] = {}
        state = SessionState()
        for e in session.events:
            state.apply(e)
            if isinstance(e, ev.PoolStarting):
                self.backend.setdefault(e.pool, e.config.backend)
            elif isinstance(e, ev.PoolReady):
                self.ready.setdefault(e.pool, []).append(e)
                self.backend[e.pool] = e.backend
        self.crashes: dict[str, CrashRecord] = state.crashes
        if isinstance(session, Digest):  # the samples were folded as the log was read
            self.runs, self.cells = session.runs, session.cells
        else:
            self.runs = analysis.runs(session.events)
            self.cells = facts.cells(session.events)
        self.attributions = analysis.attributions(self.runs)
        self.signatures = _signatures(self.crashes.values())
        self.bisect = [e for e in session.events if isinstance(e, ev.BisectResult)]

    def last_ready(self, pool: str) -> ev.PoolReady | None:
        """What the pool's latest worker loaded (a restart may have loaded something else)."""
        readies = self.ready.get(pool)
        return readies[-1] if readies else None

    def rel(self, t: float) -> str:
        return f"+{t - self.t0:.3f} s"

    def pool(self, name: str) -> str:
        """`fault` — synthetic (fault backend), wherever a fault pool is named."""
        label = f"`{name}`"
        if self.backend.get(name) == "fault":
            label += f" — {SYNTHETIC}"
        return label

    def series(self, c: facts.CellFacts) -> Series:
        """Pools are told apart by what they ran; the pool's name only where two ran the same
        framework build on the same device (e.g. two torch pools with different settings)."""
        what = SYNTHETIC if c.synthetic else (c.framework or c.backend)
        same = {
            x.pool
            for x in self.cells
            if (x.framework, x.device) == (c.framework, c.device) and x.pool != c.pool
        }
        where = f"{what} {c.device}" + (f" ({c.pool})" if same else "")
        return Series(c.pool, f"{where}, {c.policy}")

    @property
    def synthetic_only(self) -> bool:
        return bool(self.backend) and all(b == "fault" for b in self.backend.values())


def signature(rec: CrashRecord) -> tuple[str, tuple[str, ...]]:
    """(signal, top frames of the crashed thread): crashes that share it are one finding."""
    c = rec.crash
    head = c.signal or (f"exit code {c.exit_code}" if c.exit_code is not None else "death")
    report = rec.native or rec.python
    thread = report.crashed_thread if report is not None else None
    if thread is None:
        return head, ()
    labels = [
        frame_label(f)
        for f in crash_frames(thread)
        if f.kind not in (SYSTEM, UNKNOWN) and (f.symbol or f.image)
    ]
    return head, tuple(labels[:SIGNATURE_FRAMES])


def _signatures(records: Iterable[CrashRecord]) -> list[Signature]:
    sigs: dict[tuple[str, tuple[str, ...]], Signature] = {}
    for rec in records:
        key = signature(rec)
        sigs.setdefault(key, Signature(key)).records.append(rec)
    return list(sigs.values())
