"""Reports made of two formats, put together here so the parsers stay independent.

An `.ips` file is a JSON metadata line followed by either a JSON body (bug_type 309, read by
`ips`) or a classic text body (bug_type 109 and others, read by `text`, with the metadata
line's facts added). Console's "Translated Report (Full Report Below)" is a text report with
the original `.ips` after it: the JSON's facts are exact (thread ids, names, the image list),
so they win, and the text fills what the JSON lacks. Kernel panics (bug_type 210/151) go to
`panic`. Neither `ips` nor `text` imports the other; this module is the only place that knows
a report can hold both.
"""

from __future__ import annotations

from gpumon.crash import ips, panic, text
from gpumon.crash.model import CrashParseError, CrashReport

_MERGED_FIELDS = (
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
    "crashed_thread_name",
    "crashed_thread_queue",
)


def read_ips(
    data: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """An `.ips` file (or a paste holding one): JSON body, text body, or a kernel panic."""
    found = ips.find_header(data)
    if found is None:
        return ips.parse_ips(data, source_path=source_path, frame_cap=frame_cap)  # bare body
    _start, end, header = found
    if str(header.get("bug_type")) in panic.PANIC_BUG_TYPES:
        return panic.parse_panic(data, header=header, body=data[end:], source_path=source_path)
    body = data[end : end + 4096].lstrip()  # (not a copy of a large body)
    if body[:1] == "{" or not data[end:].strip():
        return ips.parse_ips(data, source_path=source_path, frame_cap=frame_cap)
    report = text.parse_text(data[end:], source_path=source_path, frame_cap=frame_cap)
    report.format = "ips-text"
    return ips.apply_header(report, header)


def split_full_report(data: str) -> tuple[str, str | None]:
    """(translated text, embedded `.ips` text or None) for Console's two-part reports."""
    found = ips.find_header(data)
    if found is None:
        return data, None
    start = found[0]
    head = data[:start]
    # Only a header that comes *after* a text report is an embedded Full Report.
    if not any(marker in head for marker in text.MARKERS):
        return data, None
    cut = head.rfind("\nFull Report")
    if cut != -1:
        # drop the "-----------\nFull Report\n-----------" banner from the text part
        dashes = head.rfind("\n", 0, cut)
        head = head[: dashes if dashes != -1 else cut]
    return head, data[start:]


def read_text_report(
    data: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """A text report, with its embedded Full Report JSON when there is one."""
    text_part, json_part = split_full_report(data)
    report = text.parse_text(text_part, source_path=source_path, frame_cap=frame_cap)
    if json_part is not None:
        report = merge_full_report(report, json_part)
        report.source_path = source_path
    return report


def merge_full_report(text_report: CrashReport, json_text: str) -> CrashReport:
    """Prefer the embedded JSON's facts; keep what only the text has."""
    found = ips.find_header(json_text)
    if found is not None:
        start = ips.body_start(json_text, found[1])
        if json_text[start : start + 1] not in ("{", ""):
            return text_report  # the embedded part has a text body: nothing more exact
    try:
        full = ips.parse_ips(json_text)
    except CrashParseError as e:
        text_report.warnings.append(f"the embedded Full Report is unreadable ({e}): used the text")
        return text_report
    complete = not full.warnings and bool(full.threads)
    merged = full if complete or not text_report.threads else text_report
    other = text_report if merged is full else full
    for field in _MERGED_FIELDS:
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
