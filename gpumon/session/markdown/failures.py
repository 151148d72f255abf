"""Crash rates with their intervals, each crash signature with its stacks, stalls, threads
that raised, and the monitor's own warnings."""

from __future__ import annotations

import os

from gpumon import events as ev
from gpumon import sanitize, stats
from gpumon.crash.render import markdown_summary
from gpumon.facts import CellFacts
from gpumon.fmt import nbytes, plural
from gpumon.session.markdown.blocks import details, table
from gpumon.session.markdown.context import Context, Signature
from gpumon.session.markdown.findings import wilson_text

STDERR_LINES = 30
ROWS_MAX = 200  # thread failures and warnings listed; a count of the rest


def rates(ctx: Context) -> list[str]:
    if not ctx.cells:
        return []
    rows = [_rate_row(ctx, c) for c in ctx.cells]
    return [
        "## Crash rate per configuration",
        "",
        *table(
            [
                "Series",
                "Workload",
                "Threads",
                "Failed / runs (Wilson 95%)",
                "Runs to see it (95%)",
                "Time to first crash",
                "Signals",
                "Hangs",
                "Died while stopping",
                "Threads that raised",
                "Soon after a change",
            ],
            rows,
            optional=("Died while stopping", "Threads that raised", "Soon after a change"),
        ),
        "",
        "Failed = crashed or hung while measuring. Runs to see it: runs needed for a 95% chance "
        "of at least one failure at the observed rate (in brackets: at the low end of its "
        "interval). Died while stopping: deaths after gpumon asked the worker to stop, counted "
        "apart. Soon after a change: crashes within "
        f"{_window()} of the command that began their run.",
        "",
    ]


def _window() -> str:
    from gpumon.analysis import ATTRIBUTION_WINDOW

    return f"{ATTRIBUTION_WINDOW:g} s"


def _rate_row(ctx: Context, c: CellFacts) -> list[str]:
    k, n = c.failures, c.runs
    if k:
        lo, _ = stats.wilson(k, n)
        see = stats.runs_to_see(k / n)
        at_low = stats.runs_to_see(lo)
        to_see = f"{see}" + (f" ({at_low})" if at_low is not None and at_low != see else "")
    else:
        to_see = "—"
    signals = ", ".join(c.crash_signals) or "—"
    first = f"{c.first_crash_after_s:.3f} s" if c.first_crash_after_s is not None else "—"
    stops = f"{c.stop_crashes} ({', '.join(c.stop_crash_signals)})" if c.stop_crashes else "0"
    after = [
        a
        for r in ctx.runs
        if r.pool == c.pool
        and r.threads == c.threads
        and r.policy == c.policy
        and r.workload == c.workload
        and (a := r.attribution)
    ]
    return [
        ctx.series(c).label,
        f"{c.workload} {c.size} {c.dtype}",
        str(c.threads),
        wilson_text(k, n),
        to_see,
        first,
        signals,
        f"{c.hangs}/{n}",
        stops,
        str(c.threads_failed),
        "; ".join(after) or "—",
    ]


def signatures(ctx: Context) -> list[str]:
    if not ctx.crashes:
        return ["## Crashes", "", "No worker crashed in this session.", ""]
    out = [
        "## Crashes",
        "",
        f"{plural(len(ctx.crashes), 'crash')}, {plural(len(ctx.signatures), 'distinct signature')} "
        "(signal + the crashed thread's top non-system frames).",
        "",
    ]
    for n, sig in enumerate(ctx.signatures, start=1):
        out += _signature(ctx, n, sig)
    return out


def _signature(ctx: Context, n: int, sig: Signature) -> list[str]:
    out = [f"### Signature {n}: {sig.title} — {plural(len(sig.records), 'crash')}", ""]
    rows = []
    for rec in sig.records:
        c = rec.crash
        rows.append(
            [
                f"`{c.crash_id}`",
                ctx.rel(c.t),
                ctx.pool(c.pool),
                str(c.threads),
                c.policy,
                c.workload,
                f"{c.uptime:.3f} s",
                str(c.ops_total),
                c.detected_by,
                c.during,
                ctx.attributions.get(c.crash_id, "—"),
            ]
        )
    out += [
        *table(
            [
                "Crash",
                "Time",
                "Pool",
                "Threads",
                "Policy",
                "Workload",
                "Up for",
                "Ops before",
                "Detected by",
                "During",
                "Soon after a change",
            ],
            rows,
            optional=("Soon after a change",),
        ),
        "",
    ]
    first = sig.records[0]
    native, python = first.native, first.python
    report = native or python
    if report is not None:
        summary = markdown_summary(
            ctx.s.portable_report(report),
            ctx.s.portable_report(python) if native is not None and python is not None else None,
            elide=True,
        ).rstrip("\n")
        verdict, _, rest = summary.partition("\n")
        out += [verdict, ""]
        body = rest.strip("\n").splitlines()
        out += details(
            f"Stacks of the first occurrence (`{first.crash.crash_id}`, pid {first.crash.pid})",
            body,
        )
    else:
        out += [f"**Verdict:** {sig.head}; no stacks were captured.", ""]
    notes = [a.note for a in first.artifacts if a.note]
    if notes:
        out += ["Capture notes:", "", *[f"- {sanitize.md_cell(x)}" for x in notes], ""]
    stderr = first.text("stderr")
    if stderr.strip():
        tail = stderr.rstrip("\n").splitlines()[-STDERR_LINES:]
        out += details(
            f"Worker stderr (last {plural(len(tail), 'line')})", sanitize.md_code("\n".join(tail))
        )
    arts = [(r.crash.crash_id, a) for r in sig.records for a in r.artifacts if a.path]
    if arts:
        listing = []
        for cid, a in arts:
            size = _size(a.path)
            listing.append(
                f"- `{ctx.s.relative(a.path)}` — {a.kind} of `{cid}`"
                + (f", {size}" if size else "")
            )
        out += details(f"Artifacts in the session folder ({plural(len(arts), 'file')})", listing)
    return out


def stalls(ctx: Context) -> list[str]:
    found = [e for e in ctx.s.events if isinstance(e, ev.Stall)]
    if not found:
        return []
    evidence: dict[str, list[ev.StallArtifact]] = {}
    for a in ctx.s.events:
        if isinstance(a, ev.StallArtifact):
            evidence.setdefault(a.stall_id, []).append(a)
    out = ["## Stalls", ""]
    for e in found:
        out += [
            f"### {ctx.pool(e.pool)} at {ctx.rel(e.t)}: no message for {e.silent_for:.1f} s at "
            f"{plural(e.threads, 'thread')}",
            "",
        ]
        for a in evidence.get(e.stall_id, []):
            if a.kind == "native" and a.report is not None:
                summary = markdown_summary(ctx.s.portable_report(a.report), elide=True).rstrip("\n")
                verdict, _, rest = summary.partition("\n")
                out += [
                    verdict,
                    "",
                    *details("Native stacks (on demand)", rest.strip("\n").splitlines()),
                ]
            elif a.kind == "faulthandler" and a.text.strip():
                out += details(
                    "Python stacks (faulthandler, on demand)", sanitize.md_code(a.text.rstrip("\n"))
                )
            elif a.note:
                out += [f"- {sanitize.md_cell(a.note)}", ""]
    return out


def others(ctx: Context) -> list[str]:
    failures = [e for e in ctx.s.events if isinstance(e, ev.ThreadFailed)]
    notices = [
        e for e in ctx.s.events if isinstance(e, ev.Notice) and e.level in ("warning", "error")
    ]
    out: list[str] = []
    if failures:
        out += ["## Worker threads that raised", ""]
        out += table(
            ["Time", "Pool", "Slot", "Error"],
            [[ctx.rel(e.t), ctx.pool(e.pool), str(e.slot), e.error] for e in failures[:ROWS_MAX]],
        )
        out += _more(len(failures))
    if notices:
        out += ["## Warnings and errors from the monitor", ""]
        out += table(
            ["Time", "Pool", "Level", "Message"],
            [
                [ctx.rel(e.t), ctx.pool(e.pool) if e.pool else "", e.level, e.message]
                for e in notices[:ROWS_MAX]
            ],
        )
        out += _more(len(notices))
    return out


def _more(n: int) -> list[str]:
    return ["", f"… and {n - ROWS_MAX} more (see the log).", ""] if n > ROWS_MAX else [""]


def _size(path: str) -> str:
    try:
        return nbytes(os.path.getsize(path))
    except OSError:
        return "missing"
