"""A backend's `make_op` does exactly what its `run_ops` does, on the real frameworks.

The runtime calls `make_op`'s callable in its hot loop instead of `run_ops` (one call without
arguments is cheaper); these tests count what each really ran.
"""

from __future__ import annotations

import os

import pytest

from gpumon.spec import parse_pool
from gpumon.worker.backends.base import Workload

torch = pytest.importorskip("torch")


def torch_backend(spec: str = "torch:cpu,size=16"):
    from gpumon.worker.backends.torch_backend import TorchBackend

    b = TorchBackend(parse_pool(spec))
    b.setup()
    return b


def addmm_calls(fn, times: int) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(times):
            fn()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::addmm")


@pytest.mark.parametrize("batch", [1, 3])
def test_torch_matmul_op_runs_batch_addmms(batch: int) -> None:
    b = torch_backend()
    state = b.new_thread_state(Workload("matmul", 16, "float32", "per-thread", batch), 0)
    op = b.make_op(state, batch)
    assert addmm_calls(op, 4) == 4 * batch
    assert addmm_calls(lambda: b.run_ops(state, batch), 4) == 4 * batch


def test_torch_generate_op_is_one_decoding_step() -> None:
    b = torch_backend()
    state = b.new_thread_state(Workload("generate", 64, "float32", "per-thread", 1), 0)
    op = b.make_op(state, 1)
    before = state.model.length
    for _ in range(3):
        op()
    assert state.model.length == before + 3


def test_intra_op_reaches_the_environment_before_torch_loads(monkeypatch) -> None:
    # In a worker, setup() runs before anything imported torch, so OpenMP and MKL read these
    # for every thread; an explicit setting of the user's is left alone.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    torch_backend("torch:cpu,intra-op=1")
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "3"


def test_mlx_ops_match_run_ops() -> None:
    pytest.importorskip("mlx.core")
    from gpumon.worker.backends.mlx_backend import MlxBackend

    b = MlxBackend(parse_pool("mlx:cpu,size=16"))
    b.setup()
    state = b.new_thread_state(Workload("generate", 64, "float32", "per-thread", 1), 0)
    try:
        op = b.make_op(state, 1)
        before = state.model.length
        for _ in range(3):
            op()
        assert state.model.length == before + 3
        mm = b.new_thread_state(Workload("matmul", 16, "float32", "per-thread", 1), 0)
        b.make_op(mm, 1)()  # evaluates one addmm on this thread's stream without error
    finally:
        b.thread_exit(state)
