"""The lines of a pool panel that say what the pool is and what it measures, one function each.

Pure functions of a PoolView (and the panel's width where it matters): the panel decides which
of them fit and caches the slow ones; these only say how each line reads.
"""

from __future__ import annotations

from rich.text import Text

from gpumon import control, fmt, spec
from gpumon.state import PoolView

LABEL = 9  # width of the left label column

STATE_STYLE = {
    "running": "bold green",
    "paused": "bold yellow",
    "starting": "bold cyan",
    "restarting": "bold yellow",
    "crashed": "bold white on red",
    "failed": "bold white on red",
    "stopped": "bold",
    "stopping": "bold",
}
STATE_MARK = {
    "running": "●",
    "paused": "‖",
    "starting": "…",
    "restarting": "↻",
    "crashed": "✖",
    "failed": "✖",
    "stopped": "■",
}


def label(name: str, style: str = "dim") -> Text:
    return Text(f"{name:<{LABEL}}", style=style)


def line(name: str, *parts: str | tuple[str, str] | Text) -> Text:
    t = label(name)
    for p in parts:
        if isinstance(p, Text):
            t.append_text(p)
        elif isinstance(p, tuple):
            t.append(*p)
        else:
            t.append(p)
    return t


def identity_lines(view: PoolView, narrow: bool = False) -> list[Text]:
    v = view
    r, c = v.ready, v.config
    out: list[Text] = []
    synthetic = ("SYNTHETIC", "bold black on yellow")
    if r is not None:
        if r.backend == "fault":
            what = r.device_name.removeprefix("synthetic (fault backend): ")
            if narrow:  # the engine line would only repeat "synthetic"
                out.append(
                    line("device", synthetic, f" {r.device} · pid {r.pid} · ", (what, "dim"))
                )
            else:
                out.append(line("", synthetic, " ", what))
                out.append(line("device", r.device, " — ", (r.device_reason, "dim")))
                out.append(line("engine", r.framework, " · pid ", str(r.pid)))
        else:
            out.append(
                line(
                    "device",
                    (r.device, "bold"),
                    " ",
                    r.device_name,
                    " — ",
                    (r.device_reason, "dim"),
                )
            )
            engine = line("engine", (r.framework, "bold"), " · pid ", str(r.pid))
            if r.env:
                engine.append(f" · env {r.env}", style="dim")
            out.append(engine)
    else:
        backend = c.backend if c else "?"
        dev = (c.device or "auto") if c else "?"
        ver = f"@{c.version}" if c and c.version else ""
        waiting = preparing_text(view) or ("  waiting for the worker", "dim")
        parts: list[str | tuple[str, str]] = [f"{backend}{ver}:{dev}", waiting]
        if backend == "fault":
            parts = [synthetic, " ", *parts]
        out.append(line("device", *parts))
    out.append(work_line(view))
    return out


def preparing_text(view: PoolView) -> tuple[str, str] | None:
    """ "  building mlx 0.31.1 (cpu, py3.11): downloading ▰▰▰▱▱ 60% · 1.2 s" while a framework
    environment is built for the pool (its first use of that version)."""
    p = view.preparing
    if p is None or view.state != "starting":
        return None
    bar = ""
    if p.fraction is not None:
        filled = round(p.fraction * 5)
        bar = " " + "▰" * filled + "▱" * (5 - filled) + f" {p.fraction:.0%}"
    return f"  building {p.env}: {p.phase}{bar} · {p.elapsed:.1f} s", "yellow"


def rate_unit(view: PoolView) -> str:
    return spec.rate_unit(view.workload)


def work_line(view: PoolView) -> Text:
    v = view
    size = v.ready.size if v.ready else (v.config.size if v.config else None)
    dtype = v.ready.dtype if v.ready else (v.config.dtype if v.config else None)
    if v.config is not None:  # set_workload changes follow the config
        size = v.config.size or size
        dtype = v.config.dtype or dtype
    size_s = spec.size_text(v.workload, size) if size else "auto size"
    t = line("work", (v.workload or "?", "bold"), f" {size_s} {dtype or ''}".rstrip())
    t.append(" · policy ")
    t.append(v.policy or "?", style="bold")
    return t


def failure_lines(view: PoolView, width: int) -> list[Text]:
    f = view.failure
    assert f is not None
    out = [line("error", (f.message, "bold red"))]
    if f.fix:
        out.append(line("fix", (f.fix, "yellow")))
    return out


def latency_line(view: PoolView) -> Text | None:
    s = view.last
    if s is None or view.state not in ("running", "paused") or s.lat_p50 is None:
        return None
    return line(
        "latency",
        "p50 ",
        (fmt.seconds(s.lat_p50), "bold"),
        " · p99 ",
        (fmt.seconds(s.lat_p99), "bold"),
        (" per op", "dim"),
    )


def memory_line(view: PoolView) -> Text | None:
    s = view.last
    if s is None or view.state not in ("running", "paused"):
        return None
    if not s.mem:
        return line("memory", ("no framework memory figures", "dim"))
    t = label("memory")
    for i, (k, val) in enumerate(s.mem.items()):
        if i:
            t.append(" · ")
        t.append(f"{k} ")
        t.append(fmt.nbytes(val), style="bold")
    if s.mem_source:
        t.append(f" ({s.mem_source})", style="dim")
    return t


def process_line(view: PoolView) -> Text | None:
    s = view.last
    if s is None or view.state not in ("running", "paused"):
        return None
    return line(
        "process",
        "CPU ",
        (fmt.percent(s.cpu_percent), "bold"),
        " · RSS ",
        (fmt.nbytes(s.rss), "bold"),
        (" (psutil, worker process)", "dim"),
    )


def control_line(view: PoolView) -> Text | None:
    c = view.last_control
    if c is None:
        return None
    t = label("last cmd")
    t.append(control.describe(c.command))
    if c.ok:
        t.append(" ✓ ", style="green")
    else:
        t.append(" ✗ ", style="bold red")
    t.append(c.detail, style="dim" if c.ok else "red")
    return t
