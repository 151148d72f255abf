"""Where the screen's events come from: a live session (gpumon.live_session) or a replayed log.

The screens only ever see `deliver(event)` calls and, after a replay seek, `reset(state)`;
what produced the events is this module's business. That is the whole trick behind "a replay
looks exactly like the live session": both feed the same `SessionState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon import events as ev
from gpumon import sanitize
from gpumon.control import PoolCommand
from gpumon.spec import PoolConfig
from gpumon.state import SessionState

if TYPE_CHECKING:
    from gpumon.live_session import LiveSession
    from gpumon.scenario.conductor import Conductor
    from gpumon.scenario.model import Scenario


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario to play in the live monitor, with the pools chosen for it."""

    scenario: Scenario
    source: str
    fallback: bool = False
    note: str = ""


Deliver = Callable[[ev.Event], None]
Reset = Callable[[SessionState], None]


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

    def flush_log(self) -> None:
        """Write what the recorder batches, so a report made now sees every sample so far."""

    @property
    def session_dir(self) -> Path | None:
        return self.log_path.parent if self.log_path is not None else None

    def resolve(self, path: str) -> Path:
        """An artifact path as recorded (relative to the session folder) made usable here."""
        p = Path(path)
        if not p.is_absolute() and self.session_dir is not None:
            return self.session_dir / p
        return p

    async def command(self, pool: str, cmd: PoolCommand) -> ev.Control:
        raise CommandRefused("this source cannot control pools")


class LiveSource(EventSource):
    """Real pools in a live session on the app's asyncio loop (recorded unless asked not)."""

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
        scenario: ScenarioRun | None = None,
        readonly: bool = False,
        listeners: Sequence[Callable[[ev.Event], None]] = (),
    ) -> None:
        super().__init__()
        # Other consumers of the same session (the Prometheus exporter): they see every event
        # from SessionStart on, exactly as the screen does.
        self.listeners = list(listeners)
        self.pools = list(pools)
        self.session_root = session_dir
        self.record = record
        self.restart = restart
        self.stall_after = stall_after
        self.argv = list(argv)
        self.session: LiveSession | None = None
        self.scenario = scenario
        self.readonly = readonly  # a kiosk: the pools run, nobody at the keyboard changes them
        self.conductor: Conductor | None = None
        self._conducting: asyncio.Task[str] | None = None
        # The app's hook for a scenario step that shows a screen ("crash", "main").
        self.on_show: Callable[[str], None] = lambda what: None

    @property
    def log_path(self) -> Path | None:
        return self.session.log_path if self.session is not None else None

    def flush_log(self) -> None:
        if self.session is not None and self.session.recorder is not None:
            self.session.recorder.flush()

    @property
    def record_error(self) -> str | None:
        return self.session.record_error if self.session is not None else None

    async def start(self) -> None:
        from gpumon.live_session import start_session
        from gpumon.supervisor.backoff import RestartPolicy
        from gpumon.supervisor.supervisor import STALL_AFTER

        # Monitoring without a log beats refusing to monitor: a session folder that cannot be
        # made leaves record_error set, and the title bar says so.
        self.session = await start_session(
            self.pools,
            mode="tui",
            argv=self.argv,
            record=self.record,
            session_dir=self.session_root,
            listeners=[self._deliver, *self.listeners],
            restart=RestartPolicy(enabled=self.restart),
            stall_after=self.stall_after if self.stall_after is not None else STALL_AFTER,
            start_pools=False,
        )
        sc = self.scenario
        if sc is not None:
            from gpumon.scenario.conductor import Conductor

            self.conductor = Conductor(
                sc.scenario,
                self.session.supervisor,
                self.session.publish,
                interactive=True,
                show=lambda what: self.on_show(what),
                source=sc.source,
                fallback=sc.fallback,
                note=sc.note,
            )
            self.session.bus.subscribe(self.conductor)
        await self.session.supervisor.start()
        if self.conductor is not None:
            self._conducting = asyncio.create_task(self.conductor.run(), name="scenario")

    async def stop(self, reason: str = "quit") -> None:
        if self._conducting is not None and not self._conducting.done():
            self._conducting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._conducting
        if self.session is not None:
            await self.session.close(reason)

    async def command(self, pool: str, cmd: PoolCommand) -> ev.Control:
        if self.session is None:
            raise CommandRefused("the pools have not started yet")
        return await self.session.supervisor.command(pool, cmd)

    def alive_pids(self) -> list[int]:
        """Worker processes still running (the quit path checks this is empty)."""
        if self.session is None:
            return []
        out = []
        for p in self.session.supervisor.pools.values():
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
        # A seek rebuilds the state from these events directly (not through the app's
        # deliver), so they are made inert here, once.
        self.replay = Replay([sanitize.struct(e) for e in events])
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

    async def command(self, pool: str, cmd: PoolCommand) -> ev.Control:
        raise CommandRefused(self.REFUSED)
