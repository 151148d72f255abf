"""gdb backtraces: gpumon's debugger capture, `thread apply all bt`, or a pasted `bt` session.

gpumon's gdb driver (gpumon/supervisor/gdb_driver.py) writes a small header, a blank line,
then gdb's own `thread apply all -ascending bt` text:

    gpumon-native-stacks 1
    kind: fatal                      (or "snapshot" for a stalled worker)
    pid: 2241
    signal: SIGSEGV (11)
    lwp: 2245                        (the thread the signal was delivered to)
    si_addr: 0x0                     (optional)
    captured_in: 0.187s

    Thread 3 (Thread 0x7ffff69446c0 (LWP 2245) "fault_worker-1"):
    #0  __strlen_evex () at ../sysdeps/x86_64/multiarch/strlen-evex.S:79
    #1  0x00007ffff715a608 in string_at (size=-1, ptr=0x0) at .../_ctypes.c:5564

The crashed thread is the one whose LWP equals the header's. Without the header (a session
someone pasted, a core file) gdb's own statements are used, in this order: `[Current thread is
N ...]` (core files), `Thread N "name" received signal SIGSEGV, Segmentation fault.` with the
`[Switching to Thread 0x... (LWP n)]` after it, and `Program received signal SIGABRT, Aborted.`
followed by a single `bt` (that backtrace is the signalled thread's); failing those a thread
showing `<signal handler called>`; otherwise the report says the crashed thread is unknown.
What the program printed as it died (`terminate called after throwing ...`, a failed assertion)
is kept as application-specific information. Threads keep gdb's numbers, so "thread 5" means
what it means in the file; frames whose numbering restarts without a thread header become an
unlabelled thread of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gpumon.crash import _threads
from gpumon.crash._causes import is_cause
from gpumon.crash._values import basename, parse_hex
from gpumon.crash.gdb_frames import FRAME_NUMBER, SIGNAL_HANDLER, parse_frame_line
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import BinaryImage, CrashParseError, CrashReport, Thread

MAGIC = "gpumon-native-stacks"
# The trailing colon is optional: pastes and some gdb front-ends drop it.
_THREAD = re.compile(r"^Thread (\d+)(?:\.\d+)? \((.*)\):?\s*$")
_RECEIVED = re.compile(r'^Thread (\d+)(?:\.\d+)?(?: "(.*)")? received signal (SIG[A-Z0-9]+)')
_PROGRAM_SIGNAL = re.compile(r"^Program (?:terminated with|received) signal (SIG[A-Z0-9]+)")
_CURRENT = re.compile(r"^\[Current thread is (\d+)\b")
_SWITCHING = re.compile(r"^\[Switching to (?:Thread 0x[0-9a-fA-F]+ \()?LWP (\d+)")
_STARTING = re.compile(r"^Starting program: (\S+)")
_INFERIOR_PID = re.compile(r"^\[Inferior \d+ \(process (\d+)\)")
_LWP = re.compile(r"\bLWP (\d+)\b")
_PTHREAD = re.compile(r"^Thread (0x[0-9a-fA-F]+)")
_PROCESS = re.compile(r"\bprocess (\d+)\b")
_SIG_HEADER = re.compile(r"^(SIG[A-Z0-9]+|\w+)(?:\s*\((\d+)\))?$")
_ADDRESS_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE"}  # si_addr is the fault address
_MAX_CAUSES = 8
__all__ = ["MAGIC", "SIGNAL_HANDLER", "looks_like_gdb", "parse_frame_line", "parse_gdb"]

# A thread header followed by a frame, a lone `bt` starting with frame #0, or gdb's own
# statement of a signal followed (somewhere) by frame lines.
_SNIFF = re.compile(
    r"^[ \t]*Thread \d+(?:\.\d+)? \(.*\):?[ \t]*\n[ \t]*#\d"
    r"|^[ \t]*#0 +(?:0x[0-9a-fA-F]+ in )?\S"
    r"|^[ \t]*(?:Thread \d+ .*received signal|Program (?:received|terminated with) signal) SIG",
    re.M,
)


def looks_like_gdb(text: str) -> bool:
    return text.lstrip().startswith(MAGIC) or _SNIFF.search(text) is not None


class _Reader:
    """Parser state for one gdb text; lines are fed one at a time (huge captures stream)."""

    def __init__(self, frame_cap: int | None) -> None:
        self.cap = frame_cap
        self.header: dict[str, str] = {}
        self.in_header = False
        self.started = False
        self.threads: list[Thread] = []
        self.images: dict[str, BinaryImage] = {}
        self.current: Thread | None = None
        self.stray: Thread | None = None  # a `bt` (or the current-frame print) before headers
        self.pending: str | None = None  # the frame line being read (gdb may wrap long ones)
        self.pending_indent = 0
        self.counting: Thread | None = None  # a thread whose frames are only counted
        self.counted_last = 0
        self.unlabelled = _threads.Unlabelled()
        self.signal_line: str | None = None
        self.current_number: int | None = None
        self.received: tuple[int, str | None] | None = None  # "Thread N "name" received ..."
        self.switched_lwp: int | None = None
        self.causes: list[str] = []
        self.warnings: list[str] = []
        self.unreadable = 0
        self.restarted = 0
        self.process: str | None = None
        self.pid: int | None = None

    def feed(self, line: str) -> None:
        if self.counting is not None:
            # The hot path of a huge capture: the thread holds its cap, frames are only counted
            # (a number that does not go up is a new thread and takes the normal path).
            end = line.find(" ", 1)
            digits = line[1:end] if line[:1] == "#" and end != -1 else ""
            if digits.isdigit() and int(digits) > self.counted_last:
                self.counted_last = int(digits)
                self.counting.frames_omitted += 1
                return
            self.counting = None
        if not self.started:
            if not line.strip():
                return
            self.started = True
            if line.strip().startswith(MAGIC):
                self.in_header = True
                self.header["version"] = line.strip()[len(MAGIC) :].strip()
                return
        if self.in_header:
            if not line.strip():
                self.in_header = False
                return
            key, sep, value = line.partition(":")
            if sep:
                self.header[key.strip()] = value.strip()
            return
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.startswith("#") and stripped[1:2].isdigit():  # not a "### heading"
            self.flush()
            if self.counting is not None:
                self.feed(line)  # the thread reached its cap with the previous frame
                return
            self.pending, self.pending_indent = stripped, indent
            return
        # A long frame line wrapped by gdb (indented deeper) or by a paste ("at f.c:44")
        wrapped = indent > self.pending_indent or stripped.startswith(("at ", "from "))
        if self.pending is not None and stripped and wrapped:
            self.pending += " " + stripped.rstrip()
            return
        self.flush()
        self._other(stripped)

    def _other(self, line: str) -> None:
        m = _THREAD.match(line)
        if m:
            self.current = _thread(int(m.group(1)), m.group(2))
            self.threads.append(self.current)
            return
        stripped = line.strip()
        if stripped.startswith("Backtrace stopped:") and self.current is not None:
            self.current.note = stripped
        elif stripped.startswith("(backtrace failed"):
            self.warnings.append(f"gdb could not take the backtraces: {stripped.strip('()')}")
        elif m := _RECEIVED.match(stripped):
            self.received = (int(m.group(1)), m.group(2))
            self.signal_line = m.group(3)
        elif m := _PROGRAM_SIGNAL.match(stripped):
            self.signal_line = m.group(1)
        elif m := _CURRENT.match(stripped):
            self.current_number = int(m.group(1))
        elif m := _SWITCHING.match(stripped):
            if self.switched_lwp is None:
                self.switched_lwp = int(m.group(1))
        elif m := _STARTING.match(stripped):
            self.process = basename(m.group(1))
        elif m := _INFERIOR_PID.match(stripped):
            self.pid = int(m.group(1))
        elif is_cause(stripped) and len(self.causes) < _MAX_CAUSES:
            self.causes.append(stripped)

    def flush(self) -> None:
        if self.pending is None:
            return
        line, self.pending = self.pending, None
        target = self.current
        if target is None:
            if self.stray is None:
                self.stray = Thread(index=1)
            target = self.stray
        number = FRAME_NUMBER.match(line)
        if number is not None and _threads.restarts(target, int(number.group(1))):
            target = self._restart()
        if number is not None and _threads.full(target, self.cap):
            target.frames_omitted += 1
            self.counting, self.counted_last = target, int(number.group(1))
            return
        parsed = parse_frame_line(line)
        if parsed is None:
            self.unreadable += 1
            return
        frame, path = parsed
        if path and frame.image and frame.image not in self.images:
            self.images[frame.image] = BinaryImage(name=frame.image, path=path)
        _threads.add_frame(target, frame, self.cap)

    def _restart(self) -> Thread:
        """Frame numbering went back without a thread header: a new, unlabelled thread."""
        self.restarted += 1
        thread = self.unlabelled.new(_threads.RESTARTED)
        if self.current is None and self.stray is not None:
            # Before any header: a second `bt` (or the current-frame print, then `bt`).
            self.stray = thread
        else:
            self.threads.append(thread)
            self.current = thread
        return thread

    def finish(self, source_path: str | None) -> CrashReport:
        self.flush()
        report = CrashReport(format="gdb", source_path=source_path, process_name=self.process)
        report.pid = self.pid
        report.warnings.extend(self.warnings)
        headers = [t for t in self.threads if t.index >= 0]
        if self.stray is not None and self.stray.frames and not headers:
            # A single `bt` without thread headers: the thread gdb had selected.
            self.threads.insert(0, self.stray)
        threads = self.threads
        if not threads and not self.header:
            raise CrashParseError("no gdb thread backtraces found")
        threads.sort(key=lambda t: (t.index < 0, t.index if t.index >= 0 else -t.index))
        report.threads = threads
        report.images = list(self.images.values())
        if self.causes:
            report.application_specific_information = "\n".join(self.causes)
        _apply_header(report, self.header, self.signal_line, self.current_number)
        if not threads:
            # The capture header alone still says which signal killed which process.
            report.warnings.append("the capture has no thread backtraces")
            return report
        if not self.header and report.crashed_thread is None:
            self._crashed_from_session(report)
        if self.unreadable:
            n = self.unreadable
            report.warnings.append(
                f"{n} frame line{'s' if n != 1 else ''} could not be read (cut short?)"
            )
        if self.restarted:
            report.warnings.append(
                "frame numbering restarted without a thread header: those frames are kept "
                "as separate, unlabelled threads"
            )
        _check(report)
        return classify_report(report)

    def _crashed_from_session(self, report: CrashReport) -> None:
        """gdb's own statements of which thread got the signal (no capture header)."""
        threads = report.threads
        lone = threads[0] if len(threads) == 1 and self.stray is threads[0] else None
        crashed: Thread | None = None
        if self.current_number is not None:
            crashed = next((t for t in threads if t.index == self.current_number), None)
        if crashed is None and self.received is not None:
            number, name = self.received
            if lone is not None:
                lone.index, lone.name = number, lone.name or name
                lone.id = lone.id if lone.id is not None else self.switched_lwp
            crashed = next((t for t in threads if t.index == number), None)
            if crashed is None:
                report.crashed_thread_index = number
                report.crashed_thread_name = name
                report.warnings.append(
                    f"thread {number} got the signal, but its backtrace is not here"
                )
                return
        if crashed is None and self.switched_lwp is not None:
            crashed = next((t for t in threads if t.id == self.switched_lwp), None)
        if crashed is None and lone is not None and self.signal_line is not None:
            crashed = lone  # "Program received signal ..." then `bt`: the signalled thread
        if crashed is not None:
            crashed.crashed = True
            report.crashed_thread_index = crashed.index
            report.crashed_thread_name = crashed.name
            return
        _infer_crashed(report)


def _thread(number: int, inner: str) -> Thread:
    """`Thread 0x7f... (LWP 2245) "fault_worker-1"` (or `LWP 12`, `process 12`) -> Thread."""
    name = None
    tail = inner.rstrip()
    if tail.endswith('"'):
        opening = tail.rfind('"', 0, len(tail) - 1)
        if opening != -1:
            name = tail[opening + 1 : -1]
    lwp = _LWP.search(inner) or _PROCESS.search(inner)
    pt = _PTHREAD.match(inner)
    handle = parse_hex(pt.group(1)) if pt is not None else None
    if lwp is None and handle is not None:
        ident: int | None = handle
    else:
        ident = int(lwp.group(1)) if lwp else None
    return Thread(index=number, id=ident, name=name or None, pthread=handle)


def _apply_header(
    report: CrashReport, header: dict[str, str], signal_line: str | None, current: int | None
) -> None:
    pid = header.get("pid")
    if pid and pid.isdigit():
        report.pid = int(pid)
    if header.get("process"):
        report.process_name = header["process"]
    elif report.pid is not None and header:
        # Older captures have no process line: the main thread's name is the best guess.
        main = next((t for t in report.threads if t.id == report.pid), None)
        report.process_name = main.name if main is not None else None
    kind = header.get("kind")
    sig = _SIG_HEADER.match(header.get("signal", ""))
    signal = sig.group(1) if sig else signal_line
    if kind == "snapshot":
        report.message = "stall snapshot of every thread"
        return
    report.signal = signal
    addr = header.get("si_addr")
    if addr and signal in _ADDRESS_SIGNALS:
        report.exception_subtype = f"fault address {addr}"
    lwp = header.get("lwp")
    if header and lwp and lwp.isdigit():
        crashed = next((t for t in report.threads if t.id == int(lwp)), None)
        if crashed is None:
            report.warnings.append(f"the crashed thread (LWP {lwp}) is not among the backtraces")
        else:
            crashed.crashed = True
            report.crashed_thread_index = crashed.index
    elif header:
        report.warnings.append("the capture header does not name the crashed thread's LWP")
    elif current is not None:
        crashed = next((t for t in report.threads if t.index == current), None)
        if crashed is not None:
            crashed.crashed = True
            report.crashed_thread_index = crashed.index


def _infer_crashed(report: CrashReport) -> None:
    handlers = [t for t in report.threads if any(f.symbol == SIGNAL_HANDLER for f in t.frames)]
    if len(handlers) == 1:
        handlers[0].crashed = True
        report.crashed_thread_index = handlers[0].index
        report.warnings.append(
            "no capture header: the crashed thread was inferred from its "
            "<signal handler called> frame"
        )
    else:
        report.warnings.append("no capture header: the crashed thread is unknown")


def _check(report: CrashReport) -> None:
    empty = [
        t.index for t in report.threads if not t.frames and not t.frames_omitted and not t.note
    ]
    if empty:
        shown = ", ".join(str(n) for n in empty[:8])
        report.warnings.append(f"threads without frames: {shown} (capture truncated?)")


def read_gdb(
    lines: Iterable[str], *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse gdb output given line by line (see `parse_gdb`)."""
    reader = _Reader(frame_cap)
    feed = reader.feed
    for line in lines:
        feed(line)
    return reader.finish(source_path)


def parse_gdb(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse gdb backtraces of all threads. Raises CrashParseError when there are none."""
    return read_gdb(text.splitlines(), source_path=source_path, frame_cap=frame_cap)


def pthread_names(text: str) -> dict[int, str]:
    """{pthread id: OS thread name} from gdb thread headers
    (`Thread 2 (Thread 0x7ffff67ff6c0 (LWP 11098) "fault_worker-0"):`). faulthandler names
    threads by the same pthread id, so this puts names on Python stacks before 3.14."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        m = _THREAD.match(line.strip())
        if m is None:
            continue
        inner = m.group(2)
        pt = _PTHREAD.match(inner)
        if pt is None or not inner.endswith('"') or inner.count('"') < 2:
            continue
        ident = parse_hex(pt.group(1))
        name = inner[inner.index('"') + 1 : -1]
        if ident is not None and name:
            names[ident] = name
    return names


def name_threads(report: CrashReport, names: dict[int, str]) -> CrashReport:
    """Give unnamed threads of `report` (a faulthandler dump) the names gdb saw."""
    for t in report.threads:
        if t.name is None and t.id is not None and t.id in names:
            t.name = names[t.id]
    return report
