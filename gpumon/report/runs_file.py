"""`<session folder>/repro-runs.jsonl`: every verified count `gpumon repro` made for a session.

One JSON object per line, appended (O_APPEND, one write per line, 0600 like every file in a
session folder), never rewritten: a count is evidence, and a later run adds a line instead of
replacing the earlier one. The Markdown report and the issue template read the file; a line
they cannot read is skipped, as the session loader skips a damaged log line. See
docs/reporting.md for the fields.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from gpumon import layout

RUNS_FILE = "repro-runs.jsonl"
RECORD_VERSION = 1


class ReproRunRecord(msgspec.Struct, kw_only=True):
    """One `gpumon repro` invocation: K fresh processes of one script."""

    record: int = RECORD_VERSION
    script: str  # relative to the session folder (absolute when outside it: `inside` false)
    inside: bool = True
    sha256: str  # of the script's bytes, so an edited script is a different script
    session_id: str = ""  # the session the script's header names ("" when none)
    runs: int
    reproduced: int  # runs that died by a signal, hung, or exited 3 (a thread raised)
    # One entry per run, in order: the signal that ended it (null when it exited or was
    # killed after the timeout), its exit code (null when a signal ended it or it hung),
    # and what that means: signal | hang | raised | clean | wrong-version | error.
    signals: list[str | None]
    exit_codes: list[int | None]
    outcomes: list[str]
    run_seconds: list[float]  # wall-clock seconds of each run
    # How the session's pool died, as the script's header says (`# recorded: SIGSEGV`; "" when
    # nothing crashed), and how many runs ended exactly that way.
    recorded: str = ""
    same_as_recorded: int = 0
    timeout_s: float  # a run still going after this was killed and counted as a hang
    python: str  # the interpreter every run used
    framework: str  # "mlx 0.31.1" as the script's pin names it ("" without one)
    build: str = ""  # cpu | cuda | metal | gpu | mps
    started_utc: str  # when the first run started, ISO 8601 UTC
    seconds: float  # wall-clock seconds of all runs together
    gpumon_version: str = ""


def runs_path(folder: Path) -> Path:
    return folder / RUNS_FILE


def append(folder: Path, record: ReproRunRecord) -> Path:
    """Add one line; raises OSError (the caller says why in one line)."""
    path = runs_path(folder)
    line = msgspec.json.encode(record) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, layout.FILE_MODE)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def read(folder: Path) -> tuple[list[ReproRunRecord], int]:
    """The records of a session folder and how many lines could not be read."""
    try:
        data = runs_path(folder).read_bytes()
    except OSError:
        return [], 0
    out: list[ReproRunRecord] = []
    bad = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            out.append(msgspec.json.decode(line, type=ReproRunRecord))
        except (msgspec.DecodeError, msgspec.ValidationError):
            bad += 1
    return out, bad
