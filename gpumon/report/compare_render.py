"""A Comparison for people (Rich tables) and for machines (JSON).

Every figure says its unit: ops/s are completed operations per second of wall-clock time, as
the worker measured them (median over runs, [min–max] over runs); crash rates are runs that
died while measuring over runs, with Fisher's exact two-sided p. Names, versions and devices
come from the inputs and are sanitised before they reach a terminal.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from gpumon import fmt, sanitize
from gpumon.report.compare import CellDelta, CellSide, Comparison
from gpumon.spec import rate_unit

CAPTION = (
    "ops/s (tokens/s for generate): completed operations per second, median over runs "
    "[min–max over runs], as the worker measured them. B vs A: change of the median. within "
    "noise: the two [min–max] ranges overlap; faster/slower: they do not, with 2+ measured runs "
    "on each side; too few runs: one side has one run, so no spread to judge by. crashes: runs "
    "that died while measuring / runs. p: Fisher's exact test, two-sided, of crashed and clean "
    "runs A vs B (small p: the crash rates differ beyond chance)."
)


def _rate(c: CellSide) -> str:
    if c.ops_per_s is None:
        return "—"
    text = fmt.si(c.ops_per_s, rate_unit(c.key.workload))
    if c.ops_per_s_min is not None and c.ops_per_s_max is not None and c.measured_runs > 1:
        lo = fmt.si(c.ops_per_s_min, "").strip()
        hi = fmt.si(c.ops_per_s_max, "").strip()
        text += f" [{lo}–{hi}]"
    return f"{text} ({fmt.plural(c.runs, 'run')})"


def _crashes(c: CellSide) -> str:
    text = f"{c.crashes}/{c.runs}"
    if c.hangs:
        text += f", {c.hangs} hung"
    return text


def _change(d: CellDelta) -> str:
    return "—" if d.change is None else f"{d.change:+.1%}"


def _p(d: CellDelta) -> str:
    if d.a.crashes == 0 and d.b.crashes == 0:
        return "—"
    return f"{d.crash_p:.3g}"


def tables(c: Comparison) -> list[Any]:
    from rich.markup import escape
    from rich.table import Table

    def s(text: str) -> str:
        return escape(sanitize.line(text))

    cells = Table(
        title=f"gpumon compare — A: {s(c.a.label)} ({c.a.kind})  B: {s(c.b.label)} ({c.b.kind})",
        caption=escape(CAPTION),
    )
    for col in ("cell", "A ops/s", "B ops/s", "B vs A", "throughput", "crashes A", "crashes B"):
        cells.add_column(col, justify="left" if col in ("cell", "throughput") else "right")
    cells.add_column("p (crashes)", justify="right")
    for d in c.cells:
        verdict = d.verdict
        if verdict in ("faster", "slower"):
            verdict = f"[bold]{verdict}[/]"
        crash_b = escape(_crashes(d.b))
        if d.crash_p < 0.05:
            crash_b = f"[bold red]{crash_b}[/]"
        cells.add_row(
            s(d.key.label),
            escape(_rate(d.a)),
            escape(_rate(d.b)),
            _change(d),
            verdict,
            escape(_crashes(d.a)),
            crash_b,
            _p(d),
        )
    out: list[Any] = [cells]
    for side, only in (("A", c.only_a), ("B", c.only_b)):
        if only:
            t = Table(title=f"only in {side} (no cell of the other side measured the same)")
            t.add_column("cell")
            t.add_column("pool")
            t.add_column("ops/s", justify="right")
            t.add_column("crashes", justify="right")
            for x in only:
                t.add_row(s(x.key.label), s(x.pool), escape(_rate(x)), escape(_crashes(x)))
            out.append(t)
    if c.policy_only:
        x, y = c.policy_only[0]
        out.append(
            f"[yellow]{len(c.policy_only)} cell(s) differ only by policy[/] (A ran "
            f"{s(x.key.policy)}, B {s(y.key.policy)}): each version's default policy can "
            "differ; sweep both with the same --policy to compare them."
        )
    env = Table(title="environment (what each input recorded; — : not recorded)")
    env.add_column("")
    env.add_column("A")
    env.add_column("B")
    env.add_column("")
    for row in c.env:
        env.add_row(s(row.what), s(row.a), s(row.b), "" if row.same else "[yellow]differs[/]")
    out.append(env)
    return out


def to_json(c: Comparison) -> str:
    def cell(x: CellSide) -> dict[str, Any]:
        d = dataclasses.asdict(x)
        d["key"] = dataclasses.asdict(x.key)
        return d

    out = {
        "format": "gpumon-compare",
        "version": 1,
        "a": {"label": c.a.label, "kind": c.a.kind},
        "b": {"label": c.b.label, "kind": c.b.kind},
        "units": {
            "ops_per_s": "completed operations per second (median over runs; min/max over runs)",
            "change": "B's median ops/s / A's - 1",
            "crash_rate": "runs that died while measuring / runs",
            "crash_p": "Fisher's exact test, two-sided",
            "crash_ci": "Wilson 95% interval of the crash rate",
        },
        "cells": [
            {
                "key": dataclasses.asdict(d.key),
                "a": cell(d.a),
                "b": cell(d.b),
                "change": d.change,
                "verdict": d.verdict,
                "crash_rate_a": d.crash_rate_a,
                "crash_rate_b": d.crash_rate_b,
                "crash_ci_a": list(d.crash_ci_a),
                "crash_ci_b": list(d.crash_ci_b),
                "crash_p": d.crash_p,
            }
            for d in c.cells
        ],
        "only_a": [cell(x) for x in c.only_a],
        "only_b": [cell(x) for x in c.only_b],
        "policy_only": [[cell(x), cell(y)] for x, y in c.policy_only],
        "environment": [{"what": r.what, "a": r.a, "b": r.b, "same": r.same} for r in c.env],
    }
    # ASCII-only: names from the inputs cannot carry control characters to a terminal.
    return json.dumps(out, indent=2, ensure_ascii=True) + "\n"
