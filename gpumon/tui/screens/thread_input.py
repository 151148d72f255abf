"""`t`: a small box to type a pool's thread count, for jumps that `+`/`-` would take ages for."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from gpumon.spec import MAX_THREADS


class ThreadInput(ModalScreen[int | None]):
    """Dismisses with the number typed, or None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, pool: str, current: int, note: str = "") -> None:
        super().__init__(classes="thread-input")
        self.pool = pool
        self.current = current
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="thread-box") as box:
            box.border_title = f"threads for {self.pool}"
            box.border_subtitle = "enter sets · esc cancels"
            yield Input(
                value=str(self.current),
                type="integer",
                id="thread-value",
                placeholder=f"1–{MAX_THREADS}",
            )
            yield Static(
                self.note or f"now {self.current}; 1–{MAX_THREADS}", id="thread-note", markup=False
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            n = int(event.value)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            self.query_one("#thread-note", Static).update(
                f"{event.value!r} is not a thread count: type 1–{MAX_THREADS}"
            )
            return
        self.dismiss(n)

    def action_cancel(self) -> None:
        self.dismiss(None)
