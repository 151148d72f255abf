"""The `fault` backend: SYNTHETIC. A cheap CPU loop that can die for real on demand.

It exists so the crash path (detection, stacks, restart, reports) can be shown and tested on
any machine. The faults are real native events, not simulated ones: a NULL read through ctypes
(SIGSEGV on a worker thread), `abort()` (SIGABRT), or a call that blocks forever while holding
the GIL (the whole worker hangs, as a deadlocked driver would). Nothing about its throughput
says anything about a GPU, and every place it appears says "synthetic".
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import random
import sys
import threading
import time
from typing import Any

from gpumon.worker.backends.base import Backend, DeviceChoice, Workload

SYNTHETIC = "synthetic (fault backend)"
ONCE = ("teardown",)  # armed once per process
REPEATING = ("raise",)  # the process survives, so the next one is drawn


def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV in this thread


def hang_holding_gil() -> None:
    # PyDLL keeps the GIL across the call, so every Python thread in the worker stops,
    # heartbeats included. pause() returns only on a signal with a handler, and is re-entered.
    libc = ctypes.PyDLL(None)
    while True:
        libc.pause()


def raise_error() -> None:
    # A Python-level failure in one worker thread, as when a framework raises (MLX's "There is
    # no Stream(gpu, 0) in current thread"): that thread ends, the process lives on.
    raise RuntimeError("synthetic fault: this worker thread raised on purpose")


def crash_at_exit() -> None:
    # The worker is asked to stop and dies while shutting down, as MLX on CUDA can.
    atexit.register(segfault)


# Each a real event of its kind. `teardown` arms a crash for the worker's exit, once.
FAULTS = {
    "segv": segfault,
    "abort": os.abort,
    "hang": hang_holding_gil,
    "raise": raise_error,
    "teardown": crash_at_exit,
}


class FaultBackend(Backend):
    name = "fault"

    def setup(self) -> DeviceChoice:
        fc = self.config.fault
        assert fc is not None
        self.fault = fc
        self._lock = threading.Lock()
        self._armed_at: float | None = None
        self._fire_at: float | None = None
        self._rng = random.Random()
        self._fired = False
        desc = (
            f"{SYNTHETIC}: sha256 CPU loop; injects {fc.kind} at >= {fc.at_threads} "
            f"threads, {fc.rate:g}/s"
        )
        return DeviceChoice(
            "cpu",
            desc,
            "the fault backend always runs on the CPU",
            SYNTHETIC,
            {"python": sys.version.split()[0]},
        )

    def default_size(self, kind: str = "matmul") -> int:
        return 64  # KiB hashed per op: about 0.1 ms, cheap next to a real workload

    def default_dtype(self) -> str:
        return "float32"  # unused; kept so every pool reports a dtype

    def flop_per_op(self, workload: Workload) -> float:
        return 0.0  # hashing is not floating point work; ops/s is the only honest figure

    def policies(self) -> dict[str, str]:
        return {"per-thread": "", "shared": "synthetic backend has no streams", "locked": ""}

    def validate(self, workload: Workload, threads: int) -> None:
        return None

    def new_thread_state(self, workload: Workload, slot: int) -> Any:
        return os.urandom(workload.size * 1024)

    def _maybe_fault(self) -> None:
        rt = self.runtime
        # Armed by threads that exist, not by the count asked for: those start after the
        # command's Ack, so the monitor knows the count before anything can fault at it.
        armed = rt is not None and rt.threads_running >= self.fault.at_threads
        now = time.monotonic()
        with self._lock:
            if not armed:
                self._armed_at = self._fire_at = None
                return
            if self._fire_at is None:
                # Process-wide Poisson process: the first op to finish after the drawn time
                # faults, on whichever worker thread that is.
                self._armed_at = now
                self._fire_at = now + self._rng.expovariate(self.fault.rate)
                return
            due = now >= self._fire_at
            if due and self.fault.kind in ONCE:
                if self._fired:
                    return
                self._fired = True
            if due and self.fault.kind in REPEATING:
                self._fire_at = None  # draw the next one: this fault does not end the process
        if due:
            # Said out loud, so nobody mistakes the synthetic fault for a framework bug; the
            # timestamp also lets benchmarks/crash_latency.py time death -> event.
            print(
                f"gpumon fault backend (synthetic): injecting {self.fault.kind} on "
                f"{threading.current_thread().name} at t={time.time():.6f}",
                file=sys.stderr,
                flush=True,
            )
            FAULTS[self.fault.kind]()

    def run_ops(self, state: Any, n: int) -> None:
        for _ in range(n):
            hashlib.sha256(state).digest()  # releases the GIL for buffers > 2 KiB
            self._maybe_fault()
