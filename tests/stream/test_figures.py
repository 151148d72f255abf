"""The interval fold that `gpumon pipe` and the Prometheus exporter share (pure, no processes)."""

from __future__ import annotations

import pytest

from gpumon import events as ev
from gpumon.figures import LiveFigures
from gpumon.latency import histogram
from gpumon.spec import PoolConfig


def _ready(pool: str = "p", backend: str = "torch") -> list[ev.Event]:
    return [
        ev.PoolStarting(pool=pool, config=PoolConfig(name=pool, backend=backend, threads=2)),
        ev.PoolReady(
            pool=pool,
            pid=42,
            backend=backend,
            device="cpu",
            device_name="CPU",
            device_reason="requested",
            framework=f"{backend} 2.13.0+cpu",
            versions={backend: "2.13.0+cpu"},
            policy="per-thread",
            size=64,
            dtype="float32",
            flop_per_op=100.0,
        ),
    ]


def _sample(ops: list[int], lats: list[float], **kw: object) -> ev.Sample:
    return ev.Sample(
        pool="p",
        interval=0.1,
        threads=len(ops),
        ops=ops,
        flop_per_op=100.0,
        policy="per-thread",
        lat_hist=histogram(lats),
        lat_max=max(lats),
        **kw,  # type: ignore[arg-type]
    )


def test_an_interval_merges_its_samples_and_the_next_starts_empty() -> None:
    f = LiveFigures()
    for e in _ready():
        f(e)
    f(_sample([10, 20], [0.001] * 30, mem={"peak": 5}, rss=100, cpu_percent=50.0, gpu_mem=7))
    f(_sample([30, 40], [0.002] * 70, mem={"peak": 9}, rss=80, cpu_percent=60.0, gpu_mem=3))
    (fig,) = f.roll()
    assert fig.ops == 100 and fig.measured_s == pytest.approx(0.2)
    assert fig.ops_per_s == pytest.approx(500.0)
    assert fig.flop_per_s == pytest.approx(50_000.0)
    # p50 falls in the 2 ms bucket (70 of 100 ops), p99 too; buckets are ~9% wide
    assert fig.lat_p50_s == pytest.approx(0.002, rel=0.1)
    assert fig.lat_max_s == pytest.approx(0.002)
    assert fig.mem_bytes == {"peak": 9} and fig.rss_bytes == 100 and fig.gpu_mem_bytes == 7
    assert fig.cpu_percent == 60.0  # the last reading, not a peak
    assert (fig.version, fig.device, fig.threads, fig.state) == ("2.13.0+cpu", "cpu", 2, "running")
    (empty,) = f.roll()
    assert empty.ops == 0 and empty.ops_per_s is None and empty.lat_p50_s is None
    assert empty.ops_total == 100  # the cumulative count stays


def test_crashes_hangs_restarts_are_counted_and_set_the_state() -> None:
    f = LiveFigures()
    for e in _ready():
        f(e)
    crash = dict(pid=42, threads=2, uptime=1.0, ops_total=5, policy="x", workload="matmul")
    f(ev.Crash(crash_id="a", pool="p", signal="SIGSEGV", backend="torch", device="cpu", **crash))
    assert f.peek()[0].state == "crashed"
    f(ev.PoolRestart(pool="p", attempt=2, delay=0.1, crashes=1))
    assert f.peek()[0].state == "restarting"
    f(ev.Crash(crash_id="b", pool="p", exit_code=1, backend="torch", device="cpu", **crash))
    f(ev.Stall(pool="p", silent_for=3.0, threads=2))
    assert f.peek()[0].state == "stalled"
    f(ev.StallCleared(pool="p"))
    (fig,) = f.roll()
    assert fig.state == "running" and fig.up
    assert (fig.crashes, fig.hangs, fig.restarts) == (2, 1, 1)
    assert fig.crash_signals == {"SIGSEGV": 1, "exit 1": 1}


def test_the_synthetic_backend_has_no_flops_and_a_failed_pool_stays_failed() -> None:
    f = LiveFigures()
    for e in _ready("p", "fault"):
        f(e)
    f(_sample([5], [0.001]))
    assert f.roll()[0].flop_per_s is None
    f(ev.PoolFailed(pool="q", message="no torch"))
    f(ev.PoolStopped(pool="q"))
    assert [x.state for x in f.roll()] == ["running", "failed"]
