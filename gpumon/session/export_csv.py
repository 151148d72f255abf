"""CSV export: one row per Sample per pool, for spreadsheets and plotting scripts.

Columns are fixed except memory: a `mem_<name>_bytes` column for each framework memory figure
that occurs in the log (mlx: active/peak/cache; torch.cuda: allocated/reserved; torch.mps:
current/driver), so a spreadsheet gets the framework's own names. Times are UTC and seconds
since the session started; latency in milliseconds; empty cells mean "not measured".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from gpumon import events as ev
from gpumon.session.digest import Digest
from gpumon.session.log import LoadedSession
from gpumon.session.times import utc_iso

FIXED = [
    "time_utc",
    "t_s",
    "pool",
    "backend",
    "device",
    "size",
    "dtype",
    "threads",
    "policy",
    "workload",
    "state",
    "interval_s",
    "ops",
    "ops_per_s",
    "flop_per_s",
    "lat_p50_ms",
    "lat_p99_ms",
    "lat_max_ms",
]
TAIL = ["mem_source", "cpu_percent", "rss_bytes"]
_ROWS_PER_WRITE = 4096


def _num(x: float | None, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def export_csv(session: LoadedSession | Digest) -> str:
    out = io.StringIO()
    write_csv(session, out.write)
    return out.getvalue()


def mem_columns(session: LoadedSession | Digest) -> list[str]:
    """The framework memory figures that occur in the log, sorted (a digest collected them)."""
    if isinstance(session, Digest):
        return session.mem_names
    return sorted({k for e in session.events if isinstance(e, ev.Sample) for k in e.mem})


def write_csv(session: LoadedSession | Digest, write: Callable[[str], object]) -> None:
    """The rows, handed to `write` some thousands of whole rows at a time (so a filter that
    works line by line, like sanitize and the redactor, can be applied to each piece)."""
    mem_names = mem_columns(session)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIXED + [f"mem_{k}_bytes" for k in mem_names] + TAIL)
    # What a pool runs on is said once (PoolReady) and changed by commands (each Control
    # carries the pool's config after it); samples carry only what changes every window.
    ready: dict[str, ev.PoolReady] = {}
    shape: dict[str, tuple[int | None, str]] = {}
    t0 = session.first_t
    rows = 0
    for e in session.every_event():
        if isinstance(e, ev.PoolReady):
            ready[e.pool] = e
            shape[e.pool] = (e.size, e.dtype)
        elif isinstance(e, ev.Control) and e.ok and e.config is not None:
            shape[e.pool] = (e.config.size, e.config.dtype or "")
        elif isinstance(e, ev.Sample):
            r = ready.get(e.pool)
            size, dtype = shape.get(e.pool, (None, ""))
            w.writerow(
                [
                    utc_iso(e.t),
                    f"{e.t - t0:.3f}",
                    e.pool,
                    r.backend if r else "",
                    r.device if r else "",
                    "" if size is None else size,
                    dtype,
                    e.threads,
                    e.policy,
                    e.workload,
                    e.state,
                    f"{e.interval:.4f}",
                    e.total_ops,
                    f"{e.ops_per_s:.1f}",
                    # A synthetic or unknown FLOP count is left empty, not written as 0 FLOP/s.
                    f"{e.flops:.0f}" if e.flop_per_op > 0 else "",
                    _num(e.lat_p50 and e.lat_p50 * 1e3, ".4f"),
                    _num(e.lat_p99 and e.lat_p99 * 1e3, ".4f"),
                    _num(e.lat_max and e.lat_max * 1e3, ".4f"),
                    *[e.mem.get(k, "") for k in mem_names],
                    e.mem_source,
                    _num(e.cpu_percent, ".1f"),
                    "" if e.rss is None else e.rss,
                ]
            )
            rows += 1
            if rows % _ROWS_PER_WRITE == 0:
                write(out.getvalue())
                out.seek(0)
                out.truncate()
    write(out.getvalue())
