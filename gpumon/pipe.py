"""`gpumon pipe`'s output: one JSON object per line, a documented contract (docs/pipe.md).

A consumer of the session's bus like the recorder: every event is folded into per-pool
figures (gpumon.figures); `tick()` ends an interval and writes one `pool` line per pool; a
crash, a hang, a restart and a pool that could not start are written the moment they happen,
as their own lines. Every line carries `schema` (PIPE_SCHEMA) and `type`; keys are always
present (null when unknown), so `jq` filters never meet a missing key. Text that came from a
worker or a log is JSON-escaped with ensure_ascii, so no byte of it can drive a terminal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from gpumon import events as ev
from gpumon.figures import LiveFigures, PoolFigures

# Bump when a field is renamed, removed or changes meaning; adding a key keeps it.
PIPE_SCHEMA = 1


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def pool_line(f: PoolFigures, t: float, interval: float) -> dict[str, Any]:
    return {
        "schema": PIPE_SCHEMA,
        "type": "pool",
        "t": round(t, 3),
        "interval_s": interval,
        "pool": f.pool,
        "backend": f.backend,
        "version": f.version,
        "framework": f.framework,
        "device": f.device,
        "policy": f.policy,
        "workload": f.workload,
        "size": f.size,
        "dtype": f.dtype,
        "threads": f.threads,
        "state": f.state,
        "pid": f.pid,
        "measured_s": round(f.measured_s, 4),
        "ops": f.ops,
        "ops_per_s": _round(f.ops_per_s, 3),
        "flop_per_s": _round(f.flop_per_s, 0),
        "lat_p50_s": _round(f.lat_p50_s, 9),
        "lat_p99_s": _round(f.lat_p99_s, 9),
        "lat_max_s": _round(f.lat_max_s, 9),
        "mem_bytes": f.mem_bytes,
        "mem_source": f.mem_source,
        "gpu_mem_bytes": f.gpu_mem_bytes,
        "cpu_percent": _round(f.cpu_percent, 1),
        "rss_bytes": f.rss_bytes,
        "ops_total": f.ops_total,
        "crashes": f.crashes,
        "crash_signals": f.crash_signals,
        "hangs": f.hangs,
        "restarts": f.restarts,
        "thread_failures": f.thread_failures,
    }


def event_line(e: ev.Event) -> dict[str, Any] | None:
    """The line for an event that is written the moment it happens, or None."""
    body: dict[str, Any]
    match e:
        case ev.SessionStart():
            body = {
                "type": "session_start",
                "session_id": e.session_id,
                "gpumon_version": e.gpumon_version,
                "mode": e.mode,
                "hostname": e.host.hostname,
            }
        case ev.Crash():
            body = {
                "type": "crash",
                "pool": e.pool,
                "crash_id": e.crash_id,
                "pid": e.pid,
                "signal": e.signal,
                "exit_code": e.exit_code,
                "during": e.during,
                "threads": e.threads,
                "uptime_s": round(e.uptime, 3),
                "ops_total": e.ops_total,
                "policy": e.policy,
                "backend": e.backend,
                "device": e.device,
                "version": e.versions.get(e.backend, ""),
                "crash_number": e.crash_number,
                "artifacts_dir": e.artifacts_dir,
            }
        case ev.Stall():
            body = {
                "type": "hang",
                "pool": e.pool,
                "stall_id": e.stall_id,
                "pid": e.pid,
                "silent_for_s": round(e.silent_for, 3),
                "threads": e.threads,
            }
        case ev.StallCleared():
            body = {"type": "hang_cleared", "pool": e.pool, "silent_for_s": round(e.silent_for, 3)}
        case ev.PoolRestart():
            body = {
                "type": "restart",
                "pool": e.pool,
                "attempt": e.attempt,
                "delay_s": round(e.delay, 3),
                "crashes": e.crashes,
            }
        case ev.PoolFailed():
            body = {"type": "pool_failed", "pool": e.pool, "message": e.message, "fix": e.fix}
        case ev.SessionEnd():
            body = {"type": "session_end", "reason": e.reason}
        case _:
            return None
    return {"schema": PIPE_SCHEMA, "type": body.pop("type"), "t": round(e.t, 3), **body}


def dumps(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"), ensure_ascii=True, allow_nan=False) + "\n"


class PipeWriter:
    """The bus listener behind `gpumon pipe`. `out` is written and flushed line by line; when
    the reader goes away (a closed pipe) `closed` is set and `on_closed` is called once."""

    def __init__(
        self,
        out: TextIO,
        interval: float,
        on_closed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.out = out
        self.interval = interval
        self.on_closed = on_closed
        self.clock = clock
        self.figures = LiveFigures()
        self.closed = False
        self.crashed = self.hung = self.failed = False
        self.lines = 0

    def __call__(self, e: ev.Event) -> None:
        self.figures(e)
        if isinstance(e, ev.Sample):  # ~10/s per pool: folded, never a line of its own
            return
        if isinstance(e, ev.Crash):
            self.crashed = True
        elif isinstance(e, ev.Stall):
            self.hung = True
        elif isinstance(e, ev.PoolFailed):
            self.failed = True
        line = event_line(e)
        if line is not None:
            self._write(dumps(line))

    def settled(self) -> bool:
        """Every pool has left `starting` (ready, failed or dead): the intervals can begin."""
        figs = self.figures.peek()
        return bool(figs) and all(f.state != "starting" for f in figs)

    def begin(self) -> None:
        """Start the first interval now: what the pools did while others were still starting
        belongs to no line (it would make the first interval look longer than it is)."""
        self.figures.roll()

    def tick(self) -> list[PoolFigures]:
        """End the interval: one `pool` line per pool."""
        figs = self.figures.roll()
        now = self.clock()
        self._write("".join(dumps(pool_line(f, now, self.interval)) for f in figs))
        return figs

    def _write(self, text: str) -> None:
        if self.closed or not text:
            return
        try:
            self.out.write(text)
            self.out.flush()
            self.lines += text.count("\n")
        except (BrokenPipeError, ValueError, OSError):
            # The reader is gone (`gpumon pipe | head -1`); ValueError: the stream was closed.
            self.closed = True
            self.on_closed()
