"""The worker's thread pool: N named threads running one backend, live-resizable, measured.

Three kinds of thread live in a worker process:
  - `<backend>_worker-<i>`: run ops in a loop; each owns its framework state (built on itself);
  - `gpumon_control`: reads commands from the supervisor, applies them, acknowledges them;
  - the main thread (`gpumon_sampler`): every ~100 ms turns per-thread counters into a Sample.
A worker thread's whole record of an op is one append to its slot's list (the time since the
end of its previous op); the sampler takes the entries and counts the ops from them, so the hot
loop has no counter, no lock and no per-op arithmetic beyond one clock read. Appends and the
sampler's slice-and-delete are each atomic under the GIL, so no entry is lost or counted twice.
What each part costs per op is measured in benchmarks/op_cost.py and docs/performance.md.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from gpumon import latency, protocol
from gpumon.control import Pause, Resume, SetPolicy, SetThreads, SetWorkload, Stop, WorkerCommand
from gpumon.events import Sample
from gpumon.spec import SpecError, parse_key, validate_size, validate_threads
from gpumon.worker.backends.base import Backend, BackendUnavailable, Workload
from gpumon.worker.threadname import set_current_thread_name

SAMPLE_PERIOD = 0.1
JOIN_TIMEOUT = 10.0


class Channel:
    """The worker's end of the message socket. Sends are serialised by a lock so lines never
    interleave; a dead parent makes every send a no-op (the reader thread handles the exit)."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.lock = threading.Lock()
        self.closed = False

    def send(self, msg: msgspec.Struct) -> None:
        data = protocol.encode(msg)
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def lines(self) -> Any:
        return self.sock.makefile("rb")


@dataclass
class Slot:
    """One worker thread's record. Its thread only appends to `lat` (seconds per batch of
    `sync_every` ops, one entry per batch); everything else is the sampler's."""

    index: int
    ops: int = 0  # ops reported in samples so far
    lat: list[float] = field(default_factory=list)
    thread: threading.Thread | None = None
    finished: bool = False
    error: str = ""


class Runtime:
    def __init__(
        self, pool: str, backend: Backend, workload: Workload, threads: int, chan: Channel
    ) -> None:
        self.pool = pool
        self.backend = backend
        self.workload = workload
        self.target = threads
        self.chan = chan
        self.cond = threading.Condition()
        self.paused = False
        self.stopping = False
        self.generation = 0
        # Bumped (under cond) by every change a running thread must see: pause, stop, fewer
        # threads, a new workload. The hot loop compares it, one attribute, before each op.
        self.epoch = 0
        self.slots: dict[int, Slot] = {}
        self.submit_lock = threading.Lock()  # the `locked` policy's process-wide lock
        self.flop_per_op = backend.flop_per_op(workload)
        self.ops_total = 0
        self.windows = 0  # samples taken: rotates where a window's selection of op times starts
        self.started = 0  # the thread count _start_slots last started threads for
        backend.runtime = self

    # ---- what backends may read ------------------------------------------------------
    @property
    def threads_running(self) -> int:
        """Threads started for the current count: a larger count counts once its threads are
        started (after the command's Ack), a smaller one at once."""
        return min(self.target, self.started)

    # ---- worker threads --------------------------------------------------------------
    def _thread_main(self, slot: Slot) -> None:
        set_current_thread_name(f"{self.backend.name}_worker-{slot.index}")
        state: Any = None
        op: Callable[[], object] = _unbuilt
        gen = -1
        locked = False
        record = slot.lat.append
        clock = time.perf_counter
        try:
            while True:
                with self.cond:
                    while self.paused and not self._must_exit(slot):
                        self.cond.wait()
                    if self._must_exit(slot):
                        break
                    wl, g, epoch = self.workload, self.generation, self.epoch
                if g != gen:
                    state, op = None, _unbuilt  # drop the old tensors before building new ones
                    state = self.backend.new_thread_state(wl, slot.index)
                    op = self._op(state, wl)
                    gen, locked = g, wl.policy == "locked"
                # The hot loop. One clock read per op: an op's time runs from the end of the
                # one before it, so the times add up to the wall time the thread spent, and
                # they include this loop's own ~0.1 us (docs/performance.md).
                t0 = clock()
                while self.epoch == epoch:
                    op()
                    t1 = clock()
                    record(t1 - t0)
                    t0 = t1
        except Exception as e:  # a framework error in one thread: report it, keep the pool
            slot.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            # The monitor first: with a full disk, writing stderr fails, and the thread must
            # not die unreported because of it.
            self.chan.send(protocol.ThreadFailed(slot=slot.index, error=slot.error))
            _to_stderr(f"gpumon worker thread {slot.index}: {slot.error}")
        finally:
            if state is not None:
                # Under `locked`, releasing a thread's streams is one more submission: outside
                # the lock it raced the other threads' work, and MLX CUDA aborted in 2 of 3
                # stops of a locked pool (H200, 2026-12-01).
                guard = self.submit_lock if locked else contextlib.nullcontext()
                try:
                    with guard:
                        self.backend.thread_exit(state)
                except Exception as e:
                    _to_stderr(f"gpumon worker thread {slot.index} exit: {e}")
            slot.finished = True

    def _op(self, state: Any, wl: Workload) -> Callable[[], object]:
        """This thread's op as one call without arguments, the `locked` policy's lock included
        (the lock wait is part of what that policy costs, so it is inside the timed call)."""
        op = self.backend.make_op(state, wl.sync_every)
        if wl.policy != "locked":
            return op
        lock = self.submit_lock

        def locked() -> None:
            with lock:
                op()

        return locked

    def _must_exit(self, slot: Slot) -> bool:
        return self.stopping or slot.index >= self.target

    def _start_slots(self) -> None:
        for i in range(self.target):
            slot = self.slots.get(i)
            if slot is None or slot.finished:
                # A finished thread's entries not yet sampled carry over to its successor.
                slot = Slot(index=i, ops=slot.ops, lat=slot.lat) if slot else Slot(index=i)
                th = threading.Thread(
                    target=self._thread_main,
                    args=(slot,),
                    name=f"{self.backend.name}_worker-{i}",
                    daemon=True,
                )
                slot.thread = th
                self.slots[i] = slot
                th.start()
        self.started = self.target

    def _join_exiting(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        stuck = []
        for slot in list(self.slots.values()):
            if slot.index >= self.target or self.stopping:
                th = slot.thread
                if th is not None:
                    th.join(max(0.0, deadline - time.monotonic()))
                    if th.is_alive():
                        stuck.append(slot.index)
        return stuck

    def start(self) -> None:
        self._start_slots()

    # ---- commands ------------------------------------------------------------------
    def handle(self, req: protocol.Request, reply: Callable[[protocol.Ack], object]) -> None:
        """Carry out one command and `reply` with its Ack. Threads a SetThreads adds start only
        after the Ack is out: a new thread can crash or hang (holding the GIL) within
        microseconds, and the monitor must already know the count it died at — a crash that beat
        the Ack was recorded with the old count."""
        try:
            detail = self._apply(req.command)
            ok = True
        except (SpecError, BackendUnavailable, ValueError) as e:
            detail, ok = getattr(e, "message", None) or str(e), False
        reply(protocol.Ack(id=req.id, ok=ok, detail=detail, state=self.worker_state()))
        if ok and isinstance(req.command, SetThreads):
            self._start_slots()

    def worker_state(self) -> protocol.WorkerState:
        wl = self.workload
        return protocol.WorkerState(
            threads=self.target,
            state=self.state,
            policy=wl.policy,
            workload=wl.kind,
            size=wl.size,
            dtype=wl.dtype,
            flop_per_op=self.flop_per_op,
        )

    @property
    def state(self) -> str:
        return "stopping" if self.stopping else "paused" if self.paused else "running"

    def _apply(self, cmd: WorkerCommand) -> str:
        """Carry out one command; returns what happened, for people. Values are checked by
        the same validators as the command line's (gpumon.spec)."""
        match cmd:
            case SetThreads(threads=n):
                validate_threads(n)
                if n > self.target:
                    self.backend.validate(self.workload, n)
                with self.cond:
                    old, self.target = self.target, n
                    self.epoch += 1
                    self.cond.notify_all()
                if n > old:
                    return f"{old} -> {n} threads"  # started by handle(), after the Ack
                stuck = self._join_exiting(JOIN_TIMEOUT)
                return f"{old} -> {n} threads" + (
                    f"; threads {stuck} still finishing an op" if stuck else ""
                )
            case Pause():
                with self.cond:
                    self.paused = True
                    self.epoch += 1
                return "paused"
            case Resume():
                with self.cond:
                    self.paused = False
                    self.cond.notify_all()
                return "running"
            case SetWorkload(workload=kind, size=size, dtype=dtype):
                wl = self.workload
                new_kind = str(parse_key("workload", kind)) if kind else wl.kind
                if size:
                    new_size = validate_size(size)
                elif new_kind != wl.kind and wl.size == self.backend.default_size(wl.kind):
                    # A size nobody chose follows the workload: matmul's 4096 on a GPU would
                    # make `generate` a 4096-wide model, not the small one its default is.
                    new_size = self.backend.default_size(new_kind)
                else:
                    new_size = wl.size
                new = replace(
                    wl,
                    kind=new_kind,
                    size=new_size,
                    dtype=str(parse_key("dtype", dtype)) if dtype else wl.dtype,
                )
                self.backend.validate(new, self.target)
                self._swap_workload(new)
                return f"{new.kind} {new.size} {new.dtype}"
            case SetPolicy(policy=pol):
                parse_key("policy", pol)
                why = self.backend.policies().get(pol, "")
                if why:
                    raise ValueError(f"policy {pol} is unavailable: {why}")
                before = self.workload.policy
                self._swap_workload(replace(self.workload, policy=pol))
                return f"{before} -> {pol}"
            case Stop():
                self.stop()
                return "stopped"
        raise ValueError(f"unknown command {cmd!r}")

    def _swap_workload(self, new: Workload) -> None:
        with self.cond:
            self.workload = new
            self.generation += 1
            self.epoch += 1
            self.flop_per_op = self.backend.flop_per_op(new)

    def stop(self) -> list[int]:
        with self.cond:
            self.stopping = True
            self.paused = False
            self.epoch += 1
            self.cond.notify_all()
        return self._join_exiting(JOIN_TIMEOUT)

    # ---- sampling ------------------------------------------------------------------
    def sample(self, interval: float) -> Sample:
        """One window: the ops and op times every thread recorded since the last call. The
        work is a C-level slice, one sort and O(buckets) bisections, never a Python loop over
        ops, so it holds the GIL for microseconds even at 100,000 ops a second."""
        batch = self.workload.sync_every
        ops: list[int] = []
        lats: list[float] = []
        for i in sorted(self.slots):
            slot = self.slots[i]
            # Read `finished` first: every entry of a thread that had finished is in the list.
            finished = slot.finished
            lat = slot.lat
            n = len(lat)
            taken = lat[:n]
            del lat[:n]  # entries appended after len() stay for the next window
            while len(ops) <= i:
                ops.append(0)
            ops[i] = n * batch
            slot.ops += n * batch
            lats += taken if batch == 1 else [t / batch for t in taken]
            if finished and i >= self.target:
                del self.slots[i]  # its last ops are in this sample
        self.ops_total += sum(ops)
        n = len(lats)
        chosen, every = latency.select(lats, latency.SELECTION_LIMIT, self.windows)
        self.windows += 1
        chosen.sort()
        # Exact either way: a selection's last value may not be the window's, so max() it all.
        lat_max = (max(lats) if every > 1 else chosen[-1]) if lats else None
        hist = latency.sorted_histogram(chosen)
        mem, source = self.backend.memory()
        wl = self.workload
        return Sample(
            pool=self.pool,
            interval=interval,
            threads=self.target,
            ops=ops,
            flop_per_op=self.flop_per_op,
            state=self.state,
            workload=wl.kind,
            policy=wl.policy,
            lat_count=n,
            lat_p50=latency.percentile(chosen, 50) if chosen else None,
            lat_p99=latency.percentile(chosen, 99) if chosen else None,
            lat_max=lat_max,
            lat_hist=latency.scaled(hist, n) if every > 1 else hist,
            lat_every=every,
            mem=mem,
            mem_source=source,
        )

    def run_sampler(self, stop: threading.Event) -> None:
        """Main-thread loop: one Sample per period until stop is set. Sleeping to a schedule
        (not a fixed delay) keeps the rate at 10/s however long a sample takes."""
        set_current_thread_name("gpumon_sampler")
        last = time.monotonic()
        next_at = last + SAMPLE_PERIOD
        while not stop.is_set():
            stop.wait(max(0.0, next_at - time.monotonic()))
            now = time.monotonic()
            next_at += SAMPLE_PERIOD
            if next_at < now:  # fell behind (suspended laptop, stalled GIL): resynchronise
                next_at = now + SAMPLE_PERIOD
            self.chan.send(self.sample(now - last))
            last = now
        self.chan.send(self.sample(time.monotonic() - last))  # the ops of the last window


def _unbuilt() -> None:
    raise AssertionError("a worker thread ran an op before building its state")


def _to_stderr(line: str) -> None:
    """For the record in stderr.log; a full disk or a closed stream must not raise."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def exit_now(code: int) -> None:
    """Leave without interpreter finalisation (used only when the parent is gone)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
