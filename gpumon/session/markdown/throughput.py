"""Throughput against threads: a pivot table, a chart, and the full figures folded away.

One pivot per workload (ops of different workloads are not comparable): rows are thread
counts, columns the series (framework build, device, policy), cells the median rate or
"crash k/n". The chart draws only series measured at every thread count (Mermaid's xychart
cannot leave a gap) and names the ones it left out and why.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpumon import analysis, spec
from gpumon.facts import CellFacts
from gpumon.fmt import duration, nbytes, plural, seconds, si
from gpumon.session.markdown.blocks import PALETTE, details, table, xychart
from gpumon.session.markdown.context import Context


def section(ctx: Context) -> list[str]:
    out = ["## Throughput vs threads", ""]
    if not ctx.cells:
        return [*out, "No measured samples in this session.", ""]
    groups: dict[tuple[str, int, str], list[CellFacts]] = {}
    for c in ctx.cells:
        groups.setdefault((c.workload, c.size, c.dtype), []).append(c)
    for (workload, size, dtype), cells in groups.items():
        unit = spec.rate_unit(workload)
        if len(groups) > 1:
            out += [f"### {workload} {size} {dtype}", ""]
        out += pivot(ctx, cells, unit)
        out += chart(ctx, cells, unit, f"{workload} {size} {dtype}")
    out += _details(ctx)
    out += [_source_note(ctx), ""]
    return out


def _columns(ctx: Context, cells: Sequence[CellFacts]) -> list[str]:
    labels: list[str] = []
    for c in cells:
        label = ctx.series(c).label
        if label not in labels:
            labels.append(label)
    return labels


def _value(c: CellFacts) -> float | None:
    """The rate a chart may draw: measured, and not a cell in which every run failed (its
    figure is the few windows before each death)."""
    if c.ops_per_s is None or c.failures >= c.runs:
        return None
    if c.threads_failed and not c.ops_per_s:  # every thread raised: nothing was measured
        return None
    return c.ops_per_s


def _pivot_cell(c: CellFacts | None, unit: str) -> str:
    if c is None:
        return "—"
    failed = c.failures
    v = _value(c)
    what = "hang" if failed and not c.crashes else "crash"
    # threads that raised while the process lived (an MLX CUDA kernel that failed to compile)
    raised = f"{plural(c.threads_failed, 'thread')} failed" if c.threads_failed else ""
    parts = [si(v, "").strip()] if v is not None else []
    parts += [f"{what} {failed}/{c.runs}"] if failed else []
    parts += [raised] if raised else []
    return " · ".join(parts) or "—"


def pivot(ctx: Context, cells: Sequence[CellFacts], unit: str) -> list[str]:
    columns = _columns(ctx, cells)
    by = {(ctx.series(c).label, c.threads): c for c in cells}
    threads = sorted({c.threads for c in cells})
    rows = [[str(n), *(_pivot_cell(by.get((col, n)), unit) for col in columns)] for n in threads]
    raised = (
        "; `k threads failed`: worker threads that raised an error while their process lived on"
        if any(c.threads_failed for c in cells)
        else ""
    )
    return [
        *table(["Threads", *columns], rows),
        "",
        f"Cells: {unit}, median over runs (gpumon worker counts); `crash k/n`: k of n runs "
        f"crashed (or hung) at that count{raised}.",
        "",
    ]


def chart(ctx: Context, cells: Sequence[CellFacts], unit: str, what: str) -> list[str]:
    columns = _columns(ctx, cells)
    threads = sorted({c.threads for c in cells})
    if len(threads) < 2:
        return []  # one point per series is a table, not a chart
    by = {(ctx.series(c).label, c.threads): c for c in cells}
    drawn: list[tuple[str, list[float]]] = []
    left: list[str] = []
    for col in columns:
        values = [_value(by[(col, n)]) if (col, n) in by else None for n in threads]
        missing = [n for n, v in zip(threads, values, strict=True) if v is None]
        if missing:
            left.append(f"{col} (no clean measurement at {_list(missing)} threads)")
        elif len(drawn) == len(PALETTE):
            left.append(f"{col} (more than {len(PALETTE)} lines)")
        else:
            drawn.append((col, [v for v in values if v is not None]))
    if not drawn:
        return [
            f"No series was measured cleanly at every thread count: no chart ({_list(left)}).",
            "",
        ]
    out = xychart(
        f"{what}: {unit} vs threads",
        "threads",
        [str(n) for n in threads],
        unit,
        [v for _, v in drawn],
    )
    legend = "; ".join(
        f"{name} — {col}" for (col, _), (_, name) in zip(drawn, PALETTE, strict=False)
    )
    out += ["", f"Lines: {legend}."]
    if left:
        out += [f"Not drawn: {'; '.join(left)}."]
    return [*out, ""]


def _details(ctx: Context) -> list[str]:
    rows = []
    for c in ctx.cells:
        ops = si(c.ops_per_s, spec.rate_unit(c.workload)) if c.ops_per_s is not None else "—"
        if c.ops_per_s_min is not None and c.ops_per_s_max is not None and c.runs > 1:
            ops += f" [{si(c.ops_per_s_min, '').strip()}–{si(c.ops_per_s_max, '').strip()}]"
        if c.synthetic:
            flops = "n/a (synthetic)"
        else:
            flops = si(c.flop_per_s, "FLOP/s") if c.flop_per_s is not None else "—"
        mem = ", ".join(f"{k} {nbytes(v)}" for k, v in sorted(c.mem_peak_bytes.items()))
        rows.append(
            [
                ctx.series(c).label,
                str(c.threads),
                f"{c.workload} {c.size} {c.dtype}",
                str(c.runs),
                duration(c.measured_s),
                ops,
                flops,
                seconds(c.lat_p50_s),
                seconds(c.lat_p99_s),
                mem or "—",
                nbytes(c.rss_peak_bytes) if c.rss_peak_bytes else "—",
            ]
        )
    headers = [
        "Series",
        "Threads",
        "Workload",
        "Runs",
        "Measured",
        "Rate (median [min–max])",
        "FLOP/s (median)",
        "Latency p50",
        "Latency p99",
        "Framework memory peak",
        "RSS peak",
    ]
    return details(
        f"Every figure per configuration ({plural(len(rows), 'row')})", table(headers, rows)
    )


def _source_note(ctx: Context) -> str:
    sources = sorted({c.mem_source for c in ctx.cells if c.mem_source})
    return (
        "Source: ops counted by the worker threads over the measured windows of each run (the "
        f"first {analysis.WARMUP:g} s after a start or change are not measured; for `generate` "
        "one op is one decoded token); the rate is the median over runs [min–max]. FLOP/s = "
        "the rate × the workload's analytic FLOP count per op. Latency: wall time per op in "
        "the worker, percentiles of the merged log histogram (±4.5%). Framework memory: "
        f"{'; '.join(sources) or 'none reported'}. RSS: the whole worker process (psutil)."
    )


def _list(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)
