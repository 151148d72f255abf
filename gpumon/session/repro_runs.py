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


def summary(rec: ReproRunRecord) -> str:
    """`reproduced 5/5 (SIGSEGV ×5, as recorded; Wilson 95% 57%–100%) by repro.py (sha256
    cc291b6e4f0a…) under mlx 0.31.1 (cpu), 2026-12-02T08:10:14.678Z`: one count, for reports."""
    from collections import Counter

    from gpumon import sanitize, stats

    how: Counter[str] = Counter()
    for signal, code, outcome in zip(rec.signals, rec.exit_codes, rec.outcomes, strict=False):
        if outcome in ("signal", "hang", "raised"):
            how[signal or ("hang" if outcome == "hang" else f"exit {code}")] += 1
    parts = [", ".join(f"{k} ×{n}" for k, n in sorted(how.items()))]
    if rec.recorded and rec.reproduced:
        same = rec.same_as_recorded
        parts[0] += ", as recorded" if same == rec.reproduced else f"; {same} as recorded"
    lo, hi = stats.wilson(rec.reproduced, rec.runs)
    parts.append(f"Wilson 95% {lo:.0%}–{hi:.0%}")
    name = rec.script if rec.inside else os.path.basename(rec.script)
    under = (
        f" under {rec.framework}" + (f" ({rec.build})" if rec.build else "")
        if rec.framework
        else ""
    )
    return sanitize.line(
        f"reproduced {rec.reproduced}/{rec.runs} ({'; '.join(p for p in parts if p)}) by "
        f"{name} (sha256 {rec.sha256[:12]}…){under}, {rec.started_utc}"
    )


def of_session(folder: Path, session_id: str) -> list[ReproRunRecord]:
    """The counts made for this session's scripts (a script copied in from elsewhere that names
    another session is not this session's evidence)."""
    return [r for r in read(folder)[0] if r.session_id in ("", session_id)]
