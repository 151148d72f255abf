"""The gpumon Textual app: a view of one event stream (live pools or a replay) plus controls.

Events arrive through `deliver` (the supervisor calls it synchronously on this loop; a replay
calls it from the refresh tick) and are folded into `SessionState` at once — cheap, no drawing.
Drawing happens only on the refresh tick (10 Hz by default), which re-renders the panels whose
pool changed or whose clock moved. So a burst of 20 samples costs one frame, not 20, and the
screen never flickers between half-applied states.

`make_app(...)` builds the app for the CLI, the tests, the screenshots and the benchmark alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Grid
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from gpumon import control, fmt, sanitize
from gpumon import events as ev
from gpumon.spec import MAX_THREADS, POLICIES, WORKLOADS, PoolConfig
from gpumon.state import SessionState
from gpumon.tui import keys
from gpumon.tui.crash_screen import CrashScreen, StallScreen
from gpumon.tui.event_log import EventLog
from gpumon.tui.help_screen import HelpScreen
from gpumon.tui.host_strip import HostStrip
from gpumon.tui.pool_panel import PoolPanel
from gpumon.tui.replay_bar import ReplayBar
from gpumon.tui.source import CommandRefused, EventSource, LiveSource, ReplaySource
from gpumon.tui.thread_input import ThreadInput

REFRESH_HZ = 10.0
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
LOGGED = (ev.Sample, ev.HostSample)  # event types that never make a log line
EXPORT_NAME = "report.md"


class MainScreen(Screen[None]):
    """Title, host strip, one panel per pool, the event log, (replay bar), footer."""

    AUTO_FOCUS = ""  # the first pool panel takes focus once it exists (see sync)

    def __init__(self, mode: str) -> None:
        super().__init__(id="main")
        self.mode = mode
        self.panels: dict[str, PoolPanel] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="title-bar", markup=False)
        yield HostStrip(id="host")
        yield Grid(id="pools")
        yield EventLog(id="log")
        if self.mode == keys.REPLAY:
            yield ReplayBar(id="replay-bar")
        yield Footer(show_command_palette=False)

    @property
    def gapp(self) -> GpumonApp:
        return self.app  # type: ignore[return-value]

    def on_resize(self) -> None:
        self.set_class(self.size.height < 30, "-short")

    # ---- drawing from state ---------------------------------------------------------
    def sync(self, state: SessionState, now: float, dirty: set[str], everything: bool) -> None:
        grid = self.query_one("#pools", Grid)
        if everything:
            for name in [n for n in self.panels if n not in state.pools]:
                self.panels.pop(name).remove()
        for i, (name, view) in enumerate(state.pools.items(), start=1):
            panel = self.panels.get(name)
            if panel is None:
                panel = self.panels[name] = PoolPanel(view, i, now)
                grid.mount(panel)
                grid.styles.grid_size_columns = min(len(self.panels), 2)
                if self.gapp.selected is None:
                    self.gapp.select(name)
                    self.call_after_refresh(self._initial_focus, panel)
                continue
            moving = view.state in ("running", "paused", "restarting") and panel.now != now
            if everything or name in dirty or moving or panel.view is not view:
                panel.update_view(view, now)
        for name, panel in self.panels.items():
            panel.set_class(name == self.gapp.selected, "-selected")

    def on_mount(self) -> None:
        log = self.query_one(EventLog)
        log.border_title = "events"
        log.border_subtitle = "tab here, ⏎ on a crash for its stacks"
        log.base = self.gapp.source.session_dir
        self.query_one(HostStrip).live = self.gapp.source.live
        self.gapp.update_title()
        self.gapp.call_later(self.gapp.begin)

    def _initial_focus(self, panel: PoolPanel) -> None:
        if self.app.focused is None:  # never steal focus from what the user chose
            panel.focus()

    def update_title(self, text: Text) -> None:
        self.query_one("#title-bar", Static).update(text)

    # ---- pool keys --------------------------------------------------------------------
    def action_select_pool(self, n: int) -> None:
        names = list(self.panels)
        if not 1 <= n <= len(names):
            self.app.notify(f"there is no pool {n}; pools: 1–{len(names)}", timeout=2)
            return
        self.panels[names[n - 1]].focus()

    def on_descendant_focus(self, event: Message) -> None:
        widget = getattr(event, "widget", None)
        if isinstance(widget, PoolPanel):
            self.gapp.select(widget.pool_name)

    def action_threads(self, delta: int) -> None:
        self.gapp.change_threads(delta)

    def action_set_threads(self) -> None:
        self.gapp.ask_threads()

    def action_pause(self) -> None:
        self.gapp.toggle_pause()

    def action_restart(self) -> None:
        self.gapp.pool_command(control.Restart())

    def action_cycle_policy(self) -> None:
        self.gapp.cycle_policy()

    def action_cycle_workload(self) -> None:
        self.gapp.cycle_workload()

    def action_last_crash(self) -> None:
        self.gapp.open_last_crash()

    def action_export(self) -> None:
        self.gapp.export_session()

    # ---- replay keys ------------------------------------------------------------------
    def action_play_pause(self) -> None:
        self.gapp.replay_play_pause()

    def action_speed(self, step: int) -> None:
        self.gapp.replay_speed(step)

    def action_seek(self, delta: float) -> None:
        self.gapp.replay_seek(delta, relative=True)

    def action_seek_to(self, where: float) -> None:
        self.gapp.replay_seek(where, relative=False)

    def on_event_log_open(self, message: EventLog.Open) -> None:
        e = message.event
        if isinstance(e, ev.Stall | ev.StallArtifact):
            record = self.gapp.state.stalls.get(e.stall_id)
            if record is not None:
                self.app.push_screen(StallScreen(record))
        elif isinstance(e, ev.Crash | ev.CrashArtifact):
            self.gapp.open_crash(e.crash_id)


class LiveScreen(MainScreen):
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings(keys.LIVE)

    def __init__(self) -> None:
        super().__init__(keys.LIVE)


class ReplayScreen(MainScreen):
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings(keys.REPLAY)

    def __init__(self) -> None:
        super().__init__(keys.REPLAY)


class GpumonApp(App[int]):
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    TITLE = "gpumon"
    BINDINGS: ClassVar[list[BindingType]] = keys.app_bindings()

    class CommandAnswered(Message):
        """A pool command finished (or was refused): what the user pressed and the answer."""

        def __init__(
            self,
            pool: str,
            op: str,
            control: ev.Control | None,
            refused: str = "",
        ) -> None:
            super().__init__()
            self.pool, self.op, self.answer, self.refused = pool, op, control, refused

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
        self.pending_threads: dict[str, int] = {}
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
        main = self.main
        if not main.is_mounted:
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

    # ---- pool commands ----------------------------------------------------------------
    def select(self, name: str) -> None:
        self.selected = name

    def _selected_view(self):
        if self.selected is None:
            self.notify("no pool selected", timeout=2)
            return None
        return self.state.pools.get(self.selected)

    def _refuse_in_replay(self) -> bool:
        if isinstance(self.source, ReplaySource):
            self.notify(ReplaySource.REFUSED, severity="warning", timeout=3)
            self.post_message(
                self.CommandAnswered(self.selected or "", "", None, ReplaySource.REFUSED)
            )
            return True
        return False

    def pool_command(self, cmd: control.PoolCommand) -> None:
        if self._refuse_in_replay():
            return
        view = self._selected_view()
        if view is None:
            return
        self._run_command(view.name, cmd)

    @work(group="commands", exit_on_error=False)
    async def _run_command(self, pool: str, cmd: control.PoolCommand) -> None:
        op = control.op(cmd)
        try:
            answer = await self.source.command(pool, cmd)
        except CommandRefused as e:
            self.notify(str(e), severity="warning", timeout=3)
            self.post_message(self.CommandAnswered(pool, op, None, str(e)))
            return
        except Exception as e:  # e.g. SpecError from a bad thread count: say it, go on
            self.notify(f"{op} failed: {e}", severity="error", timeout=5)
            self.post_message(self.CommandAnswered(pool, op, None, str(e)))
            return
        finally:
            if isinstance(cmd, control.SetThreads):
                self.pending_threads.pop(pool, None)
        detail = sanitize.line(answer.detail)  # the worker's words: inert on screen
        if not answer.ok:
            self.notify(f"{pool}: {op} refused: {detail}", severity="warning", timeout=4)
        elif "will start" in detail:
            self.notify(f"{pool}: {detail}", timeout=4)
        self._dirty.add(pool)
        self.post_message(self.CommandAnswered(pool, op, answer))

    def set_threads(self, pool: str, n: int) -> None:
        n = min(max(n, 1), MAX_THREADS)
        self.pending_threads[pool] = n
        self._run_command(pool, control.SetThreads(threads=n))

    def change_threads(self, delta: int) -> None:
        if self._refuse_in_replay():
            return
        view = self._selected_view()
        if view is None:
            return
        base = self.pending_threads.get(view.name, view.threads or 1)
        target = min(max(base + delta, 1), MAX_THREADS)
        if target == base:
            self.notify(f"{view.name} already runs {fmt.plural(base, 'thread')}", timeout=2)
            return
        self.set_threads(view.name, target)

    def ask_threads(self) -> None:
        if self._refuse_in_replay():
            return
        view = self._selected_view()
        if view is None:
            return
        note = ""
        if view.state not in ("running", "paused", "starting"):
            note = f"{view.name} is {view.state}: it will start with this many"

        def done(n: int | None) -> None:
            if n is not None:
                self.set_threads(view.name, n)

        self.push_screen(ThreadInput(view.name, view.threads or 1, note), done)

    def toggle_pause(self) -> None:
        view = self.state.pools.get(self.selected or "")
        paused = view is not None and view.state == "paused"
        self.pool_command(control.Resume() if paused else control.Pause())

    def cycle_policy(self) -> None:
        if self._refuse_in_replay():
            return
        view = self._selected_view()
        if view is None:
            return
        available = view.ready.policies if view.ready else {}
        current = view.policy or POLICIES[0]
        i = POLICIES.index(current) if current in POLICIES else -1
        skipped = []
        for step in range(1, len(POLICIES)):
            candidate = POLICIES[(i + step) % len(POLICIES)]
            why = available.get(candidate, "")
            if why:
                skipped.append(f"{candidate}: {why}")
                continue
            if skipped:
                self.notify("skipped " + "; ".join(skipped), timeout=4)
            self._run_command(view.name, control.SetPolicy(policy=candidate))
            return
        self.notify(
            f"{view.name}: no other policy is available (" + "; ".join(skipped) + ")",
            severity="warning",
            timeout=4,
        )

    def cycle_workload(self) -> None:
        if self._refuse_in_replay():
            return
        view = self._selected_view()
        if view is None:
            return
        current = view.workload or WORKLOADS[0]
        nxt = (
            WORKLOADS[(WORKLOADS.index(current) + 1) % len(WORKLOADS)]
            if current in WORKLOADS
            else WORKLOADS[0]
        )
        self._run_command(view.name, control.SetWorkload(workload=nxt))

    # ---- crashes ----------------------------------------------------------------------
    def open_crash(self, crash_id: str) -> None:
        if isinstance(self.screen, CrashScreen):
            if self.screen.crash_id == crash_id:
                return
            self.pop_screen()
        self.push_screen(CrashScreen(crash_id))

    def open_last_crash(self) -> None:
        if not self.state.crashes:
            self.notify("no crash in this session yet", timeout=2)
            return
        # The selected pool's latest crash if it has one, else the session's latest.
        view = self.state.pools.get(self.selected or "")
        cid = view.last_crash if view is not None and view.last_crash else None
        self.open_crash(cid or next(reversed(self.state.crashes)))

    # ---- session ----------------------------------------------------------------------
    def export_session(self) -> None:
        log = self.source.log_path
        if log is None:
            self.notify(
                "nothing to export: this session is not being recorded (--no-record)",
                severity="warning",
                timeout=4,
            )
            return
        self._export(log)

    @work(group="export", thread=True, exit_on_error=False)
    def _export(self, log: Path) -> None:
        try:
            path = export_markdown(log)
        except Exception as e:  # unreadable log, full disk: one line, the UI carries on
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error", timeout=6)
            self.post_message(self.Exported(None, str(e)))
            return
        self.call_from_thread(self.notify, f"evidence report written to {path}", timeout=8)
        self.post_message(self.Exported(path))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen(self.mode))

    def action_screenshot_svg(self) -> None:
        folder = self.screenshot_dir or self.source.session_dir or Path.cwd()
        if isinstance(self.source, ReplaySource) and self.screenshot_dir is None:
            folder = Path.cwd()  # a recording's folder may be read-only (or a fixture)
        try:
            path = self.save_screenshot(path=str(folder))
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

    # ---- replay -----------------------------------------------------------------------
    def replay_play_pause(self) -> None:
        if not isinstance(self.source, ReplaySource):
            return
        r = self.source.replay
        if r.playing:
            r.pause()
        else:
            if r.position >= r.duration:
                self.source.seek(0.0)
            r.play()
        self.draw()

    def replay_speed(self, step: int) -> None:
        if not isinstance(self.source, ReplaySource):
            return
        r = self.source.replay
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - r.speed))
        r.set_speed(SPEEDS[min(max(i + step, 0), len(SPEEDS) - 1)])
        self.draw()

    def replay_seek(self, value: float, *, relative: bool) -> None:
        if not isinstance(self.source, ReplaySource):
            return
        r = self.source.replay
        end = r.duration if value < 0 else value
        self.source.seek(r.position + value if relative else end)
        self.draw()


def export_markdown(log: Path) -> Path:
    """Write the Markdown evidence report next to the log (what `gpumon export LOG -f md`
    prints) and return its path. A live log is read as it stands; its last line may be torn
    mid-write, which the loader tolerates and the report mentions."""
    from gpumon.session.export import render
    from gpumon.session.log import load

    session = load(log)
    out = log.parent / EXPORT_NAME
    out.write_text(render(session, "md"), encoding="utf-8")
    return out


def make_app(
    *,
    pools: Sequence[PoolConfig] = (),
    replay: Path | None = None,
    events: Sequence[ev.Event] | None = None,
    speed: float = 1.0,
    paused: bool = False,
    position: float | None = None,
    session_dir: Path | None = None,
    record: bool = True,
    restart: bool = True,
    stall_after: float | None = None,
    follow_crashes: bool = False,
    refresh_hz: float = REFRESH_HZ,
    argv: Sequence[str] = (),
    screenshot_dir: Path | None = None,
    listeners: Sequence[Callable[[ev.Event], None]] = (),
) -> GpumonApp:
    """The one way to build the app: live pools, or a replay of `replay` (a session log).

    `events` lets a caller that already loaded the log pass them (replay_command does, to turn
    a bad log into one line before Textual starts); `position` + `paused` pin a replay to one
    frame, which is how the snapshot tests and the screenshots are deterministic.
    """
    source: EventSource
    if replay is not None:
        if events is None:
            from gpumon.session.log import load

            events = load(replay).events
        source = ReplaySource(replay, events, speed=speed, paused=paused, position=position)
    else:
        source = LiveSource(
            pools,
            session_dir=session_dir,
            record=record,
            restart=restart,
            stall_after=stall_after,
            argv=argv,
            listeners=listeners,
        )
    return GpumonApp(
        source, follow_crashes=follow_crashes, refresh_hz=refresh_hz, screenshot_dir=screenshot_dir
    )
