"""`gpumon export LOG -f repro`: a standalone script that reproduces what a session recorded.

The script imports only the framework and the standard library, so a maintainer can run it
without gpumon. Its header says where it came from, what it reproduces, the framework pin that
`gpumon repro` reads back (`# requires: mlx==0.31.1 (cpu)`), and that a person must read it
before posting it. Exit status, the contract `gpumon repro` counts by: 0 nothing happened
within SECONDS; 3 a worker thread raised (the error is printed); 2 another framework version
(`--any-version` runs it anyway); a native crash kills the process by its signal.

A version mismatch exits instead of warning: a clean run on another release would read as "did
not reproduce", which is false evidence; a maintainer checking a fix passes --any-version.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from gpumon import sanitize
from gpumon.report import repro_code as code
from gpumon.report.repro_plan import (
    MLX_PER_THREAD_DEFAULT_STREAMS,
    MLX_UNSAFE_STREAM,
    ReproError,
    ReproPlan,
    describe_steps,
    plan,
    version_tuple,
)
from gpumon.session.log import LoadedSession
from gpumon.session.redact import Redactor

__all__ = ["Repro", "ReproError", "ReproPlan", "render_script", "repro_for"]

WIDTH = 96  # comment lines wrap here, so the script reads in an issue without scrolling
EXIT_RAISED = 3
EXIT_WRONG_VERSION = 2

WORKLOADS = {
    "matmul": "addmm (c + a @ b) on size x size inputs",
    "mlp": f"a forward pass of {code.MLP_BATCH} rows through {code.MLP_LAYERS} size x size layers",
    "generate": "a tiny random-weight decoder, one token per op, sampled with the framework's "
    "global random state as inference servers sample",
}


@dataclass(frozen=True)
class Repro:
    plan: ReproPlan
    text: str

    def redacted(self, redactor: Redactor) -> str:
        """The script with its comment lines redacted: only they hold text from the log (code
        holds checked values, and a user named `mx` must not break `mx.cpu`)."""
        return redact_comments(self.text, redactor)

    @property
    def note(self) -> str | None:
        """What a user must be told besides the script itself (nothing crashed), or None."""
        if self.plan.crash is not None:
            return None
        return (
            f"the session recorded no crash of a framework pool: the script re-runs the last "
            f"configuration of pool {sanitize.line(self.plan.pool)} and should exit 0"
        )


def repro_for(session: LoadedSession, crash_id: str | None = None, name: str = "repro.py") -> Repro:
    """The script for a session's crash (default: its first crash of an MLX or torch pool).
    Raises ReproError with one sentence when none can be made."""
    p = plan(session.events, session.folder.name, crash_id)
    return Repro(p, render_script(p, name))


def render_script(p: ReproPlan, name: str = "repro.py") -> str:
    config = code.CONFIG.substitute(
        device=code.device_expr(p),
        dtype=code.dtype_expr(p),
        size=p.size,
        sync_every=p.sync_every,
        steps=repr([(s.at_s, s.threads) for s in p.steps]),
        seconds=f"{p.seconds:g}",
        seconds_why=_seconds_why(p),
        model_line=code.model_line(p),
    )
    if p.intra_op is not None:
        config += f"torch.set_num_threads({p.intra_op})  # intra-op threads, as the pool ran\n"
    parts = [
        _header(p, name),
        code.PRELUDE[p.backend].substitute(release=p.release),
        config + code.policy_block(p),
        code.workload_block(p),
        code.worker_block(p),
        code.main_block(p),
    ]
    return "\n".join(parts)


def _seconds_why(p: ReproPlan) -> str:
    c = p.crash
    if c is None:
        return "as long as the session ran this configuration (nothing crashed)"
    if c.during == "stopping":
        return f"then stop, as gpumon stopped the pool; it died while stopping ({c.how})"
    if c.during == "starting":
        return "the pool died before it was ready; this is plenty"
    return (
        f"then stop (it died after {c.after_s:.2f} s: this allows 2x that, and 5 s more at least)"
    )


def _header(p: ReproPlan, name: str) -> str:
    fw = "mlx" if p.backend == "mlx" else "torch"
    line = sanitize.line
    c = p.crash
    if c is None:
        what = (
            f"Nothing crashed in that session: this re-runs the last configuration of pool "
            f"{line(p.pool)}."
        )
    else:
        when = {
            "run": f"{c.uptime_s:.2f} s after the worker was ready",
            "stopping": "while gpumon stopped it",
            "starting": "before it was ready",
        }.get(c.during, line(c.during))
        plural = "s" if c.threads != 1 else ""
        what = (
            f"Reproduces crash {line(c.crash_id)} of pool {line(p.pool)}: {line(c.how)} {when}, "
            f"at {c.threads} thread{plural}."
        )
    build = f" ({p.build})" if p.build not in (p.device, "gpu") else ""
    sync = "" if p.sync_every == 1 else f"; a device wait every {p.sync_every} ops"
    paragraphs = [
        f"Generated by gpumon {line(p.gpumon_version)} from session {line(p.session_name)} "
        f"(id {line(p.session_id)}): every value below is what its log recorded. A person must "
        "read it before posting it upstream.",
        f"{what} It ran {p.backend} {line(p.version)} on {p.device}{build}: {p.workload} "
        f"({WORKLOADS[p.workload]}), size {p.size}, {p.dtype}; policy {p.policy} "
        f"({_policy_meaning(p)}){sync}; {describe_steps(p.steps)}.",
        *(f"Note: {line(n)}." for n in p.notes),
    ]
    out = ["#!/usr/bin/env python3"]
    for text in paragraphs:
        out += textwrap.wrap(
            text, WIDTH, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False
        )
    if c is not None:  # read back by gpumon repro, which counts the runs that end the same way
        out.append(f"# recorded: {line(c.how)}")
    out += [
        f"# requires: {p.requires}",
        f"# Run: gpumon repro {line(name)} --runs 5 (counts fresh processes), or python "
        f"{line(name)}.",
        f"# Exit status: 0 nothing happened, {EXIT_RAISED} a thread raised (printed), "
        f"{EXIT_WRONG_VERSION} another {fw} version;",
        "# a native crash kills the process by its signal, after faulthandler printed the stacks.",
    ]
    return "\n".join(out) + "\n"


def _policy_meaning(p: ReproPlan) -> str:
    """What the policy did on that framework version, in words (as gpumon's worker means it)."""
    if p.backend == "torch":
        base = {
            "per-thread": "a CUDA stream per thread" if p.device.startswith("cuda") else "",
            "shared": "the device's default stream"
            if p.device.startswith("cuda")
            else "torch.mps's one command queue"
            if p.device == "mps"
            else "",
        }.get(p.policy, "")
        if p.policy == "locked":
            return "a process-wide lock around each submission"
        return base or "no streams on this device"
    v = version_tuple(p.version)
    legacy = v < MLX_PER_THREAD_DEFAULT_STREAMS
    if p.policy == "locked":
        return "a process-wide lock around each submission"
    if p.policy == "shared":
        if legacy:
            return "the one default stream every thread shares, MLX's own behaviour before 0.31.2"
        made = "mx.new_thread_unsafe_stream" if v >= MLX_UNSAFE_STREAM else "mx.new_stream"
        return f"one {made} used by every thread, no lock"
    if legacy:
        return "one mx.new_stream per thread, made on that thread"
    return "each thread's own default stream, MLX's own behaviour since 0.31.2"


def redact_comments(script: str, redactor: Redactor) -> str:
    return "".join(
        redactor.text(line) if line.lstrip().startswith("#") else line
        for line in script.splitlines(True)
    )
