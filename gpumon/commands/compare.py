"""`gpumon compare A B [--json]`: two sessions or two sweeps, cell by cell.

A and B are sessions (a session.jsonl or folder, `latest`, or the start of a session id) or
`gpumon sweep --json` files (schema 2), in any mix. Cells are matched by what was measured
(backend, device, policy, workload, size, dtype, threads), not by pool name or framework
version; the output gives the
throughput change against the run-to-run spread, crash rates with Fisher's exact test, and an
environment diff. Exit 0 when both inputs were read, 1 with one line when one cannot be, 2 for
a usage error.
"""

from __future__ import annotations

import argparse
import sys

from gpumon.commands.options import add_session_dir_argument
from gpumon.exit_codes import ExitCode


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "a",
        metavar="A",
        help="a session (log, folder, `latest` or an id prefix) or a sweep --json file",
    )
    p.add_argument("b", metavar="B", help="the same for the other side")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    add_session_dir_argument(p)


def run(args: argparse.Namespace) -> int:
    from gpumon import sanitize
    from gpumon.report.compare import compare
    from gpumon.report.inputs import InputError, read_input
    from gpumon.report.sides import side

    try:
        a = side(read_input(args.a, args.session_dir))
        b = side(read_input(args.b, args.session_dir))
    except InputError as e:
        print(f"gpumon compare: {sanitize.line(str(e))}", file=sys.stderr)
        return ExitCode.ERROR
    result = compare(a, b)
    if args.json:
        from gpumon.report.compare_render import to_json

        sys.stdout.write(to_json(result))
        return ExitCode.OK
    from rich.console import Console

    from gpumon.report.compare_render import tables

    console = Console(width=None if sys.stdout.isatty() else 180)
    for t in tables(result):
        console.print(t)
    return ExitCode.OK
