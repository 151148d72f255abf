"""`gpumon sweep`: a headless thread-count ramp, each cell in a fresh pool process.

Every cell (pool × policy × threads × repeat) starts its own worker, warms up, measures for
`--seconds`, and stops it, so a crash in one cell cannot poison the next. The table is built by
gpumon.analysis from the same events the session log records. Exit status: 0 no worker died,
1 a pool could not run at all, 3 at least one worker crashed (3 wins; usable in CI).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon.commands.options import add_pool_options, count_type, pools_from_args, seconds_type
from gpumon.spec import POLICIES, PoolConfig, SpecError, parse_thread_list

DEFAULT_POOLS = ("mlx", "torch")
EXIT_OK, EXIT_POOL_FAILED, EXIT_CRASHED = 0, 1, 3


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
        help="also write the numbers as JSON to FILE ('-' for stdout)",
    )
    g.add_argument(
        "--session-dir",
        type=Path,
        default=None,
        help="where the session log goes (default: the per-user data folder)",
    )
    g.add_argument("--no-record", action="store_true", help="do not write a session log")


def run(args: argparse.Namespace) -> int:
    ramp = parse_thread_list(args.ramp)
    policies = [args.policy]
    if args.policies:
        policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        for p in policies:
            if p not in POLICIES:
                raise SpecError(f"unknown policy {p!r}; use {', '.join(POLICIES)}")
    pools = pools_from_args(args, DEFAULT_POOLS)
    return asyncio.run(_sweep(args, pools, ramp, policies))


async def _sweep(
    args: argparse.Namespace, pools: list[PoolConfig], ramp: list[int], policies: list[str]
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gpumon import analysis

    console = Console(stderr=True)
    recorded: list[ev.Event] = []
    recorder = None
    if not args.no_record:
        from gpumon.session.recorder import Recorder

        recorder = Recorder(args.session_dir, mode="sweep", argv=["gpumon", *sys.argv[1:]])
    listeners = [recorded.append] + ([recorder] if recorder else [])
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
    with progress:
        task = progress.add_task("sweep", total=len(cells))
        for pool, pol, n, rep in cells:
            label = f"{pool.name} {pol} {n} thr" + (f" #{rep + 1}" if args.repeat > 1 else "")
            progress.update(task, description=label)
            if pool.name in failed:
                progress.advance(task)
                continue
            cfg = msgspec.structs.replace(pool, threads=n, policy=pol)
            why = await _run_cell(
                cfg, args, listeners, recorder.artifacts_dir if recorder else None
            )
            if why:
                failed[pool.name] = why
                console.print(f"[red]gpumon sweep: {pool.name}: {why}")
            progress.advance(task)
    if recorder is not None:
        recorder.close("sweep finished")
    all_runs = analysis.runs(recorded, warmup=args.warmup)
    table_cells = analysis.cells(all_runs)
    # Piped into a CI log, rich would squeeze the table into 80 columns; numbers need room.
    out = Console() if sys.stdout.isatty() else Console(width=160)
    out.print(render_table(table_cells, args.seconds, args.repeat))
    crashed = any(c.crashes for c in table_cells)
    if recorder is not None:
        console.print(f"session log: {recorder.path}")
    if args.json_out:
        write_json(args.json_out, table_cells, recorded, crashed, failed)
    if crashed:
        return EXIT_CRASHED
    return EXIT_POOL_FAILED if failed else EXIT_OK


async def _run_cell(
    cfg: PoolConfig,
    args: argparse.Namespace,
    listeners: list,
    artifacts: Path | None,
) -> str:
    """Run one cell; returns why the pool could not run at all ("" otherwise)."""
    from gpumon.supervisor.supervisor import Supervisor

    outcome: dict[str, str] = {}

    def watch(e: ev.Event) -> None:
        if isinstance(e, ev.PoolFailed):
            outcome["failed"] = f"{e.message}" + (f" — {e.fix}" if e.fix else "")
        elif isinstance(e, (ev.PoolReady, ev.Crash)):
            outcome.setdefault("ready", "yes")

    sup = Supervisor([cfg], artifacts_root=artifacts, listeners=[*listeners, watch])
    await sup.start()
    pool = sup.pools[cfg.name]
    deadline = time.monotonic() + 180  # importing a framework on a cold disk can be slow
    while "ready" not in outcome and "failed" not in outcome and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if "failed" not in outcome and "ready" in outcome:
        end = time.monotonic() + args.warmup + args.seconds
        while time.monotonic() < end and pool.state in ("running", "paused"):
            await asyncio.sleep(0.05)
    elif "failed" not in outcome:
        outcome["failed"] = "the worker did not become ready within 180 s"
    await sup.stop()  # returns once the worker's exit and its artifacts are recorded
    return outcome.get("failed", "")


def render_table(cells: Sequence, seconds: float, repeat: int) -> object:
    from rich.markup import escape
    from rich.table import Table

    from gpumon import fmt

    def rate(x: float | None) -> str:
        return fmt.si(x, "").strip() if x is not None else "—"

    t = Table(
        title=f"gpumon sweep — {seconds:g} s per cell, {repeat} run(s) each",
        caption=escape(
            "ops/s: median over runs [min–max]; latency: per op, from the worker's "
            "timer; memory: framework allocator peak (else process RSS, psutil)"
        ),
    )
    for col in (
        "pool",
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
    ):
        t.add_column(
            col, justify="left" if col in ("pool", "device", "policy", "workload") else "right"
        )
    for c in cells:
        r = c.first
        rng = c.ops_per_s_range
        ops = rate(c.ops_per_s)
        if rng and len(c.measured) > 1:
            ops += escape(f" [{rate(rng[0])}–{rate(rng[1])}]")
        flops = (
            "synthetic"
            if r.backend == "fault"
            else (fmt.si(c.flops, "FLOP/s") if c.flops is not None else "—")
        )
        mem = c.mem_peak
        peak = (
            mem.get("peak") or mem.get("active") or mem.get("allocated") or mem.get("current") or 0
        )
        mem_txt = (
            fmt.nbytes(peak) if peak else (f"{fmt.nbytes(c.rss_peak)} RSS" if c.rss_peak else "—")
        )
        crash_txt = f"{c.crashes}/{len(c.runs)}"
        if c.crashes:
            sig = ", ".join(sorted({x.crash_signal for x in c.runs if x.crash_signal}))
            crash_txt = f"[bold red]{crash_txt} {sig}[/]"
        lat = [c.latency(q) for q in (50, 99)]
        t.add_row(
            r.pool,
            r.device,
            r.policy,
            f"{r.workload} {r.size} {r.dtype}",
            str(r.threads),
            ops,
            flops,
            *(fmt.seconds(x) if x is not None else "—" for x in lat),
            mem_txt,
            crash_txt,
        )
    return t


def write_json(
    dest: str, cells: Sequence, recorded: list[ev.Event], crashed: bool, failed: dict[str, str]
) -> None:
    from gpumon import __version__
    from gpumon.host import host_info

    ready = {e.pool: e for e in recorded if isinstance(e, ev.PoolReady)}
    out = {
        "gpumon": __version__,
        "host": msgspec.to_builtins(host_info()),
        "crashed": crashed,
        "failed_pools": failed,
        "cells": [
            {
                "pool": c.first.pool,
                "backend": c.first.backend,
                "device": c.first.device,
                "device_name": ready[c.first.pool].device_name if c.first.pool in ready else "",
                "framework": ready[c.first.pool].framework if c.first.pool in ready else "",
                "policy": c.first.policy,
                "workload": c.first.workload,
                "size": c.first.size,
                "dtype": c.first.dtype,
                "threads": c.first.threads,
                "ops_per_s": {
                    "median": c.ops_per_s,
                    "min": c.ops_per_s_range[0] if c.ops_per_s_range else None,
                    "max": c.ops_per_s_range[1] if c.ops_per_s_range else None,
                },
                "flop_per_s_median": None if c.first.backend == "fault" else c.flops,
                "latency_s": {"p50": c.latency(50), "p99": c.latency(99)},
                "mem_peak_bytes": c.mem_peak,
                "rss_peak_bytes": c.rss_peak,
                "runs": len(c.runs),
                "crashes": c.crashes,
                "first_crash_after_s": c.first_crash_after,
                "run_details": [
                    {
                        "seconds": r.seconds,
                        "ops": r.ops,
                        "crashed": r.crashed,
                        "signal": r.crash_signal,
                    }
                    for r in c.runs
                ],
            }
            for c in cells
        ],
    }
    text = json.dumps(out, indent=2)
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n")
