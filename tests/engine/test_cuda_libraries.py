"""The NVIDIA library versions a CUDA pool reports come from the installed wheels' metadata."""

from __future__ import annotations

import sys

from gpumon.worker.backends.base import cuda_library_versions


def _dist(site, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )


def test_versions_are_read_from_the_wheels_that_are_installed(tmp_path, monkeypatch) -> None:
    site = tmp_path / "site"
    _dist(site, "nvidia-cublas-cu12", "12.8.4.1")
    _dist(site, "nvidia_cudnn_cu12", "9.10.2.21")
    _dist(site, "nvidia-cublasxt", "1.0")  # another package, not cuBLAS
    monkeypatch.setattr(sys, "path", [str(site)])
    got = cuda_library_versions()
    assert got["cuDNN"] == "9.10.2.21"
    assert got["cuBLAS"] == "12.8.4.1"
    assert "CUDA runtime" not in got


def test_nothing_installed_gives_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert cuda_library_versions() == {}
