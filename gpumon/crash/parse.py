"""Which crash format a text is, and the one entry point that parses any of them.

`parse_report` is pure; `parse_file` is the only function in the parsers that reads a file.
Sniffing order matters: gpumon's own gdb header is unambiguous; a text report comes before an
`.ips` header when Console put the JSON after the translated text; faulthandler and plain gdb
backtraces are recognised by their thread headers.
"""

from __future__ import annotations

import os
from pathlib import Path

from gpumon.crash import faulthandler, gdb, ips, text
from gpumon.crash.model import CrashParseError, CrashReport

MAX_BYTES = 64 * 1024 * 1024  # larger files are read up to this size, with a warning


def _normalise(data: str) -> str:
    # Reports travel through Windows editors and web forms: CRLF, CR, a BOM.
    data = data.removeprefix("\ufeff")
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    return data


def sniff(data: str) -> str | None:
    """The parser name for `data` ("gdb", "ips", "text", "faulthandler"), or None."""
    head = data.lstrip()
    if head.startswith(gdb.MAGIC):
        return "gdb"
    header = ips.find_header(data)
    if header is not None:
        before = data[: header[0]]
        if text.looks_like_text_report(before):
            return "text"  # Console's translated report with the Full Report JSON after it
        return "ips"
    if text.looks_like_text_report(data):
        return "text"
    if faulthandler.looks_like_faulthandler(data):
        return "faulthandler"
    if gdb.looks_like_gdb(data):
        return "gdb"
    if head.startswith("{"):
        return "ips"  # a bare .ips JSON body
    return None


_PARSERS = {
    "gdb": gdb.parse_gdb,
    "ips": ips.parse_ips,
    "text": text.parse_text,
    "faulthandler": faulthandler.parse_faulthandler,
}


def _is_binary(data: str) -> bool:
    sample = data[:4096]
    if not sample:
        return False
    odd = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " and ch not in "\n\t\r\f"))
    return odd / len(sample) > 0.1


def parse_report(data: str, *, source_path: str | None = None) -> CrashReport:
    """Parse any supported crash report. Raises CrashParseError (one user-facing line) when
    nothing usable is in `data`; a partial parse returns a report whose `warnings` say what
    is missing."""
    data = _normalise(data)
    if not data.strip():
        raise CrashParseError("the file is empty")
    kind = sniff(data)
    if kind is None:
        if _is_binary(data):
            raise CrashParseError("binary data, not a crash report")
        raise CrashParseError(
            "not a crash report gpumon can read (expected a macOS .ips or .crash report, "
            "a Python faulthandler dump or a gdb backtrace)"
        )
    try:
        return _PARSERS[kind](data, source_path=source_path)
    except RecursionError:
        raise CrashParseError("the report is nested too deeply to read") from None


def decode(raw: bytes) -> str:
    """Bytes to text: UTF-8 (the format of every report gpumon reads), bad bytes replaced."""
    return raw.decode("utf-8", errors="replace")


_SNIFF_HEAD = 1024 * 1024


def parse_bytes(
    raw: bytes, *, source_path: str | None = None, truncated: bool = False
) -> CrashReport:
    """Parse a report's bytes (see `parse_report`); `truncated` says the file was longer."""
    # Line endings are fixed on bytes (fast) rather than on a large decoded string.
    raw = raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # Binary junk (a core file, an image) is refused from its head, without decoding 64 MiB.
    head = decode(raw[:_SNIFF_HEAD])
    if len(raw) > _SNIFF_HEAD and _is_binary(head) and sniff(head) is None:
        raise CrashParseError("binary data, not a crash report")
    report = parse_report(decode(raw), source_path=source_path)
    if truncated:
        report.warnings.append(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB: only the start was read"
        )
    return report


def read_capped(path: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """Read at most MAX_BYTES of `path`; returns (bytes, whether the file was longer).
    Raises CrashParseError with a user-facing reason for every OS error."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise CrashParseError("no such file") from None
    except IsADirectoryError:
        raise CrashParseError("is a directory, not a file") from None
    except PermissionError:
        raise CrashParseError("permission denied") from None
    except OSError as e:
        raise CrashParseError(f"cannot read it ({e.strerror or e})") from None
    return raw[:MAX_BYTES], len(raw) > MAX_BYTES


def parse_file(path: str | os.PathLike[str]) -> CrashReport:
    """Read and parse one report file (the parsers' only I/O)."""
    raw, truncated = read_capped(path)
    return parse_bytes(raw, source_path=str(path), truncated=truncated)
