"""`gpumon replay LOG`: a recorded session in the same screens, with play/pause/speed/seek.

Module-level imports stay light (see gpumon.commands); the log is loaded before Textual starts so an
unreadable log is one line and exit 1, not a traceback inside a full-screen app.
"""

from __future__ import annotations

import argparse
import sys

from gpumon.commands.options import add_session_dir_argument


def speed(text: str) -> float:
    try:
        value = float(text.rstrip("x×"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed (e.g. 2 or 0.5)") from None
    if not 0.01 <= value <= 100:
        raise argparse.ArgumentTypeError(f"speed {text!r} is out of range; use 0.01..100")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "log",
        metavar="LOG",
        help="a session.jsonl or session folder, `latest`, or the start of a session id",
    )
    parser.add_argument(
        "--speed",
        type=speed,
        default=1.0,
        metavar="X",
        help="playback speed (default 1; < and > change it while playing)",
    )
    parser.add_argument(
        "--paused", action="store_true", help="open paused at the start (space plays)"
    )
    parser.add_argument(
        "--follow-crashes",
        action="store_true",
        help="open the crash screen by itself on the first crash",
    )
    add_session_dir_argument(parser)


def run(args: argparse.Namespace) -> int:
    from gpumon.session.log import SessionLogError, load
    from gpumon.session.sessions import resolve_log

    try:
        path = resolve_log(args.log, args.session_dir)
        session = load(path)
    except SessionLogError as e:
        print(f"gpumon: {e}", file=sys.stderr)
        return 1
    for w in session.warnings:
        print(f"gpumon: {path}: {w}", file=sys.stderr)
    if not sys.stdout.isatty():
        print(
            "gpumon: replay needs a terminal; `gpumon export` turns a log into csv/json/md",
            file=sys.stderr,
        )
        return 1

    from gpumon.tui.app import replay_app

    app = replay_app(
        path,
        events=session.events,
        speed=args.speed,
        paused=args.paused,
        follow_crashes=args.follow_crashes,
    )
    return int(app.run() or 0)
