"""Run real pools in a real (unrecorded) session and keep every event they produce."""

from __future__ import annotations

from pathlib import Path

from gpumon import events as ev
from gpumon.control import PoolCommand
from gpumon.live_session import LiveSession, start_session
from gpumon.spec import parse_pool
from gpumon.supervisor.backoff import RestartPolicy
from gpumon.supervisor.supervisor import Supervisor


class Session:
    def __init__(
        self,
        specs: list[str],
        artifacts: Path,
        restart: bool = False,
        stall_after: float = 3.0,
        max_restarts: int | None = None,
        record: bool = False,
        loop_crashes: int | None = 10,
    ) -> None:
        self.events: list[ev.Event] = []
        self.specs = specs
        self.artifacts = artifacts
        self.record = record
        self.restart = RestartPolicy(
            enabled=restart, base_delay=0.1, max_restarts=max_restarts, loop_crashes=loop_crashes
        )
        self.stall_after = stall_after
        self.live: LiveSession | None = None

    @property
    def sup(self) -> Supervisor:
        assert self.live is not None
        return self.live.supervisor

    async def command(self, pool: str, cmd: PoolCommand) -> ev.Control:
        return await self.sup.command(pool, cmd)

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
        self.live = await start_session(
            [parse_pool(s) for s in self.specs],
            mode="test",
            argv=["pytest"],
            record=self.record,
            session_dir=self.artifacts if self.record else None,
            listeners=[self.events.append],
            restart=self.restart,
            stall_after=self.stall_after,
            host_every=None,
            artifacts_root=self.artifacts,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.live is not None
        await self.live.close()
