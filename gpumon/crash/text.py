"""Classic text crash reports: `.crash` files, Console's "Translated Report", the macOS 26
layout, and the parts of them that people paste.

The text form is what people paste into bug reports. Its parts: `Key: value` header lines
(`Process: name [pid]`, `Exception Type: EXC_BAD_ACCESS (SIGSEGV)`, `Crashed Thread: 2  Dispatch
queue: q` or, since macOS 26, `Triggered by Thread: 0`), an `Application Specific Information:`
block, one section per thread (`Thread 2 Crashed:`, `Thread 1:: name`, `Thread 0::  Dispatch
queue: q`) with frame lines (see `text_lines`), register dumps, and `Binary Images:`.

Pastes are often only a thread section, or only its frames; those are read too, and the report
says what is missing: the header, the crashed thread's section, the image list. A frame list
without a section header, or one whose numbering restarts, becomes an unlabelled thread rather
than being merged into the previous one. This module reads text only: a Translated Report's
embedded `.ips` JSON is joined to it by `gpumon.crash.compose`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gpumon.crash import _threads
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import CrashParseError, CrashReport, Thread
from gpumon.crash.text_lines import parse_frame, parse_image

_THREAD = re.compile(r"^Thread[ \t]+(\d+)([ \t]+Crashed)?[ \t]*::?(.*)$")
_THREAD_NAME = re.compile(r"^Thread[ \t]+(\d+)[ \t]+name:(.*)$")  # older iOS/macOS layout
_HEADER = re.compile(r"^([A-Z][A-Za-z /]*?):[ \t]+(.*)$")
_PROCESS = re.compile(r"^(.*)\[(\d+)\]$")
_SIGNAL = re.compile(r"\((SIG[A-Z0-9]+)\)")
_HEX_CODES = re.compile(r"^[0-9a-fA-Fx,\s]+$")
_SECTION_END = re.compile(
    r"^(?:External Modification Summary|VM Region Summary|Model|Graphics|Error Formulating"
    r"|Full Report|Translated Report|Thread \d+ crashed with)"
)
_SNIFF = re.compile(
    r"^[ \t]*Thread[ \t]+\d+(?:[ \t]+Crashed)?[ \t]*::?.*\n"
    r"[ \t]*\d+[ \t]+\S.*?[ \t]0x[0-9a-fA-F]+[ \t]",
    re.M,
)
# A frame list pasted without its section: `0   libmlx.dylib   mlx::core::...` (two columns
# after the number, or an address), or `libmlx.dylib: mlx::core::...`.
_SNIFF_FRAME = re.compile(
    r"^[ \t]*\d+[ \t]+"
    r"(?:lib[\w+.-]*|[\w+.-]+\.(?:dylib|so(?:\.\d+)*|dll)|AGX\w*|IOGPU|Metal|\?\?\?)"
    r"(?:\t|  |: )[ \t]*\S"
    r"|^[ \t]*(?:lib[\w+.-]*|[\w+.-]+\.(?:dylib|so(?:\.\d+)*))(?:\t|  |: )[ \t]*[\w_:~<\[-]",
    re.M,
)
_SNIFF_HEAD = 256 * 1024
MARKERS = (
    "Crashed Thread:",
    "Triggered by Thread:",
    "Exception Type:",
    "Binary Images:",
    "Translated Report",
)


def looks_like_text_report(text: str) -> bool:
    if any(marker in text for marker in MARKERS):
        return True
    # A bare thread section pasted on its own still counts when it has frame lines.
    return _SNIFF.search(text) is not None


def looks_like_frame_list(text: str) -> bool:
    """Frame lines of a text report without any section or header (the usual MLX paste)."""
    return _SNIFF_FRAME.search(text, 0, _SNIFF_HEAD) is not None


def _name_and_queue(rest: str) -> tuple[str | None, str | None]:
    """`CrBrowserMain  Dispatch queue: com.apple.main-thread` -> (name, queue)."""
    m = re.search(r"Dispatch [Qq]ueue:\s*(.*)$", rest)
    if m:
        name = rest[: m.start()].strip(" ,") or None
        return name, m.group(1).strip() or None
    return rest.strip() or None, None


def _leading_int(value: str) -> tuple[int | None, str]:
    m = re.match(r"\s*(\d+)", value)
    return (int(m.group(1)), value[m.end() :]) if m else (None, value)


class _Reader:
    """Parser state for one text report; lines are fed one at a time."""

    def __init__(self, frame_cap: int | None) -> None:
        self.cap = frame_cap
        self.report = CrashReport(format="text-crash")
        self.fields: dict[str, str] = {}
        self.asi: list[str] = []
        self.threads: dict[int, Thread] = {}
        self.order: list[Thread] = []  # every thread, unlabelled ones included, as read
        self.names: dict[int, tuple[str | None, str | None]] = {}
        self.crashed_flag: int | None = None
        self.mode: str | None = None  # "thread" | "asi" | "images" | "skip"
        self.current: Thread | None = None
        self.seen_images = False
        self.unlabelled = _threads.Unlabelled()
        self.unreadable = 0
        self.restarted = 0

    def feed(self, raw: str) -> None:
        line = raw.strip()  # an indented paste reads like a flush one
        mode = self.mode
        if mode == "images":
            image = parse_image(line)
            if image is not None:
                self.report.images.append(image)
                return
            if not line.strip():
                return
            self.mode = mode = None
        if not line.strip():
            if mode in ("thread", "asi", "skip"):
                self.mode = None
                self.current = None
            return
        if mode == "asi":
            self.asi.append(line.strip())
            return
        if mode == "skip":
            return
        if self._frame(line):
            return
        if self._structure(line):
            return
        if mode == "thread":
            self.unreadable += 1
            return
        m = _HEADER.match(line)
        if m and m.group(1) not in self.fields:
            self.fields[m.group(1)] = m.group(2).strip()
        elif m and m.group(1) == "Exception Codes" and "Exception Codes 2" not in self.fields:
            self.fields["Exception Codes 2"] = m.group(2).strip()

    def _frame(self, line: str) -> bool:
        """Read `line` as a frame of the current thread (or of a new unlabelled one)."""
        thread = self.current if self.mode == "thread" else None
        next_index = 0 if thread is None else len(thread.frames) + thread.frames_omitted
        parsed = parse_frame(line, next_index)
        if parsed is None:
            return False
        frame, numbered = parsed
        if thread is None:
            if self.mode is not None:
                return False
            thread = self._new_unlabelled(_threads.NO_HEADER)
        elif numbered and _threads.restarts(thread, frame.index):
            self.restarted += 1
            thread = self._new_unlabelled(_threads.RESTARTED)
        _threads.add_frame(thread, frame, self.cap)
        return True

    def _new_unlabelled(self, note: str) -> Thread:
        thread = self.unlabelled.new(note)
        self.order.append(thread)
        self.current = thread
        self.mode = "thread"
        return thread

    def _structure(self, line: str) -> bool:
        """Section headers: threads, application-specific information, images, skipped."""
        m = _THREAD.match(line)
        if m:
            number = int(m.group(1))
            name, queue = _name_and_queue(m.group(3).strip())
            current = self.threads.get(number)
            if current is None:
                current = Thread(index=number, name=name, queue=queue)
                self.threads[number] = current
                self.order.append(current)
            if m.group(2):
                current.crashed = True
                self.crashed_flag = number
            self.current = current
            self.mode = "thread"
            return True
        m = _THREAD_NAME.match(line)
        if m:
            self.names[int(m.group(1))] = _name_and_queue(m.group(2).strip())
            return True
        if line.startswith("Application Specific Information:"):
            self.mode = "asi"
            tail = line.split(":", 1)[1].strip()
            if tail:
                self.asi.append(tail)
            return True
        if line.startswith(("Last Exception Backtrace:", "Application Specific Backtrace")):
            self.mode = "skip"  # frames of an exception's backtrace, not a thread
            return True
        if line.startswith("Binary Images"):  # "Binary Images:", "... Description:"
            self.mode = "images"
            self.seen_images = True
            return True
        if _SECTION_END.match(line):
            self.mode = "skip" if line.startswith("Thread ") else None
            return True
        return False

    def finish(self, source_path: str | None) -> CrashReport:
        report = self.report
        _apply_fields(report, self.fields)
        for number, (name, queue) in self.names.items():
            t = self.threads.get(number)
            if t is not None:
                t.name = t.name or name
                t.queue = t.queue or queue
        labelled = [self.threads[n] for n in sorted(self.threads)]
        report.threads = labelled + [t for t in self.order if t.index < 0]
        crashed_index = report.crashed_thread_index
        if crashed_index is None:
            crashed_index = self.crashed_flag
        report.crashed_thread_index = crashed_index
        if crashed_index is not None and crashed_index in self.threads:
            crashed = self.threads[crashed_index]
            crashed.crashed = True
            crashed.name = crashed.name or report.crashed_thread_name
            header_queue = report.crashed_thread_queue
            if header_queue and (not crashed.queue or header_queue.startswith(crashed.queue)):
                crashed.queue = header_queue  # the section header was cut short in the paste
            report.crashed_thread_name = report.crashed_thread_name or crashed.name
            report.crashed_thread_queue = report.crashed_thread_queue or crashed.queue
        if self.asi:
            report.application_specific_information = "\n".join(self.asi)
        facts = (report.pid, report.exception_type, report.signal)
        if not report.threads and all(fact is None for fact in facts):
            raise CrashParseError("no crash report fields or thread backtraces found")
        self._check(crashed_index)
        report.source_path = source_path
        return classify_report(report)

    def _check(self, crashed_index: int | None) -> None:
        report, threads, fields = self.report, self.threads, self.fields
        warnings = report.warnings
        if not report.threads:
            warnings.append("no thread backtraces in the report")
            return
        if crashed_index is not None and crashed_index not in threads:
            warnings.append(
                f"the crashed thread {crashed_index}'s backtrace is missing (report truncated?)"
            )
        # Threads are numbered from 0; a gap means sections were lost. Walk only as far as the
        # first few gaps: a hostile "Thread 999999999:" must not build a billion-number range.
        numbers = sorted(threads)
        if numbers and numbers[-1] + 1 != len(numbers) and fields:
            missing: list[int] = []
            n = 0
            while len(missing) < 9 and n <= numbers[-1]:
                if n not in threads:
                    missing.append(n)
                n += 1
            shown = ", ".join(str(x) for x in missing[:8]) + (" ..." if len(missing) > 8 else "")
            warnings.append(f"thread sections missing: {shown}")
        if crashed_index is None:
            warnings.append("the report does not say which thread crashed")
        if not fields:
            warnings.append(
                "only thread sections or frames were given: the report's header (process, "
                "exception, binary images) is not there"
            )
        elif "Process" in fields and not self.seen_images:
            warnings.append("no Binary Images section (report truncated?)")
        if self.unreadable:
            n = self.unreadable
            warnings.append(
                f"{n} line{'s' if n != 1 else ''} in thread sections could not be read "
                "(cut short or edited?)"
            )
        if self.restarted:
            warnings.append(
                "frame numbering restarted without a thread header: those frames are kept "
                "as separate, unlabelled threads"
            )


def _apply_fields(report: CrashReport, fields: dict[str, str]) -> None:
    process = fields.get("Process")
    if process:
        m = _PROCESS.match(process)
        report.process_name = m.group(1).strip() if m else process
        report.pid = int(m.group(2)) if m else None
    report.os_version = fields.get("OS Version")
    crashed = fields.get("Triggered by Thread")
    if crashed is not None:
        report.format = "text-macos26"
    else:
        crashed = fields.get("Crashed Thread")
    if crashed is not None:
        report.crashed_thread_index, rest = _leading_int(crashed)
        name, queue = _name_and_queue(rest.strip())
        report.crashed_thread_name, report.crashed_thread_queue = name, queue
    etype = fields.get("Exception Type")
    if etype:
        first = etype.split()[0]
        if first.startswith("SIG"):
            report.signal = first  # older reports name the signal alone: "SIGSEGV"
        else:
            report.exception_type = first
            sig = _SIGNAL.search(etype)
            report.signal = sig.group(1) if sig else None
    subtype = fields.get("Exception Subtype")
    if not subtype:
        # Older reports put "KERN_INVALID_ADDRESS at 0x0" on an Exception Codes line.
        for key in ("Exception Codes", "Exception Codes 2"):
            codes = fields.get(key)
            if codes and not _HEX_CODES.match(codes):
                subtype = codes
                break
    report.exception_subtype = subtype or None
    report.termination_reason = fields.get("Termination Reason") or fields.get("Termination Signal")


def read_text(
    lines: Iterable[str], *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse a text report given line by line (see `parse_text`)."""
    reader = _Reader(frame_cap)
    for line in lines:
        reader.feed(line)
    return reader.finish(source_path)


def parse_text(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse a classic text report, or a part of one. Raises CrashParseError when it has
    neither report fields nor frames."""
    return read_text(text.splitlines(), source_path=source_path, frame_cap=frame_cap)
