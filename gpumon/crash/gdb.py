"""gdb backtraces of every thread: gpumon's debugger capture, or plain `thread apply all bt`.

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
    #5  0x00007ffff714cb0d in ffi_call () from /lib/x86_64-linux-gnu/libffi.so.8

The crashed thread is the one whose LWP equals the header's. Without the header (a backtrace
someone pasted, or read from a core file) gdb's own "Program terminated with signal" and
"[Current thread is N ...]" lines are used where present, else a thread showing
`<signal handler called>`; failing that the report says the crashed thread is unknown.
Threads keep gdb's numbers as their index, so "thread 5" means what it means in the file.
"""

from __future__ import annotations

import re

from gpumon.crash._values import basename, parse_hex
from gpumon.crash.classify import classify_report
from gpumon.crash.model import BinaryImage, CrashParseError, CrashReport, Frame, Thread

MAGIC = "gpumon-native-stacks"
_THREAD = re.compile(r"^Thread (\d+)(?:\.\d+)? \((.*)\):\s*$")
_FRAME = re.compile(r"^#(\d+)[ \t]+(?:(0x[0-9a-fA-F]+) in )?(.*)$")
_LINE_NUMBER = re.compile(r":(\d+)$")
_LWP = re.compile(r"\bLWP (\d+)\b")
_PTHREAD = re.compile(r"^Thread (0x[0-9a-fA-F]+)")
_PROCESS = re.compile(r"\bprocess (\d+)\b")
_TERMINATED = re.compile(r"^Program (?:terminated with|received) signal (SIG[A-Z0-9]+)")
_CURRENT = re.compile(r"^\[Current thread is (\d+)\b")
_SIG_HEADER = re.compile(r"^(SIG[A-Z0-9]+|\w+)(?:\s*\((\d+)\))?$")
_ADDRESS_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE"}  # si_addr is the fault address
SIGNAL_HANDLER = "<signal handler called>"
_MAX_ARGS_SCAN = 64 * 1024


# A thread header followed by a frame, or a lone `bt` starting with frame #0.
_SNIFF = re.compile(
    r"^Thread \d+(?:\.\d+)? \(.*\):[ \t]*\n#\d|^#0 +(?:0x[0-9a-fA-F]+ in )?\S", re.M
)


def looks_like_gdb(text: str) -> bool:
    return text.lstrip().startswith(MAGIC) or _SNIFF.search(text) is not None


def _split_args(text: str) -> tuple[str | None, str]:
    """`foo::bar(int) (x=1, y=<optimized out>)` -> ("foo::bar(int)", "(x=1, ...)").

    gdb prints the argument list last, so it is the final balanced parenthesis group; what is
    before it (which may itself contain parentheses: C++ signatures) is the symbol."""
    text = text.strip()
    if not text.endswith(")"):
        return (text or None), ""
    depth = 0
    # Argument lists are short; a scan that goes on this long is not one (hostile input).
    stop = max(-1, len(text) - 1 - _MAX_ARGS_SCAN)
    for i in range(len(text) - 1, stop, -1):
        ch = text[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                symbol = text[:i].strip()
                return (symbol or None), text[i:]
    return (text or None), ""


def parse_frame_line(line: str) -> tuple[Frame, str | None] | None:
    """One `#N ...` line -> (Frame, image path or None); None when it is not a frame."""
    m = _FRAME.match(line)
    if not m:
        return None
    index, address, rest = m.groups()
    rest = rest.strip()
    path = file = None
    lineno = None
    # gdb ends a frame with " at FILE:LINE" (debug info) or " from LIB" (none); the last
    # occurrence is the real one (arguments can contain either word). Found with rfind:
    # a regex searched over a hostile line would backtrack quadratically.
    num = _LINE_NUMBER.search(rest)
    at = rest.rfind(" at ", 0, num.start()) if num else -1
    if num and at != -1 and rest[at + 4 : num.start()].strip():
        file, lineno = rest[at + 4 : num.start()].strip(), int(num.group(1))
        rest = rest[:at]
    else:
        frm = rest.rfind(" from ")
        if frm != -1 and rest[frm + 6 :].strip():
            path = rest[frm + 6 :].strip()
            rest = rest[:frm]
    if rest.strip() == SIGNAL_HANDLER:
        symbol: str | None = SIGNAL_HANDLER
    else:
        symbol, _args = _split_args(rest)
        if symbol == "??":
            symbol = None
    frame = Frame(
        index=int(index),
        image=basename(path) if path else None,
        symbol=symbol,
        address=parse_hex(address),
        file=file,
        line=lineno,
    )
    return frame, path


def _parse_header(lines: list[str]) -> tuple[dict[str, str], int]:
    """gpumon's `key: value` header; returns (fields, index of the first body line)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or not lines[i].strip().startswith(MAGIC):
        return fields, 0
    fields["version"] = lines[i].strip()[len(MAGIC) :].strip()
    i += 1
    while i < len(lines) and lines[i].strip():
        key, sep, value = lines[i].partition(":")
        if sep:
            fields[key.strip()] = value.strip()
        i += 1
    return fields, i


def parse_gdb(text: str, *, source_path: str | None = None) -> CrashReport:
    """Parse gdb backtraces of all threads. Raises CrashParseError when there are none."""
    lines = text.splitlines()
    header, body_start = _parse_header(lines)
    report = CrashReport(format="gdb", source_path=source_path)
    threads: list[Thread] = []
    images: dict[str, BinaryImage] = {}
    current: Thread | None = None
    pending: str | None = None  # the frame line being read (gdb may wrap long ones)
    signal_line: str | None = None
    current_number: int | None = None
    stray_frames: list[Frame] = []

    def flush() -> None:
        nonlocal pending
        if pending is None:
            return
        parsed = parse_frame_line(pending)
        pending = None
        if parsed is None:
            return
        frame, path = parsed
        if path and frame.image and frame.image not in images:
            images[frame.image] = BinaryImage(name=frame.image, path=path)
        (current.frames if current is not None else stray_frames).append(frame)

    for line in lines[body_start:]:
        if line.startswith("#"):
            flush()
            pending = line
            continue
        if pending is not None and line[:1] in (" ", "\t") and line.strip():
            pending += " " + line.strip()  # a wrapped continuation of the frame line
            continue
        flush()
        m = _THREAD.match(line)
        if m:
            current = _thread(int(m.group(1)), m.group(2))
            threads.append(current)
            continue
        stripped = line.strip()
        if stripped.startswith("Backtrace stopped:") and current is not None:
            current.note = stripped
        elif stripped.startswith("(backtrace failed"):
            report.warnings.append(f"gdb could not take the backtraces: {stripped.strip('()')}")
        elif m := _TERMINATED.match(stripped):
            signal_line = m.group(1)
        elif m := _CURRENT.match(stripped):
            current_number = int(m.group(1))
    flush()
    if stray_frames and not threads:
        # A single `bt` without thread headers: one anonymous thread.
        threads.append(Thread(index=1, frames=stray_frames))
    if not threads and not header:
        raise CrashParseError("no gdb thread backtraces found")
    threads.sort(key=lambda t: t.index)
    report.threads = threads
    report.images = list(images.values())
    _apply_header(report, header, signal_line, current_number)
    if not threads:
        # The capture header alone still says which signal killed which process.
        report.warnings.append("the capture has no thread backtraces")
        return report
    if not header and current_number is None:
        _infer_crashed(report)
    _check(report)
    return classify_report(report)


def _thread(number: int, inner: str) -> Thread:
    """`Thread 0x7f... (LWP 2245) "fault_worker-1"` (or `LWP 12`, `process 12`) -> Thread."""
    name = None
    tail = inner.rstrip()
    if tail.endswith('"'):
        opening = tail.rfind('"', 0, len(tail) - 1)
        if opening != -1:
            name = tail[opening + 1 : -1]
    lwp = _LWP.search(inner) or _PROCESS.search(inner)
    if lwp is None and (pt := _PTHREAD.match(inner)) is not None:
        ident: int | None = parse_hex(pt.group(1))
    else:
        ident = int(lwp.group(1)) if lwp else None
    return Thread(index=number, id=ident, name=name or None)


def _apply_header(
    report: CrashReport, header: dict[str, str], signal_line: str | None, current: int | None
) -> None:
    pid = header.get("pid")
    report.pid = int(pid) if pid and pid.isdigit() else None
    if header.get("process"):
        report.process_name = header["process"]
    elif report.pid is not None:
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
    empty = [t.index for t in report.threads if not t.frames and t.note is None]
    if empty:
        shown = ", ".join(str(n) for n in empty[:8])
        report.warnings.append(f"threads without frames: {shown} (capture truncated?)")


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
