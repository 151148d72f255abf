"""Every exit status gpumon returns, in one place (documented in README.md, "Exit status").

Headless runs (`sweep`, `run`, `pipe`, `bisect`) report the worst thing that happened to a
worker: a crash wins over a hang, a hang over a pool that could not start.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # bad input file, a pool that could not run, a recording that failed
    USAGE = 2  # unknown flag, bad option value or pool spec
    CRASHED = 3  # at least one worker died
    PARTIAL = 4  # `gpumon crash`: the report was read only in part
    HUNG = 5  # at least one worker stalled (no crash)
    INTERNAL = 70  # a bug in gpumon itself (sysexits EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C


def worst(*, crashed: bool, hung: bool, failed: bool) -> ExitCode:
    """The exit status of a headless run: crash > hang > a pool that could not run > ok."""
    if crashed:
        return ExitCode.CRASHED
    if hung:
        return ExitCode.HUNG
    if failed:
        return ExitCode.ERROR
    return ExitCode.OK
