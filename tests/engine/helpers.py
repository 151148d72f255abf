"""Run real pools under a real Supervisor and keep every event they produce."""

from __future__ import annotations

from pathlib import Path

from gpumon import events as ev
from gpumon.spec import parse_pool
from gpumon.supervisor.pool import RestartPolicy
from gpumon.supervisor.supervisor import Supervisor


class Session:
    def __init__(
        self,
        specs: list[str],
        artifacts: Path,
        restart: bool = False,
        stall_after: float = 3.0,
        max_restarts: int | None = None,
    ) -> None:
        self.events: list[ev.Event] = []
        self.sup = Supervisor(
            [parse_pool(s) for s in specs],
            artifacts_root=artifacts,
            restart=RestartPolicy(enabled=restart, base_delay=0.1, max_restarts=max_restarts),
            stall_after=stall_after,
            listeners=[self.events.append],
        )

    def of(self, kind: type, pool: str | None = None) -> list:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (pool is None or getattr(e, "pool", None) == pool)
        ]

    def samples(self, pool: str) -> list[ev.Sample]:
        return self.of(ev.Sample, pool)

    def ready(self, pool: str) -> bool:
        return bool(self.of(ev.PoolReady, pool))

    async def __aenter__(self) -> Session:
        await self.sup.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sup.stop()
