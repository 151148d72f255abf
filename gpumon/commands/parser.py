"""The `gpumon` argument parser: every subcommand's module configures its own subparser.

It lives beside the commands (not in gpumon.cli) so a command that needs the whole parser —
`gpumon completion` generates the shell script from it — can have it without importing upward.
"""

from __future__ import annotations

import argparse
import importlib

from gpumon import __version__
from gpumon.commands import SUBCOMMANDS


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


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
