"""The supervisor: starts pools, routes commands, watches for stalls, fans events out.

It runs on the caller's asyncio loop (Textual's in the TUI, asyncio.run in `sweep`), owns no
thread of its own, and delivers every event synchronously to its listeners in order, so the
session log and the screen see the same sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from gpumon import events as ev
from gpumon.spec import SpecError, validate_threads
from gpumon.supervisor.pool import Pool, RestartPolicy

Listener = Callable[[ev.Event], None]
STALL_AFTER = 3.0  # seconds without any message (samples come every 0.1 s)


class Supervisor:
    def __init__(
        self,
        pools: Iterable,
        *,
        artifacts_root: Path | None = None,
        restart: RestartPolicy | None = None,
        stall_after: float = STALL_AFTER,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.listeners: list[Listener] = list(listeners)
        if artifacts_root is None:
            artifacts_root = Path(tempfile.mkdtemp(prefix="gpumon-"))
        self.artifacts_root = artifacts_root
        self.restart = restart or RestartPolicy()
        self.stall_after = stall_after
        self.pools: dict[str, Pool] = {}
        for cfg in pools:
            self.add_pool(cfg)
        self._watchdog: asyncio.Task[None] | None = None
        self.listener_errors = 0

    def add_pool(self, config) -> Pool:
        if config.name in self.pools:
            raise SpecError(f"there is already a pool named {config.name!r}")
        pool = Pool(config, self.emit, self.artifacts_root, self.restart)
        self.pools[config.name] = pool
        return pool

    def emit(self, event: ev.Event) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception as e:  # one broken consumer must not silence the others
                self.listener_errors += 1
                print(
                    f"gpumon: event listener failed on {type(event).__name__}: {e}", file=sys.stderr
                )

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

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for p in list(self.pools.values()):
                await p.check_stall(self.stall_after)

    # ---- commands ------------------------------------------------------------------
    def pool(self, name: str) -> Pool:
        try:
            return self.pools[name]
        except KeyError:
            raise SpecError(f"no pool named {name!r}; pools: {', '.join(self.pools)}") from None

    async def set_threads(self, name: str, threads: int, source: str = "user") -> ev.Control:
        validate_threads(threads)
        return await self.pool(name).command("set_threads", source=source, threads=threads)

    async def pause(self, name: str, source: str = "user") -> ev.Control:
        return await self.pool(name).command("pause", source=source)

    async def resume(self, name: str, source: str = "user") -> ev.Control:
        return await self.pool(name).command("resume", source=source)

    async def set_policy(self, name: str, policy: str, source: str = "user") -> ev.Control:
        return await self.pool(name).command("set_policy", source=source, policy=policy)

    async def set_workload(
        self,
        name: str,
        workload: str | None = None,
        size: int | None = None,
        dtype: str | None = None,
        source: str = "user",
    ) -> ev.Control:
        return await self.pool(name).command(
            "set_workload", source=source, workload=workload, size=size, dtype=dtype
        )

    async def restart_pool(self, name: str, source: str = "user") -> ev.Control:
        return await self.pool(name).restart(source=source)

    async def stop_pool(self, name: str) -> None:
        await self.pool(name).stop()
