"""`gpumon export -f repro` as a command: output, notes, choice of crash, redaction, refusals."""

from __future__ import annotations

import shutil

from gpumon.session.log import load
from gpumon.session.redact import Redactor

from .conftest import SESSIONS


def test_repro_goes_to_stdout_or_a_file(gpumon, tmp_path) -> None:
    r = gpumon("export", SESSIONS / "h200-mlx-shrink", "-f", "repro")
    assert r.code == 0 and r.out.startswith("#!/usr/bin/env python3\n") and r.err == ""
    out = tmp_path / "crash.py"
    assert gpumon("export", SESSIONS / "h200-mlx-shrink", "-f", "repro", "-o", out).code == 0
    text = out.read_text()
    assert "# Run: gpumon repro crash.py --runs 5" in text  # named after the file it is in
    assert text.replace("crash.py", "repro.py") == r.out


def test_a_crash_can_be_chosen_by_id(gpumon) -> None:
    r = gpumon("export", SESSIONS / "h200-mlx-policies", "-f", "repro", "--crash", "mlx_gpu-1-1665")
    assert r.code == 0, r.err
    header = " ".join(ln[2:] for ln in r.out.splitlines() if ln.startswith("# "))
    assert "Reproduces crash mlx_gpu-1-1665" in header and "at 8 threads" in header
    assert "STEPS = [(0.0, 8)]" in r.out


def test_no_crash_says_so_on_stderr_and_in_the_script(gpumon) -> None:
    r = gpumon("export", SESSIONS / "torch-cpu", "-f", "repro")
    assert r.code == 0
    assert r.err == (
        "gpumon export: note: the session recorded no crash of a framework pool: the script "
        "re-runs the last configuration of pool torch:cpu and should exit 0\n"
    )
    assert "# Nothing crashed in that session" in r.out


def test_a_fault_pool_or_an_unknown_crash_is_one_line_and_exit_1(gpumon) -> None:
    r = gpumon("export", SESSIONS / "fault-gdb", "-f", "repro")
    assert r.code == 1 and r.out == "" and r.err.count("\n") == 1
    assert "synthetic fault pool" in r.err
    r = gpumon("export", SESSIONS / "h200-mlx-shrink", "-f", "repro", "--crash", "nope")
    assert r.code == 1 and "no crash 'nope' (its crashes: mlx_gpu-1-1299)" in r.err


def test_redaction_touches_the_scripts_comments_only(gpumon, tmp_path) -> None:
    # A copy of a real session, recorded as user "root" with home /root; a user whose name is
    # also a word of the code ("mx", "time") must not break the code.
    folder = tmp_path / "h200-mlx-shrink"
    shutil.copytree(SESSIONS / "h200-mlx-shrink", folder)
    log = folder / "session.jsonl"
    log.write_text(log.read_text().replace('"user":"root"', '"user":"mx"', 1))
    assert Redactor.for_host(load(folder).start.host).user == "mx"
    plain = gpumon("export", folder, "-f", "repro").out
    redacted = gpumon("export", folder, "-f", "repro", "--redact").out
    code = lambda text: [ln for ln in text.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert code(redacted) == code(plain) and "mx.gpu" in redacted
    compile(redacted, "repro.py", "exec")
