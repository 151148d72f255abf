"""`gpumon run FILE|NAME`: a scenario played headless and recorded, with sweep's exit status.

The same story `gpumon demo` shows in the monitor, for CI or a log to replay later: each step
is printed as it happens (its caption, and what it waited for), crashes as they come. Exit
status (gpumon.exit_codes): 3 a worker crashed, 5 a worker hung, 1 a pool could not run or the
session could not be recorded, 0 otherwise — a demo built to crash exits 3, as it should.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon.commands.options import add_session_dir_argument
from gpumon.exit_codes import ExitCode

if TYPE_CHECKING:
    from gpumon.scenario.model import Scenario
    from gpumon.spec import PoolConfig


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", metavar="FILE|NAME", help="a scenario file, or a built-in's name")
    add_session_dir_argument(p)
    p.add_argument("--no-record", action="store_true", help="do not write a session log")


def run(args: argparse.Namespace) -> int:
    from gpumon.scenario.choose import pick
    from gpumon.scenario.model import load

    sc, source = load(args.scenario)  # ScenarioError is a SpecError: one line, exit 2
    pools, fallback, note = pick(sc)
    if note:
        print(f"gpumon run: {note}", file=sys.stderr)
    return asyncio.run(_play(args, sc, source, pools, fallback, note))


async def _play(
    args: argparse.Namespace,
    sc: Scenario,
    source: str,
    pools: list[PoolConfig],
    fallback: bool,
    note: str,
) -> int:
    from rich.console import Console
    from rich.markup import escape

    from gpumon import events as ev
    from gpumon import sanitize
    from gpumon.exit_codes import worst
    from gpumon.live_session import open_session
    from gpumon.scenario.conductor import Conductor
    from gpumon.supervisor.backoff import RestartPolicy

    # Piped into a CI log, rich would wrap captions at 80 columns.
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    seen = {"crash": False, "hang": False, "failed": False}

    def say(e: ev.Event) -> None:
        if isinstance(e, ev.ScenarioStarted):
            what = " (SYNTHETIC fallback)" if e.fallback else ""
            out.print(f"[bold]{escape(sanitize.line(e.title))}[/]{what}")
        elif isinstance(e, ev.ScenarioStep):
            waited = f" [dim](after {escape(e.waited)})[/]" if e.waited else ""
            out.print(f"step {e.index}/{e.total}{waited} {escape(sanitize.line(e.caption))}")
        elif isinstance(e, ev.Crash):
            seen["crash"] = True
            out.print(
                f"  [bold red]crash[/] {escape(e.pool)}: {e.signal or f'exit {e.exit_code}'} "
                f"at {e.threads} threads, {e.policy}"
            )
        elif isinstance(e, ev.Stall):
            seen["hang"] = True
            out.print(f"  [bold red]hang[/] {escape(e.pool)}: silent {e.silent_for:.1f} s")
        elif isinstance(e, ev.PoolFailed):
            seen["failed"] = True
            out.print(f"  [red]failed[/] {escape(e.pool)}: {escape(sanitize.line(e.message))}")

    async with open_session(
        pools,
        mode="run",
        argv=["gpumon", *sys.argv[1:]],
        record=not args.no_record,
        session_dir=Path(args.session_dir) if args.session_dir else None,
        listeners=[say],
        restart=RestartPolicy(enabled=sc.restart),
        start_pools=False,
        end_reason="scenario finished",
    ) as session:
        conductor = Conductor(
            sc,
            session.supervisor,
            session.publish,
            interactive=False,
            source=source,
            fallback=fallback,
            note=note,
        )
        session.bus.subscribe(conductor)
        await session.supervisor.start()
        await conductor.run()
    if session.log_path is not None:
        print(f"session log: {session.log_path}", file=sys.stderr)
    code = worst(crashed=seen["crash"], hung=seen["hang"], failed=seen["failed"])
    if code == ExitCode.OK and session.record_error:
        print(f"gpumon run: {session.record_error}", file=sys.stderr)
        return ExitCode.ERROR
    return code
