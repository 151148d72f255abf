"""The one-line verdict: what killed the process, where, on which thread, and which other
threads were inside a GPU driver at that moment.

The line states only what the report says. A report that names a crashed thread whose section
is missing says so instead of "not identified"; a kernel panic is called a panic and quoted; a
paste with a single unlabelled frame list says where that list starts without claiming it is
the crashed thread.
"""

from __future__ import annotations

import re

from gpumon.crash._causes import short_cause
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
from gpumon.crash.symbols import frame_label, is_python_source, thread_label

# Frames above a signal trampoline belong to the handler (faulthandler, gdb), not the crash.
_TRAMPOLINES = {"_sigtramp", "__restore_rt", "<signal handler called>", "__kernel_rt_sigreturn"}
# faulthandler's own frames at the top of a 3.14 C stack (it dumps from inside the handler).
_HANDLER = re.compile(r"^(?:_Py_DumpStack|_Py_DumpTraceback\w*|faulthandler_\w+)$")
_BORING = {SYSTEM, UNKNOWN}
# Driver frames that only pass a callback along (libdispatch blocks, Metal's handler list): a
# completion-queue thread starts in them, and naming one says nothing about what ran.
_PLUMBING = re.compile(r"_block_invoke(?:[._]\d+)?$|^MTLDispatchListApply$|^_?_dispatch_")
_MAX_DRIVER_THREADS = 3  # more are summarised as a count: the line must stay one line


def crash_frames(thread: Thread) -> list[Frame]:
    """The thread's frames from the faulting one outwards: frames of the signal handler
    (a trampoline and everything above it, faulthandler's own dump functions) dropped."""
    frames = thread.frames
    start = 0
    for i, f in enumerate(frames):
        if f.symbol in _TRAMPOLINES:
            start = i + 1
        elif f.symbol and _HANDLER.match(f.symbol):
            start = i + 1
            # glibc's trampoline (__restore_rt) has no dynamic symbol: dladdr names no
            # function, so the unnamed libc frame right after the handler is the trampoline.
            nxt = frames[i + 1] if i + 1 < len(frames) else None
            if nxt is not None and nxt.symbol is None and nxt.kind == SYSTEM:
                start = i + 2
    return frames[start:]


def first_interesting(thread: Thread) -> Frame | None:
    """The innermost frame that is not a system or unknown frame (native before Python)."""
    for f in crash_frames(thread):
        if f.kind not in _BORING and (f.symbol or f.image):
            return f
    return None


def driver_threads(report: CrashReport) -> list[Thread]:
    """Threads with at least one GPU driver / runtime frame, in report order."""
    return [t for t in report.threads if any(f.kind == DRIVER for f in t.frames)]


def _first_driver_run(thread: Thread) -> tuple[int, int] | None:
    start = end = None
    for i, f in enumerate(thread.frames):
        if f.kind == DRIVER:
            if start is None:
                start = i
            end = i
        elif start is not None:
            break
    return None if start is None or end is None else (start, end)


def called_from_code(thread: Thread) -> bool:
    """Did code (a framework, the app, Python) call into the driver on this thread? False for
    a thread the driver runs itself, such as Metal's completion queue calling a handler."""
    run = _first_driver_run(thread)
    if run is None:
        return False
    return any(f.kind in (FRAMEWORK, APP, PYTHON) for f in thread.frames[run[1] + 1 :])


def driver_entry(thread: Thread) -> Frame | None:
    """The driver frame that says what the thread was doing in the driver.

    When code called the driver, that is the outermost frame of the first run of driver frames:
    the call the framework made (`performEnqueueKernel`), which says more than the innermost
    IOKit detail. When the driver called out (a completion handler on
    com.Metal.CompletionQueueDispatch), the outermost driver frames are dispatch trampolines,
    so it is the deepest driver frame that is not plumbing
    (`-[_MTLCommandBuffer didCompleteWithStartTime:endTime:error:]`)."""
    run = _first_driver_run(thread)
    if run is None:
        return None
    start, end = run
    if called_from_code(thread):
        return thread.frames[end]
    for f in thread.frames[start : end + 1]:
        if not (f.symbol and _PLUMBING.search(f.symbol)):
            return f
    return thread.frames[start]


def _what(report: CrashReport) -> str:
    sig = report.signal or report.exception_type
    detail = report.exception_subtype
    if not detail and report.application_specific_information:
        # "abort() called", "terminate called without an active exception": why it aborted.
        lines = report.application_specific_information.strip().splitlines()
        # faulthandler: the last thing printed before the dump; macOS: the first line is the
        # reason, later ones ("abort() called") are consequences.
        detail = short_cause(lines[-1] if report.format == "faulthandler" else lines[0])
    if sig and detail:
        return f"{sig} ({detail})"
    if sig:
        return sig
    if report.message:
        return report.message
    if detail:
        return f"crash ({detail})"
    return "crash"


def _gc_note(thread: Thread) -> str | None:
    if thread.note and "garbage-collecting" in thread.note:
        return "while garbage-collecting"
    return None


def _where(frame: Frame) -> str:
    where = frame_label(frame)
    if frame.image and frame.symbol:
        where += f" ({frame.image})"
    return where


def _named_but_missing(report: CrashReport) -> str:
    """The header names the crashed thread, but its section is not in the report."""
    label = f"thread {report.crashed_thread_index}"
    if report.crashed_thread_name:
        label += f' "{report.crashed_thread_name}"'
    elif report.crashed_thread_queue:
        label += f" (queue {report.crashed_thread_queue})"
    return f"on {label}, whose backtrace is not in the report"


def _panic(report: CrashReport) -> str:
    line = f"kernel panic: {report.message or 'panic string not in the report'}"
    if report.process_name or report.pid is not None:
        pid = f" [{report.pid}]" if report.pid is not None else ""
        line += f" (panicked task {report.process_name or '?'}{pid})"
    return line


def verdict(report: CrashReport, python: CrashReport | None = None) -> str:
    """One factual line: what killed the process, where, on which thread, and which other
    threads were inside a GPU driver at that moment. `python` is a faulthandler report of the
    same crash, used to add where the crashed thread's Python code was."""
    if report.format == "panic":
        return _panic(report)
    if report.format == "c10" and report.signal is None and report.message:
        return f"{report.message} (a C++ exception's backtrace; the crash is not in it)"
    crashed = report.crashed_thread
    if (
        crashed is None
        and report.crashed_thread_index is None
        and not (report.signal or report.exception_type)
        and report.message
        and not report.message.startswith("Fatal")
    ):
        # A stall snapshot (gdb kind: snapshot, faulthandler's timeout dump): nothing crashed.
        n = len(report.threads)
        return f"{report.message} ({n} thread{'s' if n != 1 else ''}, none crashed)"
    parts: list[str] = [_what(report)]
    if crashed is not None:
        frame = first_interesting(crashed)
        if frame is not None:
            parts.append(f"in {_where(frame)}")
        parts.append(f"on {thread_label(crashed, report.format)}")
        if gc := _gc_note(crashed):
            parts.append(gc)
    elif report.crashed_thread_index is not None and report.format != "faulthandler":
        parts.append(_named_but_missing(report))
    elif len(report.threads) == 1 and (top := first_interesting(report.threads[0])):
        parts.append(f"(crashed thread not identified; the one thread given is in {_where(top)})")
    else:
        parts.append("(crashed thread not identified)")
    line = " ".join(parts)
    if python is not None and python is not report:
        py_thread = python.crashed_thread
        if py_thread is not None:
            py_frame = next((f for f in py_thread.frames if is_python_source(f)), None)
            if py_frame is not None:
                line += f"; Python was in {frame_label(py_frame)}"
            if (gc := _gc_note(py_thread)) and gc not in line:
                line += f" {gc}"
    return line + _driver_clauses(report, crashed)


def _driver_clauses(report: CrashReport, crashed: Thread | None) -> str:
    line = ""
    # The only thread of a paste was named already, as "the one thread given".
    named = report.threads[0] if crashed is None and len(report.threads) == 1 else None
    in_driver = [t for t in driver_threads(report) if t is not crashed and t is not named]
    # Threads that called into the driver from code (a framework, the app, Python) are the
    # evidence; threads made by the driver itself (CUDA's event handler, ...) are always there.
    others = [t for t in in_driver if _entered_from_code(t)]
    own = [t for t in in_driver if not _entered_from_code(t)]
    for t in others[:_MAX_DRIVER_THREADS]:
        entry = driver_entry(t)
        if entry is not None:
            line += f"; {thread_label(t, report.format)} was inside {_driver_where(entry)}"
    if len(others) > _MAX_DRIVER_THREADS:
        line += f"; {len(others) - _MAX_DRIVER_THREADS} more threads were inside the GPU driver"
    if own:
        images = sorted({e.image for t in own if (e := driver_entry(t)) and e.image})
        n = len(own)
        line += (
            f"; {n} other thread{'s were' if n != 1 else ' was'} only in "
            f"{', '.join(images) or 'GPU driver'} code"
        )
    if crashed is not None and any(f.kind == DRIVER for f in crashed.frames):
        entry = driver_entry(crashed)
        if entry is not None and entry is not first_interesting(crashed):
            how = "inside" if called_from_code(crashed) else "called from the driver at"
            line += f"; the crashed thread was itself {how} {_driver_where(entry)}"
    return line


def _entered_from_code(thread: Thread) -> bool:
    return any(f.kind in (FRAMEWORK, APP, PYTHON) for f in thread.frames)


def _driver_where(entry: Frame) -> str:
    """`AGXMetalG16X performEnqueueKernel`, or just `libcuda.so.1+0x1234` without a symbol."""
    label = frame_label(entry)
    if entry.symbol and entry.image:
        return f"{entry.image} {label}"
    return label
