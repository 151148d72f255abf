"""PyTorch's own native backtraces (c10): the stack of a `c10::Error` and the dump of torch's
fatal-signal handler, as they appear in nearly every pasted torch crash.

    Exception raised from ncclCommWatchdog at .../ProcessGroupNCCL.cpp:1418 (most recent ...):
    frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x57 (0x7fef... in /v/libc10.so)
    frame #1: <unknown function> + 0xe32e33 (0x7fef5aed7e33 in /v/torch/lib/libtorch_cuda.so)

    SIGABRT(6), PID: 2570285, Thread 2570285:
     frame #0: c10::FatalSignalHandler::stacktraceSignalHandler(bool) + 0x8b (0x7fd198b7651b in ...)

A `c10::Error` backtrace is where an exception was raised, not a crashed thread: the report
says so (a partial result: the crash itself, usually `terminate called after throwing an
instance of 'c10::Error'`, is elsewhere). The signal handler's dump names the signal and one
section per thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gpumon.crash import _threads
from gpumon.crash._causes import is_cause
from gpumon.crash._values import basename
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import BinaryImage, CrashParseError, CrashReport, Frame, Thread

_FRAME = re.compile(
    r"^[ \t]*frame #(\d+): (.*?)(?: \+ (0x[0-9a-fA-F]+))? \((0x[0-9a-fA-F]+) in ([^()]+)\)[ \t]*$"
)
_RAISED = re.compile(r"Exception raised from (.+?) \(most recent call first\):")
_SIGNAL = re.compile(r"^[ \t]*(SIG[A-Z0-9]+)\((\d+)\), PID: (\d+), Thread (\d+):")
_SNIFF = re.compile(r"^[ \t]*frame #\d+: (?!0x).*\(0x[0-9a-fA-F]+ in [^()]+\)[ \t]*$", re.M)
_SNIFF_HEAD = 256 * 1024
_MAX_LINE = 100_000


def looks_like_c10(text: str) -> bool:
    return _SNIFF.search(text, 0, _SNIFF_HEAD) is not None


def parse_frame_line(line: str) -> tuple[Frame, str] | None:
    """`frame #1: sym + 0x1a (0x7f... in /path/lib.so)` -> (Frame, image path), or None."""
    if len(line) > _MAX_LINE:
        return None
    m = _FRAME.match(line)
    if m is None:
        return None
    symbol = m.group(2).strip()
    path = m.group(5).strip()
    return (
        Frame(
            index=int(m.group(1)),
            symbol=None if symbol in ("", "<unknown function>") else symbol,
            offset=int(m.group(3), 16) if m.group(3) else None,
            address=int(m.group(4), 16),
            image=basename(path),
        ),
        path,
    )


class _Reader:
    def __init__(self, frame_cap: int | None) -> None:
        self.cap = frame_cap
        self.report = CrashReport(format="c10")
        self.threads: list[Thread] = []
        self.current: Thread | None = None
        self.unlabelled = _threads.Unlabelled()
        self.images: dict[str, BinaryImage] = {}
        self.raised: str | None = None
        self.causes: list[str] = []

    def feed(self, line: str) -> None:
        if "frame #" in line:
            parsed = parse_frame_line(line)
            if parsed is not None:
                self._add(*parsed)
                return
        if m := _SIGNAL.match(line):
            self.report.signal = m.group(1)
            self.report.pid = int(m.group(3))
            self.current = Thread(index=len(self.threads), id=int(m.group(4)))
            self.threads.append(self.current)
        elif m := _RAISED.search(line):
            self.raised = self.raised or m.group(0)
            self.current = None  # the next frames are a new list
        elif is_cause(line) and len(self.causes) < 8:
            self.causes.append(line.strip())

    def _add(self, frame: Frame, path: str) -> None:
        thread = self.current
        if thread is None or _threads.restarts(thread, frame.index):
            note = _threads.NO_HEADER if thread is None else _threads.RESTARTED
            if self.raised is not None and thread is None:
                note = "where the exception was raised (a c10::Error backtrace)"
            thread = self.unlabelled.new(note)
            self.threads.append(thread)
            self.current = thread
        if frame.image and frame.image not in self.images:
            self.images[frame.image] = BinaryImage(name=frame.image, path=path)
        _threads.add_frame(thread, frame, self.cap)

    def finish(self, source_path: str | None) -> CrashReport:
        report = self.report
        if not self.threads:
            raise CrashParseError("no c10 frame lines found")
        report.threads = self.threads
        report.images = list(self.images.values())
        report.source_path = source_path
        if self.causes:
            report.application_specific_information = "\n".join(self.causes)
        if self.raised is not None:
            report.message = self.raised.removesuffix(" (most recent call first):")
        signalled = [t for t in self.threads if t.index >= 0 and t.id == report.pid]
        if len(signalled) == 1:
            signalled[0].crashed = True
            report.crashed_thread_index = signalled[0].index
        elif report.signal is None:
            report.warnings.append(
                "a C++ exception's backtrace (where it was raised), not a crash report: "
                "the crashed thread and the signal are not in it"
            )
        else:
            report.warnings.append("the signal handler's dump does not say which thread crashed")
        return classify_report(report)


def read_c10(
    lines: Iterable[str], *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse c10 backtraces given line by line."""
    reader = _Reader(frame_cap)
    for line in lines:
        reader.feed(line)
    return reader.finish(source_path)


def parse_c10(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse PyTorch's c10 backtraces. Raises CrashParseError when there is no frame line."""
    return read_c10(text.splitlines(), source_path=source_path, frame_cap=frame_cap)
