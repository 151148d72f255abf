"""lldb backtraces: `bt`, `bt all`, `thread backtrace all`, and the stop report before them.

    Process 8879 stopped
    * thread #2, name = 'mlx_worker-0', stop reason = signal SIGSEGV: invalid address (...)
        frame #0: 0x00007ffff62128a5 libmlx.so`mlx::core::eval_impl(...) + 3973
    (lldb) bt all
      thread #1, name = 'python'
        frame #0: 0x00007ffff789af16 libc.so.6`__futex_abstimed_wait_common at futex.c:57:12
    * thread #2, name = 'mlx_worker-0', stop reason = signal SIGSEGV: invalid address (...)
      * frame #0: 0x00007ffff62128a5 libmlx.so`mlx::core::eval_impl(...) + 3973

A frame is `ADDRESS IMAGE`SYMBOL`, then ` + OFFSET` (no debug info) or `(ARGS) at FILE:LINE:COL`
(debug info, the arguments with their values), with `outer [inlined] inner` for inlined code.
The crashed thread is the one whose stop reason is a crash (a signal other than a stop request,
or a Mach exception such as EXC_BAD_ACCESS). The stop report shows only frame #0; a later
listing of the same thread replaces it, and a thread seen only there makes the report partial.
Older lldb writes `* thread #1: tid = 0x0000, 0x... image`sym, stop reason = ...` headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gpumon.crash import _threads
from gpumon.crash._causes import is_cause
from gpumon.crash._values import basename, parse_hex
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import CrashParseError, CrashReport, Frame, Thread

_THREAD = re.compile(r"^[ \t]*(\*)?[ \t]*thread #(\d+)(.*)$")
_FRAME = re.compile(r"^[ \t]*\*?[ \t]*frame #(\d+): (0x[0-9a-fA-F]+)(?: (.*))?$")
_ATTR = re.compile(r"\b(name|queue) = '((?:[^'\\]|\\.)*)'")
_TID = re.compile(r"\btid = (0x[0-9a-fA-F]+|\d+)")
_STOPPED = re.compile(r"^Process (\d+) stopped")
_EXECUTABLE = re.compile(r"^(?:Current executable set to|Process \d+ launched:) '([^']+)'")
_SIGNAL = re.compile(r"^signal (SIG[A-Z0-9]+)(?::\s*(.*))?$")
_EXCEPTION = re.compile(r"^(EXC_[A-Z_]+)(?:\s*\((.*)\))?")
_LOCATION = re.compile(r" at ([^ ]+?):(\d+)(?::\d+)?$")
_OFFSET = re.compile(r" \+ (\d+)$")
# Stop reasons that are not a crash: a debugger's stop request, a step, a breakpoint.
_NOT_CRASH = ("SIGSTOP", "SIGINT", "SIGTSTP")
_SNIFF = re.compile(r"^[ \t]*\*?[ \t]*(?:thread #\d+\b|frame #\d+: 0x[0-9a-fA-F]+ \S)", re.M)
_MAX_ARGS_SCAN = 64 * 1024


def looks_like_lldb(text: str) -> bool:
    return _SNIFF.search(text) is not None


def _strip_args(text: str) -> str:
    """`f(x=1, y=<unavailable>)` -> `f`; a C++ signature without values is kept."""
    if not text.endswith(")"):
        return text
    depth = 0
    stop = max(-1, len(text) - 1 - _MAX_ARGS_SCAN)
    for i in range(len(text) - 1, stop, -1):
        ch = text[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                return text[:i] if "=" in text[i:] else text
    return text


def parse_frame_line(line: str) -> Frame | None:
    """One `frame #N: 0xADDR image`symbol ...` line -> Frame, or None."""
    m = _FRAME.match(line)
    if m is None:
        return None
    rest = (m.group(3) or "").strip()
    image, tick, what = rest.partition("`")
    file = lineno = offset = None
    if tick:
        loc = _LOCATION.search(what)
        if loc is not None:
            file, lineno = loc.group(1), int(loc.group(2))
            what = what[: loc.start()]
        off = _OFFSET.search(what)
        if off is not None:
            offset = int(off.group(1))
            what = what[: off.start()]
        inlined = what.rfind(" [inlined] ")
        if inlined != -1:
            what = what[inlined + len(" [inlined] ") :]
        what = _strip_args(what.strip())
    return Frame(
        index=int(m.group(1)),
        image=image.strip() or None,
        symbol=what.strip() or None if tick else None,
        offset=offset,
        address=parse_hex(m.group(2)),
        file=file,
        line=lineno,
    )


class _Reader:
    def __init__(self, frame_cap: int | None) -> None:
        self.cap = frame_cap
        self.threads: dict[int, Thread] = {}
        self.unlabelled: list[Thread] = []
        self.numbers = _threads.Unlabelled()
        self.current: Thread | None = None
        self.stop_reasons: dict[int, str] = {}
        self.starred: set[int] = set()
        # Threads listed by a stop report ("Process N stopped", or headers before the first
        # `bt` command), which shows frame #0 only; a later listing takes them out again.
        self.from_stop: set[int] = set()
        self.before_bt: set[int] = set()
        self.after_stop = False
        self.pid: int | None = None
        self.process: str | None = None
        self.causes: list[str] = []
        self.restarted = 0

    def feed(self, line: str) -> None:
        if "frame #" in line:
            frame = self._frame_number(line)
            if frame is not None:
                self._add(line, frame)
                return
        m = _THREAD.match(line)
        if m is not None:
            self._thread(m)
            return
        stripped = line.strip()
        if m := _STOPPED.match(stripped):
            self.pid = int(m.group(1))
            self.after_stop = True
            return
        if m := _EXECUTABLE.match(stripped):
            self.process = basename(m.group(1))
            return
        if stripped.startswith("(lldb)"):
            self.after_stop = False
            command = stripped[len("(lldb)") :].strip()
            if command.startswith(("bt", "thread backtrace")):
                self.from_stop |= self.before_bt
                self.before_bt = set()
            return
        if is_cause(stripped) and len(self.causes) < 8:
            self.causes.append(stripped)

    @staticmethod
    def _frame_number(line: str) -> int | None:
        m = _FRAME.match(line)
        return int(m.group(1)) if m else None

    def _add(self, line: str, number: int) -> None:
        thread = self.current
        if thread is None:
            thread = self._new_unlabelled(_threads.NO_HEADER)
        elif _threads.restarts(thread, number):
            self.restarted += 1
            thread = self._new_unlabelled(_threads.RESTARTED)
        if _threads.full(thread, self.cap):
            thread.frames_omitted += 1
            return
        frame = parse_frame_line(line)
        if frame is not None:
            _threads.add_frame(thread, frame, self.cap)

    def _new_unlabelled(self, note: str) -> Thread:
        thread = self.numbers.new(note)
        self.unlabelled.append(thread)
        self.current = thread
        return thread

    def _thread(self, m: re.Match[str]) -> None:
        number = int(m.group(2))
        rest = m.group(3)
        attrs = dict(_ATTR.findall(rest))
        tid = _TID.search(rest)
        thread = Thread(index=number, name=attrs.get("name"), queue=attrs.get("queue"))
        if tid is not None:
            thread.id = (
                int(tid.group(1), 16) if tid.group(1).startswith("0x") else int(tid.group(1))
            )
        at = rest.find("stop reason = ")
        if at != -1:
            self.stop_reasons[number] = rest[at + len("stop reason = ") :].strip()
        if m.group(1):
            self.starred.add(number)
        old = self.threads.get(number)
        if old is not None:
            # A later listing of the same thread (the stop report showed only frame #0)
            thread.name, thread.queue = thread.name or old.name, thread.queue or old.queue
            thread.id = thread.id if thread.id is not None else old.id
        if self.after_stop:
            self.from_stop.add(number)
        else:
            self.from_stop.discard(number)
            self.before_bt.add(number)
        self.threads[number] = thread
        self.current = thread

    def finish(self, source_path: str | None) -> CrashReport:
        report = CrashReport(format="lldb", source_path=source_path)
        report.pid, report.process_name = self.pid, self.process
        if not self.threads and not self.unlabelled:
            raise CrashParseError("no lldb thread backtraces found")
        report.threads = [self.threads[n] for n in sorted(self.threads)] + self.unlabelled
        if self.causes:
            report.application_specific_information = "\n".join(self.causes)
        crashed = self._crashed()
        if crashed is not None:
            thread, reason = crashed
            thread.crashed = True
            report.crashed_thread_index = thread.index
            report.crashed_thread_name = thread.name
            report.crashed_thread_queue = thread.queue
            _apply_stop_reason(report, reason)
            if thread.index in self.from_stop:
                report.warnings.append(
                    f"only the stop location of thread #{thread.index} is given: its "
                    "backtrace (`bt`) is not there"
                )
        else:
            report.warnings.append("no thread stopped on a crash: the crashed thread is unknown")
        if self.restarted:
            report.warnings.append(
                "frame numbering restarted without a thread header: those frames are kept "
                "as separate, unlabelled threads"
            )
        empty = [t.index for t in report.threads if not t.frames and not t.frames_omitted]
        if empty:
            shown = ", ".join(f"#{n}" for n in empty[:8])
            report.warnings.append(f"threads without frames: {shown} (cut short?)")
        return classify_report(report)

    def _crashed(self) -> tuple[Thread, str] | None:
        crashes = [
            (n, reason)
            for n, reason in self.stop_reasons.items()
            if _is_crash(reason) and n in self.threads
        ]
        if not crashes:
            return None
        starred = [c for c in crashes if c[0] in self.starred]
        number, reason = (starred or crashes)[0]
        return self.threads[number], reason


def _is_crash(reason: str) -> bool:
    m = _SIGNAL.match(reason)
    if m is not None:
        return m.group(1) not in _NOT_CRASH
    return _EXCEPTION.match(reason) is not None


def _apply_stop_reason(report: CrashReport, reason: str) -> None:
    m = _SIGNAL.match(reason)
    if m is not None:
        report.signal = m.group(1)
        report.exception_subtype = (m.group(2) or "").strip() or None
        return
    e = _EXCEPTION.match(reason)
    if e is not None:
        report.exception_type = e.group(1)
        report.exception_subtype = (e.group(2) or "").strip() or None


def read_lldb(
    lines: Iterable[str], *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse lldb output given line by line (see `parse_lldb`)."""
    reader = _Reader(frame_cap)
    for line in lines:
        reader.feed(line)
    return reader.finish(source_path)


def parse_lldb(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse lldb `bt` / `bt all` / `thread backtrace all` output. Raises CrashParseError
    when there is no thread or frame in it."""
    return read_lldb(text.splitlines(), source_path=source_path, frame_cap=frame_cap)
