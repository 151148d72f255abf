"""The bytes of every new format are a contract: repro scripts from committed sessions, the
comparison of two committed sweeps (sessions and their JSON), and a bundle's manifest.

Regenerate after an intended change with GPUMON_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from gpumon.report.repro import repro_for
from gpumon.session.log import load
from gpumon.session.redact import Redactor

from .conftest import FIXTURES, SESSIONS, check_golden

REPRO_CASES = [
    # MLX 0.32.4 on an H200 (CUDA): 1 thread, 8, 1, 8, 1, then SIGABRT 0.23 s after the last shrink
    ("h200-mlx-shrink", SESSIONS / "h200-mlx-shrink"),
    # torch CPU, no crash: the last configuration (locked, 2 threads) after a policy change
    ("torch-cpu", SESSIONS / "torch-cpu"),
    # MLX 0.31.1 CPU generate: 1 thread clean, 2 threads SIGSEGV
    ("sweep-mlx-0.31.1", FIXTURES / "sweep-mlx-0.31.1"),
    # one shared stream without a lock on the H200 (the first crash of that sweep)
    ("h200-mlx-policies", SESSIONS / "h200-mlx-policies"),
]


@pytest.mark.parametrize(("name", "path"), REPRO_CASES, ids=[c[0] for c in REPRO_CASES])
def test_repro_script_matches_golden(name, path) -> None:
    check_golden(f"{name}.repro.py.golden", repro_for(load(path)).text)


def test_redact_home_repro_is_redacted_in_its_comments_only(gpumon, tmp_path) -> None:
    # redact-home only holds a fault pool: there is nothing to reproduce, in one line
    r = gpumon("export", SESSIONS / "redact-home", "-f", "repro", "--redact")
    assert r.code == 1 and "synthetic fault pool" in r.err and r.err.count("\n") == 1


def test_compare_of_two_recorded_sweep_sessions_matches_golden(gpumon) -> None:
    a, b = FIXTURES / "sweep-mlx-0.31.1", FIXTURES / "sweep-mlx-0.32.4"
    text = gpumon("compare", a, b)
    assert text.code == 0, text.err
    check_golden("compare-sessions.txt", text.out)
    js = gpumon("compare", a, b, "--json")
    assert js.code == 0
    check_golden("compare-sessions.json", js.out)


def test_compare_of_the_same_sweeps_json_matches_golden(gpumon) -> None:
    a, b = FIXTURES / "sweep-mlx-0.31.1.json", FIXTURES / "sweep-mlx-0.32.4.json"
    r = gpumon("compare", a, b)
    assert r.code == 0, r.err
    check_golden("compare-sweeps.txt", r.out)


def test_bundle_manifest_matches_golden(gpumon, tmp_path) -> None:
    out = tmp_path / "b.zip"
    r = gpumon("export", SESSIONS / "h200-mlx-shrink", "-f", "bundle", "-o", out)
    assert r.code == 0, r.err
    with zipfile.ZipFile(out) as z:
        manifest = z.read("h200-mlx-shrink/MANIFEST.txt").decode()
        names = z.namelist()
    check_golden("h200-mlx-shrink.MANIFEST.txt", manifest)
    check_golden("h200-mlx-shrink.bundle-files.txt", "\n".join(names) + "\n")


def test_redacted_bundle_is_the_same_bytes_twice(tmp_path) -> None:
    from gpumon.report import bundle
    from gpumon.session.export import render

    s = load(SESSIONS / "redact-home")
    red = Redactor.for_host(s.start.host)

    def build() -> bytes:
        return bundle.build(s, report_md=render(s, "md", red), repro=None, redactor=red).data

    first = build()
    assert first == build()
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        for name in z.namelist():
            assert "alice" not in z.read(name).decode("utf-8", "replace").lower(), name
