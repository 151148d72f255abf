"""Real torch-CPU and mlx-CPU pools: threads grow and shrink while they run, counts move."""

from __future__ import annotations

import os

import pytest

from gpumon import events as ev
from gpumon.control import Pause, Resume, SetPolicy, SetThreads, SetWorkload
from tests.conftest import wait_for
from tests.engine.helpers import Session

pytestmark = pytest.mark.timeout(180)


def per_thread_since(s: Session, pool: str, start: int) -> dict[int, int]:
    totals: dict[int, int] = {}
    for smp in s.samples(pool)[start:]:
        for i, n in enumerate(smp.ops):
            totals[i] = totals.get(i, 0) + n
    return totals


@pytest.mark.parametrize("spec", ["torch:cpu", "mlx:cpu"])
async def test_threads_grow_and_shrink_live(spec: str, artifacts) -> None:
    name = spec
    async with Session([f"{spec},size=128"], artifacts) as s:
        await wait_for(lambda: len(s.samples(name)) >= 5, 120, what="first samples")
        ready = s.of(ev.PoolReady, name)[0]
        assert ready.device == "cpu" and ready.framework.split()[0] in ("torch", "mlx")
        assert ready.flop_per_op == 2 * 128**3

        ctl = await s.sup.command(name, SetThreads(threads=3))
        assert ctl.ok, ctl.detail
        mark = len(s.samples(name))
        await wait_for(lambda: len(s.samples(name)) >= mark + 10, 30, what="samples at 3")
        grown = per_thread_since(s, name, mark)
        assert set(grown) == {0, 1, 2}
        assert all(n > 0 for n in grown.values()), grown
        assert s.samples(name)[-1].threads == 3

        ctl = await s.sup.command(name, SetThreads(threads=1))
        assert ctl.ok, ctl.detail
        mark = len(s.samples(name)) + 2  # skip the window that straddles the change
        await wait_for(lambda: len(s.samples(name)) >= mark + 8, 30, what="samples at 1")
        shrunk = per_thread_since(s, name, mark)
        assert shrunk.get(0, 0) > 0
        assert all(shrunk.get(i, 0) == 0 for i in (1, 2)), shrunk
    stopped = s.of(ev.PoolStopped, name)
    assert stopped and stopped[-1].reason == "stopped"
    assert not s.of(ev.Crash), "a clean CPU pool must not crash"


async def test_samples_carry_latency_memory_and_process_figures(artifacts) -> None:
    async with Session(["torch:cpu,size=128,threads=2", "mlx:cpu,size=64"], artifacts) as s:
        await wait_for(
            lambda: len(s.samples("torch:cpu")) >= 8 and len(s.samples("mlx:cpu")) >= 8,
            120,
            what="samples",
        )
    t = s.samples("torch:cpu")[-3]
    assert 0.05 < t.interval < 2.0  # ~0.1 s; a saturated 2-core machine delays the sampler
    assert t.lat_count > 0 and 0 < t.lat_p50 <= t.lat_p99 <= t.lat_max
    assert sum(t.lat_hist.values()) == t.lat_count
    assert t.rss and t.rss > 50 << 20  # torch is loaded in there
    # Two threads looping flat out: well above idle, and no more than the machine's cores
    # (psutil's figure is per core, summed over the process's threads).
    assert t.cpu_percent is not None and 10 < t.cpu_percent <= 100 * (os.cpu_count() or 1) + 5
    m = s.samples("mlx:cpu")[-3]
    assert set(m.mem) == {"active", "peak", "cache"} and "mlx.core" in m.mem_source


async def test_pause_resume_policy_and_workload(artifacts) -> None:
    name = "torch:cpu"
    async with Session([f"{name},size=96"], artifacts) as s:
        await wait_for(lambda: s.ready(name), 120)
        assert (await s.sup.command(name, Pause())).ok
        mark = len(s.samples(name)) + 2
        await wait_for(lambda: len(s.samples(name)) >= mark + 5, 20)
        assert all(x.total_ops == 0 and x.state == "paused" for x in s.samples(name)[mark:])
        assert (await s.sup.command(name, Resume())).ok
        ctl = await s.sup.command(name, SetPolicy(policy="locked"))
        assert ctl.ok and s.sup.pools[name].config.policy == "locked"
        bad = await s.sup.command(name, SetPolicy(policy="shared"))
        assert not bad.ok and "no streams" in bad.detail
        ctl = await s.sup.command(name, SetWorkload(workload="mlp", size=64))
        assert ctl.ok, ctl.detail
        mark = len(s.samples(name)) + 2
        await wait_for(lambda: len(s.samples(name)) >= mark + 5, 20)
        last = s.samples(name)[-1]
        assert last.workload == "mlp" and last.policy == "locked" and last.total_ops >= 0
        assert last.flop_per_op == 4 * 2 * 256 * 64**2
        assert sum(x.total_ops for x in s.samples(name)[mark:]) > 0


async def test_commands_to_a_dead_pool_fail_fast(artifacts) -> None:
    async with Session(["fault,native=off,fault-rate=50"], artifacts) as s:
        await wait_for(lambda: s.ready("fault"), 60)
        await s.sup.command("fault", SetThreads(threads=2))
        await wait_for(lambda: s.of(ev.Crash), 30, what="the crash")
        await wait_for(lambda: s.sup.pools["fault"].exited.is_set(), 30)
        ctl = await s.sup.command("fault", Pause())
        assert not ctl.ok and "crashed" in ctl.detail
        remembered = await s.sup.command("fault", SetThreads(threads=1))
        assert remembered.ok and "will start with 1" in remembered.detail
        assert s.sup.pools["fault"].config.threads == 1
