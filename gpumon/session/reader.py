"""Reads a session log one line at a time, tolerating the damage a killed monitor can leave.

`LogReader` is the one reader of the log: `gpumon.session.log.load` collects what it yields into
a list (replay, bundle, compare, repro), and the exports fold over it without ever holding the
samples, so a 200 MB log costs one line of memory plus whatever the consumer keeps.

What is tolerated, each with a warning in `LogReader.warnings` once the events have been read: a
torn last line (the monitor was killed mid-write), and garbage lines anywhere (named by line
number). What is refused with a one-line `SessionLogError`, when the reader is opened: a
missing or unreadable file, an empty one, a file whose first line is not a gpumon
`session_start`, and a log written by a newer schema than this gpumon reads (the reader cannot
know what the newer fields mean, so it does not guess).
"""

from __future__ import annotations

import os
import stat
import typing
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import msgspec

from gpumon import events as ev
from gpumon import layout
from gpumon.fmt import plural
from gpumon.session import upgrade

_MAX_LISTED = 20  # line numbers named per warning; the rest are counted
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


class SessionLogError(Exception):
    """A log that cannot be read at all; str() is one sentence for the user."""


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


class LogReader:
    """One pass over a session log, an event at a time.

    Opening reads and checks the first line (SessionLogError if the file is not a log this
    gpumon reads) and sets `start`. Iterating (once) yields every event in log order: schema-1
    lines upgraded (gpumon.session.upgrade), artifact paths made absolute and confined to the
    session folder. `warnings` is complete when the iteration has ended, in the order `load()`
    has always given them. `limit` reads no more than that many bytes of the file: a second
    pass over a live log (one still being appended to) then sees exactly what the first saw.
    """

    def __init__(self, path: str | os.PathLike[str], *, limit: int | None = None) -> None:
        self.path = log_file(path)
        self.consumed = 0  # bytes read so far
        self._limit = limit
        self._used = False
        self._joined: list[str] = []  # "starts another session", in line order
        self._problems: dict[str, list[int]] = {}  # reason -> line numbers
        self._torn = ""
        self._refused: dict[str, None] = {}  # artifact paths that leave the folder, in order
        self._folder = self.path.parent.resolve()
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise SessionLogError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise SessionLogError(f"{self.path} is a folder, not a session log") from None
        except OSError as e:
            raise SessionLogError(f"{self.path}: cannot read it: {e.strerror or e}") from None
        if limit is None:
            # What the file holds now, like a read of the whole file would see: a live log
            # (the monitor's own export) is read as it stood when the reader was opened.
            st = os.fstat(self._file.fileno())
            self._limit = st.st_size if stat.S_ISREG(st.st_mode) else None
        try:
            self.start = self._first_line()
        except BaseException:
            self.close()
            raise
        self._fill = upgrade.ConfigFill() if self.start.schema < ev.SCHEMA_VERSION else None

    # ---- the file ------------------------------------------------------------------
    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _readline(self) -> bytes:
        try:
            if self._limit is None:
                raw = self._file.readline()
            else:
                left = self._limit - self.consumed
                raw = self._file.readline(left) if left > 0 else b""
        except OSError as e:
            raise SessionLogError(f"{self.path}: cannot read it: {e.strerror or e}") from None
        self.consumed += len(raw)
        return raw

    def _first_line(self) -> ev.SessionStart:
        raw = self._readline()
        if not raw.strip() and not self._rest_has_text():
            raise SessionLogError(f"{self.path} is empty: no events were recorded in it")
        complete = raw.endswith(b"\n")
        return _session_start(self.path, raw[:-1] if complete else raw, only_line=not complete)

    def _rest_has_text(self) -> bool:
        """After a blank first line: does anything but whitespace follow? (An all-blank file
        is empty; anything else is not a log, because its first line is not a start.)"""
        while chunk := self._readline():
            if chunk.strip():
                return True
        return False

    # ---- the events ----------------------------------------------------------------
    def __iter__(self) -> Iterator[ev.Event]:
        if self._used:
            raise RuntimeError("a LogReader is read once; open another for a second pass")
        self._used = True
        yield self.start
        v1 = self._fill is not None
        number = 1
        try:
            while raw := self._readline():
                number += 1
                complete = raw.endswith(b"\n")  # every complete line ends with "\n"
                line = raw[:-1] if complete else raw
                try:
                    decoded = upgrade.decode_v1(line) if v1 else (ev.decode(line),)
                except _DECODE_ERRORS as err:
                    if complete:
                        self._problems.setdefault(_reason(line, err), []).append(number)
                    else:
                        self._torn = (
                            f"line {number} (the last, {len(line)} bytes) is incomplete: the "
                            "monitor was probably killed while writing it; skipped"
                        )
                    continue  # an incomplete line is the last one: the next read is b""
                for event in decoded:
                    if type(event) is not ev.Sample:  # the bulk of a log needs none of this
                        self._check(event, number)
                    yield event
        finally:
            self.close()

    def _check(self, event: ev.Event, number: int) -> None:
        if isinstance(event, ev.SessionStart):
            self._joined.append(
                f"line {number} starts another session ({event.session_id}): two logs "
                "were joined into one file; their events are read as one session"
            )
        if self._fill is not None:
            self._fill.apply(event)
        self._confine(event)

    @property
    def warnings(self) -> list[str]:
        """What was skipped or refused, complete once the events have been read."""
        out = list(self._joined)
        for reason, numbers in self._problems.items():
            out.append(f"skipped {plural(len(numbers), 'line')} ({reason}): {_ranges(numbers)}")
        if self._torn:
            out.append(self._torn)  # last of the line warnings, like the line it is about
        out += [
            f"artifact path {p!r} leaves the session folder: it was not read" for p in self._refused
        ]
        return out

    # ---- artifact paths ------------------------------------------------------------
    def _confine(self, e: ev.Event) -> None:
        """The recorder writes artifact paths relative to the session folder so the folder can
        move; events read back carry absolute paths again, like live ones. A log is input
        like any other: a path that leaves the folder (absolute, `~`, `..`, a link pointing
        out) is refused — the event keeps no path, a note says why, and no export or screen
        will read it."""
        if isinstance(e, ev.Artifact):
            recorded = e.path
            e.path = self._inside(e.path)
            if recorded and not e.path:
                note = f"path {recorded!r} leaves the session folder: not read"
                e.note = f"{e.note}; {note}" if e.note else note
            if e.report is not None and e.report.source_path:
                e.report.source_path = self._inside(e.report.source_path) or "(outside the session)"
        elif isinstance(e, ev.PoolReady | ev.Crash):
            e.artifacts_dir = self._inside(e.artifacts_dir)

    def _inside(self, path: str) -> str:
        if not path:
            return path
        rel = path
        if os.path.isabs(path):
            try:  # absolute but inside the folder (an old log, a live session's own path)
                rel = os.path.relpath(path, self._folder)
            except ValueError:
                rel = path
        target = layout.confine(self._folder, rel)
        if target is None:
            self._refused[path] = None
            return ""
        return str(target)


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
    except _DECODE_ERRORS as err:
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
