"""`gpumon export LOG -f issue --for mlx|torch`: an upstream issue skeleton in the project's own
template, filled with facts and attachments only.

Both projects refuse machine-written issues (MLX's template: no AI-written issues; PyTorch's:
its AI-assisted development policy). So gpumon writes no prose a maintainer could mistake for
the reporter's: the description and the expected behaviour are marked placeholders for the
human, the facts under them are measurements from the session (signal, crashed thread and its
frames, the message, the configuration, the rate with its interval), and every generated part
says so. The repro script and the `collect_env` output are given by the caller (gpumon.report
makes and runs them); this module only lays out what the session recorded.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from gpumon import sanitize, spec
from gpumon.crash.classify import crash_frames, frame_label
from gpumon.crash.model import SYSTEM, UNKNOWN, CrashReport
from gpumon.fmt import plural
from gpumon.session.markdown import failures, throughput
from gpumon.session.markdown.blocks import details
from gpumon.session.markdown.context import Context, Signature
from gpumon.session.markdown.findings import wilson_text
from gpumon.session.markdown.sequence import command_line
from gpumon.state import CrashRecord

PROJECTS = ("mlx", "torch")
ISSUES_URL = {
    "mlx": "https://github.com/ml-explore/mlx/issues",
    "torch": "https://github.com/pytorch/pytorch/issues",
}
TODO = "<!-- TODO(reporter): {} -->"


class IssueError(Exception):
    """Why no issue can be made from this session (one sentence)."""


@dataclass(frozen=True)
class IssueInputs:
    project: str  # mlx | torch
    crash_id: str | None = None  # default: the crash of the largest signature of that framework
    script: str = ""  # the standalone repro script ("" when none could be made)
    script_note: str = ""  # why there is none, or what the reader must know about it
    verified: str = ""  # "reproduced 5/5 (SIGSEGV ×5) by gpumon repro on ..." ("" if never run)
    collect_env: str = ""  # torch.utils.collect_env output, taken in the worker's environment
    collect_env_note: str = ""  # where it was taken, or why not


def export_issue(ctx: Context, inputs: IssueInputs) -> str:
    if inputs.project not in PROJECTS:
        raise IssueError(f"--for must be one of {', '.join(PROJECTS)}")
    sig, rec = pick(ctx, inputs.project, inputs.crash_id)
    out = _preamble(ctx, inputs.project)
    out += [f"**Suggested title:** `{sanitize.line(title(ctx, sig, rec))}`", ""]
    if inputs.project == "mlx":
        out += _mlx(ctx, inputs, sig, rec)
    else:
        out += _torch(ctx, inputs, sig, rec)
    out += _context(ctx, inputs.project, sig, rec)
    return "\n".join(out).rstrip("\n") + "\n"


def pick(ctx: Context, project: str, crash_id: str | None) -> tuple[Signature, CrashRecord]:
    """The crash an issue is about: the one named, else the first crash of the most frequent
    signature among the project's pools. Synthetic crashes are never a framework's bug."""
    backend = "mlx" if project == "mlx" else "torch"
    if crash_id is not None:
        for sig in ctx.signatures:
            for rec in sig.records:
                if rec.crash.crash_id == crash_id:
                    if ctx.backend.get(rec.crash.pool) != backend:
                        got = ctx.backend.get(rec.crash.pool, "?")
                        raise IssueError(
                            f"crash {sanitize.line(crash_id)} is of a {got} pool, not {backend}"
                        )
                    return sig, rec
        raise IssueError(f"no crash {sanitize.line(crash_id)} in this session")
    mine = [
        Signature(sig.key, [r for r in sig.records if ctx.backend.get(r.crash.pool) == backend])
        for sig in ctx.signatures
    ]
    mine = [s for s in mine if s.records]
    if not mine:
        others = sorted(
            {ctx.backend.get(r.crash.pool, "?") for s in ctx.signatures for r in s.records}
        )
        if others == ["fault"]:
            raise IssueError(
                "every crash in this session is synthetic (fault backend): there is no "
                "framework bug to report"
            )
        raise IssueError(f"no {backend} pool crashed in this session")
    sig = max(mine, key=lambda s: len(s.records))
    return sig, sig.records[0]


def title(ctx: Context, sig: Signature, rec: CrashRecord) -> str:
    """`[BUG] SIGSEGV in mlx::core::eval_impl with 2 threads calling eval (mlx 0.31.1, cpu)`:
    what died, where, under what load, on which build; a suggestion the human edits."""
    c = rec.crash
    ready = ctx.last_ready(c.pool)
    build = ready.framework if ready else c.backend
    frames = sig.key[1]
    where = f" in {frames[0]}" if frames else ""
    return (
        f"[BUG] {sig.head}{where} with {plural(c.threads, 'thread')} running {c.workload} "
        f"({build}, {c.device})"
    )


def _preamble(ctx: Context, project: str) -> list[str]:
    s = ctx.s.start
    rule = (
        "MLX's template states that issues must not be written by AI"
        if project == "mlx"
        else "PyTorch's template asks you to follow its AI-assisted development policy"
    )
    return [
        "<!--",
        f"Skeleton made by gpumon {s.gpumon_version} from session {s.session_id} for the "
        f"{'MLX' if project == 'mlx' else 'PyTorch'} issue template. {rule}: gpumon wrote no "
        "description here. Every line marked 'gpumon:' is a measurement from that session; the "
        "TODO(reporter) parts are yours to write. Read the script before you post it, then "
        "delete this comment.",
        "-->",
        "",
    ]


def _facts(ctx: Context, sig: Signature, rec: CrashRecord) -> list[str]:
    """The bug as measured: signal, crashed thread and frames, the message, configuration,
    rate. Each a fact with its source; no adjective gpumon could not measure."""
    c = rec.crash
    report = rec.native or rec.python
    lines = [
        f"- gpumon: the worker process died by {c.signal or f'exit code {c.exit_code}'}"
        + (
            f" ({report.exception_subtype})"
            if report is not None and report.exception_subtype
            else ""
        )
        + f", {c.uptime:.2f} s after it was ready, at {plural(c.threads, 'thread')}"
        + (f", {a}" if (a := ctx.attributions.get(c.crash_id)) else "")
        + "."
    ]
    thread = report.crashed_thread if report is not None else None
    if report is not None and thread is not None:
        name = f' "{thread.name}"' if thread.name else ""
        top = _top_frames(report)
        lines.append(
            f"- gpumon: top frames of the crashed thread{sanitize.md_cell(name)}: "
            + ", ".join(sanitize.md_inline_code(f) for f in top)
            + f" ({report.format})."
        )
    message = error_text(rec)
    if message:
        lines.append(f"- gpumon: message: {sanitize.md_inline_code(message)}")
    ready = ctx.last_ready(c.pool)
    meaning = ready.policy_meanings.get(c.policy, "") if ready else ""
    lines.append(
        f"- gpumon: configuration: {ready.framework if ready else c.backend} on {c.device}, "
        f"{plural(c.threads, 'Python thread')} each running `{c.workload}` "
        f"({ready.size if ready else '?'} {ready.dtype if ready else ''}), policy `{c.policy}`"
        + (f" ({meaning})" if meaning else "")
        + "."
    )
    lines += _rates(ctx, c.pool)
    return lines


def _rates(ctx: Context, pool: str) -> list[str]:
    cells = [x for x in ctx.cells if x.pool == pool]
    if not cells:
        return []
    per = "; ".join(
        f"{plural(x.threads, 'thread')}: {wilson_text(x.failures, x.runs)}"
        for x in sorted(cells, key=lambda x: (x.workload, x.policy, x.threads))
    )
    return [f"- gpumon: runs that failed per thread count (Wilson 95% interval): {per}."]


def _top_frames(report: CrashReport, n: int = 3) -> list[str]:
    thread = report.crashed_thread
    if thread is None:
        return []
    return [
        frame_label(f)
        for f in crash_frames(thread)
        if f.kind not in (SYSTEM, UNKNOWN) and (f.symbol or f.image)
    ][:n]


def error_text(rec: CrashRecord) -> str:
    """The framework's own words, if it left any: an assertion or `what()`, a fatal error."""
    for report in (rec.native, rec.python):
        if report is not None and report.message and not _generic(report.message):
            return sanitize.line(report.message)
    for line in reversed(rec.text("stderr").splitlines()):
        for marker in ("what():", "Assertion", "RuntimeError:", "Error:"):
            if marker in line:
                return sanitize.line(line.strip())
    return ""


def _generic(message: str) -> bool:
    """faulthandler's `Fatal Python error: Segmentation fault` names the signal, not the bug."""
    head, _, what = message.partition(":")
    return head.strip() == "Fatal Python error" and what.strip() in (
        "Segmentation fault",
        "Aborted",
        "Bus error",
        "Floating-point exception",
        "Floating point exception",
        "Illegal instruction",
    )


def search_link(project: str, sig: Signature, rec: CrashRecord) -> str:
    """A search of the project's issues for the message (or the signal and the top frame)."""
    text = error_text(rec)
    if "what():" in text:
        text = text.split("what():", 1)[1]
    if not text:
        frames = sig.key[1]
        text = " ".join([sig.head, *(frames[:1])])
    words = " ".join(text.replace('"', " ").split()[:12])
    query = urllib.parse.quote_plus(f'is:issue "{words}"')
    return f"{ISSUES_URL[project]}?q={query}"


def _script(inputs: IssueInputs) -> list[str]:
    if not inputs.script:
        return [
            TODO.format(f"add a minimal script; gpumon could not make one: {inputs.script_note}"),
            "",
        ]
    out = ["```python", inputs.script.rstrip("\n"), "```", ""]
    note = "gpumon: the script above is `gpumon export LOG -f repro`; it checks the version it runs"
    out.append(note + (f"; {inputs.script_note}" if inputs.script_note else "") + ".")
    if inputs.verified:
        out.append(f"gpumon: {inputs.verified}")
    else:
        out.append("gpumon: not yet verified here (`gpumon repro repro.py --runs 5` counts it).")
    return [*out, ""]


def _mlx(ctx: Context, inputs: IssueInputs, sig: Signature, rec: CrashRecord) -> list[str]:
    h = ctx.s.start.host
    c = rec.crash
    ready = ctx.last_ready(c.pool)
    versions = ready.versions if ready else {}
    out = [
        "☐ I understand it is strictly prohibited to use AI to write issues. "
        + TODO.format("tick this yourself, and only if it is true"),
        "",
        "**Describe the bug**",
        "",
        TODO.format("describe the bug in your own words; the facts below are gpumon's"),
        "",
        *_facts(ctx, sig, rec),
        "",
        "**To Reproduce**",
        "",
        *_script(inputs),
        "**Expected behavior**",
        "",
        TODO.format("what you expected to happen"),
        "",
        "**Desktop (please complete the following information):**",
        f" - OS Version: {h.os_version} ({h.os}, {h.machine})",
        f" - Version: mlx {versions.get('mlx', '?')} (as the worker imported it), Python "
        f"{versions.get('python', '?')}",
        f" - Device: {ready.device_name if ready else c.device} ({c.device})"
        + (
            f", GPU architecture {versions['gpu architecture']}"
            if "gpu architecture" in versions
            else ""
        ),
    ]
    if h.driver_version:
        out.append(
            f" - NVIDIA driver {h.driver_version}, CUDA {h.cuda_driver_version or '?'} (NVML)"
        )
    libs = [
        f"{k} {v}"
        for k, v in sorted(versions.items())
        if k in ("cuBLAS", "cuDNN", "CUDA runtime", "NCCL")
    ]
    if libs:
        out.append(f" - CUDA libraries (wheels in the worker's environment): {', '.join(libs)}")
    return [*out, "", "**Additional context**", ""]


def _torch(ctx: Context, inputs: IssueInputs, sig: Signature, rec: CrashRecord) -> list[str]:
    out = [
        "### 🐛 Describe the bug",
        "",
        TODO.format("describe the bug in your own words; the facts below are gpumon's"),
        "",
        *_facts(ctx, sig, rec),
        "",
        *_script(inputs),
        "The error, as captured (the crashed thread's stack):",
        "",
    ]
    report = rec.native or rec.python
    if report is not None and report.crashed_thread is not None:
        from gpumon.crash.render_text import stack_lines

        out += sanitize.md_code("\n".join(stack_lines(report.crashed_thread, 30, elide=True)))
    stderr = rec.text("stderr").rstrip("\n").splitlines()[-20:]
    if stderr:
        out += ["", "Worker stderr (last lines):", "", *sanitize.md_code("\n".join(stderr))]
    out += ["", TODO.format("what you expected to happen instead"), "", "### Versions", ""]
    if inputs.collect_env:
        out += sanitize.md_code(inputs.collect_env.rstrip("\n"))
        out += ["", f"gpumon: {inputs.collect_env_note}" if inputs.collect_env_note else ""]
    else:
        out += [
            TODO.format(
                "paste the output of `python -m torch.utils.collect_env` run in the environment "
                f"that crashed ({inputs.collect_env_note or 'gpumon could not run it'})"
            ),
        ]
    return [*out, "", "### Additional context", ""]


def _context(ctx: Context, project: str, sig: Signature, rec: CrashRecord) -> list[str]:
    out: list[str] = []
    cells = [c for c in ctx.cells if c.pool == rec.crash.pool or len(ctx.cells) <= 12]
    if cells:
        unit = spec.rate_unit(cells[0].workload)
        body = throughput.pivot(ctx, cells, unit)
        body += throughput.chart(
            ctx, cells, unit, f"{cells[0].workload} {cells[0].size} {cells[0].dtype}"
        )
        out += ["gpumon: throughput and failures per thread count in this session:", "", *body]
    out += failures.evidence(ctx, rec)
    others = [r.crash.crash_id for r in sig.records if r is not rec]
    if others:
        out += [
            f"gpumon: the same signature in {plural(len(others), 'other crash')} of this session.",
            "",
        ]
    out += details(
        "How gpumon recorded this",
        [
            "```sh",
            command_line(ctx.s.start.argv),
            "```",
            "",
            f"Session {ctx.s.start.session_id}; the full evidence: `gpumon export "
            f"{ctx.s.folder.name} -f bundle` (log, stacks, report, script in one zip).",
        ],
    )
    out += [
        f"Search upstream for this message first: {search_link(project, sig, rec)}",
        "",
        f"<sub>Facts, script and attachments generated by gpumon {ctx.s.start.gpumon_version}; "
        "the description and expected behaviour are the reporter's.</sub>",
    ]
    return out
