"""Text charts drawn with block characters: the throughput history and per-thread sparklines.

Plain functions that return rich `Text` lines, so a panel builds its whole frame in one pass
(one render per refresh tick, no child widgets to lay out) — that is what keeps 10 updates a
second cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rich.text import Text

BLOCKS = " ▁▂▃▄▅▆▇█"


def slots(
    points: Iterable[tuple[float, ...]], current: int, width: int, step: float
) -> list[float | None]:
    """Mean value per clock-aligned slot of `step` seconds: the `width` slots before slot
    number `current` (= floor(now / step), still filling, so left out). `points` are
    (t, value, ...) in time order; None marks a slot without samples (the pool was down),
    which the chart leaves blank. Walks back from the newest point and stops at the window."""
    sums = [0.0] * width
    counts = [0] * width
    first = current - width
    for p in reversed(points):  # type: ignore[call-overload]
        i = math.floor(p[0] / step) - first
        if i < 0:
            break
        if i < width:
            sums[i] += p[1]
            counts[i] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


def bars(
    values: Sequence[float | None], height: int, vmax: float, style: str = "green"
) -> list[Text]:
    """A `height`-row bar chart, one column per value, scaled so `vmax` fills the height.
    Each row is one string with one style: rich spans per cell would cost more than the
    drawing itself at 10 frames a second."""
    levels = []
    for v in values:
        if v is None:
            levels.append(-1)
            continue
        eighths = round(max(v, 0.0) / vmax * height * 8) if vmax > 0 else 0
        if v > 0 and eighths == 0:
            eighths = 1  # a pool doing anything at all is never drawn as doing nothing
        levels.append(eighths)
    rows = []
    for r in range(height):
        floor = (height - 1 - r) * 8
        row = "".join(" " if e < 0 else BLOCKS[min(max(e - floor, 0), 8)] for e in levels)
        rows.append(Text(row, style=style))
    return rows


def sparkline(values: Sequence[float], width: int, vmax: float, style: str = "cyan") -> Text:
    """One row: the last `width` values, right-aligned, scaled to `vmax`."""
    shown = list(values)[-width:]
    chars = []
    for v in shown:
        level = round(max(v, 0.0) / vmax * 8) if vmax > 0 else 0
        if v > 0 and level == 0:
            level = 1
        chars.append(BLOCKS[min(level, 8)])
    return Text(" " * (width - len(shown)) + "".join(chars), style=style)
