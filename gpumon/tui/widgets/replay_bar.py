"""The replay position bar: playing or paused, speed, where we are in the recording."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from gpumon import fmt


def position_text(
    position: float, duration: float, speed: float, playing: bool, width: int
) -> Text:
    t = Text()
    t.append(" ▶ playing " if playing else " ‖ paused  ", style="bold black on cyan")
    t.append(f" {speed:g}× ", style="bold")
    t.append(f"{fmt.clock(position)} / {fmt.clock(duration)} ")
    hint = "  space  < >  ← →  home end"
    bar_w = max(width - t.cell_len - len(hint), 10)
    done = int(bar_w * (position / duration)) if duration > 0 else bar_w
    done = min(max(done, 0), bar_w)
    t.append("━" * done, style="bold cyan")
    t.append("╸" if done < bar_w else "", style="bold cyan")
    t.append("─" * max(bar_w - done - 1, 0), style="dim")
    t.append(hint, style="dim")
    return t


class ReplayBar(Widget):
    DEFAULT_CSS = """
    ReplayBar { height: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values = (0.0, 0.0, 1.0, False)

    def update_position(
        self, position: float, duration: float, speed: float, playing: bool
    ) -> None:
        # Tenths of a second are what the bar shows; finer changes would only cost renders.
        values = (round(position, 1), duration, speed, playing)
        if values != self.values:
            self.values = values
            self.refresh()

    def render(self) -> RenderableType:
        pos, dur, speed, playing = self.values
        t = position_text(pos, dur, speed, playing, self.content_size.width)
        t.no_wrap = True
        t.overflow = "ellipsis"
        return t
