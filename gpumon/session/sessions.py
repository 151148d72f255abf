"""The recorded sessions under a sessions directory: listed newest first (each summarised from
its log), and found by what a user types for LOG (`resolve_log`).

An unreadable log is listed with its error instead of stopping the listing: the one damaged
folder is usually the one a user is looking for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon import layout, sanitize
from gpumon.session.log import SessionLogError, load, log_file

LATEST = "latest"
_MAX_NAMED = 8  # candidates named in an "ambiguous" error; the rest are counted


@dataclass
class SessionSummary:
    path: Path  # the session.jsonl (or the folder, when it has none)
    session_id: str = ""
    start_t: float | None = None
    duration: float | None = None
    mode: str = ""
    pools: list[str] = field(default_factory=list)
    crashes: int = 0
    hangs: int = 0
    failed_pools: list[str] = field(default_factory=list)  # pools that could not start
    versions: list[str] = field(default_factory=list)  # what the workers imported: "mlx 0.31.1"
    ended: bool = False
    warnings: int = 0
    error: str | None = None


def summarise(path: Path) -> SessionSummary:
    try:
        s = load(path)
    except SessionLogError as err:
        return SessionSummary(path=path, error=str(err))
    pools: list[str] = []
    failed: list[str] = []
    versions: list[str] = []
    crashes = hangs = 0
    for e in s.events:
        if isinstance(e, ev.PoolStarting) and e.pool not in pools:
            pools.append(e.pool)
        elif isinstance(e, ev.Crash):
            crashes += 1
        elif isinstance(e, ev.Stall):
            hangs += 1
        elif isinstance(e, ev.PoolFailed) and e.pool not in failed:
            failed.append(e.pool)
        elif isinstance(e, ev.PoolReady) and e.versions.get(e.backend):
            v = f"{e.backend} {e.versions[e.backend]}"
            if v not in versions:
                versions.append(v)
    return SessionSummary(
        path=s.path,
        session_id=s.start.session_id,
        start_t=s.first_t,
        duration=s.duration,
        mode=s.start.mode,
        pools=pools,
        crashes=crashes,
        hangs=hangs,
        failed_pools=failed,
        versions=versions,
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


class _Start(msgspec.Struct):
    session_id: str = ""
    t: float = 0.0


def _peek_start(log: Path) -> _Start | None:
    """The session id and start time from a log's first line only: resolving `latest` among
    hundreds of sessions must not read every 200 MB log."""
    try:
        with open(log, "rb") as f:
            first = f.readline(1 << 20)
        start = msgspec.json.decode(first, type=_Start)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return start if start.session_id else None


def _candidates(root: Path) -> list[tuple[Path, _Start]]:
    """Every readable session directly under `root`: (its log, its first line)."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        log = layout.log_path(child) if child.is_dir() else child
        if log.suffix != ".jsonl" or not log.is_file():
            continue
        start = _peek_start(log)
        if start is not None:
            found.append((log, start))
    return found


def _looks_like_a_path(ref: str) -> bool:
    return os.sep in ref or ref.endswith(".jsonl") or ref in (".", "..") or ref.startswith("~")


def resolve_log(ref: str, session_dir: str | os.PathLike[str] | None = None) -> Path:
    """What a user may type wherever a LOG is taken (export, replay, compare): a session.jsonl
    or session folder; `latest` (the session that started last); or a unique prefix of a
    session id or folder name under the sessions dir (`--session-dir`, $GPUMON_SESSION_DIR,
    the default). Raises SessionLogError with one sentence: nothing matches, or the prefix is
    ambiguous (naming the candidates)."""
    if Path(ref).expanduser().exists() or _looks_like_a_path(ref):
        return log_file(Path(ref).expanduser())
    root = layout.session_dir(session_dir)
    found = _candidates(root)
    if ref == LATEST:
        if not found:
            raise SessionLogError(f"no recorded sessions in {root}")
        return max(found, key=lambda c: c[1].t)[0]
    matches = [
        (log, start)
        for log, start in found
        if start.session_id.startswith(ref) or _name(log, root).startswith(ref)
    ]
    if not ref or not matches:
        raise SessionLogError(
            f"{ref!r} is not a file, `latest`, or the start of a session id in {root} "
            "(`gpumon sessions` lists them)"
        )
    if len(matches) > 1:
        matches.sort(key=lambda c: c[1].t, reverse=True)
        # ids and folder names come from disk: shown inert (gpumon.sanitize)
        named = ", ".join(
            sanitize.line(f"{s.session_id} ({_name(log, root)})") for log, s in matches[:_MAX_NAMED]
        )
        more = f" and {len(matches) - _MAX_NAMED} more" if len(matches) > _MAX_NAMED else ""
        raise SessionLogError(
            f"{ref!r} matches {len(matches)} sessions: {named}{more}; type more of the id"
        )
    return matches[0][0]


def _name(log: Path, root: Path) -> str:
    """The folder name (or loose file's name) a user sees in the sessions dir."""
    return log.parent.name if log.parent != root else log.name
