"""Runs `gpumon crash` exactly as gpumon/cli.py wires it (configure + run on an argparse
subparser), without building the other subcommands: lets the crash command be tested end to
end in a subprocess even while another subcommand module cannot be imported."""

import argparse
import sys

from gpumon.commands import crash as command

parser = argparse.ArgumentParser(prog="gpumon crash")
command.configure(parser)
sys.exit(command.run(parser.parse_args(sys.argv[1:])))
