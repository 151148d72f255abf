"""Feed a committed session log through a stream consumer on the log's own clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gpumon import events as ev
from gpumon.session.log import load

SESSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "sessions"


def replay(
    name: str, listener: Callable[[ev.Event], None], interval: float, tick: Callable[[], object]
) -> list[float]:
    """Publish every event of a fixture session in order, calling `tick()` each time the log's
    clock passes an interval boundary (counted from the first event); returns the tick times."""
    events = load(SESSIONS / name).events
    t0 = events[0].t
    next_tick = t0 + interval
    ticks: list[float] = []
    for e in events:
        while e.t >= next_tick:
            ticks.append(next_tick)
            tick_at[0] = next_tick
            tick()
            next_tick += interval
        listener(e)
    return ticks


tick_at = [0.0]  # the replayed clock at the current tick: a PipeWriter's clock reads it
