"""Shared pieces of the session-log tests: the committed sample sessions and the CLI."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpumon import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sessions"
GOLDEN = FIXTURES / "golden"
SCENARIOS = (
    "fault-off",
    "fault-gdb",
    "fault-hang",
    "torch-cpu",
    # A torch pool killed by a SIGSEGV the recorder sent (os.kill): a real native death
    "torch-killed",
    "redact-home",
    # Real MLX 0.32.4 CUDA crashes recorded on an NVIDIA H200 (benchmarks/gpu_run.sh, 2026-11-28)
    "h200-mlx-shrink",
    "h200-mlx-policies",
    # MLX 0.32.4 CUDA, shared stream, generate (benchmarks/gpu_evidence.sh, 2026-12-02): at 1
    # thread every thread raised (a JIT kernel that could not find its CUDA headers), at 2 the
    # process died by SIGSEGV under cuda-gdb
    "h200-mlx-cuda-shared",
)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def gpumon(capsys):
    """Run `gpumon ARGS...` in this process; returns exit code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def session_copy(tmp_path):
    """A writable copy of a committed session folder (tests that damage a log use this)."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest)
        return dest

    return copy
