"""`gpumon export LOG -f issue --for mlx|torch`: the issue skeleton with its attachments.

gpumon.session.markdown.issue lays out what the session recorded; this module adds what needs
more than the log: the standalone repro script (gpumon.report.repro) for the same crash, the
verified count of exactly that script (by sha256, from repro-runs.jsonl), and for torch the
output of `torch.utils.collect_env`, run in a child process with the interpreter the worker
ran (the monitor never imports torch) and only on the machine that recorded the session —
collect_env describes the machine it runs on, so elsewhere it would be false evidence.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys

from gpumon import sanitize
from gpumon.report.repro import ReproError, repro_for
from gpumon.session import repro_runs
from gpumon.session.log import LoadedSession
from gpumon.session.markdown.context import Context
from gpumon.session.markdown.issue import IssueError, IssueInputs, export_issue, pick
from gpumon.session.redact import Redactor

COLLECT_ENV_TIMEOUT = 120.0  # seconds; it runs pip, nvidia-smi and friends
SCRIPT_SLOT = "@@gpumon:repro-script@@"  # kept out of redaction and sanitising, put back after

__all__ = ["IssueError", "issue_for"]


def issue_for(
    session: LoadedSession,
    project: str,
    crash_id: str | None = None,
    redactor: Redactor | None = None,
    *,
    run_collect_env: bool = True,
) -> str:
    """The issue Markdown; raises IssueError (one sentence) when there is nothing to report."""
    ctx = Context(session)
    _sig, rec = pick(ctx, project, crash_id)
    plain = script = note = ""
    try:
        repro = repro_for(session, rec.crash.crash_id)
        plain = repro.text
        script = repro.redacted(redactor) if redactor is not None else plain
    except ReproError as e:
        note = sanitize.line(str(e))
    env_text, env_note = "", ""
    if project == "torch":
        env_text, env_note = collect_env(ctx, rec.crash.pool) if run_collect_env else ("", "")
    inputs = IssueInputs(
        project=project,
        crash_id=rec.crash.crash_id,
        script=SCRIPT_SLOT if script else "",
        script_note=note,
        verified=_verified(session, plain),
        collect_env=env_text,
        collect_env_note=env_note,
    )
    text = sanitize.text(export_issue(ctx, inputs))
    if redactor is not None:
        text = redactor.text(text)
    # The script is code: only its comment lines were redacted (a user named `mx` must not
    # break `mx.cpu`), so it goes in after the rest was.
    return text.replace(SCRIPT_SLOT, script.rstrip("\n"))


def _verified(session: LoadedSession, script: str) -> str:
    if not script:
        return ""
    digest = hashlib.sha256(script.encode()).hexdigest()
    counts = [
        r
        for r in repro_runs.of_session(session.folder, session.start.session_id)
        if r.sha256 == digest
    ]
    return repro_runs.summary(counts[-1]) + " (`gpumon repro`)." if counts else ""


def collect_env(ctx: Context, pool: str) -> tuple[str, str]:
    """(output, where it was taken) or ("", why not)."""
    recorded = ctx.s.start.host.hostname
    if socket.gethostname() != recorded:
        return "", f"the session was recorded on {sanitize.line(recorded)}, not on this machine"
    ready = ctx.last_ready(pool)
    python = (ready.interpreter if ready is not None else "") or sys.executable
    if not os.path.exists(python):
        return "", f"the worker's interpreter {sanitize.line(python)} is gone"
    try:
        done = subprocess.run(
            [python, "-m", "torch.utils.collect_env"],
            capture_output=True,
            text=True,
            timeout=COLLECT_ENV_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return "", f"running collect_env failed: {sanitize.line(str(e))}"
    if done.returncode != 0 or not done.stdout.strip():
        lines = (done.stderr or "").strip().splitlines()
        tail = sanitize.line(lines[-1]) if lines else ""
        return "", f"collect_env exited {done.returncode}" + (f": {tail}" if tail else "")
    own = ready is not None and bool(ready.interpreter)
    where = "the worker's interpreter" if own else "gpumon's own interpreter, which the pool ran"
    return done.stdout, f"collect_env taken at export time with {where}, on the recording machine"
