"""`gpumon crash FILE`: summarise a crash report, or print it as JSON.

Exit status: 0 the report was read completely; 1 the file could not be read or holds no crash
report (one line on stderr, never a traceback); 4 the report was read only in part (truncated
or damaged): the summary is printed and one stderr line says what is missing, so a script
cannot mistake a truncated report for a complete one.

Imported by gpumon/cli.py while it builds the parser, so only argparse is imported at module
level; the parsers and rich are imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpumon.crash.model import CrashReport

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 4


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE",
        help="a macOS .ips or .crash report, a Python faulthandler dump or a gdb backtrace "
        "(- reads standard input)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the parsed report as JSON (with a 'verdict' field) instead of a summary",
    )
    parser.add_argument(
        "--full", action="store_true", help="show every frame of every thread (no folding)"
    )
    parser.add_argument("--no-color", action="store_true", help="plain text, no colours")
    parser.add_argument(
        "--python",
        metavar="FAULTHANDLER_FILE",
        help="a faulthandler dump of the same crash: adds where the Python code was",
    )


def _load(name: str) -> CrashReport:
    """Parse FILE or stdin; raises CrashParseError with the user-facing reason."""
    from gpumon.crash import parse

    if name == "-":
        raw = sys.stdin.buffer.read(parse.MAX_BYTES + 1)
        return parse.parse_bytes(
            raw[: parse.MAX_BYTES], source_path=None, truncated=len(raw) > parse.MAX_BYTES
        )
    return parse.parse_file(name)


def _fail(name: str, reason: str) -> int:
    print(f"gpumon crash: {name}: {reason}", file=sys.stderr)
    return EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    from gpumon.crash.model import CrashParseError

    name = "<stdin>" if args.file == "-" else args.file
    report = python = None
    for which in ("file", "python"):
        path = getattr(args, which, None)
        if path is None:
            continue
        shown = "<stdin>" if path == "-" else path
        try:
            loaded = _load(path)
        except CrashParseError as e:
            return _fail(shown, str(e))
        except (RecursionError, MemoryError) as e:
            return _fail(shown, f"too large or too deeply nested to read ({type(e).__name__})")
        except Exception as e:  # a parser bug must still not print a traceback at the user
            return _fail(shown, f"could not be read (internal error: {type(e).__name__}: {e})")
        if which == "file":
            report = loaded
        else:
            python = loaded
    assert report is not None
    try:
        if args.json:
            _print_json(report, python)
        else:
            _print_summary(report, python, full=args.full, no_color=args.no_color)
    except BrokenPipeError:
        raise
    except Exception as e:
        return _fail(name, f"could not be shown (internal error: {type(e).__name__}: {e})")
    if report.warnings:
        print(
            f"gpumon crash: {name}: partial report: {'; '.join(report.warnings)}", file=sys.stderr
        )
        return EXIT_PARTIAL
    return EXIT_OK


def _print_json(report: CrashReport, python: CrashReport | None) -> None:
    import json

    import msgspec

    from gpumon.crash.classify import verdict

    data = msgspec.to_builtins(report)
    data["verdict"] = verdict(report, python)
    if python is not None:
        data["python"] = msgspec.to_builtins(python)
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _print_summary(
    report: CrashReport, python: CrashReport | None, *, full: bool, no_color: bool
) -> None:
    from rich.console import Console

    from gpumon.crash.render import render_report

    tty = sys.stdout.isatty()
    console = Console(
        file=sys.stdout,
        no_color=no_color,
        color_system=None if no_color else "auto",
        highlight=False,
        # Piped output is read by people in editors and by grep: do not hard-wrap at 80.
        width=None if tty else 200,
        soft_wrap=not tty,
    )
    console.print(render_report(report, python, full=full))
