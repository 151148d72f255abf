"""`gpumon live` (and plain `gpumon`): the interactive monitor over real pools.

Module-level imports stay light (see gpumon.commands): Textual is imported only inside `run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon import layout
from gpumon.commands.options import (
    MetricsUnavailable,
    add_metrics_options,
    add_pool_options,
    add_restart_options,
    add_session_dir_argument,
    pools_from_args,
    start_metrics,
    stop_metrics,
)
from gpumon.exit_codes import ExitCode
from gpumon.spec import SpecError

if TYPE_CHECKING:
    from gpumon.metrics import Exporter
    from gpumon.spec import PoolConfig
    from gpumon.tui.source import ScenarioRun

DEFAULT_POOLS = ("mlx", "torch")


def configure(parser: argparse.ArgumentParser) -> None:
    add_pool_options(parser, default_pools=" ".join(f"--pool {p}" for p in DEFAULT_POOLS))
    g = parser.add_argument_group("monitor")
    add_session_dir_argument(g)
    g.add_argument(
        "--no-record",
        action="store_true",
        help="do not write a session log (crash artifacts go to a temporary folder)",
    )
    add_restart_options(g)
    g.add_argument(
        "--follow-crashes",
        action="store_true",
        help="open the crash screen by itself on the first crash",
    )
    add_metrics_options(g)
    add_monitor_options(g)


def add_monitor_options(g: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """What `live` shares with `demo`: a scenario to play, a kiosk mode."""
    g.add_argument(
        "--scenario",
        metavar="FILE|NAME",
        default=None,
        help="play a scenario (a TOML file, or a built-in: see gpumon demo --list); its "
        "pools replace --pool",
    )
    g.add_argument(
        "--readonly",
        action="store_true",
        help="no pool keys: the pools run as started or scripted (a kiosk, a talk)",
    )


def run(args: argparse.Namespace) -> int:
    scenario = None
    if getattr(args, "scenario", None):
        if args.pool:
            raise SpecError("a scenario names its own pools: leave out --pool")
        from gpumon.scenario.choose import pick
        from gpumon.scenario.model import load
        from gpumon.tui.source import ScenarioRun

        sc, source = load(args.scenario)  # ScenarioError: one line, exit 2
        pools, fallback, note = pick(sc)
        if note:
            print(f"gpumon: {note}", file=sys.stderr)
        scenario = ScenarioRun(sc, source, fallback, note)
        args.restart = sc.restart
    else:
        pools = pools_from_args(args, DEFAULT_POOLS)  # SpecError: cli prints one line, exit 2
    if not sys.stdout.isatty():
        print(
            "gpumon: the live monitor needs a terminal; for a headless run use `gpumon sweep`",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    if args.session_dir and not args.no_record:
        why = layout.check_writable_dir(Path(args.session_dir), "--session-dir")
        if why is not None:
            print(f"gpumon: {why}", file=sys.stderr)
            return ExitCode.ERROR

    try:
        exporter = start_metrics(args, "live")
    except MetricsUnavailable as e:
        print(e, file=sys.stderr)
        return ExitCode.ERROR
    try:
        return _run_app(args, pools, exporter, scenario)
    finally:
        stop_metrics(exporter, args)


def _run_app(
    args: argparse.Namespace,
    pools: list[PoolConfig],
    exporter: Exporter | None,
    scenario: ScenarioRun | None,
) -> int:
    from gpumon.tui.app import live_app

    app = live_app(
        pools,
        session_dir=Path(args.session_dir) if args.session_dir else None,
        record=not args.no_record,
        restart=args.restart,
        stall_after=args.stall_after,
        follow_crashes=args.follow_crashes,
        argv=sys.argv,
        scenario=scenario,
        readonly=getattr(args, "readonly", False),
        listeners=[exporter.listener] if exporter is not None else (),
    )
    code = app.run()
    log = app.source.log_path
    if log is not None:
        print(f"gpumon: session log {log}")
    problem = getattr(app.source, "record_error", None)
    if problem and not args.no_record:
        print(f"gpumon: {problem}; what was recorded before stays readable", file=sys.stderr)
        return int(code or ExitCode.ERROR)
    return int(code or 0)
