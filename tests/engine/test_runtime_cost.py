"""The worker runtime's cheap bookkeeping still accounts for every op exactly.

The hot loop records one clock reading per op and the sampler counts ops from those records
(gpumon/worker/runtime.py); these tests run the real Runtime, real threads and a real socket
with a small backend that counts what it really executed, and check that samples add up to
exactly that, through resizes, pauses, workload changes and batches, and that the latency
figures and histograms mean what docs/session-log.md says they mean.
"""

from __future__ import annotations

import bisect
import random
import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpumon import latency
from gpumon.control import Pause, Resume, SetThreads, SetWorkload
from gpumon.events import Sample
from gpumon.protocol import Request
from gpumon.spec import parse_pool
from gpumon.worker.backends.base import Backend, DeviceChoice, Workload
from gpumon.worker.runtime import Channel, Runtime


class CountingBackend(Backend):
    """Each thread's op adds one to its own counter and, optionally, sleeps (a known latency)."""

    name = "counting"

    def __init__(self, sleep: float = 0.0) -> None:
        super().__init__(parse_pool("fault"))
        self.sleep = sleep
        self.states: list[list[int]] = []
        self.lock = threading.Lock()

    def setup(self) -> DeviceChoice:
        return DeviceChoice("cpu", "counting", "test", "none")

    def validate(self, workload: Workload, threads: int) -> None:
        return None

    def new_thread_state(self, workload: Workload, slot: int) -> Any:
        state = [0]
        with self.lock:
            self.states.append(state)
        return state

    def run_ops(self, state: Any, n: int) -> None:
        for _ in range(n):
            if self.sleep:
                time.sleep(self.sleep)
            state[0] += 1

    @property
    def executed(self) -> int:
        return sum(s[0] for s in self.states)


@pytest.fixture
def channel():
    a, b = socket.socketpair()
    stop = threading.Event()

    def drain() -> None:  # the monitor's end: read and drop, so sends never block
        while not stop.is_set():
            try:
                if not b.recv(1 << 16):
                    return
            except OSError:
                return

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    yield Channel(a.detach())
    stop.set()
    b.close()


def runtime(backend: Backend, threads: int, chan: Channel, sync_every: int = 1) -> Runtime:
    wl = Workload("matmul", 64, "float32", "per-thread", sync_every)
    return Runtime("t", backend, wl, threads, chan)


def command(rt: Runtime, cmd: Any) -> None:
    acks: list[Any] = []
    rt.handle(Request(id=1, command=cmd), acks.append)
    (ack,) = acks
    assert ack.ok, ack.detail


def test_samples_count_every_op_executed_through_resizes_and_pauses(channel) -> None:
    be = CountingBackend()
    rt = runtime(be, 2, channel)
    samples: list[Sample] = []
    rt.start()
    steps = [
        SetThreads(threads=3),
        SetThreads(threads=1),
        Pause(),
        Resume(),
        SetWorkload(size=128),
        SetThreads(threads=4),
        SetThreads(threads=2),
    ]
    for cmd in steps:
        for _ in range(3):
            time.sleep(0.02)
            samples.append(rt.sample(0.02))
        command(rt, cmd)
    # Shrink and grow back with no sample between: the returning threads' slots replace
    # finished ones whose last ops are not reported yet, and must carry them over.
    time.sleep(0.02)
    command(rt, SetThreads(threads=1))
    command(rt, SetThreads(threads=3))
    time.sleep(0.05)
    rt.stop()
    samples.append(rt.sample(0.05))  # everything finished while stopping
    counted = sum(s.total_ops for s in samples)
    assert counted == be.executed == rt.ops_total
    assert counted > 0
    assert sum(s.lat_count for s in samples) == counted  # one latency per op at sync_every=1
    for s in samples:
        assert sum(s.lat_hist.values()) == s.lat_count
    # Threads that left were dropped once their last ops were reported; the rest remain.
    assert sorted(rt.slots) == [0, 1, 2]


def test_batches_count_their_ops_and_report_latency_per_op(channel) -> None:
    be = CountingBackend(sleep=0.002)
    rt = runtime(be, 1, channel, sync_every=4)
    rt.start()
    time.sleep(0.3)
    rt.stop()
    s = rt.sample(0.3)
    assert s.total_ops == be.executed and s.total_ops % 4 == 0
    assert s.lat_count == s.total_ops // 4  # one record per batch
    assert s.lat_p50 is not None and s.lat_max is not None
    # A batch of 4 sleeps of 2 ms reports ~2 ms per op, never less (sleep never returns early).
    assert 0.002 <= s.lat_p50 < 0.02
    assert sum(s.lat_hist.values()) == s.lat_count


def test_latencies_cover_the_threads_time(channel) -> None:
    """Each op's time runs from the end of the previous op, so a thread's latencies add up to
    the time it spent looping: nothing between ops goes unmeasured, nothing twice."""
    be = CountingBackend(sleep=0.001)
    rt = runtime(be, 1, channel)
    t0 = time.perf_counter()
    rt.start()
    time.sleep(0.2)
    rt.stop()
    elapsed = time.perf_counter() - t0
    taken = rt.slots[0].lat[:]
    assert len(taken) == be.executed > 0
    assert all(x >= 0.001 for x in taken)
    assert sum(taken) <= elapsed  # the thread's start and its state's build are not ops
    assert sum(taken) >= 0.001 * len(taken)


def test_locked_policy_times_the_op_with_its_lock(channel) -> None:
    be = CountingBackend(sleep=0.001)
    wl = Workload("matmul", 64, "float32", "locked", 1)
    rt = Runtime("t", be, wl, 2, channel)
    rt.start()
    time.sleep(0.2)
    rt.stop()
    s = rt.sample(0.2)
    assert s.total_ops == be.executed > 0
    # Two threads take turns on one lock: each op waits for the other's, so p50 ~ 2 x 1 ms.
    assert s.lat_p50 is not None and s.lat_p50 >= 0.0015


@pytest.mark.parametrize("n", [0, 1, 2, 17, 5000])
def test_sorted_histogram_matches_histogram(n: int) -> None:
    rng = random.Random(n)
    values = sorted(rng.lognormvariate(-9, 2.5) for _ in range(n))
    values += [values[-1]] * 3 if values else []  # ties
    assert latency.sorted_histogram(values) == latency.histogram(values)


def test_sorted_histogram_edges() -> None:
    # Sub-nanosecond values share the clamped bottom bucket; exact bucket edges land where
    # bucket_of puts them; a window of one repeated value is one bucket.
    edge = 2 ** (80 / latency.BUCKETS_PER_OCTAVE) / 1e6
    vals = sorted([0.0, 1e-12, 1e-10, edge, edge * (1 - 1e-12), edge * (1 + 1e-12), 1.0])
    assert latency.sorted_histogram(vals) == latency.histogram(vals)
    assert latency.sorted_histogram([3e-5] * 1000) == {latency.bucket_of(3e-5): 1000}


def test_window_percentiles_are_exact_nearest_rank(channel) -> None:
    """The sample's p50/p99/max are read from every op of the window, not from the buckets."""
    be = CountingBackend(sleep=0.0002)
    rt = runtime(be, 2, channel)
    rt.start()
    time.sleep(0.1)
    rt.stop()  # no thread appends any more: the lists hold the whole window
    records = sorted(rt.slots[0].lat + rt.slots[1].lat)
    s = rt.sample(0.1)
    assert s.lat_count == len(records) == s.total_ops > 0
    assert s.lat_p50 == latency.percentile(records, 50)
    assert s.lat_p99 == latency.percentile(records, 99)
    assert s.lat_max == records[-1]
    assert s.lat_hist == latency.histogram(records)


@given(
    st.dictionaries(st.integers(-50, 200), st.integers(1, 10_000), min_size=1, max_size=40),
    st.integers(0, 10),
)
def test_scaled_histogram_sums_to_the_total_and_keeps_its_shape(hist, extra) -> None:
    have = sum(hist.values())
    total = have * (1 + extra) + extra  # k times the selection, plus a remainder
    out = latency.scaled(hist, total)
    assert sum(out.values()) == total
    assert set(out) <= set(hist)
    for b, c in hist.items():  # each bucket within one count of its exact share
        assert abs(out.get(b, 0) - c * total / have) < 1


def test_select_reads_every_kth_value_from_a_rotating_start() -> None:
    values = [float(i) for i in range(10_000)]
    assert latency.select(values[:2048], 2048) == (values[:2048], 1)
    chosen, k = latency.select(values, 2048, offset=7)
    assert k == 5 and len(chosen) == 2000 and chosen[:2] == [2.0, 7.0]
    starts = {latency.select(values, 2048, offset=o)[0][0] for o in range(5)}
    assert starts == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_a_window_of_many_ops_is_summarised_from_a_selection(channel, monkeypatch) -> None:
    """Above the limit: the count and the maximum stay exact, the histogram still sums to the
    count, and the percentiles are an evenly spaced selection's: values of the window whose
    ranks sit near the percentile's (4.5 standard errors of a 512-value selection)."""
    monkeypatch.setattr(latency, "SELECTION_LIMIT", 512)
    be = CountingBackend(sleep=0.0)
    rt = runtime(be, 2, channel)
    rt.start()
    time.sleep(0.1)
    rt.stop()
    records = sorted(rt.slots[0].lat + rt.slots[1].lat)
    n = len(records)
    assert n > 4 * 512, n  # enough ops for a selection
    s = rt.sample(0.1)
    assert s.lat_every == -(-n // 512) > 1
    assert s.lat_count == n == s.total_ops
    assert s.lat_max == records[-1]
    assert sum(s.lat_hist.values()) == n
    for q, tol in ((50, 0.1), (99, 0.03)):
        got = getattr(s, f"lat_p{q}")
        lo, hi = bisect.bisect_left(records, got), bisect.bisect_right(records, got)
        assert lo < hi, got  # a value of the window itself
        assert lo / n - tol <= q / 100 <= hi / n + tol, (q, lo, hi, n)
