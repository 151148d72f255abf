"""Facts about this machine, gathered without importing any framework.

Framework versions come from package metadata; GPUs, the NVIDIA driver and CUDA driver versions
from NVML (gpumon.nvml; nvidia-ml-py, `gpumon[nvidia]`), else GPU names from `nvidia-smi`, and on
macOS from sysctl. The monitor process must never import torch or mlx, so
"which device would a pool pick" is asked of a worker (see doctor.py), not answered here.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.metadata as md
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from gpumon import events as ev
from gpumon import nvml

FRAMEWORK_DISTS = (
    "mlx",
    "mlx-metal",
    "mlx-cpu",
    "mlx-cuda",
    "mlx-cuda-12",
    "mlx-cuda-13",
    "torch",
    "numpy",
)


def framework_versions() -> dict[str, str]:
    out = {}
    for dist in FRAMEWORK_DISTS:
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def _run(cmd: list[str], timeout: float = 3.0) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def os_version() -> str:
    if sys.platform == "darwin":
        ver = platform.mac_ver()[0]
        build = _run(["sw_vers", "-buildVersion"])
        return f"macOS {ver}" + (f" ({build})" if build else "")
    if sys.platform.startswith("linux"):
        name = ""
        with contextlib.suppress(OSError):
            for line in Path("/etc/os-release").read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    name = line.split("=", 1)[1].strip('"')
        return f"{name or 'Linux'}, kernel {platform.release()}"
    return f"{platform.system()} {platform.release()}"


def chip() -> str:
    if sys.platform == "darwin":
        return _run(["sysctl", "-n", "machdep.cpu.brand_string"]) or platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpu_names(devices: list[ev.GpuDevice] | None = None) -> list[str]:
    if sys.platform == "darwin":
        return [f"{chip()} GPU (Metal)"] if platform.machine() == "arm64" else []
    if devices:
        return [
            d.name + (f", {d.mem_total >> 20} MiB" if d.mem_total is not None else "")
            for d in devices
        ]
    if shutil.which("nvidia-smi"):
        out = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
        return [line.strip() for line in out.splitlines() if line.strip()]
    return []


def host_info() -> ev.HostInfo:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    nv = nvml.host_facts()
    return ev.HostInfo(
        hostname=socket.gethostname(),
        user=user,
        home=str(Path.home()),
        os=platform.system(),
        os_version=os_version(),
        machine=platform.machine(),
        chip=chip(),
        cpu_count=os.cpu_count() or 0,
        mem_total=psutil.virtual_memory().total,
        python=sys.version.split()[0],
        gpus=gpu_names(nv.get("gpu_devices")),
        frameworks=framework_versions(),
        **nv,
    )


class HostSampler:
    """System CPU/memory, the monitor's own cost, and NVIDIA GPU utilisation, memory, power
    and temperature (NVML, where there is one)."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.me.cpu_percent(None)
        psutil.cpu_percent(None)
        self.nvml, _ = nvml.open_nvml()

    def sample(self) -> ev.HostSample:
        vm = psutil.virtual_memory()
        gpus = self.nvml.sample() if self.nvml is not None else []
        with self.me.oneshot():
            cpu, rss = self.me.cpu_percent(None), self.me.memory_info().rss
        return ev.HostSample(
            cpu_percent=psutil.cpu_percent(None),
            mem_used=vm.total - vm.available,
            mem_total=vm.total,
            monitor_cpu_percent=cpu,
            monitor_rss=rss,
            gpus=gpus,
        )
