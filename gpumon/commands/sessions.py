"""`gpumon sessions [--session-dir D] [--json]`: the recorded sessions, newest first, with what
went wrong in each (crashes, hangs, pools that could not start) and the framework versions the
workers imported. The id column is what `gpumon export`/`replay` accept (a unique prefix)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from gpumon import layout, sanitize
from gpumon.commands.options import add_session_dir_argument


def configure(p: argparse.ArgumentParser) -> None:
    add_session_dir_argument(p)
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    from gpumon.fmt import duration
    from gpumon.session.sessions import list_sessions

    root = layout.session_dir(args.session_dir)
    found = list_sessions(root)
    if args.json:
        json.dump(
            [
                {
                    "path": str(s.path),
                    "session_id": s.session_id,
                    "start": s.start_t,
                    "duration_s": s.duration,
                    "mode": s.mode,
                    "pools": s.pools,
                    "crashes": s.crashes,
                    "hangs": s.hangs,
                    "failed_pools": s.failed_pools,
                    "versions": s.versions,
                    "ended": s.ended,
                    "warnings": s.warnings,
                    "error": s.error,
                }
                for s in found
            ],
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    if not found:
        print(f"no recorded sessions in {root}")
        return 0
    head = ("started (local time)", "duration", "mode", "pools", "versions", "crashes", "hangs")
    rows: list[tuple[str, ...]] = [(*head, "failed", "id", "path")]
    for s in found:
        if s.error is not None:
            blank = ("",) * (len(head) + 1)
            rows.append(("unreadable", *blank[1:], "", s.error))  # the error names the path
            continue
        assert s.start_t is not None and s.duration is not None
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.start_t))
        dur = duration(s.duration) + ("" if s.ended else " (no end: killed?)")
        rows.append(
            (
                when,
                dur,
                s.mode,
                ", ".join(s.pools) or "—",
                ", ".join(s.versions) or "—",
                str(s.crashes),
                str(s.hangs),
                ", ".join(s.failed_pools) or "—",
                s.session_id,
                str(s.path.parent),
            )
        )
    # Pool names, versions, errors and modes come from logs on disk: untrusted, shown inert.
    rows = [tuple(sanitize.line(c) for c in r) for r in rows]
    n = len(rows[0]) - 1  # the path, last, is not padded
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:n], widths, strict=True)) + "  " + r[n])
    return 0
