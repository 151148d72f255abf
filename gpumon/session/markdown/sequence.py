"""Reproduce: the command, the runs in order (folded), and the full timeline folded away.

A sweep or a bisect is dozens of start/stop rows; what a reader needs is the runs: which
configuration, how many times in a row, how each ended. Consecutive runs of one pool at one
configuration fold into a row; the event-by-event timeline stays, inside `<details>`.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Sequence

from gpumon import analysis, control
from gpumon import events as ev
from gpumon.fmt import plural
from gpumon.session.markdown.blocks import details, table
from gpumon.session.markdown.context import Context

TIMELINE_MAX = 200  # rows; a long session's timeline is cut, with a count of the rest


def section(ctx: Context, script_hint: str = "") -> list[str]:
    start = ctx.s.start
    out = ["## Reproduce", "", "The command that started this session:", "", "```sh"]
    if start.cwd and start.cwd != "?":
        out.append(f"cd {shlex.quote(start.cwd)}")
    out += [command_line(start.argv), "```", ""]
    if script_hint:
        out += [script_hint, ""]
    for e in ctx.s.events:
        if isinstance(e, ev.ScenarioStarted):
            line = f"It played the scenario `{e.name}` ({plural(e.steps, 'step')}, {e.source})."
            if e.fallback:
                line += f" Synthetic pools stood in for the pinned version: {e.note}"
            out += [line, ""]
    blocks = _blocks(ctx.runs)
    if blocks:
        out += ["The runs, in order (consecutive runs of one configuration folded):", ""]
        out += [
            *table(
                ["Time", "Pool", "Configuration", "Runs", "How they ended"],
                [_block_row(ctx, b) for b in blocks],
            ),
            "",
        ]
    rows = [row for e in ctx.s.events if (row := _timeline_row(ctx, e)) is not None]
    if rows:
        body = table(["Time", "Pool", "Event", "Detail"], rows[:TIMELINE_MAX])
        if len(rows) > TIMELINE_MAX:
            body += ["", f"… and {len(rows) - TIMELINE_MAX} more (see the log)."]
        out += details(f"Every control, crash and restart ({plural(len(rows), 'row')})", body)
    return out


def _blocks(runs: Sequence[analysis.Run]) -> list[list[analysis.Run]]:
    out: list[list[analysis.Run]] = []
    for r in sorted(runs, key=lambda r: r.start_t):
        if out and out[-1][-1].key == r.key and not r.began_with:
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _block_row(ctx: Context, block: list[analysis.Run]) -> list[str]:
    r = block[0]
    end = block[-1].end_t or block[-1].start_t
    span = ctx.rel(r.start_t) + (f" – {ctx.rel(end)}" if len(block) > 1 else "")
    config = f"{plural(r.threads, 'thread')}, {r.policy}, {r.workload} {r.size} {r.dtype}"
    if r.began_with:
        config += f" (after {r.began_with})"
    ends: Counter[str] = Counter()
    for x in block:
        if x.crashed:
            ends[x.crash_signal or "crash"] += 1
        elif x.stalled:
            ends["hang"] += 1
        elif x.stop_crash_signal:
            ends[f"{x.stop_crash_signal} while stopping"] += 1
        elif x.threads_failed:  # the process lived, but not every thread did: not "clean"
            ends[f"{plural(x.threads_failed, 'thread')} failed"] += 1
        else:
            ends["clean"] += 1
    how = ", ".join(f"{k} ×{n}" if len(block) > 1 else k for k, n in ends.items())
    attributed = [a for x in block if (a := x.attribution)]
    if attributed:
        how += (
            f" ({attributed[0]})"
            if len(attributed) == 1
            else f" ({len(attributed)} soon after a change)"
        )
    return [span, ctx.pool(r.pool), config, str(len(block)), how]


def _timeline_row(ctx: Context, e: ev.Event) -> list[str] | None:
    t = ctx.rel(e.t)
    if isinstance(e, ev.Control):
        result = ("ok" if e.ok else "refused") + (f": {e.detail}" if e.detail else "")
        return [t, ctx.pool(e.pool), control.describe(e.command), f"{result} (from {e.source})"]
    if isinstance(e, ev.PoolReady):
        return [t, ctx.pool(e.pool), "ready", f"pid {e.pid}, {e.size} {e.dtype}"]
    if isinstance(e, ev.Crash):
        how = e.signal or f"exit code {e.exit_code}"
        return [
            t,
            ctx.pool(e.pool),
            f"crash {how}",
            f"`{e.crash_id}` at {plural(e.threads, 'thread')}, {e.policy}, during "
            f"{e.during}, {e.uptime:.3f} s after ready",
        ]
    if isinstance(e, ev.PoolRestart):
        return [
            t,
            ctx.pool(e.pool),
            "restart",
            f"attempt {e.attempt} after {e.delay:g} s backoff "
            f"({plural(e.crashes, 'crash')} so far)",
        ]
    if isinstance(e, ev.Stall):
        return [
            t,
            ctx.pool(e.pool),
            "stall",
            f"no message for {e.silent_for:.1f} s at {plural(e.threads, 'thread')}",
        ]
    if isinstance(e, ev.PoolFailed):
        return [t, ctx.pool(e.pool), "failed", e.message]
    if isinstance(e, ev.PoolStopped):
        return [t, ctx.pool(e.pool), "stopped", e.reason]
    if isinstance(e, ev.BisectStep):
        return [
            t,
            "",
            f"bisect {e.framework} {e.version}",
            f"{e.died}/{e.runs} failed" + (f" ({', '.join(e.signals)})" if e.signals else ""),
        ]
    if isinstance(e, ev.ScenarioStep):
        what = e.caption + (f" (waited for {e.waited})" if e.waited else "")
        return [t, ctx.pool(e.pool) if e.pool else "", f"step {e.index}/{e.total}", what]
    if isinstance(e, ev.SessionEnd):
        return [t, "", "session end", e.reason]
    return None


def command_line(argv: Sequence[str]) -> str:
    """The recorded argv as one shell line, run as `gpumon ...` whatever path started it."""
    if not argv:
        return "gpumon"
    first = os.path.basename(argv[0])
    rest = list(argv[1:])
    if first in ("gpumon", "__main__.py") or first.startswith("python"):
        if first.startswith("python") and rest[:2] == ["-m", "gpumon"]:
            rest = rest[2:]
        elif first.startswith("python"):
            return shlex.join(argv)  # a script of the user's own: keep it as it was
        return shlex.join(["gpumon", *rest])
    if first.endswith(".py"):
        # sys.argv of a script run as `python3 script.py` has lost the interpreter.
        return shlex.join(["python3", *argv])
    return shlex.join(argv)
