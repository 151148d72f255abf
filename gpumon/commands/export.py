"""`gpumon export LOG --format csv|json|md|repro|bundle [--redact] [-o PATH]`.

LOG is a session.jsonl, a session folder, `latest`, or the start of a session id (or folder name)
under the sessions dir (gpumon.session.sessions.resolve_log). Output goes to stdout unless -o
names a file (all three formats: one rule is easier to remember than three, and `> file` works
everywhere).
Exit 0 when the export was written — also for a log that lost a torn last line or garbage
lines, whose warnings go to stderr (and into the md/json export), because a log cut short by a
killed monitor is exactly the one worth exporting; `--strict` makes those warnings fatal.
Exit 1 for a log that cannot be read at all, or an output that cannot be written.

`repro` (a standalone script) and `bundle` (a zip) are built by gpumon.report. A bundle is
binary, so it goes to a file (default `<session folder name>.zip` here) and never replaces an
existing one without --force: a redacted bundle silently overwritten by an unredacted one is
exactly the mistake that must not happen before an upload. `-o -` writes it to a pipe.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from gpumon import sanitize
from gpumon.commands.options import add_session_dir_argument
from gpumon.exit_codes import ExitCode
from gpumon.report import REPORT_FORMATS
from gpumon.session.export import FORMATS

if TYPE_CHECKING:  # the parser imports this module: the work is imported in run()
    from gpumon.session.digest import Digest as _Digest
    from gpumon.session.log import LoadedSession
    from gpumon.session.redact import Redactor


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "log",
        metavar="LOG",
        help="a session.jsonl or session folder, `latest`, or the start of a session id",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=(*FORMATS, *REPORT_FORMATS),
        default="md",
        help="md: evidence report (default); csv: one row per sample; json: one "
        "bundle with every event and the crash artifacts inlined; repro: a standalone script "
        "that reproduces the first crash (gpumon repro runs it); bundle: a zip to attach; "
        "issue: a skeleton of an upstream issue in MLX's or PyTorch's template (--for)",
    )
    p.add_argument(
        "--for",
        dest="project",
        choices=("mlx", "torch"),
        default=None,
        help="issue: whose issue template to fill",
    )
    p.add_argument(
        "--crash",
        metavar="ID",
        default=None,
        help="repro/bundle/issue: the crash it is about (default: the first crash of an MLX or "
        "torch pool; for an issue, of the largest signature of that framework)",
    )
    p.add_argument(
        "--max-size",
        metavar="MIB",
        type=_mebibytes,
        default=10.0,
        help="bundle: the zip's size budget in MiB (default 10)",
    )
    p.add_argument(
        "--force", action="store_true", help="bundle: replace an existing zip at the output path"
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


def _mebibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
    if not 0.01 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text} MiB is out of range; use 0.01..100000")
    return value


def _fail(message: str) -> int:
    print(f"gpumon export: {message}", file=sys.stderr)
    return ExitCode.ERROR


def run(args: argparse.Namespace) -> int:
    from gpumon.session.log import LoadedSession, SessionLogError
    from gpumon.session.redact import Redactor
    from gpumon.session.sessions import resolve_log

    # md, csv and json stream over the log (gpumon.session.digest: the samples are folded,
    # never held); bundle, repro and issue read it whole.
    streamed = args.format in FORMATS
    try:
        path = resolve_log(args.log, args.session_dir)
        session = _digest(path) if streamed else _load(path)
    except SessionLogError as e:
        return _fail(str(e))
    redactor = Redactor.for_host(session.start.host) if args.redact else None
    for w in session.warnings:
        print(f"gpumon export: warning: {redactor.text(w) if redactor else w}", file=sys.stderr)
    if session.warnings and args.strict:
        return _fail(f"{len(session.warnings)} warning(s) and --strict: nothing written")
    if not isinstance(session, LoadedSession):
        return _write(args, session, redactor)
    if args.format == "bundle":
        return _bundle(args, session, redactor)
    if args.format == "issue":
        from gpumon.report.issue import IssueError, issue_for

        if args.project is None:
            return _fail("-f issue needs --for mlx or --for torch (whose template to fill)")
        try:
            text = issue_for(session, args.project, args.crash, redactor)
        except IssueError as e:
            return _fail(str(e))
    else:
        from gpumon.report.repro import ReproError, repro_for

        name = os.path.basename(args.output) if args.output not in (None, "-") else "repro.py"
        try:
            repro = repro_for(session, args.crash, name)
        except ReproError as e:
            return _fail(sanitize.line(str(e)))
        if repro.note:
            print(f"gpumon export: note: {repro.note}", file=sys.stderr)
        text = repro.redacted(redactor) if redactor is not None else repro.text
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


def _digest(path: str | os.PathLike[str]) -> _Digest:
    from gpumon.session.digest import digest

    return digest(path)


def _load(path: str | os.PathLike[str]) -> LoadedSession:
    from gpumon.session.log import load

    return load(path)


def _write(args: argparse.Namespace, session: _Digest, redactor: Redactor | None) -> int:
    """md, csv or json to stdout or -o, written as it is made (a JSON bundle of a 200 MB log is
    ~2 GB of text: never one string)."""
    from gpumon.session.export import write_export
    from gpumon.session.log import SessionLogError

    if args.output in (None, "-"):
        try:
            write_export(session, args.format, sys.stdout.write, redactor)
        except SessionLogError as e:  # the second pass (csv, json) could not read the log again
            return _fail(str(e))
        sys.stdout.flush()
        return ExitCode.OK
    # Written beside the target and renamed when complete: a failure half way (the log
    # unreadable on the second pass, a full disk) leaves no truncated report behind.
    partial = f"{args.output}.partial"
    try:
        with open(partial, "w", encoding="utf-8", newline="") as f:
            write_export(session, args.format, f.write, redactor)
        os.replace(partial, args.output)
    except OSError as e:
        return _fail(f"cannot write {args.output}: {e.strerror or e}")
    except SessionLogError as e:
        return _fail(str(e))
    finally:
        with contextlib.suppress(OSError):
            os.remove(partial)  # gone already when the rename succeeded
    return ExitCode.OK


def _bundle(args: argparse.Namespace, session: LoadedSession, redactor: Redactor | None) -> int:
    """Write the zip; one line says where, how big, and what was changed to fit."""
    from pathlib import Path

    from gpumon import layout
    from gpumon.fmt import nbytes
    from gpumon.report import bundle
    from gpumon.report.repro import ReproError, repro_for
    from gpumon.session.export import render

    red = redactor
    out = args.output or f"{layout.safe_name(session.folder.name)}.zip"
    if out == "-" and sys.stdout.isatty():
        return _fail("a bundle is a zip file: give -o FILE.zip (or pipe -o - into a file)")
    if out != "-" and os.path.lexists(out) and not args.force:
        return _fail(f"{out} exists: give --force to replace it, or another -o")
    notes: list[str] = []
    try:
        repro = repro_for(session, args.crash)
        text: str | None = repro.text
        if repro.note:
            notes.append(f"repro.py: {repro.note}.")
    except ReproError as e:
        text = None
        notes.append(f"no repro.py: {sanitize.line(str(e))}.")
    budget = int(args.max_size * 1024 * 1024)
    b = bundle.build(
        session,
        report_md=render(session, "md", red),
        repro=text,
        notes=notes,
        redactor=red,
        max_bytes=budget,
    )
    if out == "-":
        sys.stdout.buffer.write(b.data)
        sys.stdout.flush()
    else:
        tmp = f"{out}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(b.data)
            os.replace(tmp, out)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return _fail(f"cannot write {out}: {e.strerror or e}")
    where = "stdout" if out == "-" else str(Path(out))
    print(
        f"gpumon export: wrote {sanitize.line(where)}: {nbytes(len(b.data))} "
        f"({len(b.data)} bytes) of a {nbytes(budget)} budget, {len(b.members) + 1} files"
        + (", redacted" if red is not None else ""),
        file=sys.stderr if out == "-" else sys.stdout,
    )
    for line in bundle.summary(b):
        print(f"gpumon export: {line}", file=sys.stderr)
    return ExitCode.OK
