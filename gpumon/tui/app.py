"""The gpumon Textual app: a view of one event stream (live pools or a replay) plus controls.

Events arrive through `deliver` (the bus calls it synchronously on this loop; a replay calls
it from the refresh tick) and are folded into `SessionState` at once — cheap, no drawing.
Drawing happens only on the refresh tick (10 Hz by default), which re-renders the panels whose
pool changed or whose clock moved. So a burst of 20 samples costs one frame, not 20, and the
screen never flickers between half-applied states.

Pool keys are the app's actions (so they also work over the crash screen); each goes through
one guard (`_target`) and is decided by a pure function in gpumon.tui.controls. `live_app` and
`replay_app` build the app for the CLI, the tests, the screenshots and the benchmarks alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen

from gpumon import events as ev
from gpumon import fmt, sanitize
from gpumon.spec import PoolConfig
from gpumon.state import SessionState
from gpumon.tui import keys
from gpumon.tui.pool_keys import PoolKeys
from gpumon.tui.screens.crash import CrashScreen
from gpumon.tui.screens.help import HelpScreen
from gpumon.tui.screens.main import LiveScreen, MainScreen, ReplayScreen
from gpumon.tui.source import EventSource, LiveSource, ReplaySource, ScenarioRun
from gpumon.tui.widgets.caption_bar import CaptionBar
from gpumon.tui.widgets.event_log import EventLog
from gpumon.tui.widgets.host_strip import HostStrip
from gpumon.tui.widgets.replay_bar import ReplayBar

REFRESH_HZ = 10.0
LOGGED = (ev.Sample, ev.HostSample)  # event types that never make a log line
EXPORT_NAME = "report.md"


class GpumonApp(PoolKeys):
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    TITLE = "gpumon"
    BINDINGS: ClassVar[list[BindingType]] = keys.app_bindings()

    class Exported(Message):
        def __init__(self, path: Path | None, error: str = "") -> None:
            super().__init__()
            self.path, self.error = path, error

    def __init__(
        self,
        source: EventSource,
        *,
        follow_crashes: bool = False,
        refresh_hz: float = REFRESH_HZ,
        screenshot_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.follow_crashes = follow_crashes
        self.refresh_hz = refresh_hz
        self.screenshot_dir = screenshot_dir
        self.state = SessionState()
        self.selected: str | None = None
        self.quitting = False
        self.exit_code = 0
        self.frames = 0  # refresh ticks that drew something (the benchmark reads it)
        self.first_frame_at: float | None = None
        self._dirty: set[str] = set()
        self._everything = True
        self._log_queue: list[ev.Event] = []
        self._followed = False
        self._last_tick = time.monotonic()
        if isinstance(source, LiveSource):
            # Panels exist from the first frame, saying "starting", before any worker speaks.
            for cfg in source.pools:
                self.state.pool(cfg.name).config = cfg

    @property
    def mode(self) -> str:
        return keys.LIVE if self.source.live else keys.REPLAY

    def get_default_screen(self) -> Screen:
        return LiveScreen() if self.source.live else ReplayScreen()

    @property
    def main(self) -> MainScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    # ---- the event stream -------------------------------------------------------------
    def deliver(self, e: ev.Event) -> None:
        """Every event, live or replayed. Runs on this loop; must stay cheap."""
        # The one door into the screen: a worker's output, a crash report or a replayed log
        # may carry terminal escapes; from here on every string is inert.
        e = sanitize.struct(e)
        self.state.apply(e)
        if isinstance(e, ev.SessionStart | ev.RecordingStopped):
            self.call_later(self.update_title)
        pool = getattr(e, "pool", "")
        if pool:
            self._dirty.add(pool)
        if not isinstance(e, LOGGED):
            self._log_queue.append(e)
        if isinstance(e, ev.Crash) and self.follow_crashes and not self._followed:
            self._followed = True
            self.call_later(self.open_crash, e.crash_id)

    def reset(self, state: SessionState) -> None:
        """A replay seek: the state is rebuilt from the start of the recording."""
        self.state = state
        self._log_queue.clear()
        self._everything = True
        log = self.main.query_one(EventLog)
        log.reset(list(state.log), state.first_t)
        self.update_title()

    async def begin(self) -> None:
        """Start the refresh timer and the source, once the main screen exists."""
        self.source.attach(self.deliver, self.reset)
        if isinstance(self.source, LiveSource):
            self.source.on_show = self._show_later
        self.update_title()
        self.set_interval(1 / self.refresh_hz, self.tick, name="refresh")
        if self.source.live:
            # `kill <pid>` / a closing terminal: quit as `q` does, so the pools stop and the
            # session log gets its session_end.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, lambda: self.run_worker(self.action_quit()))
            self.start_source()  # spawning and the recorder's host probe: off the first frame
        else:
            await self.source.start()  # a replay seeks at once, so its first frame is exact
            self.update_title()
        self.tick()

    @work(group="source", exit_on_error=False)
    async def start_source(self) -> None:
        try:
            await self.source.start()
        except Exception as e:  # a broken recorder or spawn must be seen, not crash the UI
            self.notify(f"could not start: {type(e).__name__}: {e}", severity="error", timeout=30)
        self.update_title()

    def tick(self) -> None:
        t = time.monotonic()
        dt, self._last_tick = t - self._last_tick, t
        self.source.tick(dt)
        self.draw()

    def draw(self) -> None:
        """Bring every widget up to date with the state (only what changed repaints)."""
        stack = self.screen_stack
        if not stack:  # the app is closing: a last timer tick can come after its screens left
            return
        main = stack[0]
        if not isinstance(main, MainScreen) or not main.is_mounted:
            return
        # While the screen is being built or torn down its widgets come and go.
        with contextlib.suppress(NoMatches):
            self._draw(main)

    def _draw(self, main: MainScreen) -> None:
        now = self.source.now()
        if self._log_queue or self._everything:
            log = main.query_one(EventLog)
            if log.t0 is None:
                log.t0 = self.state.first_t
            log.add_events(self._log_queue)
            self._log_queue = []
        cpu_count = self.state.start.host.cpu_count if self.state.start else None
        main.query_one(HostStrip).update_sample(self.state.host, cpu_count)
        conductor = getattr(self.source, "conductor", None)
        waiting = conductor.waiting if conductor is not None else ""
        screens: list[Screen[Any]] = [main] if self.screen is main else [main, self.screen]
        for screen in screens:  # the main screen, and a crash screen over it
            for bar in screen.query(CaptionBar):
                bar.update_scenario(self.state.scenario, waiting)
        main.sync(self.state, now, self._dirty, self._everything)
        if isinstance(self.source, ReplaySource):
            r = self.source.replay
            main.query_one(ReplayBar).update_position(r.position, r.duration, r.speed, r.playing)
        if self._dirty or self._everything:
            self.frames += 1
            if self.first_frame_at is None:
                self.first_frame_at = time.monotonic()
        self._dirty = set()
        self._everything = False
        if isinstance(self.screen, CrashScreen):
            self.call_later(self.screen.sync)

    def update_title(self) -> None:
        t = Text()
        t.append(" gpumon ", style="bold reverse")
        src = self.source
        if isinstance(src, LiveSource):
            t.append(f" live · {fmt.plural(len(src.pools), 'pool')} · ")
            if src.record_error:
                t.append(src.record_error, style="bold red")
            elif src.log_path is not None:
                t.append("recording ")
                t.append(str(src.log_path), style="bold")
            elif not src.record:
                t.append("not recording (--no-record)", style="yellow")
            else:
                t.append("starting…", style="dim")
        else:
            t.append(" replay · ", style="bold cyan")
            lp = src.log_path
            t.append(f"{lp.parent.name}/{lp.name}" if lp else "?", style="bold")
            s = self.state.start
            if s is not None:
                t.append(
                    f" · recorded on {s.host.hostname} ({s.host.os}, {s.host.chip})", style="dim"
                )
        if self.screen_stack and isinstance(self.screen_stack[0], MainScreen):
            main = self.screen_stack[0]
            if main.is_mounted:
                main.update_title(t)

    # ---- scenarios --------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot act here are off (and out of the footer): the presenter's key
        without a scenario or in a replay, the pool keys of a read-only monitor."""
        if action == "next_step":
            return getattr(self.source, "conductor", None) is not None
        return not (getattr(self.source, "readonly", False) and action in keys.POOL_ACTIONS)

    def action_next_step(self) -> None:
        conductor = getattr(self.source, "conductor", None)
        if conductor is not None and not conductor.press_key():
            self.notify("the scenario is not waiting for you now", timeout=2)

    def _show_later(self, what: str) -> None:
        self.call_later(self.show_for_scenario, what)

    def show_for_scenario(self, what: str) -> None:
        """A step that shows a screen: `crash` opens the latest crash, `main` goes back."""
        if what == "crash" and self.state.crashes:
            self.open_crash(next(reversed(self.state.crashes)))
        elif what == "main":
            while len(self.screen_stack) > 1:
                self.pop_screen()

    # ---- crashes ----------------------------------------------------------------------
    def open_crash(self, crash_id: str) -> None:
        if isinstance(self.screen, CrashScreen):
            if self.screen.crash_id == crash_id:
                return
            self.pop_screen()
        self.push_screen(CrashScreen(crash_id))

    def action_last_crash(self) -> None:
        if not self.state.crashes:
            self.notify("no crash in this session yet", timeout=2)
            return
        # The selected pool's latest crash if it has one, else the session's latest.
        view = self.state.pools.get(self.selected or "")
        cid = view.last_crash if view is not None and view.last_crash else None
        self.open_crash(cid or next(reversed(self.state.crashes)))

    # ---- files ------------------------------------------------------------------------
    def output_dir(self) -> Path:
        """Where exports and screenshots go: the session folder live, the current directory
        in a replay (a recording's folder may be read-only, or a fixture worth keeping)."""
        if self.screenshot_dir is not None:
            return self.screenshot_dir
        if isinstance(self.source, ReplaySource):
            return Path.cwd()
        return self.source.session_dir or Path.cwd()

    def action_export(self) -> None:
        log = self.source.log_path
        if log is None:
            self.notify(
                "nothing to export: this session is not being recorded (--no-record)",
                severity="warning",
                timeout=4,
            )
            return
        self.source.flush_log()  # the recorder batches samples for up to 0.2 s
        self._export(log, self.output_dir() / EXPORT_NAME)

    @work(group="export", thread=True, exit_on_error=False)
    def _export(self, log: Path, out: Path) -> None:
        try:
            export_markdown(log, out)
        except Exception as e:  # unreadable log, full disk: one line, the UI carries on
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error", timeout=6)
            self.post_message(self.Exported(None, str(e)))
            return
        self.call_from_thread(self.notify, f"evidence report written to {out}", timeout=8)
        self.post_message(self.Exported(out))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen(self.mode))

    def action_screenshot_svg(self) -> None:
        try:
            path = self.save_screenshot(path=str(self.output_dir()))
        except OSError as e:
            self.notify(f"screenshot failed: {e}", severity="error", timeout=5)
            return
        self.notify(f"SVG screenshot saved to {path}", timeout=6)

    async def action_quit(self) -> None:
        if self.quitting:
            self.notify(
                "still stopping the pools… (workers that do not stop are killed after 15 s)",
                timeout=3,
            )
            return
        self.quitting = True
        if self.source.live:
            self.notify("stopping every pool…", timeout=30)
        self.stop_and_exit()

    @work(group="quit", exit_on_error=False)
    async def stop_and_exit(self) -> None:
        try:
            await self.source.stop("quit")
        finally:
            self.exit(self.exit_code)


def export_markdown(log: Path, out: Path) -> Path:
    """Write the Markdown evidence report of `log` (what `gpumon export LOG -f md` prints) to
    `out`. A live log is read as it stands; its last line may be torn mid-write, which the
    loader tolerates and the report mentions."""
    from gpumon.session.digest import digest
    from gpumon.session.export import render

    out.write_text(render(digest(log), "md"), encoding="utf-8")
    return out


def live_app(
    pools: Sequence[PoolConfig],
    *,
    session_dir: Path | None = None,
    record: bool = True,
    restart: bool = True,
    stall_after: float | None = None,
    follow_crashes: bool = False,
    argv: Sequence[str] = (),
    refresh_hz: float = REFRESH_HZ,
    screenshot_dir: Path | None = None,
    scenario: ScenarioRun | None = None,
    readonly: bool = False,
    listeners: Sequence[Callable[[ev.Event], None]] = (),
) -> GpumonApp:
    """The monitor over real pools (recorded unless `record` is False), optionally playing a
    scenario; `readonly` turns the pool keys off. `listeners` are more consumers of the same
    session (the Prometheus exporter of `--metrics-port`)."""
    source = LiveSource(
        pools,
        session_dir=session_dir,
        record=record,
        restart=restart,
        stall_after=stall_after,
        argv=argv,
        scenario=scenario,
        readonly=readonly,
        listeners=listeners,
    )
    return GpumonApp(
        source, follow_crashes=follow_crashes, refresh_hz=refresh_hz, screenshot_dir=screenshot_dir
    )


def replay_app(
    log: Path,
    *,
    events: Sequence[ev.Event] | None = None,
    speed: float = 1.0,
    paused: bool = False,
    position: float | None = None,
    follow_crashes: bool = False,
    refresh_hz: float = REFRESH_HZ,
    screenshot_dir: Path | None = None,
) -> GpumonApp:
    """The monitor over a recorded session. `events`: the log already loaded (the replay
    command loads it first, so a bad log is one line before Textual starts); `position` +
    `paused` pin one frame, which is how snapshots and screenshots are deterministic."""
    if events is None:
        from gpumon.session.log import load

        events = load(log).events
    source = ReplaySource(log, events, speed=speed, paused=paused, position=position)
    return GpumonApp(
        source, follow_crashes=follow_crashes, refresh_hz=refresh_hz, screenshot_dir=screenshot_dir
    )
