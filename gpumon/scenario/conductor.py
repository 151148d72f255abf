"""Runs a scenario's steps against live pools: waits for each trigger, sends its commands.

The conductor is a consumer of the bus (it sees the crashes, readiness and samples every other
consumer sees) and a producer of ScenarioStarted/ScenarioStep/ScenarioEnded events, so the
session log records the story: a replay shows the same captions, a report the same steps.
Commands go through the supervisor like a user's, with source "scenario".
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gpumon import control, fmt, spec
from gpumon import events as ev
from gpumon.scenario.model import Scenario, Step
from gpumon.supervisor.supervisor import Supervisor

KEY_HINT = "press space to go on"


@dataclass
class _PoolWatch:
    ready: bool = False
    failed: bool = False
    crash_times: list[float] = field(default_factory=list)  # monotonic
    # (monotonic time, ops, seconds) of recent samples, for `compare`
    samples: collections.deque[tuple[float, int, float]] = field(
        default_factory=lambda: collections.deque(maxlen=6000)
    )
    workload: str = ""
    policy: str = ""


class Conductor:
    def __init__(
        self,
        scenario: Scenario,
        supervisor: Supervisor,
        publish: Callable[[ev.Event], None],
        *,
        interactive: bool,
        show: Callable[[str], None] | None = None,
        source: str = "",
        fallback: bool = False,
        note: str = "",
    ) -> None:
        self.sc = scenario
        self.sup = supervisor
        self.publish = publish
        self.interactive = interactive
        self.show = show
        self.source, self.fallback, self.note = source, fallback, note
        self.pools = {name: _PoolWatch() for name in supervisor.pools}
        self.key = asyncio.Event()
        self.waiting = ""  # what the current step waits for, for a caption bar
        self.index = 0
        self.last_crash = 0.0  # monotonic time of the latest crash, any pool

    # ---- the listener --------------------------------------------------------------
    def __call__(self, e: ev.Event) -> None:
        w = self.pools.get(getattr(e, "pool", ""))
        if w is None:
            return
        now = time.monotonic()
        if isinstance(e, ev.PoolReady):
            w.ready, w.failed = True, False
        elif isinstance(e, ev.PoolFailed):
            w.failed = True
        elif isinstance(e, ev.Crash):
            w.crash_times.append(now)
            self.last_crash = now
        elif isinstance(e, ev.Sample) and e.state == "running":
            w.samples.append((now, e.total_ops, e.interval))
            w.workload, w.policy = e.workload, e.policy

    def press_key(self) -> bool:
        """The presenter's key; True when a step was waiting for it."""
        waiting = self.waiting == KEY_HINT
        self.key.set()
        return waiting

    # ---- the run -------------------------------------------------------------------
    async def run(self) -> str:
        self.publish(
            ev.ScenarioStarted(
                name=self.sc.name,
                title=self.sc.title,
                source=self.source,
                steps=len(self.sc.steps),
                fallback=self.fallback,
                note=self.note,
            )
        )
        t0 = time.monotonic()
        previous_act = t0
        reason = "finished"
        try:
            for i, st in enumerate(self.sc.steps, start=1):
                self.index = i
                began = time.monotonic()
                if st.until == "key" and self.interactive:
                    # The presenter reads this step's caption while the room waits for them.
                    self._announce(i, st, st.caption or "", "the presenter")
                waited = await self._trigger(st, t0, previous_act)
                # A step's crash may come from the one before it, and a command can kill a pool
                # before its acknowledgement is back (fault-threads once, in CI): crashes
                # count from the moment the previous step began acting, not from its end.
                acting = time.monotonic()
                await self._act(st)
                caption = st.caption or ""
                if st.compare:
                    caption = (caption + " " + self._compare(st.compare, began)).strip()
                if not (st.until == "key" and self.interactive):
                    self._announce(i, st, caption, waited)
                if st.show and self.show is not None:
                    self.show(st.show)
                previous_act = acting
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            self.waiting = ""
            self.publish(ev.ScenarioEnded(reason=reason))
        return reason

    def _announce(self, index: int, st: Step, caption: str, waited: str) -> None:
        self.publish(
            ev.ScenarioStep(
                index=index,
                total=len(self.sc.steps),
                caption=caption,
                waited=waited,
                pool=st.pool or "",
            )
        )

    async def _trigger(self, st: Step, t0: float, previous_act: float) -> str:
        if st.at is not None:
            await asyncio.sleep(max(0.0, t0 + st.at - time.monotonic()))
        elif st.after:
            self.waiting = f"{st.after:g} s"
            await asyncio.sleep(st.after)
        self.waiting = ""
        if st.until is None:
            return ""
        names = [st.pool] if st.pool else list(self.pools)
        if st.until == "key":
            if not self.interactive:
                return "the presenter (skipped: headless)"
            self.key.clear()
            self.waiting = KEY_HINT
            await self.key.wait()
            self.waiting = ""
            return "the presenter"
        start = time.monotonic()
        deadline = start + st.within
        if st.until == "ready":
            self.waiting = "the pools to start"
            ok = await self._poll(
                lambda: all(self.pools[n].ready or self.pools[n].failed for n in names), deadline
            )
            return "ready" if ok else f"not ready within {st.within:g} s"
        if st.until == "crash":
            what = f"a crash of {st.pool}" if st.pool else "a crash"
            self.waiting = what

            def crashed() -> bool:
                return any(t >= previous_act for n in names for t in self.pools[n].crash_times)

            ok = await self._poll(crashed, deadline)
            took = time.monotonic() - previous_act
            return f"{what} after {took:.2f} s" if ok else f"no crash within {st.within:g} s"
        # quiet: no crash for st.quiet seconds (each crash starts the count again)
        what = f"{st.quiet:g} s without a crash"
        self.waiting = what

        def quiet() -> bool:
            last = max((t for n in names for t in self.pools[n].crash_times), default=start)
            return time.monotonic() - max(last, start) >= st.quiet

        ok = await self._poll(quiet, deadline)
        return what if ok else f"crashes kept coming for {st.within:g} s"

    async def _poll(self, pred: Callable[[], bool], deadline: float) -> bool:
        while not pred():
            if time.monotonic() >= deadline:
                self.waiting = ""
                return False
            await asyncio.sleep(0.05)
        self.waiting = ""
        return True

    async def _act(self, st: Step) -> None:
        if st.pool is None:
            return
        cmds: list[control.PoolCommand] = []
        if st.workload or st.size or st.dtype:
            cmds.append(control.SetWorkload(workload=st.workload, size=st.size, dtype=st.dtype))
        if st.policy:
            cmds.append(control.SetPolicy(policy=st.policy))
        if st.threads is not None:
            cmds.append(control.SetThreads(threads=st.threads))
        if st.pause:
            cmds.append(control.Pause())
        if st.resume:
            cmds.append(control.Resume())
        if st.restart:
            cmds.append(control.Restart())
        for cmd in cmds:
            await self.sup.command(st.pool, cmd, source="scenario")

    def _compare(self, names: list[str], since: float) -> str:
        parts = []
        for name in names:
            w = self.pools[name]
            recent = [(ops, dt) for t, ops, dt in w.samples if t >= since]
            seconds = sum(dt for _, dt in recent)
            unit = spec.rate_unit(w.workload)
            if seconds < 0.5:
                parts.append(f"{name}: not measured")
                continue
            rate = sum(ops for ops, _ in recent) / seconds
            parts.append(f"{name} ({w.policy}): {fmt.si(rate, unit)}")
        return "Measured over this step: " + " · ".join(parts) + "."
