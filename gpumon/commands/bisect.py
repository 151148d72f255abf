"""`gpumon bisect --pool SPEC --versions LOW..HIGH [--runs N]`: the release where a crash
appeared or went away.

Every run is a real pool of that release in its own cached environment, in one recorded
session; gpumon.bisect decides which release to run next. Output: each step with its counts,
then the boundary with the counts behind it and how likely the "good" verdict would be to
miss the bug at the rate seen on the bad side. Exit status: 0 a boundary was found, 1 nothing
changed in the range (or nothing could run), 2 a bad option.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from gpumon import events as ev
from gpumon.bisect import Bisection, Step, miss_chance
from gpumon.commands.options import (
    add_session_dir_argument,
    count_type,
    seconds_type,
)
from gpumon.exit_codes import ExitCode
from gpumon.spec import VERSIONED, PoolConfig, SpecError, parse_pool

if TYPE_CHECKING:
    from rich.console import Console


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pool",
        required=True,
        metavar="BACKEND[:DEVICE][,k=v...]",
        help="the pool every run uses, without a version, e.g. "
        "'mlx:cpu,workload=generate,threads=2'",
    )
    p.add_argument(
        "--versions",
        required=True,
        metavar="LOW..HIGH",
        help="released versions to search, inclusive (either side may be empty)",
    )
    p.add_argument(
        "--runs",
        type=count_type("--runs", 1, 100),
        default=3,
        help="runs per release; bad = a worker died or hung in any of them (default 3)",
    )
    p.add_argument(
        "--seconds", type=seconds_type("--seconds"), default=3.0, help="measured seconds a run"
    )
    p.add_argument(
        "--warmup",
        type=seconds_type("--warmup", allow_zero=True),
        default=0.5,
        help="seconds after start-up before measuring (default 0.5)",
    )
    p.add_argument("--json", dest="json_out", metavar="FILE", help="write the result as JSON")
    add_session_dir_argument(p)
    p.add_argument("--no-record", action="store_true", help="do not write a session log")


def run(args: argparse.Namespace) -> int:
    from gpumon import envs
    from gpumon.envs.interpreter import monitor_python
    from gpumon.envs.variant import choose_variant
    from gpumon.envs.versions import parse_range, releases

    pool = parse_pool(args.pool)
    if pool.backend not in VERSIONED:
        raise SpecError(
            f"bisect needs a framework pool ({', '.join(VERSIONED)}), not {pool.backend}"
        )
    if pool.version or pool.python:
        raise SpecError("leave version= and python= out of --pool: --versions chooses them")
    try:
        low, high = parse_range(args.versions)
        target = monitor_python()
        found = releases(
            pool.backend,
            low=low,
            high=high,
            variant=choose_variant(pool.backend, pool.device, target),
            target=target,
        )
    except envs.EnvError as e:
        print(f"gpumon bisect: {e}", file=sys.stderr)
        return ExitCode.USAGE if e.kind == "bad-spec" else ExitCode.ERROR
    versions = [r.version for r in found if r.installable]
    skipped = {r.version: r.reason for r in found if not r.installable}
    for v, why in skipped.items():
        print(f"gpumon bisect: skipping {pool.backend} {v}: {why}", file=sys.stderr)
    if not versions:
        print(
            f"gpumon bisect: no release of {pool.backend} in {args.versions} runs here",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    return asyncio.run(_bisect(args, pool, versions, skipped))


async def _bisect(
    args: argparse.Namespace, pool: PoolConfig, versions: list[str], skipped: dict[str, str]
) -> int:
    from rich.console import Console

    from gpumon.cells import CellWatcher, run_cell
    from gpumon.live_session import open_session

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    plan = Bisection(list(versions))
    watcher = CellWatcher()
    runs = args.runs
    out.print(
        f"bisecting {pool.backend} {versions[0]}..{versions[-1]} "
        f"({len(versions)} releases), {runs} run(s) of {args.seconds:g} s each: {args.pool}"
    )
    async with open_session(
        mode="bisect",
        argv=["gpumon", *sys.argv[1:]],
        record=not args.no_record,
        session_dir=Path(args.session_dir) if args.session_dir else None,
        listeners=[watcher],
        end_reason="bisect finished",
    ) as session:
        while (v := plan.next_version()) is not None:
            cfg = msgspec.structs.replace(pool, version=v, name=f"{pool.backend}@{v}")
            died, signals, why = 0, [], ""
            for i in range(runs):
                with err.status(f"{pool.backend} {v}: run {i + 1}/{runs}"):
                    o = await run_cell(
                        session.supervisor,
                        watcher,
                        cfg,
                        warmup=args.warmup,
                        seconds=args.seconds,
                    )
                if o.failed:
                    why = o.failed
                    break
                died += o.died
                signals += o.signals
            if why:
                err.print(f"gpumon bisect: {pool.backend} {v} could not run: {why}")
                skipped[v] = why
                plan.versions.remove(v)
                continue
            step = Step(v, runs, died, tuple(signals))
            plan.record(step)
            session.publish(
                ev.BisectStep(
                    framework=pool.backend, version=v, runs=runs, died=died, signals=signals
                )
            )
            verdict = "[bold red]bad[/]" if step.bad else "[green]good[/]"
            what = f" ({', '.join(signals)})" if signals else ""
            out.print(f"  {pool.backend} {v:<10} {died}/{runs} died{what:<30} {verdict}")
        result = _result(plan, pool, args.pool, runs, skipped)
        session.publish(result)
    _summary(out, result, plan)
    if args.json_out:
        _write_json(args.json_out, result, plan)
    if session.log_path is not None:
        err.print(f"session log: {session.log_path}")
    return ExitCode.OK if result.older and result.newer else ExitCode.ERROR


def _result(
    plan: Bisection,
    pool: PoolConfig,
    spec: str,
    runs: int,
    skipped: dict[str, str],
) -> ev.BisectResult:
    boundary = plan.boundary
    older = newer = None
    miss: tuple[float | None, float | None] = (None, None)
    if boundary is not None:
        older, newer = boundary[0].version, boundary[1].version
        bad, good = boundary if plan.direction == "fixed" else boundary[::-1]
        miss = miss_chance(bad, good.runs)
    return ev.BisectResult(
        pool=spec,
        framework=pool.backend,
        versions=list(plan.versions),
        skipped=dict(skipped),
        runs_per_version=runs,
        direction=plan.direction,
        older=older,
        newer=newer,
        miss_at_rate=miss[0],
        miss_at_low=miss[1],
    )


def _summary(out: Console, r: ev.BisectResult, plan: Bisection) -> None:
    fw = r.framework
    if r.direction in ("always-bad", "never-bad"):
        how = "died or hung" if r.direction == "always-bad" else "survived"
        out.print(f"no change in the range: every release tested {how} ({len(plan.steps)} tested)")
        return
    if r.older is None or r.newer is None:
        out.print("no boundary found")
        return
    a, b = plan.steps[r.older], plan.steps[r.newer]
    good = b if r.direction == "fixed" else a
    if r.direction == "fixed":
        out.print(
            f"[bold]last bad: {fw} {a.version}[/] ({a.died}/{a.runs} runs died) · "
            f"[bold]first good: {fw} {b.version}[/] (0/{b.runs})"
        )
    else:
        out.print(
            f"[bold]last good: {fw} {a.version}[/] (0/{a.runs}) · "
            f"[bold]first bad: {fw} {b.version}[/] ({b.died}/{b.runs} runs died)"
        )
    if r.miss_at_rate is not None and r.miss_at_low is not None:
        out.print(
            f"if {fw} {good.version} still had the bug at the rate seen on the bad side, its "
            f"{good.runs} clean runs would happen by chance with probability "
            f"{r.miss_at_rate:.0%} (up to {r.miss_at_low:.0%} at the low end of that rate's "
            "95% interval); more --runs narrow it"
        )


def _write_json(dest: str, r: ev.BisectResult, plan: Bisection) -> None:
    fixed, regressed = r.direction == "fixed", r.direction == "regressed"
    doc = {
        "pool": r.pool,
        "framework": r.framework,
        "direction": r.direction,
        "last_bad": r.older if fixed else None,
        "first_good": r.newer if fixed else None,
        "last_good": r.older if regressed else None,
        "first_bad": r.newer if regressed else None,
        "runs_per_version": r.runs_per_version,
        "miss_probability": {"at_rate": r.miss_at_rate, "at_low_95": r.miss_at_low},
        "skipped": r.skipped,
        "steps": [
            {"version": s.version, "runs": s.runs, "died": s.died, "signals": list(s.signals)}
            for v in plan.versions
            if (s := plan.steps.get(v)) is not None
        ],
    }
    text = json.dumps(doc, indent=2) + "\n"
    if dest == "-":
        sys.stdout.write(text)
    else:
        Path(dest).write_text(text)
