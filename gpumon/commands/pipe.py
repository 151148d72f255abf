"""`gpumon pipe`: live figures as JSON Lines on stdout, for scripts, `jq` and dashboards.

Headless like `sweep`, but it keeps the pools running: every `--interval` seconds one `pool`
line per pool (ops/s, FLOP/s, latency, memory, CPU, RSS, state ...), and crash, hang, restart
and failure lines the moment they happen. The lines are a contract: docs/pipe.md names every
field and its unit, and `schema` says which version of it a line follows. `--count 1` is a
one-shot reading (nvitop --once, macmon pipe -s 1). The session is recorded like any other.

Intervals start once every pool has left `starting` (ready or failed), so even the first line
holds a measurement. Ctrl-C, SIGTERM, `--count`, or the reader going away (`| head`) end it
cleanly: the pools are stopped, their artifacts kept, the session ended.
Exit status (gpumon.exit_codes.worst): 3 a worker crashed, 5 one hung, 1 a pool could not run
(or the recording failed), else 0 — also after Ctrl-C, which is how an open-ended pipe ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gpumon.commands.options import (
    MetricsUnavailable,
    add_metrics_options,
    add_pool_options,
    add_restart_options,
    add_session_dir_argument,
    count_type,
    pools_from_args,
    seconds_type,
    start_metrics,
    stop_metrics,
)
from gpumon.exit_codes import ExitCode, worst

if TYPE_CHECKING:
    from gpumon import events as ev
    from gpumon.metrics import Exporter
    from gpumon.pipe import PipeWriter
    from gpumon.spec import PoolConfig

DEFAULT_POOLS = ("mlx", "torch")
SETTLE_POLL = 0.05  # seconds between looks at whether every pool has started


def configure(p: argparse.ArgumentParser) -> None:
    add_pool_options(p, default_pools=" ".join(f"--pool {x}" for x in DEFAULT_POOLS))
    g = p.add_argument_group("pipe")
    g.add_argument(
        "--interval",
        type=seconds_type("--interval"),
        default=1.0,
        metavar="S",
        help="seconds per line of figures (default 1; samples arrive ~10/s and are merged)",
    )
    g.add_argument(
        "--count",
        type=count_type("--count", 1, 10**9),
        default=None,
        metavar="N",
        help="stop after N intervals (default: until Ctrl-C or SIGTERM); 1 is a one-shot",
    )
    add_restart_options(g)
    add_session_dir_argument(g)
    g.add_argument("--no-record", action="store_true", help="do not write a session log")
    add_metrics_options(g)


def run(args: argparse.Namespace) -> int:
    pools = pools_from_args(args, DEFAULT_POOLS)  # SpecError: one line, exit 2 (gpumon.cli)
    if not args.no_record:
        from gpumon import layout

        why = layout.check_writable_dir(layout.session_dir(args.session_dir), "session dir")
        if why is not None:
            print(f"gpumon pipe: {why}", file=sys.stderr)
            return ExitCode.ERROR
    try:
        exporter = start_metrics(args, "pipe", args.interval)
    except MetricsUnavailable as e:
        print(e, file=sys.stderr)
        return ExitCode.ERROR
    try:
        return asyncio.run(_pipe(args, pools, exporter))
    finally:
        stop_metrics(exporter, args)


async def _pipe(
    args: argparse.Namespace, pools: list[PoolConfig], exporter: Exporter | None
) -> int:
    from gpumon.live_session import open_session
    from gpumon.pipe import PipeWriter
    from gpumon.supervisor.backoff import RestartPolicy
    from gpumon.supervisor.supervisor import STALL_AFTER

    stop = asyncio.Event()
    writer = PipeWriter(sys.stdout, args.interval, on_closed=stop.set)
    listeners: list[Callable[[ev.Event], None]] = [writer]
    if exporter is not None:
        listeners.append(exporter.listener)
    loop = asyncio.get_running_loop()
    for signo in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signo, stop.set)
    try:
        async with open_session(
            pools,
            mode="pipe",
            argv=["gpumon", *sys.argv[1:]],
            record=not args.no_record,
            session_dir=Path(args.session_dir) if args.session_dir else None,
            listeners=listeners,
            restart=RestartPolicy(enabled=args.restart),
            stall_after=args.stall_after or STALL_AFTER,
            end_reason="pipe finished",
        ) as session:
            while not writer.settled() and not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), SETTLE_POLL)
            await _intervals(writer, stop, args.interval, args.count)
    finally:
        for signo in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signo)
    if writer.closed:
        # The reader left: later writes (and the interpreter's last flush) have nowhere to go.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if session.log_path is not None:
        print(f"gpumon pipe: session log {session.log_path}", file=sys.stderr)
    if session.record_error:
        print(f"gpumon pipe: {session.record_error}", file=sys.stderr)
    code = worst(crashed=writer.crashed, hung=writer.hung, failed=writer.failed)
    if code == ExitCode.OK and session.record_error:
        return ExitCode.ERROR
    return code


async def _intervals(
    writer: PipeWriter, stop: asyncio.Event, interval: float, count: int | None
) -> None:
    """Tick on a fixed schedule (start + k·interval), so lines do not drift by the time it
    takes to write them."""
    writer.begin()
    start = time.monotonic()
    n = 0
    while count is None or n < count:
        n += 1
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        writer.tick()
