"""GPU pools (torch CUDA, MLX CUDA). Skipped where no NVIDIA GPU is visible; run on a GPU host
with `python -m pytest tests/gpu` (see benchmarks/gpu_run.sh)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gpumon import events as ev
from gpumon.control import SetThreads
from tests.conftest import wait_for
from tests.engine.helpers import Session


def _has_cuda() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return r.returncode == 0 and "GPU" in r.stdout


pytestmark = [
    pytest.mark.skipif(not _has_cuda(), reason="no NVIDIA GPU visible"),
    pytest.mark.timeout(300),
]


@pytest.mark.parametrize(
    "spec, mem_keys",
    [
        ("torch:cuda", {"allocated", "reserved", "peak"}),
        ("mlx:gpu", {"active", "peak", "cache"}),
    ],
)
async def test_gpu_pool_grows_and_reports_device_memory(spec, mem_keys, artifacts) -> None:
    async with Session([f"{spec},size=2048,native=off"], artifacts) as s:
        await wait_for(lambda: s.ready(spec) or s.of(ev.PoolFailed), 240)
        if s.of(ev.PoolFailed):
            pytest.skip(s.of(ev.PoolFailed)[0].message)
        ready = s.of(ev.PoolReady)[0]
        assert ready.device in ("cuda:0", "gpu") and ready.dtype == "bfloat16"
        assert (await s.sup.command(spec, SetThreads(threads=4))).ok
        mark = len(s.samples(spec)) + 3
        await wait_for(lambda: len(s.samples(spec)) >= mark + 10, 60)
        window = s.samples(spec)[mark:]
        per_thread = [sum(x.ops[i] for x in window if len(x.ops) > i) for i in range(4)]
        assert all(n > 0 for n in per_thread), per_thread
        mem = window[-1].mem
        assert mem_keys <= set(mem) and mem.get("peak", 0) > 0
        if spec.startswith("torch"):
            # 4 threads' three 2048² bf16 inputs are 96 MiB: the allocator holds at least that
            assert 96 << 20 <= mem["allocated"] <= mem["reserved"], mem
            assert mem["peak"] >= mem["allocated"], mem
