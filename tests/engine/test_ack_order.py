"""A command's Ack leaves the worker before anything it starts can run.

A thread that SetThreads adds can crash or hang (holding the GIL) within microseconds of
starting; if that beat the Ack, the monitor recorded the crash at the old thread count (seen in CI
under load: a SIGSEGV at 2 threads reported as `threads 1`, a hang at 2 threads as a stall at 1).
The real fault backend, armed at 2 threads, with a fault that raises in the thread (so the
process lives to be checked), and an Ack writer that takes 0.3 s, as a descheduled control thread
would: nothing may fault before the Ack is out, and the fault must still come after it.
"""

from __future__ import annotations

import time
from typing import Any

from gpumon.control import SetThreads
from gpumon.protocol import Request, ThreadFailed
from gpumon.spec import parse_pool
from gpumon.worker.backends import load
from gpumon.worker.backends.base import Workload
from gpumon.worker.runtime import Runtime
from tests.conftest import wait_until


class Recorder:
    """The worker's channel, as far as the runtime's threads use it: keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sent.append(msg)


def test_threads_a_command_adds_start_only_after_its_ack() -> None:
    backend = load(parse_pool("fault,fault=raise,fault-rate=10000,fault-at-threads=2"))
    backend.setup()
    chan = Recorder()
    wl = Workload("matmul", 4, "float32", "per-thread", 1)
    rt = Runtime("t", backend, wl, 1, chan)  # type: ignore[arg-type]
    rt.start()
    wait_until(lambda: any(s.lat for s in rt.slots.values()), 30, "an op at 1 thread")
    failures_at_ack: list[int] = []

    def slow_reply(ack: Any) -> None:
        assert ack.ok and ack.state.threads == 2
        time.sleep(0.3)  # the control thread descheduled between deciding and writing
        failures_at_ack.append(sum(isinstance(m, ThreadFailed) for m in chan.sent))

    try:
        rt.handle(Request(id=1, command=SetThreads(threads=2)), slow_reply)
        assert failures_at_ack == [0], "a thread faulted at 2 threads before the Ack was out"
        # ... and the fault is real: once the Ack is out, the armed backend fires.
        wait_until(lambda: any(isinstance(m, ThreadFailed) for m in chan.sent), 10, "the fault")
    finally:
        rt.stop()
