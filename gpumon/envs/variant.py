"""Which build of a framework a pool needs, and what to ask the installer for.

The same release comes in builds that differ by device, and the package names say so:
- MLX on Linux splits its backends into extras: `mlx[cpu]` pulls `mlx-cpu`, `mlx[cuda]` pulls
  the CUDA libraries. On macOS plain `mlx` carries Metal (and the CPU).
- torch on PyPI for Linux is the multi-GB CUDA build; a CPU pool gets PyTorch's CPU wheel
  index instead ($GPUMON_TORCH_INDEX_URL overrides it). macOS and CUDA use the default index.
So the variant is part of an environment's identity: an `mlx@0.31.1` CPU pool and a CUDA pool
on one Linux host use two environments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gpumon.envs.interpreter import PythonTarget
from gpumon.envs.requirement import FrameworkPin

Variant = Literal["cpu", "cuda", "default"]
VARIANTS: tuple[Variant, ...] = ("cpu", "cuda", "default")

TORCH_INDEX_ENV = "GPUMON_TORCH_INDEX_URL"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# What every worker needs besides the framework (the pipe protocol).
WORKER_REQUIREMENTS = ("msgspec>=0.18",)

# Packages that carry an MLX backend on Linux, newest name first. `mlx[cpu]==V` installs only
# when one of them has release V; before the split (no such package yet) the mlx wheel itself
# held the CPU backend. Used to tell which releases can be installed (versions.py).
MLX_BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {
    "cpu": ("mlx-cpu",),
    "cuda": ("mlx-cuda-12", "mlx-cuda"),
}


def torch_cpu_index() -> str:
    return os.environ.get(TORCH_INDEX_ENV) or TORCH_CPU_INDEX


def nvidia_present() -> bool:
    """An NVIDIA driver is loaded: a cheap file test, no CUDA library is touched."""
    return Path("/proc/driver/nvidia/version").exists()


def choose_variant(framework: str, device: str | None, target: PythonTarget) -> Variant:
    """The build a pool on `device` needs (the pool spec's device; None means auto)."""
    if target.system != "linux":
        return "default"
    base = (device or "").split(":")[0]
    if base == "cpu":
        return "cpu"
    if base in ("cuda", "gpu"):
        return "cuda"
    # Auto: the worker will pick CUDA when the driver is there, so the env must carry it.
    return "cuda" if nvidia_present() else "cpu"


@dataclass(frozen=True)
class InstallPlan:
    """The installer's arguments for one pinned framework build."""

    requirements: tuple[str, ...]
    extra_index_urls: tuple[str, ...] = ()


def install_plan(pin: FrameworkPin, variant: Variant) -> InstallPlan:
    if pin.framework == "mlx":
        extra = f"[{variant}]" if variant in ("cpu", "cuda") else ""
        return InstallPlan((f"mlx{extra}=={pin.version}", *WORKER_REQUIREMENTS))
    if pin.framework == "torch":
        # `==2.5.1` also matches the CPU index's `2.5.1+cpu` (a local version); as an extra
        # index it is asked first by uv and wins as the higher version with pip, while the
        # rest (msgspec) still comes from the user's own index.
        extra_urls = (torch_cpu_index(),) if variant == "cpu" else ()
        return InstallPlan((f"torch=={pin.version}", *WORKER_REQUIREMENTS), extra_urls)
    raise ValueError(f"no install plan for {pin.framework}")


def import_name(framework: str) -> str:
    """The module the smoke test imports after a build."""
    return {"mlx": "mlx.core", "torch": "torch"}[framework]
