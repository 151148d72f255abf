"""`gpumon export -f issue`: golden skeletons for both templates, the script and its verified
count inside, collect_env run for real only on the recording machine, redaction that leaves the
code alone, and one line for every refusal."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket

import pytest

from gpumon.report.issue import collect_env, issue_for
from gpumon.report.repro import repro_for
from gpumon.session import repro_runs
from gpumon.session.log import load
from gpumon.session.markdown.context import Context

from .conftest import FIXTURES, SESSIONS, check_golden

CASES = [
    ("h200-mlx-shrink", SESSIONS / "h200-mlx-shrink", "mlx"),
    ("sweep-mlx-0.31.1", FIXTURES / "sweep-mlx-0.31.1", "mlx"),
    ("torch-killed", SESSIONS / "torch-killed", "torch"),
]


@pytest.mark.parametrize(("name", "path", "project"), CASES, ids=[c[0] for c in CASES])
def test_issue_matches_golden(name, path, project) -> None:
    # collect_env describes the machine it runs on: not part of a golden file
    text = issue_for(load(path), project, run_collect_env=False)
    check_golden(f"{name}.issue.{project}.md", text)


def test_the_script_in_the_issue_is_the_repro_export_and_its_count_is_shown(tmp_path) -> None:
    folder = tmp_path / "s"
    shutil.copytree(FIXTURES / "sweep-mlx-0.31.1", folder)
    session = load(folder)
    script = repro_for(session).text
    assert "not yet verified here" in issue_for(session, "mlx")
    digest = hashlib.sha256(script.encode()).hexdigest()
    repro_runs.append(
        folder,
        repro_runs.ReproRunRecord(
            script="repro.py",
            sha256=digest,
            session_id=session.start.session_id,
            runs=5,
            reproduced=4,
            signals=["SIGSEGV"] * 4 + [None],
            exit_codes=[None] * 4 + [0],
            outcomes=["signal"] * 4 + ["clean"],
            run_seconds=[0.1] * 5,
            recorded="SIGSEGV",
            same_as_recorded=4,
            timeout_s=30,
            python="python3",
            framework="mlx 0.31.1",
            build="cpu",
            started_utc="2026-12-02T08:00:00.000Z",
            seconds=0.5,
        ),
    )
    text = issue_for(load(folder), "mlx")
    assert script.strip() in text
    assert "gpumon: reproduced 4/5 (SIGSEGV ×4, as recorded; Wilson 95% 38%–96%)" in text


def test_redaction_spares_the_code(tmp_path) -> None:
    session = load(SESSIONS / "h200-mlx-shrink")
    from gpumon.session.redact import Redactor

    redactor = Redactor.for_host(session.start.host)
    red = issue_for(session, "mlx", redactor=redactor)
    assert repro_for(session).redacted(redactor).strip() in red


def _on_this_machine(tmp_path):
    """A copy of the torch session whose recorded hostname is this machine's (the log's host
    line is the only thing changed), so collect_env may run here."""
    folder = tmp_path / "torch-killed"
    shutil.copytree(SESSIONS / "torch-killed", folder)
    log = folder / "session.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["host"]["hostname"] = socket.gethostname()
    lines[0] = json.dumps(first)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_collect_env_runs_in_a_child_on_the_recording_machine_only(tmp_path) -> None:
    pytest.importorskip("torch")  # the test deps install it; the monitor itself never imports it
    here = Context(load(_on_this_machine(tmp_path)))
    out, note = collect_env(here, "torch:cpu")
    assert "PyTorch version:" in out and "on the recording machine" in note
    away = Context(load(SESSIONS / "torch-killed"))
    if away.s.start.host.hostname != socket.gethostname():
        out, note = collect_env(away, "torch:cpu")
        assert out == "" and "not on this machine" in note


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "issue"], "-f issue needs --for mlx or --for torch"),
        (["-f", "issue", "--for", "mlx"], "no mlx pool crashed in this session"),
        (["-f", "issue", "--for", "torch", "--crash", "x"], "no crash x in this session"),
    ],
)
def test_refusals_are_one_line(gpumon, args, message) -> None:
    r = gpumon("export", SESSIONS / "torch-killed", *args)
    assert r.code == 1 and r.out == "" and message in r.err and r.err.count("\n") == 1
