"""The `generate` workload: an honest decoding step, sampled from the global random state,
run for real by torch-CPU and mlx-CPU pools."""

from __future__ import annotations

import pytest

from gpumon import events as ev
from gpumon.control import SetThreads, SetWorkload
from gpumon.worker.backends import generate_shape as shape
from gpumon.worker.backends.base import bytes_per_thread, flop_per_op
from tests.conftest import wait_for
from tests.engine.helpers import Session

pytestmark = pytest.mark.timeout(180)


def test_flop_estimate_matches_the_matmuls_torch_counts() -> None:
    # An independent count: torch's FlopCounterMode sees every matrix product of a step, so
    # each step's count must equal the formula at that context length; the reported constant
    # is the formula's mean over a whole sequence.
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from gpumon.worker.backends.torch_generate import TorchDecoder

    torch.set_grad_enabled(False)
    for size in (64, 96):  # 64: one 64-wide head; 96: not a multiple of 64, one 96-wide head
        model = TorchDecoder(torch, torch.device("cpu"), size, "float32", seed=1)
        for t in (1, 2, 3):
            with FlopCounterMode(display=False) as counter:
                model.step()
            assert counter.get_total_flops() == shape.flop_at(size, t), (size, t)
        per_token = [shape.flop_at(size, t) for t in range(1, shape.CONTEXT + 1)]
        assert flop_per_op("generate", size) == pytest.approx(sum(per_token) / shape.CONTEXT)
    assert flop_per_op("generate", 256) > flop_per_op("generate", 128) > 0


def test_memory_estimate_covers_the_model_and_cache() -> None:
    torch = pytest.importorskip("torch")
    from gpumon.worker.backends.torch_generate import TorchDecoder

    model = TorchDecoder(torch, torch.device("cpu"), 128, "float32", seed=1)
    tensors = [model.embed, model.head, model.keys, model.values]
    tensors += [w for layer in model.layers for w in layer]
    held = sum(t.numel() * t.element_size() for t in tensors)
    est = bytes_per_thread("generate", 128, 4)
    assert held <= est < 1.1 * held


def test_torch_samples_from_the_default_generator() -> None:
    # Same global seed, same tokens; another global seed, other tokens: the sampling really
    # draws from torch's default generator (as servers do), not a private one.
    torch = pytest.importorskip("torch")
    from gpumon.worker.backends.torch_generate import TorchDecoder

    def tokens(global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)
        m = TorchDecoder(torch, torch.device("cpu"), 64, "float32", seed=7)
        out = []
        for _ in range(20):
            m.step()
            out.append(m.token)
        return out

    assert tokens(1) == tokens(1)
    assert tokens(1) != tokens(2)


def test_mlx_samples_from_the_global_random_state_and_resets_a_full_cache() -> None:
    mx = pytest.importorskip("mlx.core")
    from gpumon.worker.backends.mlx_generate import MlxDecoder

    def tokens(global_seed: int, n: int = 20) -> tuple[list[int], MlxDecoder]:
        mx.random.seed(global_seed)
        m = MlxDecoder(mx, 64, "float32", mx.cpu, seed=7)
        out = []
        for _ in range(n):
            m.step()
            out.append(m.token)
        return out, m

    assert tokens(1)[0] == tokens(1)[0]
    assert tokens(1)[0] != tokens(2)[0]
    _, m = tokens(3, shape.CONTEXT + 1)
    assert m.length == 1 and m.keys[0].shape == (1, 64)  # a new sequence began


@pytest.mark.parametrize("spec", ["torch:cpu", "mlx:cpu"])
async def test_generate_pool_runs_at_one_and_two_threads(spec: str, artifacts) -> None:
    size = 64
    async with Session([f"{spec},workload=generate,size={size}"], artifacts) as s:
        await wait_for(lambda: len(s.samples(spec)) >= 5, 120, what="first samples")
        ready = s.of(ev.PoolReady, spec)[0]
        assert ready.flop_per_op == shape.flop_per_token(size) > 0
        assert ready.size == size
        assert (await s.command(spec, SetThreads(threads=2))).ok
        mark = len(s.samples(spec)) + 2  # skip the window that straddles the change
        await wait_for(lambda: len(s.samples(spec)) >= mark + 8, 30, what="samples at 2")
        later = s.samples(spec)[mark:]
        per_thread = [sum(x.ops[i] for x in later if len(x.ops) > i) for i in (0, 1)]
        assert all(n > 0 for n in per_thread), per_thread
        last = later[-1]
        assert last.workload == "generate" and last.threads == 2
        # No policy was asked for: the worker resolved the framework's own default.
        assert last.policy == "per-thread"
        assert last.flop_per_op == shape.flop_per_token(size)
    assert not s.of(ev.Crash)


async def test_generate_default_size_and_switching_to_it(artifacts) -> None:
    name = "torch:cpu"
    async with Session([f"{name},workload=generate,intra-op=1"], artifacts) as s:
        await wait_for(lambda: s.ready(name), 120)
        ready = s.of(ev.PoolReady, name)[0]
        assert ready.size == 256 and ready.flop_per_op == shape.flop_per_token(256)
        ctl = await s.command(name, SetWorkload(workload="matmul", size=64))
        assert ctl.ok, ctl.detail
        ctl = await s.command(name, SetWorkload(workload="generate", size=64))
        assert ctl.ok, ctl.detail
        mark = len(s.samples(name)) + 2
        await wait_for(lambda: len(s.samples(name)) >= mark + 5, 30)
        assert sum(x.total_ops for x in s.samples(name)[mark:]) > 0
        assert s.samples(name)[-1].workload == "generate"


async def test_a_size_nobody_chose_follows_the_workload(artifacts) -> None:
    # torch on the CPU: matmul's default is 512, generate's 256. Switching without a size
    # takes the new workload's default; a size the user gave stays.
    async with Session(
        ["torch:cpu,intra-op=1", "torch:cpu,name=sized,size=96,intra-op=1"], artifacts
    ) as s:
        await wait_for(lambda: s.ready("torch:cpu") and s.ready("sized"), 120)
        ctl = await s.command("torch:cpu", SetWorkload(workload="generate"))
        assert ctl.ok and ctl.config is not None and ctl.config.size == 256, ctl
        ctl = await s.command("torch:cpu", SetWorkload(workload="matmul"))
        assert ctl.ok and ctl.config is not None and ctl.config.size == 512, ctl
        ctl = await s.command("sized", SetWorkload(workload="generate"))
        assert ctl.ok and ctl.config is not None and ctl.config.size == 96, ctl
