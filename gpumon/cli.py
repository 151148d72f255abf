"""The `gpumon` command: wires subcommands to their modules, and turns user errors into one line.

Subcommand modules are imported lazily so `gpumon crash FILE` does not pay for Textual, and so
no subcommand can drag a framework into the monitor process.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gpumon import __version__
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
    parse_pool,
    unique_names,
    validate_size,
    validate_threads,
)

EXIT_OK = 0
EXIT_ERROR = 1  # bad input, unreadable file, missing framework
EXIT_USAGE = 2  # unknown flag / bad option value
EXIT_CRASHED = 3  # sweep: at least one worker died

# name -> (module, help). Each module exposes configure(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "live": ("gpumon.tui.command", "open the interactive monitor (the default)"),
    "sweep": ("gpumon.sweep", "headless thread-count ramp with a scaling and crash table"),
    "doctor": ("gpumon.doctor", "what this machine can run and how crashes are captured"),
    "crash": ("gpumon.crash.command", "summarise a crash report (.ips, .crash, faulthandler)"),
    "replay": ("gpumon.tui.replay_command", "play a recorded session back in the monitor"),
    "sessions": ("gpumon.session.command_sessions", "list recorded sessions"),
    "export": ("gpumon.session.command_export", "export a session log as csv, json or md"),
}


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def add_pool_options(
    p: argparse.ArgumentParser, *, default_pools: str, threads_list: bool = False
) -> None:
    """Options shared by every command that starts pools (live TUI, sweep). With
    `threads_list`, --threads takes a ramp such as 1,2,4,8 (stored as `ramp`)."""
    g = p.add_argument_group("pools")
    g.add_argument(
        "--pool",
        action="append",
        metavar="BACKEND[:DEVICE][,k=v...]",
        help="a pool to run; repeatable. Backends: mlx, torch, fault (synthetic). "
        f"Devices: mlx:gpu|cpu, torch:mps|cuda|cpu. Default: {default_pools}. "
        "Per-pool keys: threads, workload, size, dtype, policy, name, fault, "
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
            type=positive_int,
            default=None,
            metavar="N",
            help="worker threads per pool (default 1)",
        )
    g.add_argument(
        "--workload",
        choices=WORKLOADS,
        default="matmul",
        help="matmul = addmm like the original MLX crash; mlp = small forward pass",
    )
    g.add_argument(
        "--size",
        type=positive_int,
        default=None,
        metavar="N",
        help="matrix / hidden size (default: 512 on CPU, 4096 on GPUs)",
    )
    g.add_argument(
        "--dtype", choices=DTYPES, default=None, help="default: float32 on CPU, bfloat16 on GPUs"
    )
    g.add_argument(
        "--policy",
        choices=POLICIES,
        default="per-thread",
        help="per-thread streams (default), one shared stream, or a lock around submission",
    )
    g.add_argument(
        "--sync-every",
        type=positive_int,
        default=1,
        metavar="K",
        help="synchronise the device every K ops (default 1: every op)",
    )
    g.add_argument(
        "--fault",
        choices=FAULT_KINDS,
        default="segv",
        help="fault backend only: which real native fault to inject",
    )
    g.add_argument(
        "--fault-at-threads",
        type=positive_int,
        default=2,
        metavar="N",
        help="fault backend only: arm the fault at N or more threads (default 2)",
    )
    g.add_argument(
        "--fault-rate",
        type=parse_fault_rate_arg,
        default=2.0,
        metavar="PER_S",
        help="fault backend only: expected faults per second once armed (default 2)",
    )
    g.add_argument(
        "--native-stacks",
        choices=NATIVE_MODES,
        default="auto",
        help="native stacks of every thread on a crash: auto (gdb where present), "
        "gdb (require it), off",
    )


def parse_fault_rate_arg(text: str) -> float:
    try:
        return parse_fault_rate(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def pools_from_args(args: argparse.Namespace, default_pools: Sequence[str]) -> list[PoolConfig]:
    """Build PoolConfigs from --pool and the global pool options; raises SpecError."""
    n = getattr(args, "threads", None)
    threads = validate_threads(n) if n is not None else 1
    size = validate_size(args.size) if args.size is not None else None
    defaults = PoolConfig(
        name="",
        backend="fault",
        threads=threads,
        workload=args.workload,
        size=size,
        dtype=args.dtype,
        policy=args.policy,
        sync_every=args.sync_every,
        fault=FaultConfig(kind=args.fault, at_threads=args.fault_at_threads, rate=args.fault_rate),
        native_stacks=args.native_stacks,
    )
    specs = args.pool or list(default_pools)
    return unique_names([parse_pool(s, defaults) for s in specs])


def build_parser() -> Parser:
    parser = Parser(
        prog="gpumon",
        description="Run isolated MLX / PyTorch worker pools, watch them live, and keep the "
        "native stacks when a worker dies.",
        epilog="With no subcommand, gpumon opens the live monitor (same options as `gpumon live`).",
    )
    parser.add_argument("--version", action="version", version=f"gpumon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(sp)
        sp.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `gpumon --pool fault` means `gpumon live --pool fault`.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["live", *argv]
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    except SpecError as e:
        print(f"gpumon: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gpumon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
