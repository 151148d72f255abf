"""Where the screen's events come from: live pools (Supervisor + Recorder) or a replayed log.

The screens only ever see `deliver(event)` calls and, after a replay seek, `reset(state)`;
what produced the events is this module's business. That is the whole trick behind "a replay
looks exactly like the live session": both feed the same `SessionState`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon import events as ev
from gpumon.spec import PoolConfig
from gpumon.state import SessionState

if TYPE_CHECKING:
    from gpumon.host import HostSampler
    from gpumon.session.recorder import Recorder
    from gpumon.supervisor.supervisor import Supervisor

Deliver = Callable[[ev.Event], None]
Reset = Callable[[SessionState], None]
HOST_EVERY = 1.0  # seconds between host samples (CPU/memory move slowly; NVML is not free)


class CommandRefused(Exception):
    """A pool command that this source cannot carry out (a replay has no pools to command)."""


class EventSource:
    """What every source offers the app. Subclasses fill in the parts they support."""

    live = False
    kind = "?"

    def __init__(self) -> None:
        self._deliver: Deliver = lambda e: None
        self._reset: Reset = lambda s: None

    def attach(self, deliver: Deliver, reset: Reset) -> None:
        self._deliver, self._reset = deliver, reset

    async def start(self) -> None:
        pass

    async def stop(self, reason: str = "quit") -> None:
        pass

    def now(self) -> float:
        """The session's clock: wall time live, the replay position in a replay. Countdowns
        and uptimes are measured against it, which is what makes a replay's frame exact."""
        return time.time()

    def tick(self, wall_dt: float) -> None:
        """Called by the app's refresh timer."""

    @property
    def log_path(self) -> Path | None:
        return None

    @property
    def session_dir(self) -> Path | None:
        return self.log_path.parent if self.log_path is not None else None

    def resolve(self, path: str) -> Path:
        """An artifact path as recorded (relative to the session folder) made usable here."""
        p = Path(path)
        if not p.is_absolute() and self.session_dir is not None:
            return self.session_dir / p
        return p

    async def command(self, pool: str, op: str, **args: object) -> ev.Control:
        raise CommandRefused("this source cannot control pools")


class LiveSource(EventSource):
    """Real pools: a Supervisor on the app's asyncio loop, recorded by a Recorder."""

    live = True
    kind = "live"

    def __init__(
        self,
        pools: Sequence[PoolConfig],
        *,
        session_dir: Path | None = None,
        record: bool = True,
        restart: bool = True,
        stall_after: float | None = None,
        argv: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.pools = list(pools)
        self.session_root = session_dir
        self.record = record
        self.restart = restart
        self.stall_after = stall_after
        self.argv = list(argv)
        self.recorder: Recorder | None = None
        self.supervisor: Supervisor | None = None
        self.host: HostSampler | None = None
        self.record_error: str | None = None
        self._host_due = 0.0
        self._stopped = False

    @property
    def log_path(self) -> Path | None:
        return self.recorder.path if self.recorder is not None else None

    async def start(self) -> None:
        from gpumon.host import HostSampler
        from gpumon.supervisor.pool import RestartPolicy
        from gpumon.supervisor.supervisor import STALL_AFTER, Supervisor

        listeners: list[Deliver] = []
        artifacts_root = None
        if self.record:
            from gpumon.session.recorder import Recorder

            try:
                self.recorder = Recorder(self.session_root, mode="tui", argv=self.argv)
            except OSError as e:
                # Monitoring without a log beats refusing to monitor; the title bar says so.
                self.record_error = f"not recording: {e.strerror or e}"
            else:
                listeners.append(self.recorder)
                artifacts_root = self.recorder.artifacts_dir
        listeners.append(self._deliver)
        self.supervisor = Supervisor(
            self.pools,
            artifacts_root=artifacts_root,
            restart=RestartPolicy(enabled=self.restart),
            stall_after=self.stall_after if self.stall_after is not None else STALL_AFTER,
            listeners=listeners,
        )
        self.host = HostSampler()
        await self.supervisor.start()

    async def stop(self, reason: str = "quit") -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.supervisor is not None:
                await self.supervisor.stop()
        finally:
            if self.recorder is not None:
                self.recorder.close(reason)

    def tick(self, wall_dt: float) -> None:
        now = time.monotonic()
        if self.host is None or self.supervisor is None or now < self._host_due:
            return
        self._host_due = now + HOST_EVERY
        # Through the supervisor, so the session log records the host beside the pools.
        self.supervisor.emit(self.host.sample())

    async def command(self, pool: str, op: str, **args: object) -> ev.Control:
        sup = self.supervisor
        if sup is None:
            raise CommandRefused("the pools have not started yet")
        if op == "set_threads":
            return await sup.set_threads(pool, int(args["threads"]))  # type: ignore[call-overload]
        if op == "pause":
            return await sup.pause(pool)
        if op == "resume":
            return await sup.resume(pool)
        if op == "restart":
            return await sup.restart_pool(pool)
        if op == "set_policy":
            return await sup.set_policy(pool, str(args["policy"]))
        if op == "set_workload":
            return await sup.set_workload(pool, workload=str(args["workload"]))
        raise CommandRefused(f"unknown command {op}")

    def alive_pids(self) -> list[int]:
        """Worker processes still running (the quit path checks this is empty)."""
        if self.supervisor is None:
            return []
        out = []
        for p in self.supervisor.pools.values():
            w = p.worker
            if w is not None and w.proc.returncode is None:
                out.append(w.proc.pid)
        return out


class ReplaySource(EventSource):
    """A recorded session log played back through `gpumon.session.replay.Replay`."""

    live = False
    kind = "replay"
    REFUSED = "this is a replay of a recording: pool controls are disabled"

    def __init__(
        self,
        path: Path,
        events: Sequence[ev.Event],
        *,
        speed: float = 1.0,
        paused: bool = False,
        position: float | None = None,
    ) -> None:
        from gpumon.session.replay import Replay

        super().__init__()
        self.path = Path(path).resolve()
        self.replay = Replay(list(events))
        self.replay.set_speed(speed)
        self.t0 = events[0].t if events else 0.0
        self._start_paused = paused
        self._start_at = position

    @property
    def log_path(self) -> Path | None:
        return self.path

    async def start(self) -> None:
        if self._start_at is not None:
            self.seek(self._start_at)
        if self._start_paused:
            self.replay.pause()
        else:
            self.replay.play()

    def now(self) -> float:
        return self.t0 + self.replay.position

    def tick(self, wall_dt: float) -> None:
        for e in self.replay.advance(wall_dt):
            self._deliver(e)

    def seek(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), self.replay.duration)
        self._reset(self.replay.seek(seconds))

    async def command(self, pool: str, op: str, **args: object) -> ev.Control:
        raise CommandRefused(self.REFUSED)
