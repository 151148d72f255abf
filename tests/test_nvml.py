"""NVML where there is none: not installed, and installed without a driver (this machine: a
real `nvmlInit` that raises). tests/gpu/test_nvml_gpu.py checks the real thing on a GPU host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpumon import events as ev
from gpumon import nvml
from gpumon.supervisor.gpu_memory import GpuMemory
from tests.conftest import wait_for
from tests.engine.helpers import Session

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_without_nvidia_ml_py_hostinfo_says_so_and_nothing_breaks() -> None:
    out = _run(
        "import sys; sys.modules['pynvml'] = None\n"  # as if `gpumon[nvidia]` was not installed
        "from gpumon.host import host_info, HostSampler\n"
        "from gpumon.supervisor.gpu_memory import GpuMemory\n"
        "h = host_info()\n"
        "print(h.nvml); print(h.driver_version == '' and h.gpu_devices == [])\n"
        "print(HostSampler().sample().gpus, GpuMemory().of(1))\n"
    )
    assert out.splitlines() == [
        "nvidia-ml-py is not installed (pip install 'gpumon[nvidia]')",
        "True",
        "[] None",
    ]


def test_nvml_present_but_no_driver_is_a_reason_not_an_error() -> None:
    pytest.importorskip("pynvml")
    nv, why = nvml.open_nvml()
    if nv is not None:
        pytest.skip("NVML works on this machine (see tests/gpu)")
    assert why.startswith("NVML could not start: ")
    from gpumon.host import host_info

    h = host_info()
    assert h.nvml == why and h.driver_version == "" and h.cuda_driver_version == ""
    assert GpuMemory().of(1) is None


class _FakeNvml:
    """NVML's process lists as the driver returns them: a stand-in only because no NVIDIA
    driver runs here; the real calls are exercised by tests/gpu/test_nvml_gpu.py."""

    class NVMLError(Exception):
        pass

    def __init__(self, per_gpu: list[dict[str, list[tuple[int, int | None]]]]) -> None:
        self.per_gpu = per_gpu

    def nvmlDeviceGetCount(self) -> int:
        return len(self.per_gpu)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def _procs(self, h: int, kind: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self.per_gpu[h][kind]]

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        return self._procs(h, "compute")

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        raise self.NVMLError("Not Supported")  # what datacenter GPUs answer

    names_asked = 0

    def nvmlDeviceGetName(self, h: int) -> bytes:
        self.names_asked += 1
        return f"GPU model {h}".encode()

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(used=1 << 30, total=8 << 30)

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=50)


def test_process_memory_sums_gpus_and_skips_unknown_figures() -> None:
    lib = _FakeNvml(
        [
            {"compute": [(10, 1 << 30), (11, None)]},  # None: the driver does not know
            {"compute": [(10, 1 << 20)]},
        ]
    )
    assert nvml.Nvml(lib).process_memory() == {10: (1 << 30) + (1 << 20)}
    assert nvml.cuda_version_text(12040) == "12.4" and nvml.cuda_version_text(13000) == "13.0"


def test_a_gpus_name_is_asked_once_not_on_every_sample() -> None:
    lib = _FakeNvml([{"compute": []}, {"compute": []}])
    n = nvml.Nvml(lib)
    readings = [n.sample() for _ in range(5)]
    assert [g.name for g in readings[-1]] == ["GPU model 0", "GPU model 1"]
    assert readings[-1][0].mem_used == 1 << 30 and readings[-1][0].util_percent == 50.0
    assert lib.names_asked == 2  # once per GPU, not 10


def test_gpu_memory_is_read_at_most_once_per_period() -> None:
    calls: list[int] = []

    def source() -> dict[int, int]:
        calls.append(1)
        return {7: 100}

    mem = GpuMemory(opener=lambda: source, period=3600)
    assert [mem.of(7), mem.of(8), mem.of(7)] == [100, None, 100]
    assert len(calls) == 1


async def test_samples_carry_the_driver_figure_of_their_own_worker(artifacts) -> None:
    # A real pool; the driver's table is stood in for (no NVIDIA driver here), keyed by pid so
    # the test sees that each sample gets its own worker's figure.
    async with Session(["fault,fault-at-threads=99,native=off"], artifacts) as s:
        pool = s.sup.pools["fault"]
        pool.gpu_memory = GpuMemory(opener=lambda: lambda: {pool.worker.pid: 4096}, period=0)
        await wait_for(lambda: any(x.gpu_mem for x in s.samples("fault")), 60, what="gpu_mem")
        ready = s.of(ev.PoolReady)[0]
        assert pool.worker.pid == ready.pid
        assert {x.gpu_mem for x in s.samples("fault") if x.gpu_mem is not None} == {4096}


def test_the_recorder_keeps_the_driver_figures_peak_when_it_merges_samples() -> None:
    from gpumon.session.recorder import coalesce

    def sample(gpu_mem: int | None) -> ev.Sample:
        return ev.Sample(pool="p", interval=0.1, threads=1, ops=[1], flop_per_op=0, gpu_mem=gpu_mem)

    assert coalesce([sample(5), sample(9), sample(None), sample(7)]).gpu_mem == 9
    assert coalesce([sample(None), sample(None)]).gpu_mem is None


def test_nvml_cost_benchmark_refuses_a_mode_list_in_one_line() -> None:
    """benchmarks/nvml_cost.py: every mode is a ratio to `quiet`, so a list without it (or with a
    mode it does not know) is one line and exit 1, before any framework or NVML is touched."""
    for modes in ("procs-1hz", "quiet,procs-2hz"):
        r = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "nvml_cost.py"), "--modes", modes],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert r.returncode == 1
        assert r.stderr.strip().splitlines() == [
            "--modes: a comma list of quiet, procs-1hz, procs-10hz, sample-10hz that includes quiet"
        ]
