"""The main screen: title, host strip, one panel per pool, the event log and the footer.

`LiveScreen` and `ReplayScreen` differ in their bindings only; the replay screen owns the
transport keys (play, speed, seek). Pool keys are the app's (gpumon.tui.app), so they work
from the crash screen too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from gpumon import events as ev
from gpumon.state import SessionState
from gpumon.tui import keys
from gpumon.tui.screens.crash import StallScreen
from gpumon.tui.source import ReplaySource
from gpumon.tui.widgets.caption_bar import CaptionBar
from gpumon.tui.widgets.event_log import EventLog
from gpumon.tui.widgets.host_strip import HostStrip
from gpumon.tui.widgets.pool_panel import PoolPanel
from gpumon.tui.widgets.replay_bar import ReplayBar
from gpumon.tui.widgets.thread_entry import ThreadEntry

if TYPE_CHECKING:
    from gpumon.tui.app import GpumonApp

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class MainScreen(Screen[None]):
    AUTO_FOCUS = ""  # the first pool panel takes focus once it exists (see sync)

    def __init__(self, mode: str) -> None:
        super().__init__(id="main")
        self.mode = mode
        self.panels: dict[str, PoolPanel] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="title-bar", markup=False)
        yield HostStrip(id="host")
        yield CaptionBar(id="caption")
        yield Grid(id="pools")
        yield EventLog(id="log")
        yield ThreadEntry(id="thread-entry")
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

    # ---- selection ------------------------------------------------------------------
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
    """A recording played back; this screen owns the transport."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings(keys.REPLAY)

    def __init__(self) -> None:
        super().__init__(keys.REPLAY)

    @property
    def source(self) -> ReplaySource:
        src = self.gapp.source
        assert isinstance(src, ReplaySource)
        return src

    def action_play_pause(self) -> None:
        r = self.source.replay
        if r.playing:
            r.pause()
        else:
            if r.position >= r.duration:
                self.source.seek(0.0)
            r.play()
        self.gapp.draw()

    def action_speed(self, step: int) -> None:
        r = self.source.replay
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - r.speed))
        r.set_speed(SPEEDS[min(max(i + step, 0), len(SPEEDS) - 1)])
        self.gapp.draw()

    def action_seek(self, delta: float) -> None:
        r = self.source.replay
        self.source.seek(r.position + delta)
        self.gapp.draw()

    def action_seek_to(self, where: float) -> None:
        r = self.source.replay
        self.source.seek(r.duration if where < 0 else where)
        self.gapp.draw()
