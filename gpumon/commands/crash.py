"""`gpumon crash FILE`: summarise a crash report, or print it as JSON.

Exit status: 0 the report was read completely; 1 the file could not be read or holds no crash
report (one line on stderr, never a traceback); 4 the report was read only in part (truncated,
damaged, a paste of part of a report, one of several reports): the summary is printed and one
stderr line gives the reasons, so a script cannot mistake a partial report for a complete one.

The summary shows at most a screenful of frames per thread and parses with a frame cap, so a
100 MB dump is summarised in bounded memory; `--full` and `--json` read and show every frame.
Everything printed from the report passes through `gpumon.sanitize` (control characters shown
as escapes); `--json` is the parsed data as it is, JSON escaping control characters itself.

Imported by gpumon/cli.py while it builds the parser, so only argparse is imported at module
level; the parsers and rich are imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gpumon.exit_codes import ExitCode

if TYPE_CHECKING:
    import re

    from gpumon.crash.model import CrashReport

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = ExitCode.OK, ExitCode.ERROR, ExitCode.PARTIAL
# Frames kept per thread when only a summary is printed (it shows far fewer); the rest are
# counted. --full and --json keep every frame.
SUMMARY_FRAME_CAP = 200


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
        "--full",
        action="store_true",
        help="show every frame of every thread (no folding, no frame cap, symbols whole)",
    )
    parser.add_argument("--no-color", action="store_true", help="plain text, no colours")
    parser.add_argument(
        "--python",
        metavar="FAULTHANDLER_FILE",
        help="a faulthandler dump of the same crash: adds where the Python code was",
    )


def _load(name: str, frame_cap: int | None) -> CrashReport:
    """Parse FILE or stdin; raises CrashParseError with the user-facing reason."""
    from gpumon.crash import parse

    if name == "-":
        return parse.parse_stream(sys.stdin.buffer, source_path=None, frame_cap=frame_cap)
    return parse.parse_file(name, frame_cap=frame_cap)


def _fail(name: str, reason: str) -> int:
    from gpumon import sanitize

    print(sanitize.line(f"gpumon crash: {name}: {reason}"), file=sys.stderr)
    return EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    from gpumon.crash.model import CrashParseError

    name = "<stdin>" if args.file == "-" else args.file
    cap = None if args.full or args.json else SUMMARY_FRAME_CAP
    report = python = None
    for which in ("file", "python"):
        path = getattr(args, which, None)
        if path is None:
            continue
        shown = "<stdin>" if path == "-" else path
        try:
            loaded = _load(path, cap)
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
        from gpumon import sanitize

        reasons = "; ".join(report.warnings)
        print(sanitize.line(f"gpumon crash: {name}: partial report: {reasons}"), file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _print_json(report: CrashReport, python: CrashReport | None) -> None:
    import re

    import msgspec

    from gpumon.crash.classify import verdict

    # msgspec encodes the report in C without building dicts first: a dump with millions of
    # frames must not need gigabytes. The verdict (and the Python report) follow its fields.
    extra: dict[str, object] = {"verdict": verdict(report, python)}
    if python is not None:
        extra["python"] = python
    joined = msgspec.json.encode(report)[:-1] + b"," + msgspec.json.encode(extra)[1:]
    data = msgspec.json.format(joined, indent=2)
    del joined
    # ASCII-only JSON: every control character, C1 code and bidi override in the report's
    # text becomes a \u escape, so the data stays whole and nothing in it acts on a terminal.
    if data.isascii() and b"\x7f" not in data:
        sys.stdout.flush()
        sys.stdout.buffer.write(data + b"\n")
        sys.stdout.buffer.flush()
        return
    text = re.sub(r"[^\n\x20-\x7e]", _json_escape, data.decode())
    sys.stdout.write(text + "\n")


def _json_escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


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
