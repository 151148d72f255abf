"""The host strip: whole-machine CPU and memory, GPUs where NVML answers, and gpumon's own cost.

One line, from the latest HostSample (live: sampled once a second; replay: as recorded), so a
demo audience sees that the machine is not the bottleneck and that the monitor itself is cheap.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from gpumon import events as ev
from gpumon import fmt


def host_text(h: ev.HostSample | None, cpu_count: int | None = None, live: bool = True) -> Text:
    t = Text("host ", style="bold")
    if h is None:
        what = "waiting for the first sample…" if live else "no host samples recorded yet"
        t.append(what, style="dim")
        return t
    t.append("CPU ")
    t.append(fmt.percent(h.cpu_percent), style="bold")
    if cpu_count:
        t.append(f" of {cpu_count} cores", style="dim")
    t.append(" · mem ")
    t.append(f"{fmt.nbytes(h.mem_used)} / {fmt.nbytes(h.mem_total)}", style="bold")
    for i, g in enumerate(h.gpus):
        t.append(f" · GPU{i} ")
        if g.mem_used is not None and g.mem_total is not None:
            t.append(f"{fmt.nbytes(g.mem_used)} / {fmt.nbytes(g.mem_total)}", style="bold")
        if g.util_percent is not None:
            t.append(f" {fmt.percent(g.util_percent)} busy")
        if g.source:
            t.append(f" ({g.source})", style="dim")
    if h.monitor_cpu_percent is not None or h.monitor_rss is not None:
        t.append(" · gpumon ", style="dim")
        t.append(
            f"CPU {fmt.percent(h.monitor_cpu_percent)} RSS {fmt.nbytes(h.monitor_rss)}", style="dim"
        )
    t.append(" (psutil)", style="dim")
    return t


class HostStrip(Widget):
    DEFAULT_CSS = """
    HostStrip { height: 1; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sample: ev.HostSample | None = None
        self.cpu_count: int | None = None
        self.live = True

    def update_sample(self, sample: ev.HostSample | None, cpu_count: int | None) -> None:
        if sample is self.sample and cpu_count == self.cpu_count:
            return
        self.sample, self.cpu_count = sample, cpu_count
        self.refresh()

    def render(self) -> RenderableType:
        t = host_text(self.sample, self.cpu_count, self.live)
        t.no_wrap = True
        t.overflow = "ellipsis"
        return t
