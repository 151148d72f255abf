"""A compact summary of a crash report as rich renderables, for terminals and the TUI.

What a maintainer reads first: the process and signal, the verdict, then the crashed thread
with its GPU-driver frames highlighted strongly, framework frames distinct and system frames
dimmed (long runs folded to one line). Other threads are one line each, except threads that
called into a GPU driver, whose driver frames are shown because "another thread was inside the
driver" is the evidence of a threading bug. A summary shows at most `FRAME_CAP` lines per
thread and elides template arguments in very long frames; `full=True` shows every frame whole.

All text comes from `gpumon.crash.render_text` (already sanitised) and is put into
`rich.text.Text` objects, never parsed as markup: a report cannot style or inject anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpumon import sanitize
from gpumon.crash.model import APP, DRIVER, FRAMEWORK, PYTHON, SYSTEM, UNKNOWN, CrashReport, Frame
from gpumon.crash.model import Thread as Thread
from gpumon.crash.render_text import (
    FRAME_CAP,
    KIND_MARKS,
    Fold,
    bounded,
    evidence_threads,
    fold_frames,
    frame_text,
    header_facts,
    hidden_count,
    markdown_summary,
    more_line,
    ordered_threads,
    shown_in_full,
    stack_lines,
    thread_summary,
    thread_title,
)
from gpumon.crash.verdict import first_interesting, verdict

KIND_STYLES = {
    DRIVER: "bold white on red",
    FRAMEWORK: "bold magenta",
    PYTHON: "cyan",
    SYSTEM: "dim",
    APP: "",
    UNKNOWN: "dim italic",
}


def _frame_rich(frame: Frame, *, elide: bool = False) -> Text:
    style = KIND_STYLES.get(frame.kind, "")
    text = Text()
    text.append(f"{frame.index:>3}  ", style="dim")  # (a Text-wide style would dim it all)
    text.append(frame_text(frame, elide=elide), style=style)
    mark = KIND_MARKS.get(frame.kind)
    if mark:
        text.append(f"  {mark}", style=style)
    return text


def _frames_rich(frames: Iterable[Frame | Fold], *, elide: bool = False) -> list[Text]:
    out = []
    for it in frames:
        if isinstance(it, Fold):
            out.append(Text(f"     {it.text()}", style="dim"))
        else:
            out.append(_frame_rich(it, elide=elide))
    return out


def header_renderable(report: CrashReport) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in header_facts(report):
        style = "bold red" if label in ("Exception", "Signal", "Panic") else ""
        table.add_row(label, Text(value, style=style))
    return table


def verdict_renderable(report: CrashReport, python: CrashReport | None = None) -> Text:
    return Text.assemble(
        ("Verdict: ", "bold"), (bounded(sanitize.line(verdict(report, python))), "bold yellow")
    )


def thread_renderable(thread: Thread, report: CrashReport, *, full: bool = False) -> Group:
    """A thread with its frames: folded, at most FRAME_CAP lines and long symbols elided
    unless `full`."""
    title = Text(thread_title(thread, report), style="bold red" if thread.crashed else "bold")
    lines: list[RenderableType] = [title]
    keep = first_interesting(thread) if thread.crashed else None
    items = fold_frames(thread.frames, fold=not full, keep=keep)
    shown = items if full else items[:FRAME_CAP]
    lines.extend(_frames_rich(shown, elide=not full))
    hidden = hidden_count(items[len(shown) :], thread)
    if hidden:
        hint = "" if full else " (all of them with --full)"
        lines.append(Text(more_line(hidden) + hint, style="dim"))
    if not thread.frames and not thread.frames_omitted:
        lines.append(Text("     (no frames)", style="dim"))
    if thread.note:
        lines.append(Text(sanitize.line(f"     ({thread.note})"), style="italic"))
    return Group(*lines)


def driver_frames_renderable(thread: Thread, report: CrashReport) -> Group:
    """A non-crashed thread reduced to its driver frames (what it was doing in the driver)."""
    lines: list[RenderableType] = [Text(thread_title(thread, report), style="bold")]
    driver = [f for f in thread.frames if f.kind == DRIVER]
    lines.extend(_frame_rich(f, elide=True) for f in driver[:FRAME_CAP])
    if len(driver) > FRAME_CAP:
        lines.append(Text(more_line(len(driver) - FRAME_CAP), style="dim"))
    return Group(*lines)


def render_report(
    report: CrashReport, python: CrashReport | None = None, *, full: bool = False
) -> Group:
    """The whole summary as one rich renderable."""
    parts: list[RenderableType] = [
        header_renderable(report),
        Text(""),
        verdict_renderable(report, python),
    ]
    if report.warnings:
        parts.append(
            Text(
                sanitize.line("Partial report: " + "; ".join(report.warnings)), style="bold yellow"
            )
        )
    if report.notes:
        parts.append(Text(sanitize.line("Read: " + "; ".join(report.notes)), style="dim"))
    expanded = {id(t) for t in shown_in_full(report)}
    evidence = {id(t) for t in evidence_threads(report)}
    folded: list[Text] = []
    for t in ordered_threads(report):
        if id(t) in expanded or full:
            parts.extend([Text(""), thread_renderable(t, report, full=full)])
        elif id(t) in evidence:
            parts.extend([Text(""), driver_frames_renderable(t, report)])
        else:
            folded.append(Text(thread_summary(t, report), style="dim" if not t.frames else ""))
    if folded:
        parts.append(Text(""))
        parts.append(Text(f"Other threads ({len(folded)}):", style="bold"))
        parts.extend(folded)
    if python is not None and python is not report:
        parts.extend([Text(""), Text("Python stacks (faulthandler):", style="bold")])
        py_crashed = python.crashed_thread
        for t in ordered_threads(python):
            if t is py_crashed or full:
                parts.append(thread_renderable(t, python, full=full))
            else:
                parts.append(Text(thread_summary(t, python), style="dim"))
    return Group(*parts)


__all__ = [
    "FRAME_CAP",
    "KIND_STYLES",
    "Fold",
    "driver_frames_renderable",
    "fold_frames",
    "frame_text",
    "header_facts",
    "header_renderable",
    "markdown_summary",
    "render_report",
    "stack_lines",
    "thread_renderable",
    "thread_summary",
    "verdict_renderable",
]
