"""Markdown building blocks: tables, folded sections, and a Mermaid chart.

Every cell and label that carries recorded text goes through `cell`/`label`, so a pipe, a
newline or a quote from a worker cannot break the table or the chart around it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from gpumon import sanitize

# Mermaid's xychart has no legend: lines are told apart by colour, so the report fixes the
# palette and names each colour in a caption under the chart.
PALETTE = (
    ("#1f77b4", "blue"),
    ("#ff7f0e", "orange"),
    ("#2ca02c", "green"),
    ("#d62728", "red"),
    ("#9467bd", "purple"),
    ("#8c564b", "brown"),
    ("#e377c2", "pink"),
    ("#7f7f7f", "grey"),
)


def cell(text: str) -> str:
    """One table cell: our own Markdown (code spans, bold) kept; what would end the cell or
    the row (a pipe, a newline) escaped. Recorded text that may carry Markdown is escaped
    where it is put in (sanitize.md_cell / md_inline_code)."""
    return sanitize.line(text).replace("|", "\\|").strip() or " "


EMPTY = ("—", "0", "")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], optional: Sequence[str] = ()
) -> list[str]:
    """A Markdown table; `optional` columns are left out when no row has anything in them
    (every cell "—" or "0"), so a wide table carries only what this session has."""
    rows = [list(r) for r in rows]
    drop = {i for i, h in enumerate(headers) if h in optional and all(r[i] in EMPTY for r in rows)}
    if drop:
        headers = [h for i, h in enumerate(headers) if i not in drop]
        rows = [[c for i, c in enumerate(r) if i not in drop] for r in rows]
    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def details(summary: str, body: Sequence[str]) -> list[str]:
    """A folded section; GitHub needs the blank lines around Markdown inside HTML."""
    # A summary is HTML: Markdown is not rendered in it, so it is plain escaped text.
    head = html.escape(sanitize.line(summary).replace("`", ""), quote=False)
    return [
        "<details>",
        f"<summary>{head}</summary>",
        "",
        *body,
        "",
        "</details>",
        "",
    ]


def label(text: str) -> str:
    """A string Mermaid reads between double quotes."""
    return sanitize.line(text).replace('"', "'").replace("`", "'")


def xychart(
    title: str,
    x_title: str,
    x: Sequence[str],
    y_title: str,
    lines: Sequence[Sequence[float]],
) -> list[str]:
    """A Mermaid `xychart-beta` line chart, one line per series, coloured from PALETTE in
    order (at most len(PALETTE) lines: the caller lists the rest)."""
    assert len(lines) <= len(PALETTE)
    palette = ", ".join(colour for colour, _ in PALETTE[: max(1, len(lines))])
    top = max((v for line in lines for v in line), default=0.0)
    init = '{"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}'
    out = [
        "```mermaid",
        f"%%{{init: {init}}}%%",
        "xychart-beta",
        f'    title "{label(title)}"',
        f'    x-axis "{label(x_title)}" [{", ".join(label(v) for v in x)}]',
        f'    y-axis "{label(y_title)}" 0 --> {_axis_top(top)}',
    ]
    out += [f"    line [{', '.join(_num(v) for v in line)}]" for line in lines]
    out.append("```")
    return out


def _num(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def _axis_top(top: float) -> str:
    """A round number above the highest point, so the top line is not drawn on the frame."""
    if top <= 0:
        return "1"
    step = 10 ** (len(str(int(top))) - 1)
    return str(int((top // step + 1) * step))
