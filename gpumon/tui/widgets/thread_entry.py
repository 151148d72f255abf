"""`t`: type a pool's thread count, for jumps that `+`/`-` would take ages for.

An input docked above the footer, not a modal screen: it is shown and focused within the
key's own action, so the digits and the Enter a presenter types right after `t` (`t6⏎`, as
fast as they come) land in it. A modal screen only takes focus once it is mounted, a moment
later, and keys typed before that went to the main screen.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static

from gpumon.spec import MAX_THREADS


class ThreadEntry(Horizontal):
    DEFAULT_CSS = """
    ThreadEntry { height: 1; display: none; background: $boost; }
    ThreadEntry > #thread-label { width: auto; padding: 0 1; }
    ThreadEntry > Input#thread-value { width: 12; height: 1; border: none; padding: 0 1; }
    ThreadEntry > #thread-note { width: 1fr; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "cancel", show=False)]

    class Chosen(Message):
        def __init__(self, pool: str, threads: int) -> None:
            super().__init__()
            self.pool, self.threads = pool, threads

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pool = ""

    def compose(self) -> ComposeResult:
        yield Static("threads:", id="thread-label", markup=False)
        yield Input(type="integer", id="thread-value", placeholder=f"1–{MAX_THREADS}")
        yield Static("", id="thread-note", markup=False)

    def open(self, pool: str, current: int, note: str = "") -> None:
        """Show and focus at once (synchronously), the current count selected so the first
        digit typed replaces it."""
        self.pool = pool
        self.query_one("#thread-label", Static).update(f"threads for {pool}:")
        self.query_one("#thread-note", Static).update(
            note or f"now {current}; 1–{MAX_THREADS} · enter sets · esc cancels"
        )
        box = self.query_one(Input)
        box.value = str(current)
        # Both at once, within this key's handling: an inline style (a CSS class would wait for
        # the next style update) and the screen's focus set directly (Widget.focus() defers it
        # to a later callback, after which keys already read would go to the main screen).
        self.display = True
        self.screen.set_focus(box, scroll_visible=False)
        box.select_all()

    @property
    def is_open(self) -> bool:
        return bool(self.display)

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
        self.action_close()
        self.post_message(self.Chosen(self.pool, n))

    def action_close(self) -> None:
        self.display = False
        self.screen.focus_next()  # back to the pools
