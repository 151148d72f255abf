"""`gpumon sweep`: a headless thread-count ramp, each cell in a fresh pool process.

Every cell (pool × policy × threads × repeat) starts its own worker in one recorded session,
warms up, measures for `--seconds`, and stops it, so a crash in one cell cannot poison the
next. The table and `--json` are built from gpumon.facts, like the Markdown report.
Exit status (gpumon.exit_codes): 0 nothing went wrong, 3 a worker crashed, 5 a worker hung
(no crash), 1 a pool could not run at all or the session could not be recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from gpumon import events as ev
from gpumon.commands.options import (
    MetricsUnavailable,
    add_metrics_options,
    add_pool_options,
    add_session_dir_argument,
    count_type,
    pools_from_args,
    seconds_type,
    start_metrics,
    stop_metrics,
)
from gpumon.exit_codes import ExitCode, worst
from gpumon.spec import POLICIES, PoolConfig, SpecError, parse_thread_list

if TYPE_CHECKING:
    from gpumon.metrics import Exporter

DEFAULT_POOLS = ("mlx", "torch")


def configure(p: argparse.ArgumentParser) -> None:
    add_pool_options(
        p, default_pools=" ".join(f"--pool {x}" for x in DEFAULT_POOLS), threads_list=True
    )
    g = p.add_argument_group("sweep")
    g.add_argument(
        "--policies",
        default=None,
        metavar="LIST",
        help="comma-separated policies to sweep (default: --policy)",
    )
    g.add_argument(
        "--seconds", type=seconds_type("--seconds"), default=3.0, help="measured seconds per cell"
    )
    g.add_argument(
        "--warmup",
        type=seconds_type("--warmup", allow_zero=True),
        default=1.0,
        help="seconds after start-up that are not measured (default 1)",
    )
    g.add_argument(
        "--repeat",
        type=count_type("--repeat", 1, 1000),
        default=1,
        help="runs per cell (default 1)",
    )
    g.add_argument(
        "--json",
        dest="json_out",
        metavar="FILE",
        help="also write the numbers as JSON to FILE ('-': stdout, and the table goes to stderr)",
    )
    g.add_argument(
        "--redact",
        action="store_true",
        help="replace user name, home folder, host name, emails, addresses and tokens in --json",
    )
    add_session_dir_argument(g)
    g.add_argument("--no-record", action="store_true", help="do not write a session log")
    add_metrics_options(g)


def run(args: argparse.Namespace) -> int:
    ramp = parse_thread_list(args.ramp)
    policies = [args.policy]
    if args.policies:
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        for p in policies:
            if p not in POLICIES:
                raise SpecError(f"unknown policy {p!r}; use {', '.join(POLICIES)}")
    pools = pools_from_args(args, DEFAULT_POOLS)
    if not args.no_record:
        from gpumon import layout

        why = layout.check_writable_dir(layout.session_dir(args.session_dir), "session dir")
        if why is not None:
            print(f"gpumon sweep: {why}", file=sys.stderr)
            return ExitCode.ERROR
    try:
        exporter = start_metrics(args, "sweep")
    except MetricsUnavailable as e:
        print(e, file=sys.stderr)
        return ExitCode.ERROR
    try:
        return asyncio.run(_sweep(args, pools, ramp, policies, exporter))
    finally:
        stop_metrics(exporter, args)


async def _sweep(
    args: argparse.Namespace,
    pools: list[PoolConfig],
    ramp: list[int],
    policies: list[str],
    exporter: Exporter | None = None,
) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gpumon import facts
    from gpumon.cells import CellWatcher, run_cell
    from gpumon.live_session import open_session

    console = Console(stderr=True)
    recorded: list[ev.Event] = []
    watcher = CellWatcher()
    listeners: list[Callable[[ev.Event], None]] = [recorded.append, watcher]
    if exporter is not None:
        listeners.append(exporter.listener)
    cells = [
        (pool, pol, n, rep)
        for pool in pools
        for pol in policies
        for n in ramp
        for rep in range(args.repeat)
    ]
    failed: dict[str, str] = {}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    async with open_session(
        mode="sweep",
        argv=["gpumon", *sys.argv[1:]],
        record=not args.no_record,
        session_dir=Path(args.session_dir) if args.session_dir else None,
        listeners=listeners,
        end_reason="sweep finished",
    ) as session:
        with progress:
            task = progress.add_task("sweep", total=len(cells))
            session.bus.subscribe(_show_env_builds(progress, task))
            for pool, swept, n, rep in cells:
                # --policies sweeps over policies; otherwise a pool keeps its own policy= key
                # (or --policy, already applied to it), and None is the framework's default.
                pol = swept if args.policies else pool.policy
                label = f"{pool.name} {pol or 'default policy'} {n} thr" + (
                    f" #{rep + 1}" if args.repeat > 1 else ""
                )
                progress.update(task, description=label)
                if pool.name not in failed:
                    cfg = msgspec.structs.replace(pool, threads=n, policy=pol)
                    why = (
                        await run_cell(
                            session.supervisor,
                            watcher,
                            cfg,
                            warmup=args.warmup,
                            seconds=args.seconds,
                        )
                    ).failed
                    if why:
                        failed[pool.name] = why
                        console.print(
                            f"[red]gpumon sweep: {escape(pool.name)}: {escape(why)}",
                            highlight=False,
                        )
                progress.advance(task)
    table = facts.cells(recorded, warmup=args.warmup)
    # With --json -, stdout is the JSON's alone; the table goes to stderr.
    to_stderr = args.json_out == "-"
    # Piped into a CI log, rich would squeeze the table into 80 columns; numbers need room.
    tty = (sys.stderr if to_stderr else sys.stdout).isatty()
    out = Console(stderr=to_stderr, width=None if tty else 180)
    out.print(render_table(table, args.seconds, args.repeat))
    if session.log_path is not None:
        console.print(f"session log: {session.log_path}", highlight=False)
    if session.record_error:
        console.print(f"[red]gpumon sweep: {session.record_error}", highlight=False)
    crashed = any(c.crashes or c.stop_crashes for c in table)
    hung = any(c.hangs for c in table)
    if args.json_out:
        start = next((e for e in recorded if isinstance(e, ev.SessionStart)), None)
        text = to_json(table, start, crashed, hung, failed, redact=args.redact)
        if args.json_out == "-":
            sys.stdout.write(text)
        else:
            try:
                Path(args.json_out).write_text(text)
            except OSError as e:
                print(f"gpumon sweep: cannot write {args.json_out}: {e.strerror}", file=sys.stderr)
                return ExitCode.ERROR
    code = worst(crashed=crashed, hung=hung, failed=bool(failed))
    if code == ExitCode.OK and session.record_error:
        return ExitCode.ERROR
    return code


def _show_env_builds(progress: object, task: object) -> Callable[[ev.Event], None]:
    """A listener that puts a framework env's build phase in the progress line."""

    def show(e: ev.Event) -> None:
        if isinstance(e, ev.PoolPreparing):
            pct = f" {e.fraction:.0%}" if e.fraction is not None else ""
            progress.update(  # type: ignore[attr-defined]
                task, description=f"{e.pool}: building {e.env} — {e.phase}{pct}"
            )

    return show


def render_table(cells: Sequence[object], seconds: float, repeat: int) -> object:
    from rich.markup import escape
    from rich.table import Table

    from gpumon import fmt
    from gpumon.facts import CellFacts

    def rate(x: float | None) -> str:
        return fmt.si(x, "").strip() if x is not None else "—"

    t = Table(
        title=f"gpumon sweep — {seconds:g} s per cell, {repeat} run(s) each",
        caption=escape(
            "ops/s: median over runs [min–max] (generate: one op = one decoded token); "
            "latency: per op, from the worker's timer; "
            "memory: framework allocator peak (else process RSS, psutil); crashes: deaths "
            "while measuring / runs (after stop: deaths while stopping); hangs: runs where "
            "the worker stopped answering"
        ),
    )
    for col in (
        "pool",
        "version",
        "device",
        "policy",
        "workload",
        "threads",
        "ops/s",
        "FLOP/s",
        "p50",
        "p99",
        "peak mem",
        "crashes",
        "hangs",
    ):
        left = col in ("pool", "version", "device", "policy", "workload", "crashes")
        t.add_column(col, justify="left" if left else "right")
    for c in cells:
        assert isinstance(c, CellFacts)
        ops = rate(c.ops_per_s)
        if c.ops_per_s_min is not None and c.ops_per_s_max is not None and c.runs > 1:
            ops += escape(f" [{rate(c.ops_per_s_min)}–{rate(c.ops_per_s_max)}]")
        flops = (
            "synthetic"
            if c.synthetic
            else "—"
            if c.flop_per_s is None
            else fmt.si(c.flop_per_s, "FLOP/s")
        )
        head = c.headline_mem
        mem_txt = (
            fmt.nbytes(head[1])
            if head
            else (f"{fmt.nbytes(c.rss_peak_bytes)} RSS" if c.rss_peak_bytes else "—")
        )
        crash_txt = f"{c.crashes}/{c.runs}"
        if c.crashes:
            crash_txt = f"[bold red]{crash_txt} {escape(', '.join(c.crash_signals))}[/]"
        if c.stop_crashes:
            after = ", ".join(c.stop_crash_signals)
            crash_txt += escape(f" (after stop: {c.stop_crashes} {after})")
        if c.threads_failed:
            crash_txt += f" [yellow]{fmt.plural(c.threads_failed, 'thread')} failed[/]"
        hang_txt = f"{c.hangs}/{c.runs}"
        if c.hangs:
            hang_txt = f"[bold red]{hang_txt}[/]"
        t.add_row(
            escape(c.pool),
            escape(c.version or ("synthetic" if c.synthetic else "?")),
            escape(c.device),
            c.policy,
            f"{c.workload} {c.size} {c.dtype}",
            str(c.threads),
            ops,
            flops,
            fmt.seconds(c.lat_p50_s) if c.lat_p50_s is not None else "—",
            fmt.seconds(c.lat_p99_s) if c.lat_p99_s is not None else "—",
            mem_txt,
            crash_txt,
            hang_txt,
        )
    return t


def to_json(
    cells: Sequence[object],
    start: ev.SessionStart | None,
    crashed: bool,
    hung: bool,
    failed: dict[str, str],
    *,
    redact: bool,
) -> str:
    import dataclasses

    from gpumon import __version__
    from gpumon.host import host_info

    host = start.host if start is not None else host_info()
    out = {
        "gpumon": __version__,
        "schema": 2,
        "host": msgspec.to_builtins(host),
        "crashed": crashed,
        "hung": hung,
        "failed_pools": failed,
        "cells": [dataclasses.asdict(c) for c in cells],  # type: ignore[call-overload]
    }
    text = json.dumps(out, indent=2) + "\n"
    if redact:
        from gpumon.session.redact import Redactor

        text = Redactor.for_host(host).json_text(text)
    return text
