"""Find the macOS crash report of a dead worker process, by pid, as soon as macOS writes it.

ReportCrash names files after the *process* (`python3.11-2026-06-16-141000.ips`), and every
worker of every pool is a `python3` process, so the file name cannot tell them apart: the pid
inside the report body does. Only files modified after the worker started are considered, so
an old report of a recycled pid is never attached. macOS writes the report a few hundred
milliseconds to several seconds after the process died, hence the polling wait; the caller
(the supervisor) records the crash event first and attaches the report when this returns.

This is the only module of gpumon.crash that touches the file system on its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from gpumon.crash.model import CrashParseError
from gpumon.crash.parse import parse_file

REPORT_SUFFIXES = (".ips", ".crash")
HEAD_BYTES = 256 * 1024  # the pid is near the top of every report format
# File system timestamps are coarse on some volumes: accept files a little older than `since`.
MTIME_SLACK_S = 1.0
# `"pid" : 123` in an .ips body (also the header's key order puts it early), or the text
# form's `Process: python3.11 [123]`.
_JSON_PID = re.compile(rb'"pid"\s*:\s*(\d+)')
_TEXT_PID = re.compile(rb"^Process:\s+.*\[(\d+)\]\s*$", re.M)


def default_report_dirs() -> list[Path]:
    """Where macOS puts user-process crash reports (current ones and rotated ones)."""
    dirs = [
        Path.home() / "Library" / "Logs" / "DiagnosticReports",
        Path("/Library/Logs/DiagnosticReports"),
    ]
    return [p for d in dirs for p in (d, d / "Retired")]


def report_pid(path: Path) -> int | None:
    """The pid the report at `path` is about, or None if it cannot be read or has none."""
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    m = _JSON_PID.search(head) or _TEXT_PID.search(head)
    if m:
        return int(m.group(1))
    try:  # unusual layout: fall back to the full parser
        return parse_file(path).pid
    except CrashParseError:
        return None


def _candidates(dirs: Iterable[Path], since: float) -> list[Path]:
    found: list[tuple[float, Path]] = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue  # missing or unreadable directory: normal on most machines
        for e in entries:
            if not e.name.endswith(REPORT_SUFFIXES):
                continue
            try:
                if not e.is_file():
                    continue
                mtime = e.stat().st_mtime
            except OSError:
                continue
            if mtime >= since - MTIME_SLACK_S:
                found.append((mtime, Path(e.path)))
    found.sort(key=lambda item: item[0], reverse=True)  # newest first
    return [p for _, p in found]


def find_reports(pid: int, since: float, dirs: Sequence[Path] | None = None) -> list[Path]:
    """Report files newer than `since` (epoch seconds) whose body is about `pid`, newest
    first."""
    search = list(dirs) if dirs is not None else default_report_dirs()
    return [p for p in _candidates(search, since) if report_pid(p) == pid]


def _complete(path: Path) -> bool:
    """True when the report parses without warnings (macOS may still be writing it)."""
    try:
        return not parse_file(path).warnings
    except CrashParseError:
        return False


async def wait_for_report(
    pid: int,
    since: float,
    dirs: Sequence[Path] | None = None,
    timeout: float = 30.0,
    poll: float = 0.25,
) -> Path | None:
    """Poll `dirs` until a complete report for `pid` appears; None after `timeout` seconds.

    A matching report that is still incomplete at the deadline is returned anyway: a partial
    report is better evidence than none, and its parse says what is missing. File system work
    runs in a thread so the supervisor's event loop keeps its latency."""
    search = list(dirs) if dirs is not None else default_report_dirs()
    deadline = time.monotonic() + timeout
    checked: dict[Path, tuple[float, int]] = {}  # path -> (mtime, size) already rejected
    best: Path | None = None
    while True:
        match = await asyncio.to_thread(_scan, pid, since, search, checked)
        if match is not None:
            if await asyncio.to_thread(_complete, match):
                return match
            best = match
        if time.monotonic() >= deadline:
            return best
        await asyncio.sleep(poll)


def _scan(
    pid: int, since: float, dirs: Sequence[Path], checked: dict[Path, tuple[float, int]]
) -> Path | None:
    for path in _candidates(dirs, since):
        try:
            st = path.stat()
        except OSError:
            continue
        stamp = (st.st_mtime, st.st_size)
        if checked.get(path) == stamp:
            continue  # unchanged since it was found not to be ours
        if report_pid(path) == pid:
            return path
        checked[path] = stamp
    return None
