"""`gpumon export LOG --format csv|json|md [--redact] [-o PATH]`.

LOG is a session.jsonl, a session folder, `latest`, or the start of a session id (or folder name)
under the sessions dir (gpumon.session.sessions.resolve_log). Output goes to stdout unless -o
names a file (all three formats: one rule is easier to remember than three, and `> file` works
everywhere).
Exit 0 when the export was written — also for a log that lost a torn last line or garbage
lines, whose warnings go to stderr (and into the md/json export), because a log cut short by a
killed monitor is exactly the one worth exporting; `--strict` makes those warnings fatal.
Exit 1 for a log that cannot be read at all, or an output that cannot be written.
"""

from __future__ import annotations

import argparse
import sys

from gpumon.commands.options import add_session_dir_argument
from gpumon.exit_codes import ExitCode
from gpumon.session.export import FORMATS


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "log",
        metavar="LOG",
        help="a session.jsonl or session folder, `latest`, or the start of a session id",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default="md",
        help="md: evidence report (default); csv: one row per sample; json: one "
        "bundle with every event and the crash artifacts inlined",
    )
    p.add_argument(
        "--redact",
        action="store_true",
        help="replace the recording user's name with <user> and their home "
        "directory with ~ everywhere, crash reports and artifacts included",
    )
    p.add_argument(
        "-o", "--output", metavar="PATH", default=None, help="write here instead of stdout"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) if the log had unreadable lines instead of warning",
    )
    add_session_dir_argument(p)


def _fail(message: str) -> int:
    print(f"gpumon export: {message}", file=sys.stderr)
    return ExitCode.ERROR


def run(args: argparse.Namespace) -> int:
    from gpumon.session.export import render
    from gpumon.session.log import SessionLogError, load
    from gpumon.session.redact import Redactor
    from gpumon.session.sessions import resolve_log

    try:
        session = load(resolve_log(args.log, args.session_dir))
    except SessionLogError as e:
        return _fail(str(e))
    redactor = Redactor.for_host(session.start.host) if args.redact else None
    for w in session.warnings:
        print(f"gpumon export: warning: {redactor.text(w) if redactor else w}", file=sys.stderr)
    if session.warnings and args.strict:
        return _fail(f"{len(session.warnings)} warning(s) and --strict: nothing written")
    text = render(session, args.format, redactor)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return ExitCode.OK
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        return _fail(f"cannot write {args.output}: {e.strerror or e}")
    return ExitCode.OK
