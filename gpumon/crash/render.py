"""A compact summary of a crash report: rich renderables for terminals, plain lines for exports.

What a maintainer reads first: the process and signal, the verdict, then the crashed thread
with its GPU-driver frames highlighted strongly, framework frames distinct and system frames
dimmed (long runs folded to one line). Other threads are one line each, except threads with
driver frames, whose driver frames are shown because "another thread was inside the driver"
is the evidence of a threading bug. `full=True` shows every frame of every thread.

The pieces are separate functions so the TUI crash screen (rich renderables) and the Markdown
exporter (`stack_lines`, `markdown_summary`) show the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpumon.crash.classify import (
    driver_threads,
    first_interesting,
    frame_label,
    is_python_source,
    thread_label,
    verdict,
)
from gpumon.crash.model import (
    APP,
    DRIVER,
    FRAMEWORK,
    PYTHON,
    SYSTEM,
    UNKNOWN,
    CrashReport,
    Frame,
    Thread,
)

KIND_STYLES = {
    DRIVER: "bold white on red",
    FRAMEWORK: "bold magenta",
    PYTHON: "cyan",
    SYSTEM: "dim",
    APP: "",
    UNKNOWN: "dim italic",
}
# Plain-text markers, so a Markdown export still shows which frames matter.
KIND_MARKS = {DRIVER: "[driver]", FRAMEWORK: "[framework]"}
FOLD_SYSTEM = 3  # this many consecutive system frames or more are folded to one line
FOLD_INTERPRETER = 4  # likewise for CPython's own C frames (_PyEval_EvalFrameDefault ...)


@dataclass
class Fold:
    """A run of uninteresting frames shown as one line."""

    frames: list[Frame]
    what: str  # "system frames" | "Python interpreter frames"

    def text(self) -> str:
        images: list[str] = []
        for f in self.frames:
            if f.image and f.image not in images:
                images.append(f.image)
        shown = ", ".join(images[:3]) + (", ..." if len(images) > 3 else "")
        return f"... {len(self.frames)} {self.what}" + (f" ({shown})" if shown else "")


def _fold_class(frame: Frame) -> str | None:
    if frame.kind == SYSTEM:
        return "system frames"
    if frame.kind == PYTHON and not is_python_source(frame):
        return "Python interpreter frames"
    return None


def fold_frames(
    frames: list[Frame], *, fold: bool = True, keep: Frame | None = None
) -> list[Frame | Fold]:
    """Frames with long runs of system / interpreter frames replaced by a Fold. The first
    frame (where the thread was) and `keep` (the verdict's frame) are never folded."""
    if not fold:
        return list(frames)

    def cls(k: int) -> str | None:
        return None if k == 0 or frames[k] is keep else _fold_class(frames[k])

    out: list[Frame | Fold] = []
    i = 0
    while i < len(frames):
        what = cls(i)
        j = i
        while what is not None and j < len(frames) and cls(j) == what:
            j += 1
        threshold = FOLD_SYSTEM if what == "system frames" else FOLD_INTERPRETER
        if what is not None and j - i >= threshold:
            out.append(Fold(frames[i:j], what))
            i = j
        else:
            out.append(frames[i])
            i += 1
    return out


def frame_text(frame: Frame) -> str:
    """One frame as plain text: `libmlx.dylib  mlx::core::eval_impl + 40  (eval.cpp:12)`."""
    if is_python_source(frame):
        line = f":{frame.line}" if frame.line is not None else ""
        return f"{frame.symbol or '???'}  {frame.file}{line}"
    parts = [frame.image] if frame.image else []
    if frame.symbol:
        sym = frame.symbol + (f" + {frame.offset}" if frame.offset is not None else "")
        parts.append(sym)
    elif frame.offset is not None:
        parts.append(f"+ {frame.offset:#x}")
    elif frame.address is not None:
        parts.append(f"{frame.address:#x}")
    if frame.file:
        parts.append(f"({frame.file}{f':{frame.line}' if frame.line is not None else ''})")
    return "  ".join(parts) or "???"


def _frame_plain(frame: Frame) -> str:
    mark = KIND_MARKS.get(frame.kind)
    return f"{frame.index:>3}  {frame_text(frame)}" + (f"  {mark}" if mark else "")


def stack_lines(thread: Thread, limit: int | None = None, *, fold: bool = True) -> list[str]:
    """The thread's frames as plain lines (folded unless `fold=False`), at most `limit`
    entries; a final line says how many were left out."""
    keep = first_interesting(thread) if thread.crashed else None
    items = fold_frames(thread.frames, fold=fold, keep=keep)
    shown = items if limit is None else items[:limit]
    lines = [f"     {it.text()}" if isinstance(it, Fold) else _frame_plain(it) for it in shown]
    if limit is not None and len(items) > limit:
        hidden = sum(len(it.frames) if isinstance(it, Fold) else 1 for it in items[limit:])
        lines.append(f"     ... {hidden} more frames")
    if thread.note:
        lines.append(f"     ({thread.note})")
    return lines


def thread_title(thread: Thread, report: CrashReport) -> str:
    title = thread_label(thread, report.format)
    title = title[0].upper() + title[1:]
    if thread.name and thread.queue:
        title += f" (queue {thread.queue})"
    if thread.id is not None and report.format == "gdb":
        title += f" LWP {thread.id}"
    if thread.crashed:
        title += " CRASHED"
    return title


def thread_summary(thread: Thread, report: CrashReport) -> str:
    """A folded thread on one line: name, frame count, top interesting frame."""
    top = first_interesting(thread)
    where = ""
    if top is not None:
        where = f", top: {frame_label(top)}" + (f" ({top.image})" if top.image else "")
    count = f"{len(thread.frames)} frame{'s' if len(thread.frames) != 1 else ''}"
    note = f", {thread.note}" if thread.note else ""
    return f"{thread_title(thread, report)}: {count}{where}{note}"


def header_facts(report: CrashReport) -> list[tuple[str, str]]:
    """(label, value) pairs for the header, only those the report has."""
    facts: list[tuple[str, str]] = []
    if report.process_name or report.pid is not None:
        pid = f" [{report.pid}]" if report.pid is not None else ""
        facts.append(("Process", f"{report.process_name or '?'}{pid}"))
    if report.exception_type or report.signal:
        both = [x for x in (report.exception_type, report.signal) if x]
        value = both[0] if len(both) == 1 else f"{both[0]} ({both[1]})"
        facts.append(("Exception" if report.exception_type else "Signal", value))
    if report.exception_subtype:
        facts.append(("Subtype", report.exception_subtype))
    if report.termination_reason:
        facts.append(("Termination", report.termination_reason))
    if report.message:
        facts.append(("Message", report.message))
    if report.application_specific_information:
        facts.append(("App info", report.application_specific_information))
    if report.os_version:
        facts.append(("OS", report.os_version))
    facts.append(
        ("Format", report.format + (f" (bug_type {report.bug_type})" if report.bug_type else ""))
    )
    if report.source_path:
        facts.append(("File", report.source_path))
    return facts


def _frame_rich(frame: Frame) -> Text:
    style = KIND_STYLES.get(frame.kind, "")
    text = Text()
    text.append(f"{frame.index:>3}  ", style="dim")  # (a Text-wide style would dim it all)
    text.append(frame_text(frame), style=style)
    mark = KIND_MARKS.get(frame.kind)
    if mark:
        text.append(f"  {mark}", style=style)
    return text


def _frames_rich(frames: Iterable[Frame | Fold]) -> list[Text]:
    out = []
    for it in frames:
        if isinstance(it, Fold):
            out.append(Text(f"     {it.text()}", style="dim"))
        else:
            out.append(_frame_rich(it))
    return out


def header_renderable(report: CrashReport) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in header_facts(report):
        style = "bold red" if label in ("Exception", "Signal") else ""
        table.add_row(label, Text(value, style=style))
    return table


def verdict_renderable(report: CrashReport, python: CrashReport | None = None) -> Text:
    return Text.assemble(("Verdict: ", "bold"), (verdict(report, python), "bold yellow"))


def thread_renderable(thread: Thread, report: CrashReport, *, full: bool = False) -> Group:
    """A thread with its frames (folded unless `full`)."""
    title = Text(thread_title(thread, report), style="bold red" if thread.crashed else "bold")
    lines: list[RenderableType] = [title]
    keep = first_interesting(thread) if thread.crashed else None
    lines.extend(_frames_rich(fold_frames(thread.frames, fold=not full, keep=keep)))
    if not thread.frames:
        lines.append(Text("     (no frames)", style="dim"))
    if thread.note:
        lines.append(Text(f"     ({thread.note})", style="italic"))
    return Group(*lines)


def driver_frames_renderable(thread: Thread, report: CrashReport) -> Group:
    """A non-crashed thread reduced to its driver frames (what it was doing in the driver)."""
    lines: list[RenderableType] = [Text(thread_title(thread, report), style="bold")]
    lines.extend(_frame_rich(f) for f in thread.frames if f.kind == DRIVER)
    return Group(*lines)


def _ordered_threads(report: CrashReport) -> list[Thread]:
    crashed = report.crashed_thread
    rest = [t for t in report.threads if t is not crashed]
    return ([crashed] if crashed is not None else []) + rest


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
        parts.append(Text("Partial report: " + "; ".join(report.warnings), style="bold yellow"))
    crashed = report.crashed_thread
    in_driver = {id(t) for t in driver_threads(report)}
    folded: list[Text] = []
    for t in _ordered_threads(report):
        if t is crashed or full:
            parts.extend([Text(""), thread_renderable(t, report, full=full)])
        elif id(t) in in_driver:
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
        for t in _ordered_threads(python):
            if t is py_crashed or full:
                parts.append(thread_renderable(t, python, full=full))
            else:
                parts.append(Text(thread_summary(t, python), style="dim"))
    return Group(*parts)


def markdown_summary(
    report: CrashReport, python: CrashReport | None = None, *, full: bool = False
) -> str:
    """The same summary as Markdown (for the evidence report exporter)."""
    out = [f"**Verdict:** {verdict(report, python)}", ""]
    out += [f"- **{label}:** {value}" for label, value in header_facts(report)]
    if report.warnings:
        out.append(f"- **Partial report:** {'; '.join(report.warnings)}")
    crashed = report.crashed_thread
    in_driver = {id(t) for t in driver_threads(report)}
    others: list[str] = []
    for t in _ordered_threads(report):
        if t is crashed or full:
            out += ["", f"**{thread_title(t, report)}**", "", "```"]
            out += stack_lines(t, fold=not full) or ["(no frames)"]
            out.append("```")
        elif id(t) in in_driver:
            out += ["", f"**{thread_title(t, report)}** (driver frames)", "", "```"]
            out += [_frame_plain(f) for f in t.frames if f.kind == DRIVER]
            out.append("```")
        else:
            others.append(f"- {thread_summary(t, report)}")
    if others:
        out += ["", "Other threads:", "", *others]
    if python is not None and python is not report:
        out += ["", "**Python stacks (faulthandler)**", "", "```"]
        for t in _ordered_threads(python):
            out.append(thread_title(t, python))
            out += stack_lines(t, fold=not full)
        out.append("```")
    return "\n".join(out) + "\n"


__all__ = [
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
