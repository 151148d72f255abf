"""One measured cell of a headless run: start a pool, warm up, measure, stop — and what died.

`sweep`, `bisect` and scripted runs all measure this way, inside one live session, so every
cell is recorded in the same log with its own worker process and artifacts. A cell's outcome
comes from the events its pool published while it ran, the same events the reports read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gpumon import events as ev
from gpumon.spec import PoolConfig
from gpumon.supervisor.supervisor import Supervisor

READY_TIMEOUT = 600.0  # a first use of mlx@X builds its environment: a download, an install


@dataclass
class CellOutcome:
    failed: str = ""  # why the pool could not run at all ("" when it ran)
    crashes: list[ev.Crash] = field(default_factory=list)
    stalls: list[ev.Stall] = field(default_factory=list)
    thread_failures: int = 0
    ops: int = 0
    seconds: float = 0.0  # measured, after the warm-up

    @property
    def died(self) -> bool:
        """A worker died or hung: what `bisect` calls bad."""
        return bool(self.crashes or self.stalls)

    @property
    def signals(self) -> list[str]:
        out = [c.signal or f"exit {c.exit_code}" for c in self.crashes]
        return out + ["hang"] * len(self.stalls)


class CellWatcher:
    """A bus listener that keeps the events of the pool being measured."""

    def __init__(self) -> None:
        self.pool = ""
        self.outcome = CellOutcome()
        self.measure_from = float("inf")

    def begin(self, pool: str) -> CellOutcome:
        self.pool, self.outcome, self.measure_from = pool, CellOutcome(), float("inf")
        return self.outcome

    def __call__(self, e: ev.Event) -> None:
        if getattr(e, "pool", None) != self.pool:
            return
        o = self.outcome
        if isinstance(e, ev.Crash):
            o.crashes.append(e)
        elif isinstance(e, ev.Stall):
            o.stalls.append(e)
        elif isinstance(e, ev.ThreadFailed):
            o.thread_failures += 1
        elif isinstance(e, ev.Sample) and e.t - e.interval >= self.measure_from:
            o.ops += e.total_ops
            o.seconds += e.interval


async def run_cell(
    sup: Supervisor,
    watcher: CellWatcher,
    cfg: PoolConfig,
    *,
    warmup: float,
    seconds: float,
    stop_early: Callable[[CellOutcome], bool] = lambda o: False,
) -> CellOutcome:
    """Run one cell in `sup`; the pool is removed afterwards, its artifacts recorded."""
    outcome = watcher.begin(cfg.name)
    pool = sup.add_pool(cfg)
    try:
        await pool.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while pool.state == "starting" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if pool.state == "failed":
            f = pool.failure
            outcome.failed = (f.message + (f" — {f.fix}" if f.fix else "")) if f else "failed"
            return outcome
        if pool.state == "starting":
            outcome.failed = f"the worker did not become ready within {READY_TIMEOUT:.0f} s"
            return outcome
        watcher.measure_from = time.time() + warmup
        end = time.monotonic() + warmup + seconds
        while (
            time.monotonic() < end
            and pool.state in ("running", "paused")
            and not outcome.stalls
            and not stop_early(outcome)
        ):
            await asyncio.sleep(0.05)
        return outcome
    finally:
        await sup.remove_pool(cfg.name)  # returns once the worker's exit and artifacts are in
