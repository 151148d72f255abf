"""Classic text crash reports: `.crash` files, Console's "Translated Report", macOS 26 layout.

The text form is what people paste into bug reports. Its parts: `Key: value` header lines
(`Process: name [pid]`, `Exception Type: EXC_BAD_ACCESS (SIGSEGV)`, `Crashed Thread: 2` or,
since macOS 26, `Triggered by Thread: 0`), an `Application Specific Information:` block, one
section per thread (`Thread 2 Crashed:`, `Thread 1:: name`, `Thread 0::  Dispatch queue: q`)
with frame lines `N  image  0xaddr  symbol + off (file:line)`, register dumps, and `Binary
Images:`. Console's "Translated Report (Full Report Below)" appends the original `.ips` JSON:
its facts are exact (thread names, ids, image list), so they win, and the text fills gaps.
"""

from __future__ import annotations

import re

from gpumon.crash._values import basename, parse_hex
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import BinaryImage, CrashParseError, CrashReport, Frame, Thread

# Line patterns avoid lazy groups followed by `\s*`/`\s+`: on a long line of spaces those
# backtrack quadratically, and a hostile file must not hang `gpumon crash`.
_THREAD = re.compile(r"^Thread[ \t]+(\d+)([ \t]+Crashed)?[ \t]*::?(.*)$")
_THREAD_NAME = re.compile(r"^Thread[ \t]+(\d+)[ \t]+name:(.*)$")  # older iOS/macOS layout
_FRAME_START = re.compile(r"^(\d+)[ \t]+(?=\S)")
_ADDRESS = re.compile(r"[ \t](0x[0-9a-fA-F]+)(?=[ \t]|$)")
_IMAGE_RANGE = re.compile(
    r"^[ \t]*(0x[0-9a-fA-F]+)[ \t]*-[ \t]*(0x[0-9a-fA-F]+|\?\?\?)[ \t]+(?=\S)"
)
_UUID = re.compile(r"<([0-9A-Fa-f-]+)>")
_HEADER = re.compile(r"^([A-Z][A-Za-z /]*?):[ \t]+(.*)$")
_PROCESS = re.compile(r"^(.*)\[(\d+)\]$")
_SIGNAL = re.compile(r"\((SIG[A-Z0-9]+)\)")
_HEX_CODES = re.compile(r"^[0-9a-fA-Fx,\s]+$")
_SOURCE = re.compile(r"\(([^()]*):(\d+)\)$")
_OFFSET = re.compile(r"\+[ \t]+(\d+)$")
_SECTION_END = re.compile(
    r"^(?:External Modification Summary|VM Region Summary|Model|Graphics|Error Formulating"
    r"|Full Report|Translated Report|Thread \d+ crashed with)"
)
_SNIFF = re.compile(
    r"^Thread[ \t]+\d+(?:[ \t]+Crashed)?[ \t]*::?.*\n[ \t]*\d+[ \t]+\S.*?[ \t]0x[0-9a-fA-F]+[ \t]",
    re.M,
)
_MARKERS = (
    "Crashed Thread:",
    "Triggered by Thread:",
    "Exception Type:",
    "Binary Images:",
    "Translated Report",
)


def looks_like_text_report(text: str) -> bool:
    if any(marker in text for marker in _MARKERS):
        return True
    # A bare thread section pasted on its own still counts when it has frame lines.
    return _SNIFF.search(text) is not None


def split_frame_line(line: str) -> tuple[int, str, str, str] | None:
    """`N  image name  0xaddr  rest` -> (N, image, address, rest), or None."""
    start = _FRAME_START.match(line)
    if start is None:
        return None
    addr = _ADDRESS.search(line, start.end() - 1)
    if addr is None:
        return None
    image = line[start.end() : addr.start()].strip()
    if not image:
        return None
    return int(start.group(1)), image, addr.group(1), line[addr.end() :].strip()


def _frame(parts: tuple[int, str, str, str]) -> Frame:
    index, image, address, rest = parts
    rest = rest.removesuffix("[inlined]").rstrip()
    file = line = None
    src = _SOURCE.search(rest)
    if src:
        file, line = src.group(1).strip(), int(src.group(2))
        rest = rest[: src.start()].rstrip()
    offset = None
    off = _OFFSET.search(rest)
    if off and (off.start() == 0 or rest[off.start() - 1] in " \t"):
        offset = int(off.group(1))
        rest = rest[: off.start()].rstrip()
    symbol: str | None = rest.strip() or None
    if symbol is not None and re.fullmatch(r"0x[0-9a-fA-F]+", symbol):
        symbol = None  # unsymbolicated: "0xbase + offset" is an offset into the image
    return Frame(
        index=index,
        image=None if image == "???" else image,
        symbol=symbol,
        offset=offset,
        address=parse_hex(address),
        file=file,
        line=line,
    )


def _name_and_queue(rest: str) -> tuple[str | None, str | None]:
    """`CrBrowserMain  Dispatch queue: com.apple.main-thread` -> (name, queue)."""
    m = re.search(r"Dispatch [Qq]ueue:\s*(.*)$", rest)
    if m:
        name = rest[: m.start()].strip(" ,") or None
        return name, m.group(1).strip() or None
    return rest.strip() or None, None


def _leading_int(value: str) -> int | None:
    m = re.match(r"\s*(\d+)", value)
    return int(m.group(1)) if m else None


def split_full_report(text: str) -> tuple[str, str | None]:
    """(translated text, embedded `.ips` text or None) for Console's two-part reports."""
    from gpumon.crash.ips import find_header

    found = find_header(text)
    if found is None:
        return text, None
    start = found[0]
    head = text[:start]
    # Only a header that comes *after* a text report is an embedded Full Report.
    if not any(marker in head for marker in _MARKERS):
        return text, None
    cut = head.rfind("\nFull Report")
    if cut != -1:
        # drop the "-----------\nFull Report\n-----------" banner from the text part
        dashes = head.rfind("\n", 0, cut)
        head = head[: dashes if dashes != -1 else cut]
    return head, text[start:]


def parse_text(
    text: str, *, source_path: str | None = None, full_report: bool = True
) -> CrashReport:
    """Parse a classic text report (optionally with an embedded Full Report JSON).

    `full_report=False` ignores any embedded `.ips` part: used for the text body of an `.ips`
    file, so a crafted file cannot make the two parsers call each other without end."""
    text_part, json_part = split_full_report(text) if full_report else (text, None)
    report = _parse_text_only(text_part)
    if json_part is not None:
        report = _merge_full_report(report, json_part)
    if not report.threads and report.pid is None and report.exception_type is None:
        raise CrashParseError("no crash report fields or thread backtraces found")
    report.source_path = source_path
    return classify_report(report)


def _parse_text_only(text: str) -> CrashReport:
    report = CrashReport(format="text-crash")
    fields: dict[str, str] = {}
    asi: list[str] = []
    threads: dict[int, Thread] = {}
    names: dict[int, tuple[str | None, str | None]] = {}
    crashed_flag: int | None = None
    mode: str | None = None  # "thread" | "asi" | "images" | "skip"
    current: Thread | None = None
    seen_images = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if mode == "images":
            image = _image(line)
            if image is not None:
                report.images.append(image)
                continue
            if not line.strip():
                continue
            mode = None
        if not line.strip():
            if mode in ("thread", "asi", "skip"):
                mode = None
                current = None
            continue
        if mode == "asi":
            asi.append(line.strip())
            continue
        if mode == "thread" and current is not None:
            parts = split_frame_line(line.strip())
            if parts:
                current.frames.append(_frame(parts))
                continue
        if mode == "skip":
            continue
        m = _THREAD.match(line)
        if m:
            number = int(m.group(1))
            name, queue = _name_and_queue(m.group(3).strip())
            current = threads.get(number)
            if current is None:
                current = Thread(index=number, name=name, queue=queue)
                threads[number] = current
            if m.group(2):
                current.crashed = True
                crashed_flag = number
            mode = "thread"
            continue
        m = _THREAD_NAME.match(line)
        if m:
            names[int(m.group(1))] = _name_and_queue(m.group(2).strip())
            continue
        if line.startswith("Application Specific Information:"):
            mode = "asi"
            tail = line.split(":", 1)[1].strip()
            if tail:
                asi.append(tail)
            continue
        if line.startswith(("Last Exception Backtrace:", "Application Specific Backtrace")):
            mode = "skip"  # frames of an exception's backtrace, not a thread
            continue
        if line.startswith("Binary Images:"):
            mode = "images"
            seen_images = True
            continue
        if _SECTION_END.match(line):
            mode = "skip" if line.startswith("Thread ") else None
            continue
        m = _HEADER.match(line)
        if m and m.group(1) not in fields:
            fields[m.group(1)] = m.group(2).strip()
        elif m and m.group(1) == "Exception Codes" and "Exception Codes 2" not in fields:
            fields["Exception Codes 2"] = m.group(2).strip()
    _apply_fields(report, fields)
    for number, (name, queue) in names.items():
        t = threads.get(number)
        if t is not None:
            t.name = t.name or name
            t.queue = t.queue or queue
    report.threads = [threads[n] for n in sorted(threads)]
    crashed_index = report.crashed_thread_index
    if crashed_index is None:
        crashed_index = crashed_flag
    report.crashed_thread_index = crashed_index
    if crashed_index is not None and crashed_index in threads:
        threads[crashed_index].crashed = True
    if asi:
        report.application_specific_information = "\n".join(asi)
    _check(report, threads, crashed_index, seen_images, fields)
    return report


def _image(line: str) -> BinaryImage | None:
    """`0x1000 - 0x1fff name (version) <uuid> /path` -> BinaryImage, or None."""
    r = _IMAGE_RANGE.match(line)
    if r is None:
        return None
    u = _UUID.search(line, r.end())
    if u is None:
        return None
    start, end = r.groups()
    name = line[r.end() : u.start()].strip()
    if name.endswith(")") and "(" in name:
        name = name[: name.rfind("(")].strip()  # drop "(version)"
    name = name.removeprefix("+")  # older reports mark the app's own images with "+"
    uuid = u.group(1)
    path = line[u.end() :].strip()
    base = parse_hex(start)
    top = parse_hex(end) if end != "???" else None
    clean_path = path if path and path != "???" else None
    shown = basename(clean_path) if clean_path else (name if name not in ("", "???") else None)
    return BinaryImage(
        name=shown,
        path=clean_path,
        base=base,
        size=(top - base + 1) if top is not None and base is not None and top >= base else None,
        uuid=uuid.lower(),
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
        report.crashed_thread_index = _leading_int(crashed)
    etype = fields.get("Exception Type")
    if etype:
        report.exception_type = etype.split()[0]
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


def _check(
    report: CrashReport,
    threads: dict[int, Thread],
    crashed_index: int | None,
    seen_images: bool,
    fields: dict[str, str],
) -> None:
    if not threads:
        report.warnings.append("no thread backtraces in the report")
        return
    if crashed_index is not None and crashed_index not in threads:
        report.warnings.append(
            f"the crashed thread {crashed_index}'s backtrace is missing (report truncated?)"
        )
    # Threads are numbered from 0; a gap means sections were lost. Walk only as far as the
    # first few gaps: a hostile "Thread 999999999:" must not build a billion-number range.
    numbers = sorted(threads)
    if numbers[-1] + 1 != len(numbers):
        missing: list[int] = []
        n = 0
        while len(missing) < 9 and n <= numbers[-1]:
            if n not in threads:
                missing.append(n)
            n += 1
        shown = ", ".join(str(x) for x in missing[:8]) + (" ..." if len(missing) > 8 else "")
        report.warnings.append(f"thread sections missing: {shown}")
    if crashed_index is None:
        report.warnings.append("the report does not say which thread crashed")
    if "Process" in fields and not seen_images:
        report.warnings.append("no Binary Images section (report truncated?)")


def _merge_full_report(text_report: CrashReport, json_text: str) -> CrashReport:
    """Prefer the embedded JSON's facts; keep what only the text has."""
    from gpumon.crash.ips import parse_ips

    try:
        full = parse_ips(json_text)
    except CrashParseError as e:
        text_report.warnings.append(f"the embedded Full Report is unreadable ({e}): used the text")
        return text_report
    if full.format != "ips-json":
        # The embedded part had a text body: nothing more exact than what we have.
        return text_report
    complete = not full.warnings and bool(full.threads)
    merged = full if complete or not text_report.threads else text_report
    other = text_report if merged is full else full
    for field in (
        "process_name",
        "pid",
        "bug_type",
        "os_version",
        "exception_type",
        "signal",
        "exception_subtype",
        "termination_reason",
        "crashed_thread_index",
        "application_specific_information",
        "message",
    ):
        if getattr(merged, field) is None:
            setattr(merged, field, getattr(other, field))
    if not merged.images:
        merged.images = other.images
    merged.format = text_report.format
    if complete:
        merged.warnings = []
    else:
        merged.warnings = [
            *(f"embedded Full Report: {w}" for w in full.warnings),
            *text_report.warnings,
        ]
    return merged
