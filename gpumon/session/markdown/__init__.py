"""Markdown export: the evidence report a framework maintainer can act on.

Findings first (what failed, how often, where a bisect put the change), then the machine and
the pools as their workers loaded them, how to reproduce it (the command, the runs folded, the
timeline folded away), throughput as a pivot and a chart, crash rates with intervals, and each
distinct crash signature with its stacks. It states what the session measured and captured and
nothing it cannot support; every figure carries its unit and its source, once. The output
depends only on the session folder (UTC times, paths relative to it), so it is the same bytes
wherever and whenever it is exported.
"""

from __future__ import annotations

from gpumon.fmt import duration, plural
from gpumon.session.digest import Digest
from gpumon.session.log import LoadedSession
from gpumon.session.markdown import environment, failures, findings, sequence, throughput
from gpumon.session.markdown.context import Context
from gpumon.session.markdown.sequence import command_line
from gpumon.session.times import utc_human

__all__ = ["command_line", "export_md"]


def export_md(session: LoadedSession | Digest) -> str:
    ctx = Context(session)
    out = header(ctx)
    out += findings.section(ctx)
    out += environment.section(ctx)
    out += sequence.section(ctx)
    out += throughput.section(ctx)
    out += failures.rates(ctx)
    out += failures.signatures(ctx)
    out += failures.stalls(ctx)
    out += failures.others(ctx)
    return "\n".join(out).rstrip("\n") + "\n"


def header(ctx: Context) -> list[str]:
    s, start = ctx.s, ctx.s.start
    out = [
        "# gpumon evidence report",
        "",
        f"Session `{start.session_id}`, recorded {utc_human(start.t)} for "
        f"{duration(s.duration)} by gpumon {start.gpumon_version} (mode: {start.mode}). "
        f"Log: `{s.folder.name}/{s.path.name}` (schema {start.schema}, "
        f"{plural(s.event_count, 'event')}).",
        "",
    ]
    if s.end is None:
        out += [
            "The log ends without a session_end event: the monitor was killed, or was still "
            "running when this report was made.",
            "",
        ]
    if s.warnings:
        out += ["Log warnings (the loader skipped what it could not read):", ""]
        out += [*[f"- {w}" for w in s.warnings], ""]
    out += [
        "Everything below was measured or captured in this session, on this machine; the "
        "report draws no conclusion beyond it.",
        "",
    ]
    return out
