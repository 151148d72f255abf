"""Python faulthandler dumps (CPython 3.10-3.14): every thread's Python stack, and on 3.14+ the
faulting thread's C stack.

The format is written by CPython's `Modules/faulthandler.c` and `Python/traceback.c`
(`_Py_DumpTracebackThreads`, `dump_frame`, `_Py_DumpStack`):

    Fatal Python error: Segmentation fault            (or Aborted, Bus error, ...)

    Current thread 0x00007f... [mlx_worker-1] (most recent call first):   ([name] since 3.14)
      Garbage-collecting                              (the GC was running on this thread)
      File "/path/x.py", line 13 in work
      <no Python frame>                               (a thread with no Python code running)

    Thread 0x00007f... (most recent call first):
      ...

    Current thread's C stack trace (most recent call first):              (3.14+)
      Binary file "/usr/lib/libpython3.14.so", at _Py_DumpStack+0x1a [0x7f...]
      Binary file "/path/lib.so", at +0x255957 [0x5b...]
      <truncated rest of calls>

    Extension modules: numpy..., torch._C (total: 13)

Python frames become Frame(kind="python", file, line, symbol=function). The C stack belongs to
the faulting ("Current") thread, so its frames are put on that thread *before* its Python
frames: they are the innermost (the signal arrived in C), and the verdict looks for the crash
site from the top. A C stack with no Python "Current thread" (the fault hit a thread Python
does not know) becomes its own crashed thread entry. Of the lines printed before the dump, only
a runtime's own statement of why it died (`terminate called without an active exception`, a
failed assertion) is kept, as application-specific information; training progress, log lines
and shell prompts are not a cause. The dump may start mid-line (after a progress bar).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

from gpumon.crash._causes import is_cause
from gpumon.crash._values import basename, parse_hex
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import PYTHON, BinaryImage, CrashParseError, CrashReport, Frame, Thread

_THREAD = re.compile(
    r"^\s*(Current thread|Thread) (0x[0-9a-fA-F]+)(?: \[(.*)\])? \(most recent call first\):\s*$"
)
_STACK = re.compile(r"^\s*Stack \(most recent call first\):\s*$")
# No lazy group before `\s*$` here: on a long line of spaces that backtracks quadratically.
_FILE = re.compile(r'^\s*File (?:"(.*)"|\?\?\?), line (\d+|\?\?\?) in (.*)$')
_FATAL = re.compile(r"(Fatal Python error|Windows fatal exception): (.*)$")
_TIMEOUT = re.compile(r"^\s*Timeout \((\d+:\d\d:\d\d(?:\.\d+)?)\)!\s*$")
_C_STACK = re.compile(r"^\s*(?:Current thread's C stack trace|C stack) \(most recent call first\):")
_BINARY_PREFIX = "Binary file "
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_EXTENSIONS = re.compile(r"^\s*Extension modules: ")
# What faulthandler says instead of (or after) frames, and how gpumon words it.
_THREAD_NOTES = {
    "Garbage-collecting": "garbage-collecting",
    "<no Python frame>": "no Python frame",
    "<freed thread state>": "thread state already freed",
    "<tstate is freed>": "thread state already freed",
    "<freed frame>": "Python stack cut short: frame already freed",
    "<invalid frame>": "Python stack cut short: invalid frame",
    "...": "Python stack truncated at 100 frames",
}
_C_NOTES = {
    "<truncated rest of calls>": "C stack truncated by faulthandler",
    "<system returned no stack trace>": "the system returned no C stack",
    "<cannot get C stack on this system>": "no C stack on this platform",
}
# faulthandler.c's names for the fatal signals it handles.
_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
    "Floating point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}
_PREAMBLE_LINES = 10
_FILE_PREFIX = 'File "'
_INDENTED_FILE = '  File "'  # as faulthandler writes a frame line


# One multi-line search instead of a Python loop: sniffing must stay fast on a 64 MiB file.
_SNIFF = re.compile(
    r"^[ \t]*(?:(?:Current thread|Thread) 0x[0-9a-fA-F]+(?: \[.*\])? \(most recent call first\):"
    r"|Fatal Python error: |Windows fatal exception: |Stack \(most recent call first\):"
    r"|Current thread's C stack trace \(most recent call first\):)",
    re.M,
)


def looks_like_faulthandler(text: str) -> bool:
    return _SNIFF.search(text) is not None


class _Dump:
    """Parser state; one instance per parse."""

    def __init__(self, frame_cap: int | None = None) -> None:
        self.cap = frame_cap
        self.report = CrashReport(format="faulthandler")
        self.current: Thread | None = None  # thread whose frames are being read
        self.mode: str | None = None  # "python" | "c" | "between" (after a blank line)
        self.c_frames: list[Frame] = []
        self.c_note: str | None = None
        self.c_seen = False
        # Only the last lines before the dump matter (a stderr capture can be long).
        self.preamble: deque[str] = deque(maxlen=_PREAMBLE_LINES)
        self.started = False
        self.fatal = False
        self.unreadable = 0
        self.last_unreadable = False  # was the last line fed one that could not be read?
        self.images: dict[str, BinaryImage] = {}
        self.counting: Thread | None = None  # a Python thread whose frames are only counted

    def feed(self, line: str) -> None:
        if self.counting is not None and line.startswith(_INDENTED_FILE):
            # The hot path of a huge dump: the thread holds its cap, the frame is only counted.
            self.counting.frames_omitted += 1
            return
        stripped = line.strip()
        self.last_unreadable = False
        if self.mode == "python" and self.current is not None and stripped.startswith(_FILE_PREFIX):
            self._python_line(stripped)  # the common case first: huge dumps are mostly frames
            return
        self.counting = None
        m = _FATAL.search(line) if "fatal" in line.lower() else None
        if m:
            # Possibly after a progress bar on the same line: the dump starts at the match.
            self.started = True
            self.fatal = True
            self.report.message = m.group(0).strip()
            self.report.signal = _SIGNALS.get(m.group(2).strip(), self.report.signal)
            return
        m = _TIMEOUT.match(line)
        if m:
            self.started = True
            self.report.message = stripped
            return
        m = _THREAD.match(line)
        if m:
            self._new_thread(m.group(1) == "Current thread", parse_hex(m.group(2)), m.group(3))
            return
        if _STACK.match(line):
            self._new_thread(True, None, None)
            return
        if _C_STACK.match(line):
            self.started = True
            self.c_seen = True
            self.mode = "c"
            return
        if _EXTENSIONS.match(line):
            self.mode = None
            return
        if not self.started:
            if is_cause(stripped):
                self.preamble.append(stripped)
            return
        if not stripped:
            # A blank line ends a thread's block; what follows the last one (the shell's
            # "Segmentation fault (core dumped)", prose after a paste) is not part of it.
            if self.mode in ("python", "c"):
                self.mode = "between"
            return
        if self.mode == "python" and self.current is not None:
            self._python_line(stripped)
        elif self.mode == "c":
            self._c_line(stripped)
        elif stripped == "...":
            self.report.warnings.append("more than 100 threads: faulthandler listed the first 100")
        elif stripped.startswith("<Cannot show all threads"):
            self.report.warnings.append("faulthandler did not list the other threads")
        elif stripped.startswith("Python runtime state:"):
            pass

    def _new_thread(self, is_current: bool, ident: int | None, name: str | None) -> None:
        self.started = True
        thread = Thread(index=len(self.report.threads), id=ident, name=name or None)
        if is_current:
            thread.crashed = True  # re-checked in finish(): only a fatal error crashes it
        self.report.threads.append(thread)
        self.current = thread
        self.mode = "python"

    def _python_line(self, stripped: str) -> None:
        assert self.current is not None
        full = self.cap is not None and len(self.current.frames) >= self.cap
        if full and stripped.startswith(_FILE_PREFIX):
            self.current.frames_omitted += 1  # counted, not kept: memory stays bounded
            self.counting = self.current
            return
        m = _FILE.match(stripped)
        if m:
            line = m.group(2)
            self.current.frames.append(
                Frame(
                    index=len(self.current.frames),
                    file=m.group(1),
                    line=int(line) if line.isdigit() else None,
                    symbol=m.group(3).strip() if m.group(3).strip() != "???" else None,
                    kind=PYTHON,
                )
            )
            return
        note = _THREAD_NOTES.get(stripped)
        if note is None and re.fullmatch(r"plus \d+ frames", stripped):
            note = f"Python stack truncated ({stripped} not shown)"
        if note is not None:
            self.current.note = f"{self.current.note}; {note}" if self.current.note else note
            return
        self.unreadable += 1
        self.last_unreadable = True

    def _c_line(self, stripped: str) -> None:
        parsed = parse_binary_line(stripped)
        if parsed is not None:
            path, symbol, sign, offset, address = parsed
            image = basename(path) if path else None
            if path and image and image not in self.images:
                self.images[image] = BinaryImage(name=image, path=path)
            self.c_frames.append(
                Frame(
                    index=len(self.c_frames),
                    image=image,
                    symbol=symbol or None,
                    offset=offset if sign == "+" else None,
                    address=address,
                )
            )
            return
        note = _C_NOTES.get(stripped)
        if note is not None:
            self.c_note = note
            return
        self.unreadable += 1
        self.last_unreadable = True

    def finish(self, source_path: str | None) -> CrashReport:
        report = self.report
        if not self.started:
            raise CrashParseError("no faulthandler thread dump found")
        current = next((t for t in report.threads if t.crashed), None)
        if not self.fatal:
            # dump_traceback() or a stall watchdog: "Current thread" wrote the dump, nothing
            # crashed.
            for t in report.threads:
                t.crashed = False
        if self.c_seen:
            self._attach_c_stack(current)
        crashed = next((t for t in report.threads if t.crashed), None)
        report.crashed_thread_index = crashed.index if crashed is not None else None
        if self.preamble:
            report.application_specific_information = "\n".join(self.preamble)
        report.images = list(self.images.values())
        for t in report.threads:
            if not t.frames and not t.frames_omitted and t.note is None:
                label = f"{t.id:#x}" if t.id is not None else str(t.index)
                report.warnings.append(f"thread {label} lists no frames (dump truncated?)")
        if self.fatal and crashed is None:
            report.warnings.append("the dump does not say which thread crashed")
        if self.unreadable:
            what = (
                "the last line is incomplete"
                if self.last_unreadable and self.unreadable == 1
                else (f"{self.unreadable} line(s) could not be read")
            )
            report.warnings.append(f"{what} (dump truncated or edited?)")
        if not report.threads and not self.c_frames:
            if report.message:
                report.warnings.append("no thread stacks after the fatal error line")
            else:
                raise CrashParseError("no faulthandler thread dump found")
        report.source_path = source_path
        return report

    def _attach_c_stack(self, current: Thread | None) -> None:
        report = self.report
        if current is not None:
            for i, f in enumerate(self.c_frames):
                f.index = i
            offset = len(self.c_frames)
            for f in current.frames:
                f.index += offset
            current.frames = [*self.c_frames, *current.frames]
            if self.c_note:
                current.note = f"{current.note}; {self.c_note}" if current.note else self.c_note
            return
        report.threads.append(
            Thread(
                index=len(report.threads),
                crashed=self.fatal,
                frames=self.c_frames,
                note="C stack of the faulting thread (not a Python thread)"
                + (f"; {self.c_note}" if self.c_note else ""),
            )
        )


def parse_binary_line(
    line: str,
) -> tuple[str | None, str | None, str, int | None, int] | None:
    """One C-stack line of `_Py_backtrace_symbols_fd` -> (path, symbol, sign, offset, address):

        Binary file "/p/lib.so", at sym+0x1a [0x7f...]     Binary file "/p/lib.so" [0x7f...]
        Binary file "/p/lib.so", at +0x1a [0x7f...]        Binary file '<unknown>' [0x7f...]

    Split with rfind rather than one regex: paths and symbols are arbitrary text, and nested
    greedy groups backtrack quadratically on a hostile line."""
    if not line.startswith(_BINARY_PREFIX) or not line.endswith("]"):
        return None
    bracket = line.rfind(" [")
    if bracket == -1 or not _HEX.fullmatch(line, bracket + 2, len(line) - 1):
        return None
    address = int(line[bracket + 2 : -1], 16)
    what = line[len(_BINARY_PREFIX) : bracket]
    if what == "'<unknown>'":
        return None, None, "+", None, address
    if not what.startswith('"'):
        return None
    at = what.rfind('", at ')
    if at == -1:
        return (what[1:-1], None, "+", None, address) if what.endswith('"') else None
    path, location = what[1:at], what[at + 6 :]
    cut = max(location.rfind("+0x"), location.rfind("-0x"))
    if cut == -1 or not _HEX.fullmatch(location, cut + 1):
        return None
    symbol = location[:cut] or None
    return path, symbol, location[cut], int(location[cut + 3 :], 16), address


def read_faulthandler(
    lines: Iterable[str], *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse a faulthandler dump given line by line (see `parse_faulthandler`)."""
    dump = _Dump(frame_cap)
    feed = dump.feed
    for line in lines:
        feed(line)
    return classify_report(dump.finish(source_path))


def parse_faulthandler(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse a faulthandler dump. Raises CrashParseError when there is none in `text`."""
    return read_faulthandler(text.splitlines(), source_path=source_path, frame_cap=frame_cap)
