"""Which crash format an input is, and the one entry point that reads any of them.

Reading goes: normalise line ends, remove what the report was pasted into (`prepass`), sniff
the format, cut at a second report (`reports`), then hand the lines to that format's parser
(`compose` for the formats that combine JSON and text). The parsers are independent of each
other; only this module and `compose` know them all.

Line formats stream: a large file is sniffed from its head and then read line by line, and a
summary parses with a per-thread frame cap, so a 100 MB dump of a runaway recursion is read in
bounded memory. JSON reports (`.ips`, panics) are read whole, up to MAX_BYTES.

Sniffing order matters: gpumon's own gdb header is unambiguous; an `.ips` header comes next
(a panic's bug type is a panic; text before the header is a Console report with its Full Report
after it); then text reports, a panic log, faulthandler, lldb, systemd-coredump and gdb
output, and last a frame list pasted without any header.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from gpumon.crash import (
    c10,
    compose,
    coredump,
    faulthandler,
    gdb,
    ips,
    lldb,
    panic,
    prepass,
    reports,
    text,
)
from gpumon.crash.model import CrashParseError, CrashReport

MAX_BYTES = 64 * 1024 * 1024  # JSON reports are read up to this size, with a warning
SUMMARY_JSON_BYTES = 32 * 1024 * 1024  # ... and up to this size for a summary
STREAM_ABOVE = 8 * 1024 * 1024  # larger files of a line format are read line by line
_HEAD = 1024 * 1024  # what the format and the wrapping are decided from
_CHUNK = 1024 * 1024

LineReader = Callable[..., CrashReport]
_LINE_READERS: dict[str, LineReader] = {
    "gdb": gdb.read_gdb,
    "lldb": lldb.read_lldb,
    "faulthandler": faulthandler.read_faulthandler,
    "coredump": coredump.read_coredump,
    "c10": c10.read_c10,
    "frames": text.read_text,
    "text": text.read_text,  # only when streamed: a whole text goes through compose
}


def _normalise(data: str) -> str:
    # Reports travel through Windows editors and web forms: CRLF, CR, a BOM.
    data = data.removeprefix("\ufeff")
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    return data


def sniff(data: str) -> str | None:
    """The reader for `data`: "gdb", "ips", "panic", "text", "faulthandler", "lldb",
    "coredump", "c10" (PyTorch's own backtraces), "frames" (a frame list without headers),
    or None."""
    head = data.lstrip()
    if head.startswith(gdb.MAGIC):
        return "gdb"
    header = ips.find_header(data)
    if header is not None:
        if str(header[2].get("bug_type")) in panic.PANIC_BUG_TYPES:
            return "panic"
        before = data[: header[0]]
        if text.looks_like_text_report(before):
            return "text"  # Console's translated report with the Full Report JSON after it
        return "ips"
    if text.looks_like_text_report(data):
        return "text"
    if panic.looks_like_panic_text(data):
        return "panic"
    if faulthandler.looks_like_faulthandler(data):
        return "faulthandler"
    if lldb.looks_like_lldb(data):
        return "lldb"
    if coredump.looks_like_coredump(data):
        return "coredump"
    if c10.looks_like_c10(data):
        return "c10"
    if gdb.looks_like_gdb(data):
        return "gdb"
    if head.startswith("{"):
        return "ips"  # a bare .ips JSON body
    if text.looks_like_frame_list(data):
        return "frames"
    return None


def _is_binary(data: str) -> bool:
    sample = data[:4096]
    if not sample:
        return False
    odd = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " and ch not in "\n\t\r\f"))
    return odd / len(sample) > 0.1


def _unreadable(data: str) -> CrashParseError:
    if _is_binary(data):
        return CrashParseError("binary data, not a crash report")
    return CrashParseError(
        "not a crash report gpumon can read (expected a macOS .ips or .crash report, a kernel "
        "panic log, a Python faulthandler dump, or gdb, lldb, systemd-coredump or PyTorch "
        "backtraces)"
    )


def _read(
    kind: str, lines: Iterable[str], whole: str | None, source_path: str | None, cap: int | None
) -> CrashReport:
    """Run the reader for `kind`; `whole` is the text when it is in memory."""
    if whole is not None and kind == "ips":
        return compose.read_ips(whole, source_path=source_path, frame_cap=cap)
    if whole is not None and kind == "text":
        return compose.read_text_report(whole, source_path=source_path, frame_cap=cap)
    if kind == "panic":
        data = whole if whole is not None else "\n".join(lines)
        found = ips.find_header(data)
        if found is not None:
            return panic.parse_panic(
                data, header=found[2], body=data[found[1] :], source_path=source_path
            )
        return panic.parse_panic(data, source_path=source_path)
    reader = _LINE_READERS.get(kind)
    if reader is None:  # JSON reports are never streamed (see parse_stream)
        return compose.read_ips("\n".join(lines), source_path=source_path, frame_cap=cap)
    return reader(lines, source_path=source_path, frame_cap=cap)


def _finish(report: CrashReport, notes: list[str], more: int) -> CrashReport:
    report.notes = [*notes, *report.notes]
    if more:
        n = more + 1
        report.warnings.append(f"the input holds {n} reports: only the first was read")
    return report


def parse_report(
    data: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse any supported crash report. Raises CrashParseError (one user-facing line) when
    nothing usable is in `data`; a partial parse returns a report whose `warnings` say what is
    missing. `frame_cap` keeps at most that many frames per thread (the rest are counted)."""
    data = _normalise(data)
    if not data.strip():
        raise CrashParseError("the file is empty")
    cleaned, notes = prepass.clean(data)
    kind = sniff(cleaned)
    if kind is None:
        raise _unreadable(data)
    if reports.may_hold_several(kind, cleaned):
        first = reports.FirstReport(kind, cleaned.splitlines())
        lines = list(first)
        more = first.more()
        whole = "\n".join(lines) + "\n" if more else cleaned
    else:  # the common case: no second start line, so no copy of a large input
        lines, more, whole = cleaned.splitlines() if kind in _LINE_READERS else [], 0, cleaned
    try:
        report = _read(kind, lines, whole, source_path, frame_cap)
    except RecursionError:
        raise CrashParseError("the report is nested too deeply to read") from None
    return _finish(report, notes, more)


def decode(raw: bytes) -> str:
    """Bytes to text: UTF-8 (the format of every report gpumon reads), bad bytes replaced."""
    return raw.decode("utf-8", errors="replace")


def parse_bytes(
    raw: bytes,
    *,
    source_path: str | None = None,
    truncated: bool = False,
    frame_cap: int | None = None,
    limit: int = MAX_BYTES,
) -> CrashReport:
    """Parse a report's bytes (see `parse_report`); `truncated` says the input was longer than
    `limit`."""
    # Line endings are fixed on bytes (fast) rather than on a large decoded string.
    raw = raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # Binary junk (a core file, an image) is refused from its head, without decoding 64 MiB.
    head = decode(raw[:_HEAD])
    if len(raw) > _HEAD and _is_binary(head) and sniff(head) is None:
        raise CrashParseError("binary data, not a crash report")
    text = decode(raw)
    del raw  # a large input is held once, as text
    report = parse_report(text, source_path=source_path, frame_cap=frame_cap)
    if truncated:
        report.warnings.append(
            f"the input is larger than {limit // (1024 * 1024)} MiB: only the start was read"
        )
    return report


def _lines(f: BinaryIO, head: bytes) -> Iterator[str]:
    """The lines of a binary stream, decoded as UTF-8 (bad bytes replaced), any line end."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    first = True
    for chunk in chain([head], iter(lambda: f.read(_CHUNK), b"")):
        piece = carry + decoder.decode(chunk)
        if first:
            piece, first = piece.removeprefix("\ufeff"), False
        carry = ""
        if piece.endswith("\r"):
            piece, carry = piece[:-1], "\r"  # a CRLF may be split across chunks
        if "\r" in piece:
            piece = piece.replace("\r\n", "\n").replace("\r", "\n")
        parts = piece.split("\n")
        carry = parts.pop() + carry
        yield from parts
    tail = carry + decoder.decode(b"", final=True)
    if tail.endswith("\r"):
        yield tail[:-1]  # a last line ended by a lone CR (possibly an empty one)
    elif tail:
        yield tail


def parse_stream(
    f: BinaryIO, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse a report from a binary stream: decided from its head, then read line by line
    for the line formats (bounded memory with a `frame_cap`), whole for JSON reports."""
    head = f.read(_HEAD)
    if not head.strip() and not f.read(1):
        raise CrashParseError("the file is empty")
    sample = _normalise(decode(head))
    plan = prepass.plan(sample)
    cleaned = "\n".join(plan.apply(sample.splitlines()))
    kind = sniff(cleaned)
    if kind is None:
        raise _unreadable(sample)
    if kind not in _LINE_READERS or (kind == "frames" and len(head) < _HEAD):
        # JSON reports are read whole: a summary reads less of a huge one (bounded memory).
        limit = MAX_BYTES if frame_cap is None else SUMMARY_JSON_BYTES
        raw = head + f.read(limit + 1 - len(head))
        truncated = len(raw) > limit
        return parse_bytes(
            raw[:limit] if truncated else raw,
            source_path=source_path,
            truncated=truncated,
            frame_cap=frame_cap,
            limit=limit,
        )
    lines = _lines(f, head)
    first = reports.FirstReport(kind, lines if plan.empty else plan.apply(lines))
    try:
        report = _read(kind, first, None, source_path, frame_cap)
    except RecursionError:
        raise CrashParseError("the report is nested too deeply to read") from None
    return _finish(report, plan.notes(), first.more())


def _open(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return Path(path).open("rb")
    except FileNotFoundError:
        raise CrashParseError("no such file") from None
    except IsADirectoryError:
        raise CrashParseError("is a directory, not a file") from None
    except PermissionError:
        raise CrashParseError("permission denied") from None
    except OSError as e:
        raise CrashParseError(f"cannot read it ({e.strerror or e})") from None


def read_capped(path: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """Read at most MAX_BYTES of `path`; returns (bytes, whether the file was longer).
    Raises CrashParseError with a user-facing reason for every OS error."""
    with _open(path) as f:
        try:
            raw = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise CrashParseError(f"cannot read it ({e.strerror or e})") from None
    return raw[:MAX_BYTES], len(raw) > MAX_BYTES


def parse_file(path: str | os.PathLike[str], *, frame_cap: int | None = None) -> CrashReport:
    """Read and parse one report file (the parsers' only file I/O besides stdin)."""
    with _open(path) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if size > STREAM_ABOVE:
                return parse_stream(f, source_path=str(path), frame_cap=frame_cap)
            raw = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise CrashParseError(f"cannot read it ({e.strerror or e})") from None
    return parse_bytes(
        raw[:MAX_BYTES], source_path=str(path), truncated=len(raw) > MAX_BYTES, frame_cap=frame_cap
    )
