"""When a crashed pool comes back: exponential backoff and a crash-loop limit, as pure functions.

A pool that keeps dying must not restart forever: after `loop_crashes` crashes within
`loop_window` seconds gpumon gives up on it ("giving up after 10 crashes in 60 s") and says so.
A worker that stayed up for `reset_after` seconds counts as healthy again, so the delay starts
from `base_delay` at its next crash.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


class RestartPolicy(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = False
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0
    max_restarts: int | None = None  # restarts in the whole session (None: no limit)
    reset_after: float = 30.0  # seconds up that count as "healthy again"
    # Crash-loop limit: this many crashes within loop_window seconds stops the restarts.
    loop_crashes: int | None = 10
    loop_window: float = 60.0


class Decision(msgspec.Struct, frozen=True):
    restart: bool
    delay: float = 0.0
    consecutive: int = 0  # crashes in a row, counting this one
    why_not: str = ""  # when restart is False and restarts were wanted


def decide(
    policy: RestartPolicy,
    *,
    uptime: float,
    consecutive: int,
    crashes: int,
    crash_times: Sequence[float],
    now: float,
) -> Decision:
    """What to do after a crash. `consecutive` counts the crashes in a row before this one,
    `crashes` all crashes of the pool including this one, `crash_times` their monotonic times
    (this one last)."""
    streak = 1 if uptime > policy.reset_after else consecutive + 1
    if not policy.enabled:
        return Decision(False, consecutive=streak)
    if policy.max_restarts is not None and crashes > policy.max_restarts:
        return Decision(
            False, consecutive=streak, why_not=f"restart limit of {policy.max_restarts} reached"
        )
    if policy.loop_crashes is not None:
        recent = [t for t in crash_times if now - t <= policy.loop_window]
        if len(recent) >= policy.loop_crashes:
            return Decision(
                False,
                consecutive=streak,
                why_not=(
                    f"giving up after {len(recent)} crashes in {policy.loop_window:g} s "
                    "(a crash loop)"
                ),
            )
    delay = min(policy.max_delay, policy.base_delay * policy.factor ** (streak - 1))
    return Decision(True, delay=delay, consecutive=streak)
