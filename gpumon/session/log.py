"""Reads a session log back, tolerating the damage a killed monitor can leave, never silently.

What is tolerated, each with a warning in `LoadedSession.warnings`: a torn last line (the
monitor was killed mid-write), and garbage lines anywhere (named by line number). What is
refused with a one-line `SessionLogError`: a missing or unreadable file, an empty one, a file
whose first line is not a gpumon `session_start`, and a log written by a newer schema than this
gpumon reads (the reader cannot know what the newer fields mean, so it does not guess).
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon import layout
from gpumon.crash.model import CrashReport
from gpumon.fmt import plural
from gpumon.session import upgrade

_MAX_LISTED = 20  # line numbers named per warning; the rest are counted


class SessionLogError(Exception):
    """A log that cannot be read at all; str() is one sentence for the user."""


@dataclass
class LoadedSession:
    path: Path  # the session.jsonl file
    events: list[ev.Event]
    warnings: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent

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
    def first_t(self) -> float:
        return self.events[0].t

    @property
    def last_t(self) -> float:
        return max(e.t for e in self.events)

    @property
    def duration(self) -> float:
        return max(0.0, self.last_t - self.first_t)

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


def log_file(path: str | os.PathLike[str]) -> Path:
    """A .jsonl path as given, or the session.jsonl inside a session folder."""
    p = Path(path)
    if p.is_dir():
        inner = layout.log_path(p)
        if not inner.is_file():
            raise SessionLogError(
                f"{p} is a folder without a {layout.LOG_NAME}: not a gpumon session folder"
            )
        return inner
    return p


def load(path: str | os.PathLike[str]) -> LoadedSession:
    p = log_file(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SessionLogError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise SessionLogError(f"{p} is a folder, not a session log") from None
    except OSError as e:
        raise SessionLogError(f"{p}: cannot read it: {e.strerror or e}") from None
    if not data.strip():
        raise SessionLogError(f"{p} is empty: no events were recorded in it")
    lines = data.split(b"\n")
    torn_tail = lines[-1] != b""  # every complete line ends with "\n"
    if not torn_tail:
        lines.pop()
    start = _session_start(p, lines[0], only_line=torn_tail and len(lines) == 1)
    events: list[ev.Event] = [start]
    decode = _decode if start.schema >= ev.SCHEMA_VERSION else upgrade.decode_v1
    problems: dict[str, list[int]] = {}
    warnings: list[str] = []
    torn = ""
    last = len(lines)
    for number, line in enumerate(lines[1:], start=2):
        try:
            decoded = decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            if number == last and torn_tail:
                torn = (
                    f"line {number} (the last, {len(line)} bytes) is incomplete: the monitor "
                    "was probably killed while writing it; skipped"
                )
            else:
                problems.setdefault(_reason(line, err), []).append(number)
            continue
        for event in decoded:
            if isinstance(event, ev.SessionStart):
                warnings.append(
                    f"line {number} starts another session ({event.session_id}): two logs "
                    "were joined into one file; their events are read as one session"
                )
            events.append(event)
    for reason, numbers in problems.items():
        warnings.append(f"skipped {plural(len(numbers), 'line')} ({reason}): {_ranges(numbers)}")
    if torn:
        warnings.append(torn)  # last, like the line it is about
    if start.schema < ev.SCHEMA_VERSION:
        upgrade.fill_configs(events)
    loaded = LoadedSession(path=p, events=events, warnings=warnings)
    _absolute_paths(loaded)
    return loaded


def _decode(line: bytes) -> list[ev.Event]:
    return [ev.decode(line)]


def _session_start(p: Path, line: bytes, only_line: bool) -> ev.SessionStart:
    """Decode line 1, which must be a session_start of a schema this gpumon reads."""
    not_a_log = f"{p} is not a gpumon session log (its first line is not a session_start event)"
    try:
        raw = msgspec.json.decode(line)
    except msgspec.DecodeError:
        if only_line and line.startswith(b'{"type":"session_start"'):
            raise SessionLogError(
                f"{p} holds only an incomplete first line: the monitor was "
                "killed while it was starting; nothing was recorded"
            ) from None
        raise SessionLogError(not_a_log) from None
    if not isinstance(raw, dict) or raw.get("type") != "session_start":
        raise SessionLogError(not_a_log)
    # Older recorders could omit `schema` (msgspec drops defaults); those logs are schema 1.
    schema = raw.get("schema", 1)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise SessionLogError(f"{p} has an unreadable schema version {schema!r} in its first line")
    if schema > ev.SCHEMA_VERSION:
        raise SessionLogError(
            f"{p} was written by a newer gpumon (schema {schema}); this gpumon reads up to "
            f"{ev.SCHEMA_VERSION} — upgrade gpumon"
        )
    try:
        start = ev.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise SessionLogError(f"{p}: its session_start line is damaged ({err})") from None
    assert isinstance(start, ev.SessionStart)
    start.schema = schema  # absent means 1, whatever today's default is
    return start


def _reason(line: bytes, err: Exception) -> str:
    if not line.strip():
        return "empty"
    if isinstance(err, msgspec.ValidationError):
        try:
            kind = msgspec.json.decode(line).get("type")
        except (msgspec.DecodeError, AttributeError):
            kind = None
        known = {t.__struct_config__.tag for t in typing.get_args(ev.AnyEvent)}
        if isinstance(kind, str) and kind not in known:
            return f"unknown event type {kind!r}, perhaps from a newer gpumon"
        return f"not a valid event: {err}"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data, not text"
    return "not JSON"


def _absolute_paths(s: LoadedSession) -> None:
    """The recorder writes artifact paths relative to the session folder so the folder can
    move; loaded events carry absolute paths again, like live ones. A log is input like any
    other: a path that leaves the folder (absolute, `~`, `..`, a link pointing out) is refused
    — the event keeps no path, a note says why, and no export or screen will read it."""
    folder = s.folder.resolve()
    refused: list[str] = []

    def inside(path: str) -> str:
        if not path:
            return path
        rel = path
        if os.path.isabs(path):
            try:  # absolute but inside the folder (an old log, a live session's own path)
                rel = os.path.relpath(path, folder)
            except ValueError:
                rel = path
        target = layout.confine(folder, rel)
        if target is None:
            refused.append(path)
            return ""
        return str(target)

    for e in s.events:
        if isinstance(e, ev.Artifact):
            recorded = e.path
            e.path = inside(e.path)
            if recorded and not e.path:
                note = f"path {recorded!r} leaves the session folder: not read"
                e.note = f"{e.note}; {note}" if e.note else note
            if e.report is not None and e.report.source_path:
                e.report.source_path = inside(e.report.source_path) or "(outside the session)"
        elif isinstance(e, ev.PoolReady | ev.Crash):
            e.artifacts_dir = inside(e.artifacts_dir)
    for path in dict.fromkeys(refused):
        s.warnings.append(f"artifact path {path!r} leaves the session folder: it was not read")


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9" (at most _MAX_LISTED numbers named, the rest counted)."""
    parts: list[str] = []
    shown = numbers[:_MAX_LISTED]
    start = prev = shown[0]
    for n in [*shown[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    text = "lines " + ", ".join(parts) if len(numbers) > 1 else f"line {numbers[0]}"
    if len(numbers) > _MAX_LISTED:
        text += f" and {len(numbers) - _MAX_LISTED} more"
    return text
