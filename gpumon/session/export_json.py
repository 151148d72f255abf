"""JSON export: one self-contained bundle — session facts, every event, the artifact files.

The bundle is what to attach when a reader should not need the session folder: the events are
the log's own (artifact paths relative to the session folder, as recorded), and the files that
CrashArtifact events point at are inlined as text. Shape (`bundle_version` 1):

    {"format": "gpumon-session-bundle", "bundle_version": 1, "schema": 1,
     "log": "<folder>/session.jsonl", "session": {...}, "warnings": [...],
     "events": [...], "artifacts": [{"path", "crash_ids", "kinds", "bytes", "content", ...}]}
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import msgspec

from gpumon import events as ev
from gpumon.session.digest import Digest
from gpumon.session.log import LoadedSession
from gpumon.session.redact import Redactor
from gpumon.session.times import utc_iso

BUNDLE_VERSION = 1
MAX_INLINE = 1 << 20  # bytes of one artifact inlined; a bigger file is cut and marked


def _artifact(
    session: LoadedSession | Digest, path: str, crash_ids: list[str], kinds: list[str]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": session.relative(path), "crash_ids": crash_ids, "kinds": kinds}
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INLINE + 1)
            size = f.seek(0, 2)
    except OSError as e:
        entry["missing"] = f"not readable: {e.strerror or e}"
        return entry
    entry["bytes"] = size
    if len(data) > MAX_INLINE:
        data = data[:MAX_INLINE]
        entry["truncated_to"] = MAX_INLINE
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        entry["encoding"] = "utf-8, invalid bytes replaced"
    entry["content"] = text
    return entry


def export_json(session: LoadedSession | Digest, redactor: Redactor | None = None) -> str:
    out = io.StringIO()
    write_json(session, out.write, redactor)
    return out.getvalue()


def write_json(
    session: LoadedSession | Digest, write: Callable[[str], object], redactor: Redactor | None
) -> None:
    """The bundle, written a piece at a time: the head (everything but the events) is
    formatted as one document with an empty events list, and each event is formatted alone
    and indented to its depth in the bundle where that empty list was. A 200 MB log's bundle
    (~2 GB as Python objects) is never held; the bytes are those of formatting it whole."""
    start, end = session.start, session.end
    files: dict[str, tuple[list[str], list[str]]] = {}
    for e in session.events:  # a digest keeps every CrashArtifact
        if isinstance(e, ev.CrashArtifact) and e.path:
            ids, kinds = files.setdefault(e.path, ([], []))
            if e.crash_id not in ids:
                ids.append(e.crash_id)
            if e.kind not in kinds:
                kinds.append(e.kind)
    bundle: dict[str, Any] = {
        "format": "gpumon-session-bundle",
        "bundle_version": BUNDLE_VERSION,
        "schema": start.schema,
        "log": f"{session.folder.name}/{session.path.name}",
        "session": {
            "session_id": start.session_id,
            "start_utc": utc_iso(start.t),
            "duration_s": round(session.duration, 3),
            "ended": end is not None,
            "end_reason": end.reason if end is not None else None,
            "mode": start.mode,
            "gpumon_version": start.gpumon_version,
            "argv": start.argv,
            "cwd": start.cwd,
            "host": msgspec.to_builtins(start.host),
        },
        "warnings": session.warnings,
        "events": [],  # written in its place below, one event at a time
        "artifacts": [_artifact(session, p, ids, kinds) for p, (ids, kinds) in files.items()],
    }
    if redactor is not None:
        bundle = redactor.walk(bundle)  # keys too: "events" is looked up as redacted
    key = redactor.text("events") if redactor is not None else "events"
    head = _formatted(bundle)
    empty = f"\n{_INDENT}{msgspec.json.encode(key).decode()}: [],\n"
    before, found, after = head.partition(empty)
    assert found, "the bundle's events key is a top-level key of the formatted head"
    write(before + empty[:-3])  # up to and with the opening "["
    inner = "\n" + _INDENT * 2
    sep = "\n"
    for e in session.every_event():
        item = msgspec.to_builtins(session.portable(e))
        if redactor is not None:
            item = redactor.walk(item)
        # No JSON string holds a raw newline, so every newline is a line of the layout.
        write(sep + _INDENT * 2 + _formatted(item).replace("\n", inner))
        sep = ",\n"
    write(f"\n{_INDENT}],\n" + after + "\n")


_INDENT = "  "  # msgspec.json.format's indent=2, per level


def _formatted(obj: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(obj), indent=len(_INDENT)).decode()
