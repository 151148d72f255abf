"""`gpumon envs`: list the cached framework environments, remove one, or prune old ones.

    gpumon envs                         table: framework, version, build, Python, size, dates
    gpumon envs --remove mlx@0.31.1     every build/Python of that version (or a folder name)
    gpumon envs --prune [--days N]      those unused for N days (default 30), and leftovers
    gpumon envs --prune --all           everything
    --json                              machine-readable output of any of the above

Exit status: 0 done; 1 the cache could not be read or changed, or nothing matched --remove;
2 a malformed spec or option. Errors are one line on stderr, never a traceback.
Only argparse is imported at module level: the CLI imports this while building its parser.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from gpumon.envs.cache import CachedEnv

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
DEFAULT_DAYS = 30.0


def configure(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--remove",
        metavar="SPEC",
        help="remove FRAMEWORK@VERSION (all its builds and Pythons) or one folder by name",
    )
    action.add_argument(
        "--prune",
        action="store_true",
        help=f"remove environments unused for --days (default {DEFAULT_DAYS:g}) and leftovers "
        "of interrupted builds",
    )
    parser.add_argument(
        "--days",
        type=float,
        default=None,
        metavar="N",
        help="with --prune: the age of last use that counts as unused",
    )
    parser.add_argument(
        "--all", action="store_true", help="with --prune: remove every cached environment"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--env-dir",
        metavar="DIR",
        default=None,
        help="the environment cache (default: $GPUMON_ENV_DIR, else the per-user cache "
        "directory, e.g. ~/.cache/gpumon/envs)",
    )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(epoch))


def env_record(env: CachedEnv) -> dict[str, Any]:
    meta = env.meta
    return {
        "name": env.name,
        "path": str(env.path),
        "complete": env.complete,
        "framework": meta.framework if meta else None,
        "version": meta.version if meta else None,
        "variant": meta.variant if meta else None,
        "python": meta.python if meta else None,
        "platform": meta.platform if meta else None,
        "installed": dict(meta.installed) if meta else {},
        "tool": meta.tool if meta else None,
        "size_bytes": env.size_bytes,
        "created": meta.created if meta else None,
        "last_used": _iso(env.last_used),
    }


def _ago(epoch: float, now: float) -> str:
    from gpumon.fmt import duration

    age = max(now - epoch, 0.0)
    if age < 86400:
        return f"{duration(age)} ago"
    return f"{age / 86400:.0f} d ago"


def _created(stamp: str | None) -> str:
    # ISO 8601 from the metadata, shown to the minute in the reader's local time.
    import datetime as dt

    if not stamp:
        return "–"
    try:
        return dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def _print_table(envs: list[CachedEnv], root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from gpumon.fmt import nbytes, plural

    console = Console(highlight=False)
    if not envs:
        console.print(f"no cached environments in {root}")
        return
    now = time.time()
    table = Table(box=None, pad_edge=False)
    for col in ("framework", "version", "build", "python", "size", "created", "last used"):
        table.add_column(col, justify="right" if col == "size" else "left", no_wrap=True)
    for env in envs:
        m = env.meta
        if m is None or not env.complete:
            why = "incomplete" if m is None else "broken: its Python is gone"
            table.add_row(
                env.name,
                f"[yellow]{why}[/]",
                "",
                "",
                nbytes(env.size_bytes),
                "",
                _ago(env.last_used, now),
            )
            continue
        table.add_row(
            m.framework,
            m.version,
            m.variant,
            m.python,
            nbytes(env.size_bytes),
            _created(m.created),
            _ago(env.last_used, now),
        )
    console.print(table)
    total = sum(e.size_bytes for e in envs)
    console.print(f"{plural(len(envs), 'environment')}, {nbytes(total)} on disk, in {root}")


def _fail(e: Exception) -> int:
    from gpumon.envs.errors import EnvError

    print(f"gpumon envs: {e}", file=sys.stderr)
    bad = isinstance(e, EnvError) and e.kind == "bad-spec"
    return EXIT_USAGE if bad else EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    from gpumon.envs import cache, layout
    from gpumon.envs.errors import EnvError
    from gpumon.fmt import nbytes, plural

    if (args.days is not None or args.all) and not args.prune:
        print("gpumon envs: --days and --all go with --prune", file=sys.stderr)
        return EXIT_USAGE
    if args.days is not None and args.all:
        print("gpumon envs: give --days N or --all, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.days is not None and not args.days >= 0:
        print(f"gpumon envs: --days {args.days:g} must be zero or more", file=sys.stderr)
        return EXIT_USAGE
    root = layout.env_root(args.env_dir)
    try:
        if args.remove:
            removed = cache.remove(args.remove, root)
            if args.json:
                print(json.dumps({"root": str(root), "removed": [env_record(e) for e in removed]}))
            else:
                for e in removed:
                    print(f"removed {e.name} ({nbytes(e.size_bytes)})")
            return EXIT_OK
        if args.prune:
            days = DEFAULT_DAYS if args.days is None else args.days
            result = cache.prune(root, days=days, everything=args.all)
            if args.json:
                print(
                    json.dumps(
                        {
                            "root": str(root),
                            "removed": [env_record(e) for e in result.removed],
                            "skipped": result.skipped,
                            "leftovers": result.leftovers,
                        }
                    )
                )
                return EXIT_OK
            for e in result.removed:
                print(f"removed {e.name} ({nbytes(e.size_bytes)})")
            for name in result.skipped:
                print(f"skipped {name}: being built right now")
            freed = sum(e.size_bytes for e in result.removed)
            scope = "every environment" if args.all else f"unused for {days:g} days"
            print(
                f"pruned {plural(len(result.removed), 'environment')} ({scope}), "
                f"{nbytes(freed)}; {plural(result.leftovers, 'leftover folder')} cleaned"
            )
            return EXIT_OK
        envs = cache.list_envs(root)
        if args.json:
            print(json.dumps({"root": str(root), "envs": [env_record(e) for e in envs]}))
        else:
            _print_table(envs, root)
        return EXIT_OK
    except EnvError as e:
        return _fail(e)
