"""systemd-coredump stack traces, as `coredumpctl info` and the journal show them on Linux.

               PID: 342209 (vulkaninfo)
            Signal: 11 (SEGV)
           Message: Process 342209 (vulkaninfo) of user 1000 dumped core.

                    Stack trace of thread 342209:
                    #0  0x00007f42bc6ac15a __futex_abstimed_wait_common (libc.so.6 + 0x8a15a)
                    #2  0x00007f42a0e9e46c n/a (libvulkan_radeon.so + 0x25f46c)

A frame is `#N  ADDRESS SYMBOL (IMAGE + OFFSET)`, `n/a` where there is no symbol. systemd lists
the thread that received the signal first, so with the report's header present the first stack
is the crashed thread; a pasted stack without the header does not say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gpumon.crash import _threads
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import CrashParseError, CrashReport, Frame, Thread

_THREAD = re.compile(r"^Stack trace of thread (\d+):")
_FRAME = re.compile(
    r"^#(\d+)[ \t]+(0x[0-9a-fA-F]+)[ \t]+(.*?)[ \t]*\(([^()]+?)(?: \+ (0x[0-9a-fA-F]+))?\)$"
)
_FRAME_NUMBER = re.compile(r"^#(\d+)[ \t]")
_PID = re.compile(r"^PID: (\d+)(?: \((.*)\))?$")
_SIGNAL = re.compile(r"^Signal: (\d+)(?: \((\w+)\))?$")
_DUMPED = re.compile(r"^Message: Process (\d+) \((.*)\) of user .* dumped core")
_SNIFF = re.compile(r"^[ \t]*Stack trace of thread \d+:[ \t]*$", re.M)
_MAX_LINE = 100_000


def looks_like_coredump(text: str) -> bool:
    return _SNIFF.search(text) is not None


def parse_frame_line(line: str) -> Frame | None:
    """`#2  0x00007f42a0e9e46c n/a (libvulkan_radeon.so + 0x25f46c)` -> Frame, or None."""
    if len(line) > _MAX_LINE:
        return None
    m = _FRAME.match(line)
    if m is None:
        return None
    symbol = m.group(3).strip()
    return Frame(
        index=int(m.group(1)),
        address=int(m.group(2), 16),
        symbol=None if symbol in ("", "n/a") else symbol,
        image=m.group(4).strip() or None,
        offset=int(m.group(5), 16) if m.group(5) else None,
    )


class _Reader:
    def __init__(self, frame_cap: int | None) -> None:
        self.cap = frame_cap
        self.report = CrashReport(format="coredump")
        self.threads: list[Thread] = []
        self.current: Thread | None = None
        self.unlabelled = _threads.Unlabelled()
        self.header = False
        self.unreadable = 0
        self.restarted = 0

    def feed(self, raw: str) -> None:
        line = raw.strip()
        if not line:
            return
        if line.startswith("#"):
            self._frame(line)
            return
        m = _THREAD.match(line)
        if m:
            self.current = Thread(index=len(self.threads), id=int(m.group(1)))
            self.threads.append(self.current)
            return
        if m := _PID.match(line):
            self.report.pid = int(m.group(1))
            self.report.process_name = self.report.process_name or m.group(2)
        elif m := _SIGNAL.match(line):
            name = m.group(2)
            self.report.signal = f"SIG{name}" if name else None
        elif m := _DUMPED.match(line):
            self.header = True
            self.report.pid = int(m.group(1))
            self.report.process_name = m.group(2)

    def _frame(self, line: str) -> None:
        number = _FRAME_NUMBER.match(line)
        if number is None:
            return
        thread = self.current
        if thread is None:
            thread = self.unlabelled.new(_threads.NO_HEADER)
            self.threads.append(thread)
            self.current = thread
        elif _threads.restarts(thread, int(number.group(1))):
            self.restarted += 1
            thread = self.unlabelled.new(_threads.RESTARTED)
            self.threads.append(thread)
            self.current = thread
        if _threads.full(thread, self.cap):
            thread.frames_omitted += 1
            return
        frame = parse_frame_line(line)
        if frame is None:
            self.unreadable += 1
            return
        _threads.add_frame(thread, frame, self.cap)

    def finish(self, source_path: str | None) -> CrashReport:
        report = self.report
        if not self.threads:
            raise CrashParseError("no systemd-coredump stack trace found")
        labelled = [t for t in self.threads if t.index >= 0]
        report.threads = labelled + [t for t in self.threads if t.index < 0]
        if self.header and labelled:
            # systemd prints the thread that received the signal first
            labelled[0].crashed = True
            report.crashed_thread_index = labelled[0].index
        else:
            report.warnings.append(
                "the coredump header (Message: Process ... dumped core) is not there: "
                "the crashed thread is unknown"
            )
        if report.signal is None:
            report.warnings.append("the signal is not given")
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
        report.source_path = source_path
        return classify_report(report)


def read_coredump(
    lines: Iterable[str], *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse systemd-coredump output given line by line."""
    reader = _Reader(frame_cap)
    for line in lines:
        reader.feed(line)
    return reader.finish(source_path)


def parse_coredump(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse `coredumpctl info` / journal stack traces. Raises CrashParseError when there is
    no stack trace in `text`."""
    return read_coredump(text.splitlines(), source_path=source_path, frame_cap=frame_cap)
