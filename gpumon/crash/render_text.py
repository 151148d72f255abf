"""A crash report as plain text: frame lines, folded runs, thread titles, header facts and the
Markdown summary the evidence exporter embeds.

Everything that came from the report is passed through `gpumon.sanitize` here, once, so a
crafted thread name or frame cannot move the cursor, set the clipboard (OSC 52) or reverse the
text of a line on the terminal or in a Markdown viewer. The rich renderables in
`gpumon.crash.render` are built from these strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpumon import sanitize
from gpumon.crash.model import DRIVER, FRAMEWORK, PYTHON, SYSTEM, CrashReport, Frame, Thread
from gpumon.crash.symbols import elide_symbol, frame_label, is_python_source, thread_label
from gpumon.crash.verdict import called_from_code, driver_threads, first_interesting, verdict

# Plain-text markers, so a Markdown export still shows which frames matter.
KIND_MARKS = {DRIVER: "[driver]", FRAMEWORK: "[framework]"}
FOLD_SYSTEM = 3  # this many consecutive system frames or more are folded to one line
FOLD_INTERPRETER = 4  # likewise for CPython's own C frames (_PyEval_EvalFrameDefault ...)
# Lines per thread in a summary (a folded run is one line). A 100 MB dump of a runaway
# recursion has millions of frames; the summary shows the innermost ones and a count.
FRAME_CAP = 60
UNKNOWN_SHOWN = 3  # threads shown with frames when the crashed one is not known
LINE_MAX = 1000  # characters of one frame line in a summary (whole with --full / --json)


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
        return sanitize.line(
            f"... {len(self.frames)} {self.what}" + (f" ({shown})" if shown else "")
        )


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


def frame_text(frame: Frame, *, elide: bool = False) -> str:
    """One frame as plain text: `libmlx.dylib  mlx::core::eval_impl + 40  (eval.cpp:12)`.
    `elide=True` shortens template arguments in a very long symbol (summaries only)."""
    if is_python_source(frame):
        line = f":{frame.line}" if frame.line is not None else ""
        return _bounded(sanitize.line(f"{frame.symbol or '???'}  {frame.file}{line}"), elide)
    parts = [frame.image] if frame.image else []
    if frame.symbol:
        symbol = elide_symbol(frame.symbol) if elide else frame.symbol
        parts.append(symbol + (f" + {frame.offset}" if frame.offset is not None else ""))
    elif frame.offset is not None:
        parts.append(f"+ {frame.offset:#x}")
    elif frame.address is not None:
        parts.append(f"{frame.address:#x}")
    if frame.file:
        parts.append(f"({frame.file}{f':{frame.line}' if frame.line is not None else ''})")
    return _bounded(sanitize.line("  ".join(parts) or "???"), elide)


def _bounded(text: str, elide: bool) -> str:
    return bounded(text) if elide else text


def bounded(text: str) -> str:
    """A summary line of at most about LINE_MAX characters (a hostile or corrupted frame can
    be megabytes long; a terminal would wrap it into thousands of rows)."""
    if len(text) <= LINE_MAX:
        return text
    return f"{text[:LINE_MAX]}… ({len(text) - LINE_MAX} more characters)"


def frame_line(frame: Frame, *, elide: bool = False) -> str:
    mark = KIND_MARKS.get(frame.kind)
    return f"{frame.index:>3}  {frame_text(frame, elide=elide)}" + (f"  {mark}" if mark else "")


def hidden_count(items: list[Frame | Fold], thread: Thread) -> int:
    """Frames in `items` (folds count their frames) plus those the parser only counted."""
    shown = sum(len(it.frames) if isinstance(it, Fold) else 1 for it in items)
    return shown + thread.frames_omitted


def more_line(hidden: int) -> str:
    return f"     ... {hidden} more frame{'s' if hidden != 1 else ''}"


def stack_lines(
    thread: Thread, limit: int | None = None, *, fold: bool = True, elide: bool = False
) -> list[str]:
    """The thread's frames as plain lines (folded unless `fold=False`), at most `limit`
    entries; a final line says how many were left out. `elide` shortens very long symbols in
    the middle (their template arguments), for summaries."""
    keep = first_interesting(thread) if thread.crashed else None
    items = fold_frames(thread.frames, fold=fold, keep=keep)
    shown = items if limit is None else items[:limit]
    lines = [
        f"     {it.text()}" if isinstance(it, Fold) else frame_line(it, elide=elide) for it in shown
    ]
    hidden = hidden_count(items[len(shown) :], thread)
    if hidden:
        lines.append(more_line(hidden))
    if thread.note:
        lines.append(sanitize.line(f"     ({thread.note})"))
    return lines


def thread_title(thread: Thread, report: CrashReport) -> str:
    title = bounded(thread_label(thread, report.format))
    title = title[0].upper() + title[1:]
    if thread.name and thread.queue:
        title += f" (queue {thread.queue})"
    if thread.id is not None and report.format in ("gdb", "coredump"):
        title += f" LWP {thread.id}"
    if thread.crashed:
        title += " CRASHED"
    return sanitize.line(title)


def thread_summary(thread: Thread, report: CrashReport) -> str:
    """A folded thread on one line: name, frame count, top interesting frame."""
    top = first_interesting(thread)
    where = ""
    if top is not None:
        where = f", top: {frame_label(top)}" + (f" ({top.image})" if top.image else "")
    n = len(thread.frames) + thread.frames_omitted
    count = f"{n} frame{'s' if n != 1 else ''}"
    note = f", {thread.note}" if thread.note else ""
    return bounded(sanitize.line(f"{thread_title(thread, report)}: {count}{where}{note}"))


def header_facts(report: CrashReport) -> list[tuple[str, str]]:
    """(label, value) pairs for the header, only those the report has (values sanitised;
    application-specific information keeps its lines)."""
    facts: list[tuple[str, str]] = []
    if report.process_name or report.pid is not None:
        pid = f" [{report.pid}]" if report.pid is not None else ""
        facts.append(("Process", f"{report.process_name or '?'}{pid}"))
    if report.exception_type or report.signal:
        both = [x for x in (report.exception_type, report.signal) if x]
        value = both[0] if len(both) == 1 or both[0] == both[1] else f"{both[0]} ({both[1]})"
        facts.append(("Exception" if report.exception_type else "Signal", value))
    if report.exception_subtype:
        facts.append(("Subtype", report.exception_subtype))
    if report.termination_reason:
        facts.append(("Termination", report.termination_reason))
    if report.message:
        facts.append(("Panic" if report.format == "panic" else "Message", report.message))
    if report.crashed_thread is None and report.crashed_thread_index is not None:
        named = f"thread {report.crashed_thread_index}"
        if report.crashed_thread_name:
            named += f' "{report.crashed_thread_name}"'
        if report.crashed_thread_queue:
            named += f" (queue {report.crashed_thread_queue})"
        facts.append(("Crashed", f"{named}: its backtrace is not in the report"))
    if report.application_specific_information:
        facts.append(("App info", report.application_specific_information))
    if report.os_version:
        facts.append(("OS", report.os_version))
    facts.append(
        ("Format", report.format + (f" (bug_type {report.bug_type})" if report.bug_type else ""))
    )
    if report.source_path:
        facts.append(("File", report.source_path))
    return [
        (label, _block(value) if label == "App info" else bounded(sanitize.line(value)))
        for label, value in facts
    ]


def _block(value: str, max_lines: int = 40) -> str:
    """Multi-line text for a summary: sanitised, each line bounded, at most `max_lines`."""
    lines = sanitize.text(value).splitlines()
    shown = [bounded(line) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        shown.append(f"... {len(lines) - max_lines} more lines")
    return "\n".join(shown)


def ordered_threads(report: CrashReport) -> list[Thread]:
    crashed = report.crashed_thread
    rest = [t for t in report.threads if t is not crashed]
    return ([crashed] if crashed is not None else []) + rest


def shown_in_full(report: CrashReport) -> list[Thread]:
    """Threads a summary shows with their frames: the crashed one; or, when no thread is
    known to have crashed, the first few (a paste of one or two frame lists is read for them)."""
    crashed = report.crashed_thread
    if crashed is not None:
        return [crashed]
    return report.threads[:UNKNOWN_SHOWN] if len(report.threads) <= UNKNOWN_SHOWN else []


def evidence_threads(report: CrashReport) -> list[Thread]:
    """Non-crashed threads whose driver frames are shown: those that called into the driver
    from code. Threads the driver runs itself (Mesa's queue threads, CUDA's event thread)
    stay folded: they are in every process that uses the driver."""
    crashed = report.crashed_thread
    return [t for t in driver_threads(report) if t is not crashed and called_from_code(t)]


def markdown_summary(
    report: CrashReport,
    python: CrashReport | None = None,
    *,
    full: bool = False,
    elide: bool = False,
) -> str:
    """The same summary as Markdown (for the evidence report exporter); `elide` shortens long
    C++ symbols in the middle, as a report read in a browser needs."""
    out = [f"**Verdict:** {sanitize.line(verdict(report, python))}", ""]
    out += [f"- **{label}:** {sanitize.line(value)}" for label, value in header_facts(report)]
    if report.warnings:
        out.append(f"- **Partial report:** {sanitize.line('; '.join(report.warnings))}")
    crashed = report.crashed_thread
    in_driver = {id(t) for t in driver_threads(report)}
    others: list[str] = []
    for t in ordered_threads(report):
        if t is crashed or full:
            out += ["", f"**{thread_title(t, report)}**", ""]
            lines = stack_lines(t, fold=not full, elide=elide)
            out += sanitize.md_code("\n".join(lines or ["(no frames)"]))
        elif id(t) in in_driver:
            out += ["", f"**{thread_title(t, report)}** (driver frames)", ""]
            out += sanitize.md_code(
                "\n".join(frame_line(f, elide=elide) for f in t.frames if f.kind == DRIVER)
            )
        else:
            others.append(f"- {thread_summary(t, report)}")
    if others:
        out += ["", "Other threads:", "", *others]
    if python is not None and python is not report:
        out += ["", "**Python stacks (faulthandler)**", ""]
        body: list[str] = []
        for t in ordered_threads(python):
            body.append(thread_title(t, python))
            body += stack_lines(t, fold=not full, elide=elide)
        out += sanitize.md_code("\n".join(body))
    return "\n".join(out) + "\n"
