"""What a command line names as a session or a sweep, resolved to a file in one place.

`resolve_session` is the one function every report command calls to turn an argument into a
session log: a session.jsonl or folder, `latest`, or the start of a session id, through
gpumon.session.sessions.resolve_log like `export` and `replay`. `read_input` tells a session
log from a `gpumon sweep --json` file by content, not by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpumon import layout
from gpumon.session.log import LoadedSession, SessionLogError, load


class InputError(Exception):
    """An argument that names nothing readable; str() is one sentence."""


def resolve_session(arg: str, session_dir: str | None = None) -> Path:
    """The session.jsonl an argument names (a log, a folder, `latest`, an id prefix)."""
    from gpumon.session.sessions import resolve_log

    try:
        path = resolve_log(arg, session_dir)
    except SessionLogError as e:
        raise InputError(str(e)) from None
    if not path.is_file():
        raise InputError(f"{path}: no such session log (give a session.jsonl or its folder)")
    return path


def session_id_of(folder: Path) -> str | None:
    """The id in a session folder's first log line, without reading the whole log."""
    try:
        with open(layout.log_path(folder), "rb") as f:
            first = json.loads(f.readline(1 << 20))
    except (OSError, ValueError):
        return None
    if isinstance(first, dict) and first.get("type") == "session_start":
        sid = first.get("session_id")
        return sid if isinstance(sid, str) else None
    return None


@dataclass
class SweepFile:
    path: Path
    data: dict[str, Any]


Input = LoadedSession | SweepFile


def read_input(arg: str, session_dir: str | None = None) -> Input:
    """A session (as resolve_session reads it) or a `gpumon sweep --json` file (schema 2)."""
    p = Path(arg)
    if p.is_file():
        try:
            with open(p, "rb") as f:
                head = f.read(64).lstrip()
        except OSError as e:
            raise InputError(f"{p}: cannot read it: {e.strerror or e}") from None
        if head.startswith(b"{") and not head.startswith(b'{"type":"session_start"'):
            return _sweep(p)
    try:
        return load(resolve_session(arg, session_dir))
    except SessionLogError as e:
        raise InputError(str(e)) from None


def _sweep(p: Path) -> SweepFile:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read it ({e})") from None
    except ValueError:
        raise InputError(f"{p} is neither a gpumon session log nor a sweep JSON file") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InputError(f"{p} is neither a gpumon session log nor a sweep JSON file")
    schema = data.get("schema")
    if schema != 2:
        raise InputError(
            f"{p} is a sweep JSON of schema {schema!r}; this gpumon compares schema 2 "
            "(gpumon sweep --json from this version)"
        )
    return SweepFile(p, data)
