"""`gpumon crash` end to end, in a subprocess: real fixtures give exit 0 and a verdict; bad
input gives one line on stderr and a non-zero exit; nothing ever prints a traceback.

Every case runs twice: through `python -m gpumon crash` (the real entry point) and through
tests/crash/crash_cli.py, which wires the command the same way without the other
subcommands, so the crash command stays tested while another subcommand module is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "crash-reports"
NATIVE = ROOT / "tests" / "fixtures" / "native"
SAMPLES = Path(__file__).parent / "samples"
HARNESS = Path(__file__).parent / "crash_cli.py"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())
# Every shipped fixture; of the faulthandler samples (parsed in depth by test_crash_native)
# one per shape, to keep the subprocess count down.
REPORTS = [
    *(FIXTURES / e["file"] for e in MANIFEST),
    *sorted(NATIVE.glob("*.txt")),
    *sorted(SAMPLES.glob("constructed-*.txt")),
    SAMPLES / "faulthandler-py313-abort-in-gc.txt",
    SAMPLES / "faulthandler-py310-timeout-snapshot.txt",
]


def _cli_builds() -> str | None:
    """None if `python -m gpumon` can build its parser, else why not."""
    proc = subprocess.run(
        [sys.executable, "-c", "from gpumon.cli import build_parser; build_parser()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
    )
    if proc.returncode == 0:
        return None
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"
    return last


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    env.pop("FORCE_COLOR", None)
    env["COLUMNS"] = "200"
    return env


CLI_PROBLEM = _cli_builds()


def _missing_other_module() -> bool:
    """True when `python -m gpumon` cannot build only because another subcommand's module
    does not exist yet (any other failure to build the CLI must fail these tests)."""
    return (
        CLI_PROBLEM is not None
        and "ModuleNotFoundError" in CLI_PROBLEM
        and "gpumon.crash" not in CLI_PROBLEM
    )


def _runner(kind: str):
    if kind == "python -m gpumon":
        prefix = [sys.executable, "-m", "gpumon", "crash"]
    else:
        prefix = [sys.executable, str(HARNESS)]

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*prefix, *args], cwd=ROOT, input=stdin, capture_output=True, env=_env(), timeout=120
        )
        out = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )
        assert "Traceback" not in out.stdout + out.stderr, out.stderr
        return out

    return run


@pytest.fixture
def gpumon_crash():
    """`gpumon crash ARGS...` through `python -m gpumon` (the harness only while another
    subcommand module is still missing). Returns the CompletedProcess with text output."""
    return _runner("harness" if _missing_other_module() else "python -m gpumon")


@pytest.fixture(params=["python -m gpumon", "harness"])
def both_entry_points(request):
    """For the error paths: both the real entry point and the harness."""
    if request.param == "python -m gpumon" and _missing_other_module():
        pytest.skip(f"gpumon CLI cannot be built yet: {CLI_PROBLEM}")
    return _runner(request.param)


def one_error_line(proc: subprocess.CompletedProcess[str], path: str, reason: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"gpumon crash: {path}: "), lines[0]
    assert reason in lines[0], lines[0]
    assert proc.stdout == ""


PARTIAL = {e["file"] for e in MANIFEST if not e.get("complete", True)}


@pytest.mark.parametrize("path", REPORTS, ids=[p.name for p in REPORTS])
def test_every_fixture_prints_a_verdict(gpumon_crash, path: Path) -> None:
    """Complete reports exit 0 in silence; partial pastes exit 4 with one line of reasons."""
    proc = gpumon_crash(str(path))
    if path.name in PARTIAL:
        assert proc.returncode == 4, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"gpumon crash: {path}: partial report: ")
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    assert "Verdict: " in proc.stdout
    assert "\x1b[" not in proc.stdout  # not a terminal: no colour codes


def test_summary_content(gpumon_crash) -> None:
    proc = gpumon_crash(str(FIXTURES / "limina__gputoolscapture-segv-on-commit.ips"))
    out = proc.stdout
    assert 'Thread 22 "limina-vm:zfq0" CRASHED' in out
    assert "Thread 20 (queue com.apple.dt.GPUTools.downloader)" in out
    assert "AGXMetalG13X  -[AGXG13XFamilyBlitContext copyFromBuffer:" in out
    assert "[driver]" in out
    assert "Other threads (56):" in out  # thread 19 called into Mesa (a driver) from code
    full = gpumon_crash("--full", str(FIXTURES / "limina__gputoolscapture-segv-on-commit.ips"))
    assert "Other threads" not in full.stdout
    assert full.stdout.count(" CRASHED") == 1 and len(full.stdout) > len(out)


def test_json_output(both_entry_points) -> None:
    proc = both_entry_points("--json", str(NATIVE / "gdb-sigabrt-torch-mlx-7threads.txt"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["format"] == "gdb" and data["pid"] == 2311 and data["signal"] == "SIGABRT"
    assert data["crashed_thread_index"] == 5
    assert data["verdict"] == 'SIGABRT in os_abort_impl on thread 5 "abort_worker-2"'
    names = [t.get("name") for t in data["threads"]]
    assert "torch_worker-0" in names and "mlx_worker-1" in names
    kinds = {f["kind"] for t in data["threads"] for f in t["frames"]}
    assert "framework" in kinds


def test_json_of_an_ips_matches_the_manifest(gpumon_crash) -> None:
    entry = next(e for e in MANIFEST if e["file"].startswith("limina"))
    data = json.loads(gpumon_crash("--json", str(FIXTURES / entry["file"])).stdout)
    for key in ("process_name", "pid", "signal", "exception_subtype", "crashed_thread_index"):
        assert data[key] == entry["expected"][key]
    assert len(data["threads"]) == entry["expected"]["thread_count"]


def test_stdin(gpumon_crash) -> None:
    proc = gpumon_crash("-", stdin=(NATIVE / "faulthandler-py311-segv.txt").read_bytes())
    assert proc.returncode == 0 and "Verdict: SIGSEGV in string_at" in proc.stdout


def test_python_companion_dump(gpumon_crash) -> None:
    proc = gpumon_crash(
        "--python",
        str(NATIVE / "faulthandler-py311-segv.txt"),
        str(NATIVE / "gdb-segv-py311-3threads.txt"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Python was in string_at (ctypes/__init__.py:519)" in proc.stdout
    assert "Python stacks (faulthandler):" in proc.stdout


def test_garbage_bytes(both_entry_points, tmp_path: Path) -> None:
    p = tmp_path / "garbage.bin"
    p.write_bytes(bytes(range(256)) * 64)
    one_error_line(both_entry_points(str(p)), str(p), "not a crash report")


def test_text_that_is_not_a_report(gpumon_crash, tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("just some notes\nnothing crashed here\n")
    one_error_line(gpumon_crash(str(p)), str(p), "not a crash report gpumon can read")


def test_empty_file(both_entry_points, tmp_path: Path) -> None:
    p = tmp_path / "empty.ips"
    p.write_bytes(b"")
    one_error_line(both_entry_points(str(p)), str(p), "empty")


def test_missing_file(both_entry_points, tmp_path: Path) -> None:
    p = tmp_path / "nope.ips"
    one_error_line(both_entry_points(str(p)), str(p), "no such file")


def test_directory(both_entry_points, tmp_path: Path) -> None:
    one_error_line(both_entry_points(str(tmp_path)), str(tmp_path), "is a directory")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(gpumon_crash, tmp_path: Path) -> None:
    p = tmp_path / "secret.ips"
    p.write_bytes((FIXTURES / "llvm__multithread-test.ips").read_bytes())
    p.chmod(0)
    one_error_line(gpumon_crash(str(p)), str(p), "permission denied")


def test_truncated_ips_is_partial_exit_4(both_entry_points, tmp_path: Path) -> None:
    raw = (FIXTURES / "limina__gputoolscapture-segv-on-commit.ips").read_bytes()
    p = tmp_path / "cut.ips"
    p.write_bytes(raw[: len(raw) // 2])
    proc = both_entry_points(str(p))
    assert proc.returncode == 4, proc.stderr
    assert "Verdict: SIGSEGV" in proc.stdout and "Partial report:" in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gpumon crash: {p}: partial report: ")
    js = both_entry_points("--json", str(p))
    assert js.returncode == 4 and json.loads(js.stdout)["warnings"]


def test_non_utf8_bytes_are_replaced_not_fatal(gpumon_crash, tmp_path: Path) -> None:
    raw = (FIXTURES / "llvm__multithread-test.crash").read_bytes()
    p = tmp_path / "latin1.crash"
    p.write_bytes(raw.replace(b"Terminal [1640]", b"Termin\xe4l \xff\xfe [1640]"))
    proc = gpumon_crash(str(p))
    assert proc.returncode == 0 and "Verdict: SIGSEGV" in proc.stdout


def test_deeply_nested_json(gpumon_crash, tmp_path: Path) -> None:
    header = (FIXTURES / "llvm__multithread-test.ips").read_text().split("\n", 1)[0]
    p = tmp_path / "deep.ips"
    p.write_text(header + "\n" + '{"a":' * 200_000 + "1" + "}" * 200_000)
    proc = gpumon_crash(str(p))
    assert proc.returncode == 4 and "nested too deeply" in proc.stderr
    bare = tmp_path / "deep.json"
    bare.write_text("[" * 200_000)
    one_error_line(gpumon_crash(str(bare)), str(bare), "")


def test_huge_files(gpumon_crash, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.write((NATIVE / "faulthandler-py311-segv.txt").read_bytes())
        f.write(b"\n" + (b"x" * 99 + b"\n") * (65 * 1024 * 1024 // 100 + 1))
    proc = gpumon_crash(str(big))
    # Line formats stream: the whole file is read; what follows the dump is not part of it.
    assert proc.returncode == 0 and proc.stderr == ""
    assert "Verdict: SIGSEGV in string_at" in proc.stdout
    # JSON reports are read whole, up to 64 MiB.
    ips_big = tmp_path / "big.ips"
    with ips_big.open("wb") as f:
        f.write((FIXTURES / "llvm__multithread-test.ips").read_bytes().rstrip(b"\n}"))
        f.write(b',"pad":"' + b"x" * (65 * 1024 * 1024) + b'"}\n')
    proc = gpumon_crash(str(ips_big))
    assert proc.returncode == 4 and "larger than 32 MiB" in proc.stderr  # a summary reads less
    proc = gpumon_crash("--json", str(ips_big))
    assert proc.returncode == 4 and "larger than 64 MiB" in proc.stderr
    junk = tmp_path / "junk.bin"
    with junk.open("wb") as f:
        f.write(os.urandom(1024 * 1024) * 66)
    one_error_line(gpumon_crash(str(junk)), str(junk), "binary data")


def test_no_color_and_forced_colour(gpumon_crash) -> None:
    path = str(NATIVE / "gdb-segv-py311-3threads.txt")
    assert "\x1b[" not in gpumon_crash("--no-color", path).stdout
