"""Facts about this machine, gathered without importing any framework.

Framework versions come from package metadata; GPUs from NVML (nvidia-ml-py, if installed) or
`nvidia-smi`, and on macOS from sysctl. The monitor process must never import torch or mlx, so
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
from typing import Any

import psutil

from gpumon import events as ev

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


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # not installed, no driver, no permission: all mean "no NVML"
        return None


def gpu_names() -> list[str]:
    if sys.platform == "darwin":
        return [f"{chip()} GPU (Metal)"] if platform.machine() == "arm64" else []
    if shutil.which("nvidia-smi"):
        out = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
        return [line.strip() for line in out.splitlines() if line.strip()]
    return []


def host_info() -> ev.HostInfo:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
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
        gpus=gpu_names(),
        frameworks=framework_versions(),
    )


class HostSampler:
    """System CPU/memory, the monitor's own cost, and NVIDIA GPU memory/utilisation."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.me.cpu_percent(None)
        psutil.cpu_percent(None)
        self.nvml: Any = _nvml() if sys.platform != "darwin" else None
        self.handles: list[object] = []
        if self.nvml is not None:
            nv = self.nvml
            with contextlib.suppress(Exception):
                self.handles = [
                    nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())
                ]

    def sample(self) -> ev.HostSample:
        vm = psutil.virtual_memory()
        gpus = []
        nv = self.nvml
        for h in self.handles:
            try:
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                util = nv.nvmlDeviceGetUtilizationRates(h)
                name = nv.nvmlDeviceGetName(h)
                gpus.append(
                    ev.GpuSample(
                        name=str(name),
                        mem_used=int(mem.used),
                        mem_total=int(mem.total),
                        util_percent=float(util.gpu),
                        source="NVML",
                    )
                )
            except Exception:  # a GPU that stops answering is left out of this sample only
                continue
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
