"""Kernel panics: `.ips` panic reports (bug_type 210, and 151 on older systems) and the panic
log text people paste.

A GPU bug can take the whole machine down instead of one process (IOGPUFamily's
`"completeMemory() prepare count underflow" @IOGPUMemory.cpp:550` under MLX). Such a report is
not a process crash with a crashed thread: it is a panic string, the task that was running
(`Panicked task 0x...: 367197 pages, 25 threads: pid 50218: Python`), the panicked thread's
return addresses and the kernel extensions in its backtrace. The `.ips` form wraps that text in
JSON (`panicString` on iOS, `macOSPanicString` on macOS).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gpumon.crash._values import as_str
from gpumon.crash.model import BinaryImage, CrashParseError, CrashReport, Frame, Thread

PANIC_BUG_TYPES = {"210", "151"}
_PANIC_LINE = re.compile(r"^[ \t]*[Pp]anic\((?:cpu|CPU) \d+[^)]*\):.*$", re.M)
_TASK = re.compile(r"^Panicked task (0x[0-9a-fA-F]+)?:?.*?pid (\d+): (.+)$")
_THREAD = re.compile(
    r"^Panicked thread: (0x[0-9a-fA-F]+)(?:, backtrace: (0x[0-9a-fA-F]+))?.*?(?:tid: (\d+))?$"
)
_LR = re.compile(r"\blr: (0x[0-9a-fA-F]+)")
_KEXT = re.compile(r"^([\w.]+)\(([^)]*)\)\[([0-9A-Fa-f-]+)\]@(0x[0-9a-fA-F]+)->(0x[0-9a-fA-F]+)$")
_OS = re.compile(r"^OS version: (.+)$")
_SNIFF_HEAD = 256 * 1024


def looks_like_panic_text(text: str) -> bool:
    return _PANIC_LINE.search(text, 0, _SNIFF_HEAD) is not None


def parse_panic(
    text: str,
    *,
    header: dict[str, Any] | None = None,
    body: str | None = None,
    source_path: str | None = None,
) -> CrashReport:
    """Parse a panic report. `header` and `body` are an `.ips` file's metadata line (decoded)
    and the text after it; without them `text` is read as a pasted panic log."""
    report = CrashReport(format="panic", source_path=source_path)
    panic_text = text
    if header is not None:
        report.bug_type = as_str(header.get("bug_type"))
        report.os_version = as_str(header.get("os_version"))
        panic_text = _panic_string(body or "", report) or ""
    m = _PANIC_LINE.search(panic_text)
    if m is None:
        if header is None:
            raise CrashParseError("no kernel panic line (panic(cpu N caller ...)) found")
        report.warnings.append("the panic report holds no panic string")
        return report
    lines = panic_text[m.start() :].splitlines()
    report.message = lines[0].strip()
    _details(report, lines[1:])
    return report


def _panic_string(body: str, report: CrashReport) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        report.warnings.append("the panic report's JSON body is unreadable or cut short")
        # The string is still in there: pasted bodies are often cut after it.
        found = re.search(r'"(?:macOS)?[pP]anicString"\s*:\s*"((?:[^"\\]|\\.)*)', body)
        if found is None:
            return None
        try:
            return str(json.loads(f'"{found.group(1)}"'))
        except ValueError:
            return found.group(1).replace("\\n", "\n")
    if not isinstance(data, dict):
        return None
    report.os_version = report.os_version or as_str(data.get("build"))
    return as_str(data.get("macOSPanicString")) or as_str(data.get("panicString"))


def _details(report: CrashReport, lines: list[str]) -> None:
    thread: Thread | None = None
    in_kexts = False
    for raw in lines:
        line = raw.strip()
        if m := _TASK.match(line):
            report.pid, report.process_name = int(m.group(2)), m.group(3).strip()
        elif m := _THREAD.match(line):
            tid = int(m.group(3)) if m.group(3) else None
            thread = Thread(index=0, id=tid, name="panicked thread", crashed=True)
            report.threads = [thread]
            report.crashed_thread_index = 0
        elif thread is not None and (lr := _LR.search(line)) is not None and not in_kexts:
            thread.frames.append(Frame(index=len(thread.frames), address=int(lr.group(1), 16)))
        elif line.startswith("Kernel Extensions in backtrace"):
            in_kexts = True
        elif in_kexts and (k := _KEXT.match(line)) is not None:
            base, top = int(k.group(4), 16), int(k.group(5), 16)
            report.images.append(
                BinaryImage(name=k.group(1), base=base, size=top - base + 1, uuid=k.group(3))
            )
        elif m := _OS.match(line):
            report.os_version = report.os_version or m.group(1).strip()
    if report.process_name is None:
        report.warnings.append("the panicked task is not in the log (cut short?)")
    if not report.threads or not report.threads[0].frames:
        report.warnings.append("the panicked thread's backtrace is not in the log (cut short?)")
