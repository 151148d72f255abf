"""Driver-side GPU memory per worker process (NVML, by pid), read at a low rate.

The framework's allocator says what it asked for; the driver says what the process holds
(context, cuBLAS workspaces, the caching allocator's reserve): the figure nvidia-smi and nvitop
show. One table for all of a supervisor's pools, refreshed at most once per `period` on the
first sample that finds it stale, so ten samples a second per pool cost a dict lookup each.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PERIOD = 1.0  # seconds between NVML process queries (they walk every GPU's process list)

Source = Callable[[], dict[int, int]]


def nvml_source() -> Source | None:
    """NVML's per-process memory, or None where there is no NVML (then no figure at all)."""
    from gpumon.nvml import open_nvml  # the import costs nothing on a machine without it

    nv, _ = open_nvml()
    return nv.process_memory if nv is not None else None


class GpuMemory:
    """`opener` finds the source on first use (NVML by default): a session that never gets a
    sample never opens NVML."""

    def __init__(
        self, opener: Callable[[], Source | None] = nvml_source, period: float = PERIOD
    ) -> None:
        self._opener: Callable[[], Source | None] | None = opener
        self._source: Source | None = None
        self.period = period
        self._table: dict[int, int] = {}
        self._at = float("-inf")

    def of(self, pid: int) -> int | None:
        """Bytes the driver says `pid` holds; None where NVML is absent or lists no memory
        for it (a CPU pool, or a GPU pool before its first allocation)."""
        if self._opener is not None:
            self._source, self._opener = self._opener(), None
        source = self._source
        if source is None:
            return None
        now = time.monotonic()
        if now - self._at >= self.period:
            self._at = now
            self._table = source()
        return self._table.get(pid)
