"""The supervisor: starts pools, routes commands to them, watches for stalls.

It runs on the caller's asyncio loop (Textual's in the TUI, asyncio.run headless), owns no
thread of its own, and publishes every event synchronously through `emit` — in a session that
is the bus (gpumon.live_session wires it), so the log and the screen see the same sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from gpumon import events as ev
from gpumon.control import PoolCommand
from gpumon.spec import PoolConfig, SpecError
from gpumon.supervisor.backoff import RestartPolicy
from gpumon.supervisor.gpu_memory import GpuMemory
from gpumon.supervisor.pool import Pool

STALL_AFTER = 3.0  # seconds without any message (samples come every 0.1 s)
WATCH_EVERY = 0.25  # seconds between stall checks


class Supervisor:
    def __init__(
        self,
        pools: Iterable[PoolConfig] = (),
        *,
        emit: Callable[[ev.Event], None],
        artifacts_root: Path | None = None,
        restart: RestartPolicy | None = None,
        stall_after: float = STALL_AFTER,
    ) -> None:
        self.emit = emit
        if artifacts_root is None:
            artifacts_root = Path(tempfile.mkdtemp(prefix="gpumon-"))
        self.artifacts_root = artifacts_root
        self.restart = restart or RestartPolicy()
        self.stall_after = stall_after
        # One NVML process table for every pool: driver-side GPU memory by pid, once a second.
        self.gpu_memory = GpuMemory()
        self.pools: dict[str, Pool] = {}
        for cfg in pools:
            self.add_pool(cfg)
        self._watchdog: asyncio.Task[None] | None = None

    def add_pool(self, config: PoolConfig) -> Pool:
        if config.name in self.pools:
            raise SpecError(f"there is already a pool named {config.name!r}")
        pool = Pool(config, self.emit, self.artifacts_root, self.restart, self.gpu_memory)
        self.pools[config.name] = pool
        return pool

    async def remove_pool(self, name: str) -> None:
        """Stop a pool and forget it (a sweep cell is done; its name is free again)."""
        pool = self.pools.pop(name, None)
        if pool is not None:
            await pool.stop()

    # ---- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.gather(*(p.start() for p in self.pools.values()))
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="gpumon watchdog")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await asyncio.gather(*(p.stop() for p in self.pools.values()))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            for p in list(self.pools.values()):
                p.check_stall(self.stall_after)

    # ---- commands ------------------------------------------------------------------
    def pool(self, name: str) -> Pool:
        try:
            return self.pools[name]
        except KeyError:
            raise SpecError(f"no pool named {name!r}; pools: {', '.join(self.pools)}") from None

    async def command(self, name: str, cmd: PoolCommand, source: str = "user") -> ev.Control:
        """Send one command to one pool; the answer is also published as a Control event."""
        return await self.pool(name).command(cmd, source=source)
