"""Installer output -> progress phases, on lines uv 0.13 and pip 23 really printed."""

from __future__ import annotations

from gpumon.envs.progress import BuildProgress, PipReader, UvReader, parse_size

UV_COLD = """\
Using Python 3.11.7 environment at: e2
Resolved 3 packages in 184ms
Downloading mlx-cpu (9.8MiB)
Downloading torch (180.0MiB)
 Downloaded mlx-cpu
 Downloaded torch
Prepared 3 packages in 121ms
Installed 3 packages in 14ms
 + mlx==0.31.1
 + mlx-cpu==0.31.1
 + msgspec==0.23.0
"""

PIP_COLD = """\
Collecting mlx[cpu]==0.31.1
  Downloading mlx-0.31.1-cp311-cp311-manylinux_2_35_x86_64.whl (674 kB)
Collecting msgspec>=0.18
  Using cached msgspec-0.23.0-cp311-cp311-manylinux_2_17_x86_64.whl (232 kB)
Collecting mlx-cpu==0.31.1 (from mlx[cpu]==0.31.1)
  Downloading mlx_cpu-0.31.1-py3-none-manylinux_2_35_x86_64.whl (10.3 MB)
Installing collected packages: msgspec, mlx-cpu, mlx
Successfully installed mlx-0.31.1 mlx-cpu-0.31.1 msgspec-0.23.0
"""


def _run(reader_cls, text: str) -> list[BuildProgress]:
    seen: list[BuildProgress] = []
    reader = reader_cls(env="mlx 0.31.1 (cpu, py3.11)", report=seen.append)
    for line in text.splitlines(keepends=True):
        reader.feed(line)
    return seen


def test_sizes() -> None:
    assert parse_size("9.8", "MiB") == int(9.8 * 1024**2)
    assert parse_size("674", "kB") == 674_000
    assert parse_size("1", "GiB") == 1024**3
    assert parse_size("12", "B") == 12


def test_uv_download_fraction_grows_to_one_then_installs() -> None:
    seen = _run(UvReader, UV_COLD)
    phases = [p.phase for p in seen]
    assert phases[0] == "downloading" and phases[-1] == "installing"
    assert phases.index("installing") > max(i for i, p in enumerate(phases) if p == "downloading")
    fractions = [p.fraction for p in seen if p.phase == "downloading" and p.fraction is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert 0 < fractions[0] < 1 or fractions[0] == 0.0
    last_dl = [p for p in seen if p.phase == "downloading"][-1]
    assert last_dl.bytes_total == parse_size("9.8", "MiB") + parse_size("180.0", "MiB")
    assert last_dl.bytes_done == last_dl.bytes_total
    assert seen[-1].fraction == 1.0
    assert all(p.elapsed_s >= 0 for p in seen)


def test_uv_after_first_download_fraction_is_that_share() -> None:
    seen = _run(UvReader, UV_COLD)
    after_first = next(p for p in seen if p.message == "downloaded mlx-cpu")
    assert after_first.fraction is not None
    assert abs(after_first.fraction - 9.8 / (9.8 + 180.0)) < 1e-3


def test_pip_phases_and_bytes_without_a_fraction() -> None:
    seen = _run(PipReader, PIP_COLD)
    phases = [p.phase for p in seen]
    assert phases[0] == "resolving"
    assert "downloading" in phases and phases[-1] == "installing"
    downloads = [p for p in seen if p.phase == "downloading" and p.bytes_done]
    assert downloads[-1].bytes_done == 674_000 + 10_300_000
    assert all(p.fraction is None for p in seen if p.phase == "downloading")


def test_unknown_lines_change_nothing() -> None:
    assert _run(UvReader, "warning: something new\nhint: whatever\n") == []
    assert _run(PipReader, "WARNING: Location ignored\n") == []
