"""Fewer sample lines for a bundle that must fit a size budget, with nothing that matters lost.

The same rule as the recorder's disk bound (docs/session-log.md, "Decimation"), applied after
the fact with a wider window: a pool's samples are coalesced (gpumon.session.recorder.coalesce:
ops summed, histograms merged, peaks kept) into windows of `window` seconds, except the samples
within `keep_near` seconds of an incident of their pool — a crash, a stall, a command, a start
or a stop — which stay as recorded. Every other event is kept unchanged; host samples are
thinned to one per window. The ops a run completed, and so its throughput, do not change.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from gpumon import events as ev
from gpumon.session.recorder import coalesce

# Events whose neighbourhood keeps full-resolution samples.
INCIDENTS = (
    ev.Crash,
    ev.Stall,
    ev.StallCleared,
    ev.Control,
    ev.ThreadFailed,
    ev.PoolStarting,
    ev.PoolReady,
    ev.PoolStopped,
    ev.PoolFailed,
    ev.PoolRestart,
)


@dataclass(frozen=True)
class Decimation:
    window: float
    keep_near: float
    samples_before: int
    samples_after: int
    host_before: int
    host_after: int


def _shape(s: ev.Sample) -> tuple[object, ...]:
    return (s.threads, s.policy, s.workload, s.state, len(s.ops), s.flop_per_op)


def decimate(
    events: list[ev.Event], window: float, keep_near: float = 5.0
) -> tuple[list[ev.Event], Decimation]:
    incidents: dict[str, list[float]] = {}
    for e in events:
        if isinstance(e, INCIDENTS):
            incidents.setdefault(e.pool, []).append(e.t)
    for times in incidents.values():
        times.sort()

    def near(pool: str, t: float) -> bool:
        times = incidents.get(pool)
        if not times:
            return False
        i = bisect.bisect_left(times, t - keep_near)
        return i < len(times) and times[i] <= t + keep_near

    out: list[ev.Event] = []
    pending: dict[str, list[ev.Sample]] = {}
    host_t: float | None = None
    counts = {"s_in": 0, "s_out": 0, "h_in": 0, "h_out": 0}

    def flush(pool: str) -> None:
        group = pending.pop(pool, [])
        if group:
            out.append(coalesce(group))
            counts["s_out"] += 1

    for e in events:
        if isinstance(e, ev.Sample):
            counts["s_in"] += 1
            group = pending.get(e.pool)
            if group and (
                _shape(group[0]) != _shape(e) or e.t - (group[0].t - group[0].interval) > window
            ):
                flush(e.pool)
            if near(e.pool, e.t):
                flush(e.pool)
                out.append(e)
                counts["s_out"] += 1
            else:
                pending.setdefault(e.pool, []).append(e)
            continue
        if isinstance(e, ev.HostSample):
            counts["h_in"] += 1
            if host_t is None or e.t - host_t >= window:
                out.append(e)
                host_t = e.t
                counts["h_out"] += 1
            continue
        pool = getattr(e, "pool", None)
        if isinstance(e, ev.SessionEnd):
            for p in list(pending):
                flush(p)
        elif isinstance(pool, str) and pool in pending:
            flush(pool)
        out.append(e)
    for pool in list(pending):
        flush(pool)
    return out, Decimation(
        window, keep_near, counts["s_in"], counts["s_out"], counts["h_in"], counts["h_out"]
    )
