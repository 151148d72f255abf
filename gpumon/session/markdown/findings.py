"""The first section a maintainer reads: what failed, how often, where it changed.

Each line restates a figure from the sections below it (the same objects), never a new
conclusion: the rate per configuration with its interval, the bisect boundary, the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpumon import events as ev
from gpumon import sanitize, stats
from gpumon.facts import CellFacts
from gpumon.fmt import plural
from gpumon.session import repro_runs
from gpumon.session.markdown.context import Context, Signature


def section(ctx: Context) -> list[str]:
    out = ["## Findings", ""]
    lines: list[str] = []
    for r in ctx.bisect:
        lines.append(_bisect_line(ctx, r))
    for sig in ctx.signatures:
        pools = sorted({r.crash.pool for r in sig.records})
        threads = sorted({r.crash.threads for r in sig.records})
        lines.append(
            f"**{sig.title}**: {plural(len(sig.records), 'crash')} in "
            + ", ".join(ctx.pool(p) for p in pools)
            + f", at {_counts(threads)} {'thread' if threads == [1] else 'threads'}"
            + _attributed(ctx, sig)
            + "."
        )
    for label, cells in _by_series(ctx).items():
        lines.append(_series_line(label, cells))
    lines += _raised(ctx)
    for rec in repro_runs.of_session(ctx.s.folder, ctx.s.start.session_id):
        lines.append(f"The standalone script (`gpumon repro`): {repro_runs.summary(rec)}.")
    hangs = sum(1 for e in ctx.s.events if isinstance(e, ev.Stall))
    if hangs:
        lines.append(f"{plural(hangs, 'hang')} (a worker stopped answering): see Stalls.")
    if not ctx.crashes and not hangs:
        lines.append("No worker crashed or hung in this session.")
    if ctx.crashes and ctx.synthetic_only:
        lines.append(
            "Every crash here was injected by the synthetic fault backend: it shows gpumon's "
            "capture, not a framework bug."
        )
    out += [f"- {x}" for x in lines] or ["- Nothing was measured."]
    out += [
        "",
        "Rates are runs that crashed or hung over runs, with a Wilson 95% interval; a run is one "
        "configuration from its start (or the change that began it) to the next change, a stop "
        "or a crash.",
        "",
    ]
    return out


def _raised(ctx: Context) -> list[str]:
    """Threads that raised while their process lived: not crashes, but a run in which every
    thread raised measured nothing, and the rates above would otherwise hide why."""
    by: dict[tuple[str, str], int] = {}
    for e in ctx.s.events:
        if isinstance(e, ev.ThreadFailed):
            first = (e.error.strip().splitlines() or ["(no message)"])[0]
            key = (e.pool, first if len(first) <= 160 else first[:159] + "…")
            by[key] = by.get(key, 0) + 1
    return [
        f"{sanitize.md_inline_code(error)} raised in {plural(n, 'worker thread')} of "
        f"{ctx.pool(pool)} (the process lived on): see Worker threads that raised."
        for (pool, error), n in by.items()
    ]


def wilson_text(k: int, n: int) -> str:
    lo, hi = stats.wilson(k, n)
    return f"{k}/{n} ({lo:.0%}–{hi:.0%})"


def _bisect_line(ctx: Context, r: ev.BisectResult) -> str:
    what = f"`{r.pool}`, {plural(r.runs_per_version, 'run')} per release"
    span = f"{r.framework} {r.versions[0]}..{r.versions[-1]}" if r.versions else r.framework
    if r.direction in ("always-bad", "never-bad") or r.older is None or r.newer is None:
        how = "died or hung in every release" if r.direction == "always-bad" else "never failed"
        return f"Bisect of {span} ({what}): {how}; no boundary in the range."
    steps = {s.version: s for s in ctx.s.events if isinstance(s, ev.BisectStep)}

    def tally(v: str) -> str:
        s = steps.get(v)
        return f" ({s.died}/{s.runs} failed)" if s else ""

    older, newer = ("bad", "good") if r.direction == "fixed" else ("good", "bad")
    head = (
        f"last {older} **{r.framework} {r.older}**{tally(r.older)}, "
        f"first {newer} **{r.framework} {r.newer}**{tally(r.newer)}"
    )
    line = f"Bisect of {span} ({what}): {head}."
    if r.miss_at_rate is not None and r.miss_at_low is not None:
        line += (
            " Were the good side still failing at the bad side's rate, its clean runs would "
            f"come by chance with probability {r.miss_at_rate:.0%} (up to {r.miss_at_low:.0%} "
            "at the low end of that rate's 95% interval)."
        )
    return line


def _by_series(ctx: Context) -> dict[str, list[CellFacts]]:
    out: dict[str, list[CellFacts]] = {}
    for c in ctx.cells:
        workload = f"{c.workload} {c.size} {c.dtype}"
        out.setdefault(f"{ctx.series(c).label}, {workload}", []).append(c)
    return out


def _series_line(label: str, cells: Sequence[CellFacts]) -> str:
    runs = sum(c.runs for c in cells)
    failed = sum(c.failures for c in cells)
    per = ", ".join(
        f"{c.failures}/{c.runs} at {plural(c.threads, 'thread')}"
        for c in sorted(cells, key=lambda c: c.threads)
    )
    if not failed:
        worst = max(cells, key=lambda c: c.runs)
        _, hi = stats.wilson(0, worst.runs)
        return (
            f"{label}: none of {plural(runs, 'run')} failed ({per}); with "
            f"{plural(worst.runs, 'run')} a cell's rate is below {hi:.0%} (95%)."
        )
    return f"{label}: {failed} of {plural(runs, 'run')} failed — {per}."


def _attributed(ctx: Context, sig: Signature) -> str:
    """A crash that came right after a change is told as such: the change is part of it."""
    after = [a for r in sig.records if (a := ctx.attributions.get(r.crash.crash_id))]
    if not after:
        return ""
    if len(sig.records) == 1:
        return f", {after[0]}"
    return f"; {len(after)} of them soon after a change (first: {after[0]})"


def _counts(values: Sequence[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    return ", ".join(str(v) for v in values[:-1]) + f" and {values[-1]}"
