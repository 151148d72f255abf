"""A session log read once without holding its samples: what the exports need of it.

A 200 MB log is ~90% Sample lines, and decoded they take ~4x their bytes. The Markdown report
needs only the figures folded from them (runs and cells, gpumon.facts.CellFold) and the few
other events; CSV and JSON need every event but one at a time, in order. So `digest()` reads
the log once through `LogReader`, folds the samples, keeps every other event but the host
samples (which no export reads), and remembers how many bytes it read: `events()` is then a
second pass over exactly those bytes, for the exporters that write every event.

A `Digest` answers what a `LoadedSession` answers for the exporters (start, end, duration,
warnings, the folder's paths), with `events` holding only the kept events; `event_count` counts
them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gpumon import analysis, facts
from gpumon import events as ev
from gpumon.session.log import SessionFolder
from gpumon.session.reader import LogReader

# Events no export reads but CSV/JSON's second pass: dropped from the digest's list. (The
# Markdown report never reads a Sample or a HostSample; its figures are the folds.)
_NOT_KEPT = (ev.Sample, ev.HostSample)


@dataclass
class Digest(SessionFolder):
    path: Path  # the session.jsonl file
    start: ev.SessionStart
    events: list[ev.Event]  # every event but Samples and HostSamples, in log order
    warnings: list[str]
    event_count: int  # all of them, samples included
    last_t: float
    end: ev.SessionEnd | None
    runs: list[analysis.Run]
    cells: list[facts.CellFacts]
    mem_names: list[str] = field(default_factory=list)  # every Sample.mem key, sorted
    consumed: int = 0  # bytes of the file read: the second pass reads no more

    @property
    def first_t(self) -> float:
        return self.start.t

    @property
    def duration(self) -> float:
        return max(0.0, self.last_t - self.first_t)

    def every_event(self) -> Iterator[ev.Event]:
        """Every event of the log again, samples included, from the bytes the digest read
        (a live log grows meanwhile; what was appended since is not read)."""
        return iter(LogReader(self.path, limit=self.consumed))


def digest(path: str | os.PathLike[str]) -> Digest:
    """One pass over the log at `path`; SessionLogError as `load()` raises it."""
    reader = LogReader(path)
    start = reader.start
    fold = facts.CellFold()
    kept: list[ev.Event] = []
    mem: set[str] = set()
    count = 0
    last_t = start.t
    end: ev.SessionEnd | None = None
    for e in reader:
        count += 1
        fold.add(e)
        if e.t > last_t:
            last_t = e.t
        if type(e) is ev.Sample:
            if e.mem:
                mem.update(e.mem)
            continue
        if isinstance(e, _NOT_KEPT):
            continue
        if isinstance(e, ev.SessionEnd):
            end = e  # the last one, as LoadedSession.end finds it
        kept.append(e)
    return Digest(
        path=reader.path,
        start=start,
        events=kept,
        warnings=reader.warnings,
        event_count=count,
        last_t=last_t,
        end=end,
        runs=fold.runs.runs,
        cells=fold.cells(),
        mem_names=sorted(mem),
        consumed=reader.consumed,
    )
