"""The recorded sessions under a sessions directory, newest first, each summarised from its log.

An unreadable log is listed with its error instead of stopping the listing: the one damaged
folder is usually the one a user is looking for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gpumon import events as ev
from gpumon import layout
from gpumon.session.log import SessionLogError, load


@dataclass
class SessionSummary:
    path: Path  # the session.jsonl (or the folder, when it has none)
    session_id: str = ""
    start_t: float | None = None
    duration: float | None = None
    mode: str = ""
    pools: list[str] = field(default_factory=list)
    crashes: int = 0
    ended: bool = False
    warnings: int = 0
    error: str | None = None


def summarise(path: Path) -> SessionSummary:
    try:
        s = load(path)
    except SessionLogError as err:
        return SessionSummary(path=path, error=str(err))
    pools: list[str] = []
    crashes = 0
    for e in s.events:
        if isinstance(e, ev.PoolStarting) and e.pool not in pools:
            pools.append(e.pool)
        elif isinstance(e, ev.Crash):
            crashes += 1
    return SessionSummary(
        path=s.path,
        session_id=s.start.session_id,
        start_t=s.first_t,
        duration=s.duration,
        mode=s.start.mode,
        pools=pools,
        crashes=crashes,
        ended=s.end is not None,
        warnings=len(s.warnings),
    )


def list_sessions(root: Path) -> list[SessionSummary]:
    """Every session folder directly under `root` (and loose .jsonl files), newest first;
    unreadable ones last, by name."""
    if not root.is_dir():
        return []
    found: list[SessionSummary] = []
    for child in sorted(root.iterdir()):
        if child.is_dir():
            log = layout.log_path(child)
            found.append(summarise(log if log.exists() else child))
        elif child.suffix == ".jsonl":
            found.append(summarise(child))
    readable = sorted(
        (x for x in found if x.start_t is not None), key=lambda x: x.start_t or 0.0, reverse=True
    )
    return readable + [x for x in found if x.start_t is None]
