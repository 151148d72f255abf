"""`gpumon compare A B [--json]` (being written)."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")


def run(args: argparse.Namespace) -> int:
    return 1
