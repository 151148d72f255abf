"""`gpumon repro FILE [--runs K] [--json F] [--python PATH] [--session LOG] [--timeout S]`.

Runs a script from `gpumon export -f repro` K times, each in a fresh process, under the
framework release its header pins (see gpumon.report.repro_python), and prints each run's end
and `reproduced k/K (SIGSEGV ×k)` with a Wilson 95% interval. When the script lies in its
session's folder (or --session names one), the count is appended to that folder's
repro-runs.jsonl, where the report reads it. Exit status: 0 when at least one run reproduced
the bug (a signal, a hang, or a thread that raised), 1 when none did and for every error (an
unreadable script, no interpreter, a wrong framework version), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpumon.commands.options import add_session_dir_argument, count_type, seconds_type
from gpumon.exit_codes import ExitCode

DEFAULT_RUNS = 5
STARTUP_S = 30.0  # added to the script's own SECONDS: interpreter start, import, thread joins
NO_SECONDS_TIMEOUT_S = 120.0


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("script", metavar="FILE", help="a script from gpumon export -f repro")
    p.add_argument(
        "--runs",
        "-k",
        type=count_type("--runs", 1, 1000),
        default=DEFAULT_RUNS,
        help=f"fresh processes to run (default {DEFAULT_RUNS})",
    )
    p.add_argument(
        "--json", dest="json_out", metavar="F", help="also write the result as JSON ('-': stdout)"
    )
    p.add_argument(
        "--python",
        metavar="PATH",
        help="run it with this interpreter (or venv) instead of the one its header pins",
    )
    p.add_argument(
        "--session",
        metavar="LOG",
        help="record the count in this session (a session.jsonl or folder, `latest`, or an id "
        "prefix); by default it is recorded when the script lies in its session's folder",
    )
    add_session_dir_argument(p)
    p.add_argument(
        "--timeout",
        type=seconds_type("--timeout"),
        default=None,
        help=f"seconds before a run counts as hung and is killed (default: the script's "
        f"SECONDS + {STARTUP_S:g})",
    )


def _fail(message: str) -> int:
    from gpumon import sanitize

    print(f"gpumon repro: {sanitize.line(message)}", file=sys.stderr)
    return ExitCode.ERROR


def run(args: argparse.Namespace) -> int:
    import hashlib
    import json
    import os
    import time

    from gpumon import __version__, sanitize
    from gpumon.report import repro_python, repro_run
    from gpumon.report.script_header import read_header
    from gpumon.session import repro_runs as runs_file
    from gpumon.session.times import utc_iso

    script = Path(args.script)
    try:
        data = script.read_bytes()
    except IsADirectoryError:
        return _fail(f"{script} is a folder, not a script")
    except OSError as e:
        return _fail(f"{script}: cannot read it: {e.strerror or e}")
    header = read_header(data.decode("utf-8", "replace"))
    to_json_stdout = args.json_out == "-"
    out = sys.stderr if to_json_stdout else sys.stdout

    def say(line: str) -> None:
        print(sanitize.line(line), file=out, flush=True)  # paths and ids come from files

    try:
        folder, not_recorded = _session_folder(
            script, header.session_id, args.session, args.session_dir
        )
        python = repro_python.choose(header, args.python, lambda s: say(f"gpumon repro: {s}"))
    except (repro_python.ReproPythonError, _NoSession) as e:
        return _fail(str(e))
    timeout = args.timeout or (
        header.seconds + STARTUP_S if header.seconds is not None else NO_SECONDS_TIMEOUT_S
    )
    say(
        f"gpumon repro: {sanitize.line(str(script))}: {header.label}; python {python.how}; "
        f"{args.runs} fresh process{'es' if args.runs != 1 else ''}, each killed after "
        f"{timeout:g} s"
    )
    env = repro_run.child_environ(dict(os.environ), python.isolated)
    started_t, started = time.time(), time.monotonic()
    outcomes: list[repro_run.RunOutcome] = []
    for i in range(1, args.runs + 1):
        try:
            r = repro_run.run_once(i, python.path, script.resolve(), timeout, env)
        except OSError as e:
            return _fail(f"cannot start {python.path}: {e.strerror or e}")
        outcomes.append(r)
        say(f"run {i}/{args.runs}: {r.describe(timeout)}")
        if r.kind == "wrong-version":
            return _fail(
                f"{python.path} does not have the release the script pins "
                f"({header.label}); nothing was counted"
            )
    summary = repro_run.Summary(tuple(outcomes))
    say(summary.line(header.recorded))
    failed = len(outcomes) - summary.counted
    if failed:
        say(
            f"{failed} run(s) failed before they could show anything (see above): they count as "
            "not reproduced"
        )
    record = runs_file.ReproRunRecord(
        script=_relative(script, folder),
        inside=folder is not None and _is_inside(script, folder),
        sha256=hashlib.sha256(data).hexdigest(),
        session_id=header.session_id or "",
        runs=len(outcomes),
        reproduced=summary.reproduced,
        signals=[r.signal for r in outcomes],
        exit_codes=[r.exit_code for r in outcomes],
        outcomes=[r.kind for r in outcomes],
        run_seconds=[round(r.seconds, 3) for r in outcomes],
        recorded=header.recorded or "",
        same_as_recorded=summary.same_as(header.recorded),
        timeout_s=timeout,
        python=python.path,
        framework=f"{header.framework} {header.version}" if header.pin else "",
        build=header.build or "",
        started_utc=utc_iso(started_t),
        seconds=round(time.monotonic() - started, 3),
        gpumon_version=__version__,
    )
    if folder is not None:
        try:
            path = runs_file.append(folder, record)
            say(f"recorded in {sanitize.line(str(path))}")
        except OSError as e:
            return _fail(f"cannot record the count in {folder}: {e.strerror or e}")
    else:
        say(f"not recorded: {not_recorded}")
    if args.json_out:
        import msgspec

        text = json.dumps(msgspec.to_builtins(record), indent=2) + "\n"
        if to_json_stdout:
            sys.stdout.write(text)
        else:
            try:
                Path(args.json_out).write_text(text, encoding="utf-8")
            except OSError as e:
                return _fail(f"cannot write {args.json_out}: {e.strerror or e}")
    return ExitCode.OK if summary.reproduced else ExitCode.ERROR


class _NoSession(Exception):
    """--session names no session; str() is one sentence."""


def _session_folder(
    script: Path, header_id: str | None, given: str | None, session_dir: str | None
) -> tuple[Path | None, str]:
    """Where the count is recorded: --session's folder, else the script's own folder when it
    is the session the script came from; else None and why not."""
    from gpumon import layout
    from gpumon.report.inputs import InputError, resolve_session, session_id_of

    if given:
        try:
            folder = resolve_session(given, session_dir).parent
        except InputError as e:
            raise _NoSession(f"--session: {e}") from None
        if session_id_of(folder) is None:
            raise _NoSession(f"--session: {given} is not a gpumon session log")
        return folder, ""
    folder = script.resolve().parent
    if not layout.log_path(folder).is_file():
        return None, "the script is not in a session folder (--session LOG records it in one)"
    found = session_id_of(folder)
    if header_id and found and found != header_id:
        return None, (
            f"the script came from session {header_id}, but its folder holds session {found} "
            "(--session LOG records it there anyway)"
        )
    return folder, ""


def _is_inside(script: Path, folder: Path) -> bool:
    try:
        script.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _relative(script: Path, folder: Path | None) -> str:
    """The script's path as the record keeps it: relative to the session folder inside it."""
    if folder is not None and _is_inside(script, folder):
        return script.resolve().relative_to(folder.resolve()).as_posix()
    return str(script.resolve())
