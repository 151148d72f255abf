"""A session log read whole: every event in a list, for the readers that need them all.

`load()` collects what `gpumon.session.reader.LogReader` yields (the replay, bundles, compare,
repro); the exports stream over the reader instead (gpumon.session.digest) and never hold the
samples. Both tolerate the same damage with the same warnings and refuse the same logs with the
same one-line `SessionLogError` (see reader.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon.crash.model import CrashReport
from gpumon.session.reader import LogReader, SessionLogError, log_file

__all__ = ["LoadedSession", "SessionFolder", "SessionLogError", "load", "log_file"]


class SessionFolder:
    """Where a log lies, and its artifact paths as exports show them (relative to it)."""

    path: Path  # the session.jsonl file

    @property
    def folder(self) -> Path:
        return self.path.parent

    def relative(self, path: str) -> str:
        """An artifact path as shown in exports: relative to the session folder when inside it
        (stable wherever the folder was moved), else as recorded."""
        if not path:
            return path
        try:
            return Path(path).relative_to(self.folder.resolve()).as_posix()
        except ValueError:
            return path

    def portable(self, e: ev.Event) -> ev.Event:
        """A copy of the event with its artifact paths relative again, as the recorder wrote
        them: what exports show, so they do not depend on where the folder lies."""
        if isinstance(e, ev.CrashArtifact) and e.path:
            report = self.portable_report(e.report) if e.report is not None else None
            return msgspec.structs.replace(e, path=self.relative(e.path), report=report)
        if isinstance(e, ev.PoolReady | ev.Crash) and e.artifacts_dir:
            return msgspec.structs.replace(e, artifacts_dir=self.relative(e.artifacts_dir))
        return e

    def portable_report(self, report: CrashReport) -> CrashReport:
        if not report.source_path:
            return report
        return msgspec.structs.replace(report, source_path=self.relative(report.source_path))


@dataclass
class LoadedSession(SessionFolder):
    path: Path  # the session.jsonl file
    events: list[ev.Event]
    warnings: list[str] = field(default_factory=list)

    @property
    def start(self) -> ev.SessionStart:
        first = self.events[0]
        assert isinstance(first, ev.SessionStart)  # load() refuses logs where it is not
        return first

    @property
    def end(self) -> ev.SessionEnd | None:
        for e in reversed(self.events):
            if isinstance(e, ev.SessionEnd):
                return e
        return None

    @property
    def event_count(self) -> int:
        return len(self.events)

    def every_event(self) -> Iterator[ev.Event]:
        return iter(self.events)

    @property
    def first_t(self) -> float:
        return self.events[0].t

    @property
    def last_t(self) -> float:
        return max(e.t for e in self.events)

    @property
    def duration(self) -> float:
        return max(0.0, self.last_t - self.first_t)


def load(path: str | os.PathLike[str]) -> LoadedSession:
    """Every event of the log at `path` (a .jsonl or a session folder), with the warnings."""
    reader = LogReader(path)
    events = list(reader)  # the reader closes the file when the events are read
    return LoadedSession(path=reader.path, events=events, warnings=reader.warnings)
