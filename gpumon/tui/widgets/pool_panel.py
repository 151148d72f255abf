"""One pool's panel: what runs where, its state, its throughput now and over the last minute.

The panel draws its whole frame from a `PoolView` in one `render()` (rich Text lines, no child
widgets), sized to whatever box the layout gives it: at 80×24 the history chart shrinks and the
per-thread view packs threads side by side, at 120×36 everything gets room. Lines are dropped
by priority, never wrapped, so the panel never jumps around while numbers change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import islice

from rich.text import Text

from gpumon import fmt
from gpumon.state import PoolView
from gpumon.tui.widgets import chart
from gpumon.tui.widgets.lines import LinesWidget
from gpumon.tui.widgets.pool_lines import (
    LABEL,
    STATE_MARK,
    STATE_STYLE,
    control_line,
    failure_lines,
    identity_lines,
    label,
    latency_line,
    memory_line,
    process_line,
    rate_unit,
)

CHART_SPAN = 60.0  # seconds of throughput history in the chart
CHART_MAX_ROWS = 12
SILENT_AFTER = 1.0  # seconds without a sample (10 a second) after which figures are stale
NOW_WINDOW = 5  # samples averaged for "now" figures (0.5 s): one 100 ms window is too jumpy
CELL = 17  # width of one thread's cell in the per-thread view
SPARK = 6  # bars in a thread's sparkline
BAR = 5  # samples (of 0.1 s) per sparkline bar: 6 bars cover the last 3 s
SLOW_HZ = 2.0  # refresh rate of the latency / memory / process lines
NARROW = 50  # panels narrower than this (two pools at 80 columns) merge identity lines


def mean_rate(view: PoolView, n: int = NOW_WINDOW) -> tuple[float, float] | None:
    """(ops/s, FLOP/s) over the last `n` sample windows of the current run."""
    if view.last is None or not view.history:
        return None
    recent = list(islice(reversed(view.history), n))
    return (
        sum(h[1] for h in recent) / len(recent),
        sum(h[2] for h in recent) / len(recent),
    )


def bars_of(values: list[float], size: int) -> list[float]:
    """Means of consecutive groups of `size` values, aligned to the newest value."""
    out = []
    end = len(values)
    while end > 0:
        group = values[max(end - size, 0) : end]
        out.append(sum(group) / len(group))
        end -= size
    out.reverse()
    return out


def tail(values: Sequence[float], n: int) -> list[float]:
    """The last `n` values, oldest first, without copying a whole deque."""
    out = list(islice(reversed(values), n))
    out.reverse()
    return out


class PoolPanel(LinesWidget, can_focus=True):
    """A focusable panel for one pool; the app hands it the view and clock on each tick."""

    def __init__(self, view: PoolView, index: int, now: float) -> None:
        super().__init__(classes="pool-panel")
        self.view = view
        self.index = index
        self.now = now
        self._chart_key: tuple[object, ...] | None = None
        self._chart_lines: list[Text] = []
        self._slow_key: tuple[object, ...] | None = None
        self._threads_key: tuple[object, ...] | None = None
        self._threads: list[Text] = []
        self._slow: tuple[Text | None, Text | None, Text | None] = (None, None, None)
        self._apply_classes()

    @property
    def pool_name(self) -> str:
        return self.view.name

    def update_view(self, view: PoolView, now: float) -> None:
        self.view, self.now = view, now
        self._apply_classes()
        self.rebuild()

    @property
    def silent_for(self) -> float | None:
        """Seconds since the pool's last sample while it should be sampling (10 a second),
        once that is over SILENT_AFTER; None otherwise. Counted against the session clock, so
        it grows on screen live and in a replay alike."""
        v = self.view
        if v.state not in ("running", "paused") or v.last is None:
            return None
        gap = self.now - v.last.t
        return gap if gap > SILENT_AFTER else None

    def _apply_classes(self) -> None:
        v = self.view
        backend = v.ready.backend if v.ready else (v.config.backend if v.config else "")
        self.set_class(v.state in ("crashed", "failed") or v.stalled, "-alarm")
        self.set_class(self.silent_for is not None, "-silent")
        self.set_class(backend == "fault", "-synthetic")
        title = f"{self.index} {v.name}" if self.index <= 9 else v.name
        title += " · SYNTHETIC" if backend == "fault" else ""
        if self.border_title != title:  # setting it repaints the border, even if unchanged
            self.border_title = title
        subtitle = self._subtitle()
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    def _subtitle(self) -> str:
        v = self.view
        if v.crashes:
            return f"crashed {fmt.plural(v.crashes, 'time')}"
        return ""

    # ---- drawing -------------------------------------------------------------------
    def build_lines(self, width: int, height: int) -> list[Text]:
        v = self.view
        narrow = width < NARROW
        head = [self._state_line(), *identity_lines(v, narrow)]
        if v.failure is not None:
            head += failure_lines(v, width)
        else:
            head.append(self._now_line())
        latency, memory, process = self._slow_lines()
        control = control_line(v)
        running = v.last is not None and v.state in ("running", "paused")
        threads_all = self._cached_thread_rows(width) if running else []
        empty_memory = memory is not None and not (v.last and v.last.mem)

        # Rows are handed out by priority, so a small panel keeps what matters most:
        # identity, state and "now" (always), one row of threads, latency, process, memory,
        # a 2-row chart, the last command, then more thread rows and more chart rows.
        budget = height - len(head)
        keep: dict[str, int] = {}

        def take(key: str, rows: int) -> None:
            nonlocal budget
            if rows > 0 and budget >= rows:
                keep[key] = keep.get(key, 0) + rows
                budget -= rows

        take("threads", min(len(threads_all), 1))
        take("latency", int(latency is not None))
        take("process", int(process is not None))
        take("memory", int(memory is not None and not empty_memory))
        if v.history:
            take("chart", 2)
        take("memory", int(empty_memory and "memory" not in keep))
        take("control", int(control is not None))
        extra = len(threads_all) - keep.get("threads", 0)
        take("threads", min(max(extra, 0), budget))
        if "chart" in keep:
            take("chart", min(budget, CHART_MAX_ROWS - keep["chart"]))

        out = head
        if keep.get("chart"):
            out += self._chart(width, keep["chart"])
        n = keep.get("threads", 0)
        if n:
            rows = threads_all[:n]
            if n < len(threads_all):
                hidden = len(threads_all) - n
                rows[-1] = rows[-1].copy()
                rows[-1].append(f" +{fmt.plural(hidden, 'row')}", style="dim")
            out += rows
        for key, item in (
            ("latency", latency),
            ("memory", memory),
            ("process", process),
            ("control", control),
        ):
            if keep.get(key) and item is not None:
                out.append(item)
        for t in out:
            t.no_wrap = True
            t.truncate(width, overflow="ellipsis")
        return out

    def _state_line(self) -> Text:
        v = self.view
        state = v.state
        style = STATE_STYLE.get(state, "bold")
        t = label("state")
        t.append(f"{STATE_MARK.get(state, '?')} {state}", style=style)
        if state == "restarting" and v.restart_at is not None:
            t.append(f" in {max(v.restart_at - self.now, 0.0):.1f} s", style=style)
        t.append(" · ")
        t.append(fmt.plural(v.threads, "thread"), style="bold")
        if state not in ("running", "paused", "starting"):
            t.append(" next start", style="yellow")
        elif v.last is not None and v.config is not None and v.config.threads != v.last.threads:
            t.append(f" → {v.config.threads}", style="yellow")
        if state in ("running", "paused") and v.ready_t is not None:
            t.append(f" · up {fmt.uptime(self.now - v.ready_t)}")
        if state == "starting" and v.attempt > 1:
            t.append(f" · attempt {v.attempt}")
        silent = self.silent_for
        if v.stalled:
            since = silent if silent is not None else (v.stall.silent_for if v.stall else 0.0)
            t.append(" · ")
            t.append(f"STALLED (silent {since:.1f} s)", style="bold white on red")
        elif silent is not None:
            t.append(" · ")
            t.append(f"silent {silent:.1f} s", style="bold yellow")
        if v.crashes:
            t.append(" · ")
            t.append(f"crashed {fmt.plural(v.crashes, 'time')}", style="bold red")
        if state == "stopped" and v.stopped is not None and v.stopped.reason != "stopped":
            t.append(f" · {v.stopped.reason}")
        return t

    def now_rates(self) -> tuple[float, float] | None:
        v = self.view
        if v.state not in ("running", "paused"):
            return None
        return mean_rate(v)

    def _now_line(self) -> Text:
        rates = self.now_rates()
        t = label("now")
        if rates is None:
            t.append("– ops/s · – FLOP/s", style="dim")
            return t
        stale = self.silent_for is not None
        figure = "dim" if stale else "bold green"
        t.append(fmt.si(rates[0], rate_unit(self.view)), style=figure)
        t.append(" · ")
        if self.view.last is not None and self.view.last.flop_per_op == 0:
            t.append("FLOP/s n/a (not a matmul)", style="dim")
        else:
            t.append(fmt.si(rates[1], "FLOP/s"), style=figure)
        if stale:
            t.append("  (last figures: no sample since)", style="yellow")
        else:
            t.append(f"  ({NOW_WINDOW / 10:.1f} s mean)", style="dim")
        return t

    def _chart(self, width: int, rows: int) -> list[Text]:
        """Throughput over the last minute, one column per completed time slot; the label
        column is the axis (top = max). Slots are aligned to the clock, so the chart changes
        once per slot (about a second), not on every tick; "now" has the live figure."""
        v = self.view
        cols = max(width - LABEL, 8)
        step = CHART_SPAN / cols
        current = math.floor(self.now / step)
        key = (id(v), id(v.history), current, cols, rows, len(v.history) > 0)
        if key == self._chart_key:
            return self._chart_lines
        values = chart.slots(v.history, current, cols, step)
        vmax = max((x for x in values if x is not None), default=0.0)
        # With room to spare, the last row is a time axis; otherwise the span is in the label.
        time_axis = rows >= 6
        bar_rows = rows - 1 if time_axis else rows
        axis = [""] * bar_rows
        axis[0] = fmt.si(vmax, "", digits=3).replace(" ", "")
        axis[-1] = "0"
        if bar_rows >= 3:
            axis[1] = rate_unit(v)
        if bar_rows >= 4 and not time_axis:
            axis[-2] = f"{CHART_SPAN:.0f} s"
        out = []
        for lab, bar_row in zip(axis, chart.bars(values, bar_rows, vmax), strict=True):
            t = Text(f"{lab:>{LABEL - 2}} ▕", style="dim")
            t.append_text(bar_row)
            out.append(t)
        if time_axis:
            left, right = f"└ {CHART_SPAN:.0f} s ago", "now ┘"
            gap = max(cols - len(left) - len(right), 1)
            out.append(Text(" " * LABEL + left + "─" * gap + right, style="dim"))
        self._chart_key, self._chart_lines = key, out
        return out

    def _cached_thread_rows(self, width: int) -> list[Text]:
        """Per-thread cells, refreshed SLOW_HZ times a second: one thread's 100 ms windows
        are too noisy to read at 10 Hz, and 16 threads × 2 pools of cells repainting every
        tick would be most of the monitor's cost."""
        v = self.view
        key = (
            id(v),
            width,
            v.thread_slots,
            tuple(v.thread_errors),
            math.floor(self.now * SLOW_HZ),
        )
        if key != self._threads_key:
            self._threads_key = key
            self._threads = self._thread_rows(width)
        return [t.copy() for t in self._threads]

    def _thread_rows(self, width: int) -> list[Text]:
        v = self.view
        history = v.thread_history
        slots = sorted(history)
        if not slots:
            return []
        per_row = max((width - LABEL) // CELL, 1)
        # Each sparkline bar is the mean of BAR samples (0.5 s); SPARK bars cover 3 s.
        recent = {s: bars_of(tail(h, SPARK * BAR), BAR) for s, h in history.items()}
        vmax = max((max(h) for h in recent.values() if h), default=0.0)
        rows: list[Text] = []
        for r in range(math.ceil(len(slots) / per_row)):
            t = label("threads" if r == 0 else "")
            for s in slots[r * per_row : (r + 1) * per_row]:
                hist = recent[s]
                rate = hist[-1] if hist else 0.0
                failed = s in v.thread_errors
                t.append(f"T{s:<2}", style="bold red" if failed else "dim")
                if failed:
                    t.append(" failed", style="red")
                    t.append(" " * (CELL - 10))
                    continue
                t.append_text(chart.sparkline(hist, SPARK, vmax))
                t.append(f" {fmt.si(rate, '', digits=2).replace(' ', ''):>5} ")
            rows.append(t)
        return rows

    def _slow_lines(self) -> tuple[Text | None, Text | None, Text | None]:
        """Latency, memory and process lines, refreshed SLOW_HZ times a second: per-window
        percentiles and CPU% jump about every 100 ms, which nobody can read at 10 Hz."""
        v = self.view
        key = (id(v), v.state, math.floor(self.now * SLOW_HZ), v.last is None)
        if key != self._slow_key:
            self._slow_key = key
            self._slow = (latency_line(v), memory_line(v), process_line(v))
        return self._slow
