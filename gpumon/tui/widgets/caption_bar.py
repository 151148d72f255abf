"""The caption bar of a scenario: which step of how many, what it says, what it waits for.

Two lines above the pools while a scenario plays (live, or replayed from its recorded
ScenarioStep events), hidden otherwise. A synthetic fallback says so in the bar itself, so no
audience mistakes the fault backend for a framework.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from gpumon.state import ScenarioView


def caption_text(sc: ScenarioView | None, waiting: str = "", width: int = 200) -> Text:
    if sc is None:
        return Text()
    t = Text()
    s = sc.started
    step = sc.step
    where = f" step {step.index}/{step.total} " if step else f" step 0/{s.steps} "
    t.append(where, style="bold reverse")
    t.append(" ")
    if s.fallback:
        t.append(" SYNTHETIC ", style="bold black on yellow")
        t.append(" ")
    t.append(s.title, style="bold")
    if sc.ended is not None:
        t.append(f" · {sc.ended.reason}", style="dim")
    t.append("\n")
    if step is not None and step.caption:
        t.append(step.caption)
    elif step is None:
        t.append("starting…", style="dim")
    if waiting.startswith("press "):
        t.append(f"  ▶ {waiting}", style="bold yellow")
    elif waiting:
        t.append(f"  ⏳ waiting for {waiting}", style="yellow")
    return t


class CaptionBar(Widget):
    DEFAULT_CSS = """
    CaptionBar { height: 2; padding: 0 1; background: $boost; display: none; }
    CaptionBar.-on { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: ScenarioView | None = None
        self.waiting = ""
        self._key: tuple[object, ...] = ()

    def update_scenario(self, view: ScenarioView | None, waiting: str) -> None:
        step = view.step if view is not None else None
        key = (id(view), id(step), view.ended if view is not None else None, waiting)
        if key == self._key:
            return
        self._key = key
        self.view, self.waiting = view, waiting
        self.set_class(view is not None, "-on")
        self.refresh()

    def render(self) -> RenderableType:
        t = caption_text(self.view, self.waiting, self.size.width)
        t.overflow = "ellipsis"
        return t
