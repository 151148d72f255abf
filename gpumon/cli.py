"""The `gpumon` command: a dispatcher from subcommand names to gpumon.commands modules.

It owns only what every subcommand shares: usage errors as one line (exit 2), a spec error as
one line (exit 2), Ctrl-C, a closed pipe, and a last-resort line for a bug in gpumon itself
instead of a traceback (exit 70; GPUMON_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from gpumon.commands.parser import Parser, UsageError, build_parser
from gpumon.exit_codes import ExitCode
from gpumon.spec import SpecError

__all__ = ["Parser", "UsageError", "build_parser", "main"]


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
            return ExitCode.USAGE
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except UsageError as e:
        print(e, file=sys.stderr)
        return ExitCode.USAGE
    except SpecError as e:
        print(f"gpumon: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("gpumon: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`gpumon sessions | head`): nothing left to say to it.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lets interpreter exit quietly
        return ExitCode.ERROR
    except Exception as e:
        if os.environ.get("GPUMON_DEBUG"):
            traceback.print_exc()
        where = _where(e)
        print(
            f"gpumon: internal error (please report it): {type(e).__name__}: {e}{where}",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    last = tb[-1]
    return f" [{os.path.basename(last.filename)}:{last.lineno}]"


if __name__ == "__main__":
    raise SystemExit(main())
