"""JSON export: one self-contained bundle — session facts, every event, the artifact files.

The bundle is what to attach when a reader should not need the session folder: the events are
the log's own (artifact paths relative to the session folder, as recorded), and the files that
CrashArtifact events point at are inlined as text. Shape (`bundle_version` 1):

    {"format": "gpumon-session-bundle", "bundle_version": 1, "schema": 1,
     "log": "<folder>/session.jsonl", "session": {...}, "warnings": [...],
     "events": [...], "artifacts": [{"path", "crash_ids", "kinds", "bytes", "content", ...}]}
"""

from __future__ import annotations

from typing import Any

import msgspec

from gpumon import events as ev
from gpumon.session.log import LoadedSession
from gpumon.session.redact import Redactor
from gpumon.session.times import utc_iso

BUNDLE_VERSION = 1
MAX_INLINE = 1 << 20  # bytes of one artifact inlined; a bigger file is cut and marked


def _artifact(
    session: LoadedSession, path: str, crash_ids: list[str], kinds: list[str]
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


def export_json(session: LoadedSession, redactor: Redactor | None = None) -> str:
    start, end = session.start, session.end
    files: dict[str, tuple[list[str], list[str]]] = {}
    for e in session.events:
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
        "events": [msgspec.to_builtins(session.portable(e)) for e in session.events],
        "artifacts": [_artifact(session, p, ids, kinds) for p, (ids, kinds) in files.items()],
    }
    if redactor is not None:
        bundle = redactor.walk(bundle)
    return msgspec.json.format(msgspec.json.encode(bundle), indent=2).decode() + "\n"
