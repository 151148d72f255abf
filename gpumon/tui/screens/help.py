"""The help screen (`?`): every key from the one key table, plus what the screens show."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from gpumon.tui.keys import help_rows

ABOUT = (
    "Each panel is one pool: a worker process running N threads of one backend on one device. "
    "Figures name their unit and source: ops/s and FLOP/s are measured inside the worker "
    "(0.5 s mean); latency is per op; memory is what the framework reports; CPU and RSS are "
    "the worker process's (psutil). The chart is ops/s over the last 60 s; blank columns are "
    "time the pool was not running. Panels titled SYNTHETIC run the fault backend: a CPU loop "
    "that injects real native faults on purpose."
)


def help_table(mode: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for keys, what in help_rows(mode):
        table.add_row(keys, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "close")
    ]

    def __init__(self, mode: str) -> None:
        super().__init__(classes="help-screen")
        self.mode = mode

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = f"gpumon keys ({self.mode})"
            box.border_subtitle = "esc closes"
            yield Static(help_table(self.mode))
            yield Static(Text(ABOUT, style="dim"), id="help-about")
