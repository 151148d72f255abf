"""NVIDIA facts from NVML: driver and CUDA driver versions, each GPU's name, utilisation,
memory, power and temperature, and the GPU memory each process holds (by pid).

The binding is nvidia-ml-py (`pip install 'gpumon[nvidia]'`), NVIDIA's own thin ctypes wrapper
over libnvidia-ml: no dependencies, and the same calls nvidia-smi makes. nvitop's API would
serve too, but it wraps these very calls in a larger object model (and pulls in its own
dependencies) while gpumon needs six of them, once a second, from the monitor process.

NVML is optional everywhere: not installed, no driver (`nvmlInit` raises), no permission —
each becomes a reason (`why_not`) that doctor and the session's HostInfo carry, never an error.
A GPU that stops answering mid-session is left out of that one reading.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from gpumon import events as ev

INSTALL_HINT = "pip install 'gpumon[nvidia]'"

_lock = threading.Lock()
_opened: tuple[Nvml | None, str] | None = None


def _text(value: object) -> str:
    # Older bindings returned bytes; nvidia-ml-py >= 12 returns str.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def cuda_version_text(v: int) -> str:
    """NVML's integer CUDA driver version (12040) as people write it ("12.4")."""
    return f"{v // 1000}.{(v % 1000) // 10}"


class Nvml:
    """An initialised NVML: one per process (see `open_nvml`)."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.handles: list[tuple[int, Any]] = []
        for i in range(lib.nvmlDeviceGetCount()):
            try:
                self.handles.append((i, lib.nvmlDeviceGetHandleByIndex(i)))
            except lib.NVMLError:  # a GPU NVML cannot open (lost, no permission): skip it
                continue
        self._names: dict[int, str] = {}  # a GPU's name does not change: asked once, not per sample

    def _try(self, call: str, *args: object) -> Any:
        try:
            return getattr(self.lib, call)(*args)
        except (self.lib.NVMLError, AttributeError):
            return None

    @property
    def driver_version(self) -> str:
        v = self._try("nvmlSystemGetDriverVersion")
        return _text(v) if v is not None else ""

    @property
    def cuda_driver_version(self) -> str:
        v = self._try("nvmlSystemGetCudaDriverVersion")
        return cuda_version_text(int(v)) if v else ""

    def devices(self) -> list[ev.GpuDevice]:
        out = []
        for i, h in self.handles:
            name = self._try("nvmlDeviceGetName", h)
            mem = self._try("nvmlDeviceGetMemoryInfo", h)
            limit = self._try("nvmlDeviceGetEnforcedPowerLimit", h)  # milliwatts
            uuid = self._try("nvmlDeviceGetUUID", h)
            out.append(
                ev.GpuDevice(
                    index=i,
                    name=_text(name) if name is not None else f"GPU {i}",
                    uuid=_text(uuid) if uuid is not None else "",
                    mem_total=int(mem.total) if mem is not None else None,
                    power_limit_w=limit / 1000 if limit is not None else None,
                )
            )
        return out

    def sample(self) -> list[ev.GpuSample]:
        out = []
        lib = self.lib
        for i, h in self.handles:
            try:
                name = self._names.get(i)
                if name is None:
                    name = self._names[i] = _text(lib.nvmlDeviceGetName(h))
                mem = lib.nvmlDeviceGetMemoryInfo(h)
                util = lib.nvmlDeviceGetUtilizationRates(h)
            except lib.NVMLError:  # this GPU stopped answering: left out of this reading
                continue
            power = self._try("nvmlDeviceGetPowerUsage", h)  # milliwatts
            temp = self._try("nvmlDeviceGetTemperature", h, getattr(lib, "NVML_TEMPERATURE_GPU", 0))
            out.append(
                ev.GpuSample(
                    name=name,
                    index=i,
                    mem_used=int(mem.used),
                    mem_total=int(mem.total),
                    util_percent=float(util.gpu),
                    power_w=power / 1000 if power is not None else None,
                    temperature_c=float(temp) if temp is not None else None,
                    source="NVML",
                )
            )
        return out

    def process_memory(self) -> dict[int, int]:
        """pid -> bytes of GPU memory the driver says it holds, summed over GPUs. A process
        listed as both compute and graphics on one GPU is counted once there."""
        total: dict[int, int] = {}
        for _, h in self.handles:
            here: dict[int, int] = {}
            for call in (
                "nvmlDeviceGetComputeRunningProcesses",
                "nvmlDeviceGetGraphicsRunningProcesses",
            ):
                for p in self._try(call, h) or ():
                    used = getattr(p, "usedGpuMemory", None)
                    if used is None:  # not available (e.g. under some vGPU/MIG modes)
                        continue
                    here[int(p.pid)] = max(here.get(int(p.pid), 0), int(used))
            for pid, used in here.items():
                total[pid] = total.get(pid, 0) + used
        return total


def _open() -> tuple[Nvml | None, str]:
    if sys.platform == "darwin":
        return None, "no NVIDIA GPUs on macOS"
    try:
        import pynvml
    except ImportError:
        return None, f"nvidia-ml-py is not installed ({INSTALL_HINT})"
    try:
        pynvml.nvmlInit()
        return Nvml(pynvml), ""
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, NoPermission ...
        return None, f"NVML could not start: {_text(e) or type(e).__name__}"


def open_nvml() -> tuple[Nvml | None, str]:
    """The process's NVML (initialised once) and, when there is none, why not."""
    global _opened
    with _lock:
        if _opened is None:
            _opened = _open()
        return _opened


def host_facts() -> dict[str, Any]:
    """HostInfo's NVIDIA fields: driver_version, cuda_driver_version, gpu_devices, nvml."""
    nv, why = open_nvml()
    if nv is None:
        return {"nvml": why}
    return {
        "driver_version": nv.driver_version,
        "cuda_driver_version": nv.cuda_driver_version,
        "gpu_devices": nv.devices(),
    }
