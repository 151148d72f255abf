"""A widget drawn as a list of rich Text lines, repainting only the lines that changed.

Why not `render()`: a pool panel is ~20 lines and at 10 updates a second most of them (device,
engine, workload, labels) do not change. `render()` would have Textual re-convert all of them
on every tick; here each line is turned into a Strip once per distinct content (cached), and
only the rows whose content changed are marked dirty. This is what keeps the monitor's own
CPU cost low with two 16-thread pools.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

CACHE_LIMIT = 512  # strips kept per widget; cleared wholesale when exceeded (cheap, rare)


def line_key(t: Text) -> tuple[object, ...]:
    return (t.plain, *t.spans)


class LinesWidget(Widget):
    """Subclasses implement `build_lines(width, height)` and call `rebuild()` on new data."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Text] = []
        self._keys: list[tuple[object, ...]] = []
        self._built_size: tuple[int, int] | None = None
        self._cache: dict[tuple[object, ...], Strip] = {}
        self._style: Style | None = None  # rich_style is costly to compute; once per change

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None

    def on_focus(self) -> None:
        self._style = None

    def on_blur(self) -> None:
        self._style = None

    @property
    def line_style(self) -> Style:
        if self._style is None:
            self._style = self.rich_style
        return self._style

    def build_lines(self, width: int, height: int) -> list[Text]:
        raise NotImplementedError

    def rebuild(self) -> None:
        width, height = self.size.width, self.size.height
        if width <= 0 or height <= 0:
            return
        lines = self.build_lines(width, height)[:height]
        keys = [line_key(t) for t in lines]
        old = self._keys
        self._lines, self._keys = lines, keys
        if self._built_size != (width, height):
            self._built_size = (width, height)
            self.refresh()
            return
        for y in range(max(len(keys), len(old))):
            if y >= len(keys) or y >= len(old) or keys[y] != old[y]:
                self.refresh(Region(0, y, width, 1))

    def on_resize(self) -> None:
        self.rebuild()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.line_style
        if y >= len(self._lines):
            return Strip.blank(width, style)
        key = (self._keys[y], style, width)
        strip = self._cache.get(key)
        if strip is None:
            text = self._lines[y].copy()
            text.stylize_before(style)
            strip = Strip(list(text.render(self.app.console)), text.cell_len)
            strip = strip.crop_extend(0, width, style)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = strip
        return strip
