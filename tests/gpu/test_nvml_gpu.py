"""NVML on a real NVIDIA host: driver facts in HostInfo and doctor, per-GPU readings, and each
worker's driver-side GPU memory on its samples. Skipped where no NVIDIA GPU is visible or
nvidia-ml-py (`gpumon[nvidia]`) is not installed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpumon import events as ev
from gpumon import nvml
from tests.conftest import wait_for
from tests.engine.helpers import Session

from .test_gpu_pools import _has_cuda

pytestmark = [
    pytest.mark.skipif(not _has_cuda(), reason="no NVIDIA GPU visible"),
    pytest.mark.timeout(300),
]


@pytest.fixture(autouse=True)
def _nvml() -> nvml.Nvml:
    pytest.importorskip("pynvml", reason="nvidia-ml-py not installed: pip install 'gpumon[nvidia]'")
    nv, why = nvml.open_nvml()
    assert nv is not None, why  # a GPU that nvidia-smi sees must be visible to NVML too
    return nv


def test_host_info_and_samples_carry_nvidia_facts() -> None:
    from gpumon.host import HostSampler, host_info

    h = host_info()
    assert h.nvml == "" and h.driver_version and h.cuda_driver_version.count(".") == 1
    assert h.gpu_devices and all(d.mem_total and d.name for d in h.gpu_devices)
    (first, *_) = HostSampler().sample().gpus
    assert first.source == "NVML" and first.mem_total and first.util_percent is not None
    assert first.temperature_c is not None and first.temperature_c > 0


def test_doctor_shows_the_driver() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gpumon", "doctor", "--json", "--pool", "fault"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    f = json.loads(r.stdout)
    assert f["host"]["driver_version"] and f["host"]["gpu_devices"]


async def test_a_cuda_pool_reports_the_drivers_figure_beside_its_allocator(artifacts) -> None:
    pool = "torch:cuda"  # the pool's name: its spec minus the keys
    async with Session([f"{pool},size=2048,native=off"], artifacts) as s:
        await wait_for(lambda: s.ready(pool) or s.of(ev.PoolFailed), 240)
        if s.of(ev.PoolFailed):
            pytest.skip(s.of(ev.PoolFailed)[0].message)
        await wait_for(lambda: any(x.gpu_mem for x in s.samples(pool)), 30, what="gpu_mem")
        last = [x for x in s.samples(pool) if x.gpu_mem][-1]
        # the driver counts the CUDA context and the caching allocator's reserve as well
        assert last.gpu_mem is not None and last.gpu_mem >= last.mem.get("allocated", 0)
