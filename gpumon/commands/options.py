"""Options shared by several subcommands: the pool options, the session folder, number types.

Every value goes through gpumon.spec's validators, so a global `--threads 0` and a pool key
`threads=0` are refused with the same sentence. argparse turns an ArgumentTypeError into one
usage line (gpumon.commands.parser.Parser), exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gpumon import layout
from gpumon.spec import (
    DTYPES,
    FAULT_KINDS,
    NATIVE_MODES,
    POLICIES,
    WORKLOADS,
    FaultConfig,
    PoolConfig,
    SpecError,
    parse_fault_rate,
    parse_key,
    parse_pool,
    parse_seconds,
    unique_names,
)

if TYPE_CHECKING:
    from gpumon.metrics import Exporter


def _argtype(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return parse(text)
        except SpecError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def key_type(key: str) -> Callable[[str], object]:
    """argparse type for a global option that is also a pool key (`--threads` = `threads=`)."""
    return _argtype(lambda text: parse_key(key, text), key)


def seconds_type(what: str, *, allow_zero: bool = False) -> Callable[[str], object]:
    return _argtype(lambda text: parse_seconds(text, what, allow_zero=allow_zero), what)


def count_type(what: str, lo: int, hi: int) -> Callable[[str], object]:
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise SpecError(f"{what} {text!r} is not a whole number") from None
        if not lo <= n <= hi:
            raise SpecError(f"{what} {n} is out of range; use {lo}..{hi}")
        return n

    return _argtype(parse, what)


def add_session_dir_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--session-dir D` for every command that records or lists sessions."""
    parser.add_argument(
        "--session-dir",
        metavar="DIR",
        default=None,
        help=f"where session folders are kept (default: ${layout.ENV_VAR}, else the per-user "
        "data directory, e.g. ~/.local/share/gpumon/sessions)",
    )


def add_pool_options(
    p: argparse.ArgumentParser, *, default_pools: str, threads_list: bool = False
) -> None:
    """Options shared by every command that starts pools (live TUI, sweep). With
    `threads_list`, --threads takes a ramp such as 1,2,4,8 (stored as `ramp`)."""
    g = p.add_argument_group("pools")
    g.add_argument(
        "--pool",
        action="append",
        metavar="BACKEND[@VERSION][:DEVICE][,k=v...]",
        help="a pool to run; repeatable. Backends: mlx, torch, fault (synthetic). "
        f"Devices: mlx:gpu|cpu, torch:mps|cuda|cpu. Default: {default_pools}. "
        "Per-pool keys: threads, workload, size, dtype, policy, name, version, python, fault, "
        "fault-at-threads, fault-rate, native, intra-op (torch)",
    )
    if threads_list:
        g.add_argument(
            "--threads",
            dest="ramp",
            default="1,2,4,8",
            metavar="LIST",
            help="thread counts to run, e.g. 1,2,4,8 or 1-4 (default 1,2,4,8)",
        )
    else:
        g.add_argument(
            "--threads",
            type=key_type("threads"),
            default=None,
            metavar="N",
            help="worker threads per pool (default 1)",
        )
    g.add_argument(
        "--workload",
        type=key_type("workload"),
        default="matmul",
        metavar="|".join(WORKLOADS),
        help="matmul = addmm like the original MLX crash; mlp = small forward pass",
    )
    g.add_argument(
        "--size",
        type=key_type("size"),
        default=None,
        metavar="N",
        help="matrix / hidden size (default: 512 on CPU, 4096 on GPUs)",
    )
    g.add_argument(
        "--dtype",
        type=key_type("dtype"),
        default=None,
        metavar="|".join(DTYPES),
        help="default: float32 on CPU, bfloat16 on GPUs",
    )
    g.add_argument(
        "--policy",
        type=key_type("policy"),
        default=None,
        metavar="|".join(POLICIES),
        help="per-thread streams, one shared stream, or a lock around submission "
        "(default: what the framework itself does — per-thread, or shared on MLX < 0.31.2)",
    )
    g.add_argument(
        "--sync-every",
        type=key_type("sync-every"),
        default=1,
        metavar="K",
        help="synchronise the device every K ops (default 1: every op)",
    )
    g.add_argument(
        "--fault",
        type=key_type("fault"),
        default="segv",
        metavar="|".join(FAULT_KINDS),
        help="fault backend only: which real native fault to inject",
    )
    g.add_argument(
        "--fault-at-threads",
        type=key_type("fault-at-threads"),
        default=2,
        metavar="N",
        help="fault backend only: arm the fault at N or more threads (default 2)",
    )
    g.add_argument(
        "--fault-rate",
        type=_argtype(parse_fault_rate, "fault-rate"),
        default=2.0,
        metavar="PER_S",
        help="fault backend only: expected faults per second once armed (default 2)",
    )
    g.add_argument(
        "--native-stacks",
        type=key_type("native"),
        default="auto",
        metavar="|".join(NATIVE_MODES),
        help="native stacks of every thread on a crash: auto (gdb where present), "
        "gdb (require it), off",
    )


def pools_from_args(args: argparse.Namespace, default_pools: Sequence[str]) -> list[PoolConfig]:
    """Build PoolConfigs from --pool and the global pool options; raises SpecError."""
    n = getattr(args, "threads", None)
    defaults = PoolConfig(
        name="",
        backend="fault",
        threads=n if n is not None else 1,
        workload=args.workload,
        size=args.size,
        dtype=args.dtype,
        policy=args.policy,
        sync_every=args.sync_every,
        fault=FaultConfig(kind=args.fault, at_threads=args.fault_at_threads, rate=args.fault_rate),
        native_stacks=args.native_stacks,
    )
    specs = args.pool or list(default_pools)
    return unique_names([parse_pool(s, defaults) for s in specs])


def add_metrics_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--metrics-port PORT` / `--metrics-addr ADDR`: a Prometheus endpoint (gpumon.metrics)."""
    parser.add_argument(
        "--metrics-port",
        type=count_type("--metrics-port", 0, 65535),
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on this port while running (0: any free port, printed); "
        "needs gpumon[metrics]",
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the metrics endpoint binds to (default 127.0.0.1; 0.0.0.0 for a "
        "Prometheus on another machine)",
    )
    parser.add_argument(
        "--metrics-linger",
        type=seconds_type("--metrics-linger", allow_zero=True),
        default=0.0,
        metavar="S",
        help="keep serving the final figures this long after the run ends, so the last "
        "scrape of a nightly job sees its last cell (default 0)",
    )


def add_restart_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--restart/--no-restart` and `--stall-after`, for the commands that keep pools running."""
    parser.add_argument(
        "--restart",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restart a crashed pool automatically, with backoff (default: on)",
    )
    parser.add_argument(
        "--stall-after",
        type=seconds_type("--stall-after"),
        default=None,
        metavar="SECONDS",
        help="report a worker as stalled after this long without a message (default 3)",
    )


def start_metrics(args: argparse.Namespace, command: str, interval: float = 1.0) -> Exporter | None:
    """The running exporter (a gpumon.metrics.Exporter) for `--metrics-port`, or None without
    the option; raises MetricsUnavailable (one line to print, exit 1) when it cannot be served
    — before any pool starts, so a taken port costs nothing."""
    if getattr(args, "metrics_port", None) is None:
        return None
    from gpumon.metrics import Exporter, MetricsError

    try:
        exporter = Exporter(args.metrics_port, args.metrics_addr, interval).start()
    except MetricsError as e:
        raise MetricsUnavailable(f"gpumon {command}: {e}") from None
    import sys

    print(f"gpumon {command}: metrics at {exporter.url}", file=sys.stderr, flush=True)
    return exporter


def stop_metrics(exporter: Exporter | None, args: argparse.Namespace) -> None:
    """Stop the endpoint, after `--metrics-linger` seconds of serving the final figures."""
    if exporter is None:
        return
    try:
        linger = getattr(args, "metrics_linger", 0.0) or 0.0
        if linger > 0:
            import time

            time.sleep(linger)
    finally:
        exporter.stop()


class MetricsUnavailable(Exception):
    """--metrics-port was given and cannot be served; str() is the one line to print."""
