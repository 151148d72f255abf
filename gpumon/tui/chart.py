"""Text charts drawn with block characters: the throughput history and per-thread sparklines.

Plain functions that return rich `Text` lines, so a panel builds its whole frame in one pass
(one render per refresh tick, no child widgets to lay out) — that is what keeps 10 updates a
second cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text

BLOCKS = " ▁▂▃▄▅▆▇█"


def bucket(
    points: Iterable[tuple[float, float]], now: float, span: float, width: int
) -> list[float | None]:
    """Mean value per column over the last `span` seconds ending at `now`; None where no
    sample fell in a column (the pool was down), which the chart leaves blank."""
    sums = [0.0] * width
    counts = [0] * width
    start = now - span
    step = span / width
    for t, v in points:
        if t <= start or t > now:
            continue
        i = min(int((t - start) / step), width - 1)
        sums[i] += v
        counts[i] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


def bars(
    values: Sequence[float | None], height: int, vmax: float, style: str = "green"
) -> list[Text]:
    """A `height`-row bar chart, one column per value, scaled so `vmax` fills the height."""
    rows = [Text() for _ in range(height)]
    for v in values:
        if v is None:
            for r in rows:
                r.append(" ")
            continue
        eighths = round(max(v, 0.0) / vmax * height * 8) if vmax > 0 else 0
        if v > 0 and eighths == 0:
            eighths = 1  # a pool doing anything at all is never drawn as doing nothing
        for r, row in enumerate(rows):
            level = min(max(eighths - (height - 1 - r) * 8, 0), 8)
            row.append(BLOCKS[level], style=style)
    return rows


def sparkline(values: Sequence[float], width: int, vmax: float, style: str = "cyan") -> Text:
    """One row: the last `width` values, right-aligned, scaled to `vmax`."""
    shown = list(values)[-width:]
    text = Text(" " * (width - len(shown)))
    for v in shown:
        level = round(max(v, 0.0) / vmax * 8) if vmax > 0 else 0
        if v > 0 and level == 0:
            level = 1
        text.append(BLOCKS[min(level, 8)], style=style)
    return text
