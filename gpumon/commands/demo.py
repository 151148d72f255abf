"""`gpumon demo [NAME]`: a framework's threading bug, shown live from a built-in scenario.

The default, `mlx-threads`, runs MLX 0.31.1 beside the installed MLX: two threads kill
0.31.1, the crash screen shows its native frames, a lock (or a newer MLX) survives. Where
0.31.1 cannot be had (offline and not cached) it says so and plays the same story on the
synthetic fault backend. `--list` names the built-ins; `gpumon run NAME` plays one headless.
"""

from __future__ import annotations

import argparse

from gpumon.commands.options import add_session_dir_argument

DEFAULT = "mlx-threads"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name", nargs="?", default=DEFAULT, help=f"a built-in scenario (default {DEFAULT})"
    )
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    add_session_dir_argument(p)
    p.add_argument("--no-record", action="store_true", help="do not write a session log")
    p.add_argument(
        "--readonly", action="store_true", help="no pool keys: the scenario drives the pools"
    )


def run(args: argparse.Namespace) -> int:
    from gpumon.commands import live
    from gpumon.scenario.model import builtins

    if args.list:
        for sc in builtins():
            print(f"{sc.name:<16} {sc.title}")
        return 0
    # The live monitor with that scenario and its defaults for everything else.
    parser = argparse.ArgumentParser(add_help=False)
    live.configure(parser)
    live_args = parser.parse_args([])
    live_args.scenario = args.name
    live_args.session_dir = args.session_dir
    live_args.no_record = args.no_record
    live_args.readonly = args.readonly
    return live.run(live_args)
